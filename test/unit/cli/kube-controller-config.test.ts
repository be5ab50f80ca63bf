// `ferry controller` (Kubernetes mode) CA authentication flags: TokenReview needs both the audience and the
// ztunnel's ServiceAccount or the static --node-tokens file (not both), and a malformed value names its flag.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  refused(['--tls-ip-addresses', '10.0.0.1,gateway'], /--tls-ip-addresses: "gateway" is not an IP address/);
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
    /choose one way to authenticate node agents/,
  );
});

test('--ca-token-audience with --node-tokens: node agents by node token, other callers by TokenReview', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-kcc-'));
  try {
    const tokens = join(dir, 'tokens.json');
    writeFileSync(tokens, JSON.stringify({ t0: 'node-0' }));
    const ca = await caOptions(['--ca-token-audience', 'ferry-ca', '--node-tokens', tokens]);
    assert.deepEqual(ca?.tokenReview, { audience: 'ferry-ca', ztunnelServiceAccount: null });
    assert.deepEqual([...(ca?.nodeTokens ?? [])], [['t0', 'node-0']]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the chart’s flags: namespace from $POD_NAMESPACE, TLS names, CA Secret, ConfigMap, cluster domain', async () => {
  const parsed = parseKubeControllerArgs(
    [
      ...BASE,
      '--cluster-domain=corp.example',
      '--tls-dns-names=ferry-controller.ferry-system.svc,ferry-controller.ferry-system.svc.corp.example',
      '--ca-secret=ferry-ca-secret',
      '--root-cert-configmap=ferry-ca-root-cert',
      '--metrics=127.0.0.1:9020',
    ],
    { POD_NAMESPACE: 'ferry-system' },
  );
  assert.ok(parsed);
  const opts = await parsed.build(silentLogger);
  assert.equal(opts.namespace, 'ferry-system');
  assert.equal(opts.lease?.namespace, 'ferry-system');
  assert.equal(opts.clusterDomain, 'corp.example');
  assert.deepEqual(opts.tlsDnsNames, [
    'ferry-controller.ferry-system.svc',
    'ferry-controller.ferry-system.svc.corp.example',
  ]);
  assert.equal(opts.ca?.secretName, 'ferry-ca-secret');
  assert.equal(opts.rootCertConfigMap, 'ferry-ca-root-cert');
  assert.equal(opts.waypointTemplate, null);
  assert.deepEqual(parsed.servers, {
    admin: { host: '127.0.0.1', port: 15000 },
    metrics: { host: '127.0.0.1', port: 9020 },
    readiness: { host: '0.0.0.0', port: 15021 },
  });
});

test('bad values of the chart’s flags are refused, naming the flag', async () => {
  const refused = (argv: readonly string[], pattern: RegExp) =>
    assert.throws(
      () => parseKubeControllerArgs([...BASE, ...argv], {}),
      (err: unknown) => err instanceof ConfigError && pattern.test(err.message),
      argv.join(' '),
    );
  refused(['--ca-dir=/etc/cacerts', '--ca-secret=x'], /--ca-dir and --ca-secret/);
  refused(['--tls-dns-names=ok.svc,'], /--tls-dns-names: "" is not a DNS name/);
  refused(['--cluster-domain=Corp_Example'], /--cluster-domain/);
  refused(['--root-cert-configmap=Not/AName'], /--root-cert-configmap/);
  refused(['--readiness=15021'], /--readiness: expected host:port/);
  const parsed = parseKubeControllerArgs([...BASE, '--waypoint-template=/nonexistent/waypoint.yaml'], {});
  await assert.rejects(
    parsed?.build(silentLogger) ?? Promise.resolve(),
    /--waypoint-template \/nonexistent\/waypoint\.yaml: not readable \(ENOENT\)/,
  );
});
