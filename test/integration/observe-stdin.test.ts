// `ferry observe --stdin`: the flow view fed by `kubectl logs … -f` on a Kubernetes cluster (docs/install.md),
// run as the real CLI process with the lines piped into it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { test } from 'node:test';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

function accessLine(namespace: string, msg = 'connection complete'): string {
  return JSON.stringify({
    level: 'info',
    time: '2026-11-22T08:00:01.234Z',
    node: 'node-a',
    scope: 'access',
    msg,
    direction: 'inbound',
    'src.addr': '10.244.1.5:41000',
    'src.workload': 'client-0',
    'src.namespace': namespace,
    'src.identity': `spiffe://cluster.local/ns/${namespace}/sa/client`,
    'dst.addr': '10.244.2.7:8080',
    'dst.hbone_addr': '10.244.2.7:8080',
    'dst.workload': 'echo-0',
    'dst.namespace': namespace,
    bytes_sent: 120,
    bytes_recv: 340,
    duration: 3.2,
  });
}

test('observe --stdin prints the flows of piped access-log lines, filtered, and skips everything else', async () => {
  const child = spawn(process.execPath, [MAIN, 'observe', '--stdin', '--namespace', 'demo'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  child.stdin.write(`${accessLine('demo')}\n`);
  child.stdin.write('not json at all\n{"msg":"ztunnel ready"}\n');
  child.stdin.write(`${accessLine('other')}\n`);
  child.stdin.end(accessLine('demo')); // the last line without a newline still counts
  const [code] = (await once(child, 'exit')) as [number];
  assert.equal(code, 0, err);
  const expected =
    '08:00:01.234 [node-a] demo/client-0 -> demo/echo-0  mTLS spiffe://cluster.local/ns/demo/sa/client  ALLOWED  120B/340B 3ms';
  assert.deepEqual(out.trimEnd().split('\n'), [expected, expected]);
});
