// `ferry observe` turns access-log lines into flows: verdicts, identities, filters, hostile lines.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flowFromLogLine, formatFlow, matchesFilter } from '../../../src/cli/observe/flow.ts';

const inboundOk = JSON.stringify({
  level: 'info',
  time: '2026-11-22T08:00:01.234Z',
  node: 'node-1',
  scope: 'access',
  msg: 'connection complete',
  direction: 'inbound',
  'src.addr': '10.244.1.5:41000',
  'src.workload': 'client-0',
  'src.namespace': 'demo',
  'src.identity': 'spiffe://cluster.local/ns/demo/sa/client',
  'dst.addr': '10.244.2.7:8080',
  'dst.hbone_addr': '10.244.2.7:8080',
  'dst.workload': 'echo-v1-0',
  'dst.namespace': 'demo',
  bytes_sent: 120,
  bytes_recv: 340,
  duration: 3.2,
});

test('an mTLS inbound line becomes an allowed flow naming the verified identity', () => {
  const f = flowFromLogLine(inboundOk);
  assert.ok(f);
  assert.equal(f.verdict, 'allowed');
  assert.equal(f.security, 'mtls');
  assert.equal(f.sourceIdentity, 'spiffe://cluster.local/ns/demo/sa/client');
  assert.equal(
    formatFlow(f),
    '08:00:01.234 [node-1] demo/client-0 -> demo/echo-v1-0  mTLS spiffe://cluster.local/ns/demo/sa/client  ALLOWED  120B/340B 3ms',
  );
});

test('a policy denial names the policy; a plaintext connection says so', () => {
  const denied = JSON.parse(inboundOk) as Record<string, unknown>;
  denied.msg = 'connection failed';
  denied.error = { code: 'FERRY_AUTHZ_DENIED', message: 'explicitly denied' };
  denied.policy = 'demo/deny-client';
  const f = flowFromLogLine(JSON.stringify(denied));
  assert.equal(f?.verdict, 'denied');
  assert.match(formatFlow(f!), /DENIED \(demo\/deny-client\)/);
  const plain = JSON.parse(inboundOk) as Record<string, unknown>;
  delete plain['src.identity'];
  delete plain['dst.hbone_addr'];
  assert.equal(flowFromLogLine(JSON.stringify(plain))?.security, 'plaintext');
  const failed = { ...denied, error: { code: 'FERRY_UPSTREAM_CONNECT_FAILED' }, policy: undefined };
  assert.equal(flowFromLogLine(JSON.stringify(failed))?.verdict, 'failed');
});

test('filters: namespace matches either side; destination-only drops the outbound twin', () => {
  const f = flowFromLogLine(inboundOk)!;
  assert.equal(matchesFilter(f, { namespace: 'demo' }), true);
  assert.equal(matchesFilter(f, { namespace: 'other' }), false);
  const out = flowFromLogLine(inboundOk.replace('"direction":"inbound"', '"direction":"outbound"'))!;
  assert.equal(matchesFilter(out, { destinationOnly: true }), false);
  assert.equal(matchesFilter(out, {}), true);
});

test('lines that are not completed access logs, and garbage, are ignored', () => {
  for (const text of [
    '',
    'not json',
    '[]',
    'null',
    '{"scope":"access","msg":"connection opened"}',
    '{"msg":"ztunnel ready"}',
    '{"scope":"access","msg":"connection complete","bytes_sent":"lots"}',
  ]) {
    const f = flowFromLogLine(text);
    if (f !== null) assert.equal(f.bytesSent, 0, 'non-numeric bytes read as 0');
  }
  assert.equal(flowFromLogLine('{"scope":"access","msg":"connection opened"}'), null);
});
