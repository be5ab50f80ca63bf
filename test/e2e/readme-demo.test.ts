// The README's two commands as a newcomer runs them after `npm ci`: `sudo ./bin/ferry up -f examples/demo`,
// with no BPF compiler reachable: clang, llc, llvm-strip and bpftool on PATH are stand-ins that record the
// call and fail, so a pass proves Ferry loads the shipped, checked-in BPF object (docs/redirect.md, "The
// shipped object"; shipped-object.test.ts checks that git tracks it, so a clean clone has it). The pods
// come up, the walkthrough's first command works as written (`./bin/ferry exec demo/client-0 -- curl …`),
// and `ferry down` leaves nothing behind, also when the test fails (FerryCli.up registers it first).
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { privilegedTest } from '../../testkit/privileged.ts';
import { BIN_FERRY, DEMO, FerryCli, podOf } from '../helpers/cluster-cli.ts';

const COMPILERS = ['clang', 'llc', 'llvm-strip', 'bpftool'];
const shims = mkdtempSync('/tmp/ferrytest-no-clang-');
const calls = join(shims, 'calls.log');
for (const tool of COMPILERS) {
  writeFileSync(join(shims, tool), `#!/bin/sh\necho "$0 $*" >> '${calls}'\nexit 127\n`);
  chmodSync(join(shims, tool), 0o755);
}
const cli = new FerryCli('readme', { command: [BIN_FERRY], env: { PATH: `${shims}:${process.env.PATH ?? ''}` } });
test.after(() => {
  cli.remove();
  rmSync(shims, { recursive: true, force: true });
});

privilegedTest('README: ./bin/ferry up -f examples/demo brings the demo up without clang', async (t) => {
  const { cluster, up } = await cli.up(t, 'readme', DEMO);
  assert.match(up.stdout, /demo\/client-0\s+node-\d\s+10\.244\.\d+\.\d+/);

  const status = await cli.status(cluster);
  assert.equal(status.pods.length, 4, JSON.stringify(status.pods));
  const echoV1 = podOf(status, 'demo', 'echo-v1-0');
  const client = podOf(status, 'demo', 'client-0');
  podOf(status, 'legacy', 'outsider');
  assert.ok(
    status.nodes.every((n) => n.xdsConnected),
    'every node ztunnel is connected',
  );

  const plain = await cli.curl(cluster, 'demo/client-0', `http://${echoV1.ip}:8080/`);
  assert.ok(plain.echo !== null, plain.run.stdout + plain.run.stderr);
  assert.equal(plain.echo.peer.address, client.ip);

  assert.equal(
    existsSync(calls),
    false,
    `Ferry ran a compiler: ${existsSync(calls) ? readFileSync(calls, 'utf8') : ''}`,
  );
});
