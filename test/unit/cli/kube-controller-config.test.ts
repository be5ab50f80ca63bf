// `ferry controller` (Kubernetes mode) CA authentication flags: TokenReview needs both the audience and the
// ztunnel's ServiceAccount, excludes the static --node-tokens file, and a malformed value names its flag.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseKubeControllerArgs } from '../../../src/cli/kube-controller-config.ts';
import { silentLogger } from '../../../src/runtime/logger.ts';
import { ConfigError } from '../../../src/runtime/process-config.ts';

const BASE = ['--kubeconfig', '/dev/null'];

async function caOptions(argv: readonly string[]) {
  const parsed = parseKubeControllerArgs([...BASE, ...argv], {});
  assert.ok(parsed);
  return (await parsed.build(silentLogger)).ca;
}

test('--ca-token-audience with --ztunnel-service-account selects TokenReview', async () => {
  const ca = await caOptions([
    '--ca-token-audience',
    'ferry-ca',
    '--ztunnel-service-account',
    'ferry-system/ferry-ztunnel',
  ]);
  assert.deepEqual(ca?.tokenReview, {
    audience: 'ferry-ca',
    ztunnelServiceAccount: { namespace: 'ferry-system', name: 'ferry-ztunnel' },
  });
  assert.equal((await caOptions([]))?.tokenReview, null, 'without the flag: static node tokens');
});

test('incomplete or malformed TokenReview flags are refused, naming the flag', () => {
  const refused = (argv: readonly string[], pattern: RegExp) =>
    assert.throws(
      () => parseKubeControllerArgs([...BASE, ...argv], {}),
      (err: unknown) => err instanceof ConfigError && pattern.test(err.message),
      argv.join(' '),
    );
  refused(['--ca-token-audience', 'ferry-ca'], /--ca-token-audience: needs --ztunnel-service-account/);
  refused(['--ztunnel-service-account', 'a/b'], /--ztunnel-service-account: needs --ca-token-audience/);
  refused(['--ca-token-audience', '', '--ztunnel-service-account', 'a/b'], /must not be empty/);
  for (const bad of ['ferry-ztunnel', 'a/b/c', 'Ferry/zt', '/zt', 'ns/']) {
    refused(
      ['--ca-token-audience', 'x', '--ztunnel-service-account', bad],
      /--ztunnel-service-account: expected NAMESPACE\/NAME/,
    );
  }
  refused(
    ['--ca-token-audience', 'x', '--ztunnel-service-account', 'a/b', '--node-tokens', '/tmp/t.json'],
    /choose one way/,
  );
});
