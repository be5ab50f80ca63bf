// planInbound / planInboundPassthrough and the HBONE authority parser: table-driven, plus fuzzing of the
// untrusted authority text (the planner must answer every input with a value, never throw).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { formatAuthority, parseHboneAuthority } from '../../../src/hbone/authority.ts';
import { type SpiffeId, spiffeId } from '../../../src/identity/spiffe-id.ts';
import { evaluateAuthz } from '../../../src/mesh/authz/evaluate.ts';
import { staticStrictPolicy } from '../../../src/mesh/authz/strict.ts';
import type { AuthzConnection } from '../../../src/mesh/authz/types.ts';
import type { Authorization } from '../../../src/mesh/types.ts';
import {
  type EvaluateAuthz,
  type InboundOptions,
  type InboundPlan,
  planInbound,
  planInboundPassthrough,
} from '../../../src/ztunnel/inbound-plan.ts';
import { match, meshView, policy, SELF_PORTS, workload } from '../../helpers/mesh-builders.ts';

// ---- authority parsing ----

const goodAuthorities: [string, string, number][] = [
  ['10.244.0.5:8080', '10.244.0.5', 8080],
  ['10.96.0.10:80', '10.96.0.10', 80],
  ['0.0.0.0:1', '0.0.0.0', 1],
  ['10.0.0.1:65535', '10.0.0.1', 65535],
  ['[fd00::5]:80', 'fd00::5', 80],
  ['[FD00:0:0:0:0:0:0:5]:80', 'fd00::5', 80],
  ['[::ffff:10.0.0.1]:80', '::ffff:10.0.0.1', 80],
];
for (const [text, ip, port] of goodAuthorities) {
  test(`parseHboneAuthority accepts ${text}`, () => {
    assert.deepEqual(parseHboneAuthority(text), { ok: true, value: { ip, port } });
  });
}

const badAuthorities = [
  '',
  '10.0.0.1',
  '10.0.0.1:',
  '10.0.0.1:0',
  '10.0.0.1:65536',
  '10.0.0.1:080',
  '10.0.0.1:+80',
  '10.0.0.1:80 ',
  ' 10.0.0.1:80',
  '10.0.0.1:8a',
  '10.0.0.256:80',
  '10.0.0:80',
  'echo.default.svc.cluster.local:80',
  'localhost:80',
  'fd00::5:80',
  '[fd00::5]',
  '[fd00::5]80',
  '[fd00::5:80',
  '[10.0.0.1]:80',
  '[fe80::1%eth0]:80',
  '10.0.0.1:80:80',
  ':80',
  '[]:80',
  `10.0.0.1:${'9'.repeat(100)}`,
  'x'.repeat(10_000),
  '10.0.0.1:80\r\nx-injected: 1',
];
for (const text of badAuthorities) {
  test(`parseHboneAuthority rejects ${JSON.stringify(text.slice(0, 40))}`, () => {
    const r = parseHboneAuthority(text);
    assert.ok(!r.ok);
    assert.equal(r.error.code, 'FERRY_HBONE_BAD_AUTHORITY');
    assert.ok(r.error.message.length < 200, 'message is bounded');
    assert.ok(!r.error.message.includes('\n'), 'message cannot forge log lines');
  });
}

test('formatAuthority brackets IPv6 only, and round-trips through the parser', () => {
  assert.equal(formatAuthority('10.0.0.1', 80), '10.0.0.1:80');
  assert.equal(formatAuthority('fd00::5', 80), '[fd00::5]:80');
  for (const [ip, port] of [
    ['10.1.2.3', 8080],
    ['fd00::1', 443],
    ['::ffff:10.0.0.1', 9],
  ] as const) {
    assert.deepEqual(parseHboneAuthority(formatAuthority(ip, port)), { ok: true, value: { ip, port } });
  }
});

// ---- planInbound ----

const server = workload('server', ['10.244.1.5', 'fd00::15'], { node: 'node-b', authorizationPolicies: [] });
const strictServer = workload('strict', '10.244.1.6', {
  node: 'node-b',
  authorizationPolicies: ['istio-system/istio_converted_static_strict'],
});
const elsewhere = workload('elsewhere', '10.244.2.5', { node: 'node-c' });
const client: SpiffeId = spiffeId('cluster.local', 'default', 'sleep');
const intruder: SpiffeId = spiffeId('cluster.local', 'other', 'intruder');

const denyIntruder: Authorization = policy('deny-intruder', {
  action: 'Deny',
  rules: [[[match({ principals: [{ kind: 'exact', value: 'cluster.local/ns/other/sa/intruder' }] })]]],
});
const allowPort8080: Authorization = policy('allow-8080', {
  action: 'Allow',
  rules: [[[match({ destinationPorts: [8080] })]]],
});
const policies = [denyIntruder, allowPort8080, staticStrictPolicy()];
const view = meshView({ workloads: [server, strictServer, elsewhere], policies });

const opts: InboundOptions = { selfPorts: SELF_PORTS, evaluate: evaluateAuthz, localNode: 'node-b' };

interface InboundCase {
  name: string;
  authority: string;
  dialedIp?: string;
  peerIdentity?: SpiffeId;
  expected:
    | { kind: 'forward'; upstream: string }
    | { kind: 'reject'; status: 400 | 401 | 503; code: string; message?: RegExp };
}

function runInbound(c: InboundCase, options: InboundOptions = opts): InboundPlan {
  const plan = planInbound(
    {
      authority: c.authority,
      dialedIp: c.dialedIp ?? '10.244.1.5',
      peerIp: '10.244.0.7',
      peerIdentity: c.peerIdentity ?? client,
    },
    view,
    options,
  );
  if (c.expected.kind === 'forward') {
    assert.equal(plan.kind, 'forward', plan.kind === 'reject' ? plan.error.message : '');
    assert.ok(plan.kind === 'forward');
    assert.equal(formatAuthority(plan.upstream.ip, plan.upstream.port), c.expected.upstream);
  } else {
    assert.equal(plan.kind, 'reject');
    assert.ok(plan.kind === 'reject');
    assert.equal(plan.status, c.expected.status);
    assert.equal(plan.error.code, c.expected.code);
    if (c.expected.message) assert.match(plan.error.message, c.expected.message);
  }
  return plan;
}

const inboundCases: InboundCase[] = [
  {
    name: 'allowed by an ALLOW policy',
    authority: '10.244.1.5:8080',
    expected: { kind: 'forward', upstream: '10.244.1.5:8080' },
  },
  {
    name: 'IPv6 pod address',
    authority: '[fd00::15]:8080',
    dialedIp: 'fd00::15',
    expected: { kind: 'forward', upstream: '[fd00::15]:8080' },
  },
  {
    name: 'IPv6 authority spelled differently from the dialed address still matches',
    authority: '[fd00:0::15]:8080',
    dialedIp: 'fd00::15',
    expected: { kind: 'forward', upstream: '[fd00::15]:8080' },
  },
  {
    name: 'dialed address reported IPv4-mapped by a dual-stack socket',
    authority: '10.244.1.5:8080',
    dialedIp: '::ffff:10.244.1.5',
    expected: { kind: 'forward', upstream: '10.244.1.5:8080' },
  },
  {
    name: 'malformed authority',
    authority: 'echo.default:80',
    expected: { kind: 'reject', status: 400, code: 'FERRY_HBONE_BAD_AUTHORITY', message: /echo\.default:80/ },
  },
  {
    name: 'authority IP differs from the dialed IP',
    authority: '10.244.2.5:8080',
    expected: {
      kind: 'reject',
      status: 400,
      code: 'FERRY_HBONE_IP_MISMATCH',
      message: /^ip mismatch: 10\.244\.2\.5 != 10\.244\.1\.5$/,
    },
  },
  {
    name: 'no workload at the address',
    authority: '10.244.9.9:8080',
    dialedIp: '10.244.9.9',
    expected: { kind: 'reject', status: 503, code: 'FERRY_UNKNOWN_TARGET' },
  },
  {
    name: 'workload exists but runs on another node',
    authority: '10.244.2.5:8080',
    dialedIp: '10.244.2.5',
    expected: { kind: 'reject', status: 503, code: 'FERRY_UNKNOWN_TARGET' },
  },
  {
    name: 'target port is one of our own (15008)',
    authority: '10.244.1.5:15008',
    expected: { kind: 'reject', status: 503, code: 'FERRY_SELF_CALL' },
  },
  {
    name: 'target port is one of our own (15001)',
    authority: '10.244.1.5:15001',
    expected: { kind: 'reject', status: 503, code: 'FERRY_SELF_CALL' },
  },
  {
    name: 'explicit DENY policy matches the peer',
    authority: '10.244.1.5:8080',
    peerIdentity: intruder,
    expected: { kind: 'reject', status: 401, code: 'FERRY_AUTHZ_DENIED', message: /default\/deny-intruder/ },
  },
  {
    name: 'ALLOW policies exist but none matches',
    authority: '10.244.1.5:9090',
    expected: { kind: 'reject', status: 401, code: 'FERRY_AUTHZ_NOT_ALLOWED' },
  },
  {
    name: 'STRICT does not affect mTLS peers',
    authority: '10.244.1.6:8080',
    dialedIp: '10.244.1.6',
    expected: { kind: 'forward', upstream: '10.244.1.6:8080' },
  },
];

for (const c of inboundCases) test(`planInbound: ${c.name}`, () => void runInbound(c));

test('planInbound: authz sees the peer identity, peer IP and the target (not 15008) port', () => {
  const seen: { policies: readonly Authorization[]; conn: AuthzConnection }[] = [];
  const fake: EvaluateAuthz = (p, conn) => {
    seen.push({ policies: p, conn });
    return { kind: 'allow', dryRun: [] };
  };
  const plan = runInbound(
    { name: 'fake', authority: '10.244.1.5:9090', expected: { kind: 'forward', upstream: '10.244.1.5:9090' } },
    { ...opts, evaluate: fake },
  );
  assert.equal(seen.length, 1);
  assert.deepEqual(seen[0]?.conn, { srcIdentity: client, srcIp: '10.244.0.7', dstIp: '10.244.1.5', dstPort: 9090 });
  assert.deepEqual(
    seen[0]?.policies.map((p) => p.name),
    ['deny-intruder', 'allow-8080'],
  );
  assert.ok(plan.kind === 'forward');
  assert.equal(plan.destination, server);
  assert.deepEqual(plan.conn, seen[0]?.conn);
});

test('planInbound: a 401 carries the verdict and the destination for the access log', () => {
  const plan = runInbound({
    name: 'deny',
    authority: '10.244.1.5:8080',
    peerIdentity: intruder,
    expected: { kind: 'reject', status: 401, code: 'FERRY_AUTHZ_DENIED' },
  });
  assert.ok(plan.kind === 'reject');
  assert.equal(plan.destination, server);
  assert.deepEqual(plan.verdict, {
    kind: 'deny',
    code: 'FERRY_AUTHZ_DENIED',
    policy: 'default/deny-intruder',
    dryRun: [],
  });
  assert.equal(plan.conn?.srcIdentity, intruder);
});

test('planInbound: without localNode any workload in the view is a target', () => {
  runInbound(
    {
      name: 'any node',
      authority: '10.244.2.5:8080',
      dialedIp: '10.244.2.5',
      expected: { kind: 'forward', upstream: '10.244.2.5:8080' },
    },
    { selfPorts: SELF_PORTS, evaluate: evaluateAuthz },
  );
});

test('planInbound: fuzzed authorities always yield a plan value, never a throw or a forward elsewhere', () => {
  const alphabet = '0123456789abcdef.:[]%/ -\u0000\uffff';
  for (let i = 0; i < 5000; i++) {
    const len = i % 60;
    let text = '';
    const bytes = randomBytes(len);
    for (const b of bytes) text += alphabet[b % alphabet.length];
    if (i % 7 === 0) text = randomBytes(len).toString('latin1');
    if (i % 11 === 0) text = `10.244.1.5:${text}`;
    const plan = planInbound(
      { authority: text, dialedIp: '10.244.1.5', peerIp: '10.244.0.7', peerIdentity: client },
      view,
      opts,
    );
    if (plan.kind === 'forward') assert.equal(plan.upstream.ip, '10.244.1.5');
    else assert.ok([400, 401, 503].includes(plan.status));
  }
});

// ---- planInboundPassthrough (15006) ----

test('passthrough: plaintext is authorized with no identity and forwarded to the original destination', () => {
  const plan = planInboundPassthrough({ dst: { ip: '10.244.1.5', port: 8080 }, peerIp: '10.244.0.7' }, view, opts);
  assert.ok(plan.kind === 'forward');
  assert.deepEqual(plan.upstream, { ip: '10.244.1.5', port: 8080 });
  assert.equal(plan.conn.srcIdentity, null);
});

test('passthrough: STRICT (a DENY of identity-less peers) refuses plaintext', () => {
  const plan = planInboundPassthrough({ dst: { ip: '10.244.1.6', port: 8080 }, peerIp: '10.244.0.7' }, view, opts);
  assert.ok(plan.kind === 'reject');
  assert.equal(plan.error.code, 'FERRY_AUTHZ_DENIED');
  assert.match(plan.error.message, /istio_converted_static_strict/);
  assert.equal(plan.destination, strictServer);
});

test('passthrough: ALLOW policies apply to plaintext too', () => {
  const plan = planInboundPassthrough({ dst: { ip: '10.244.1.5', port: 9090 }, peerIp: '10.244.0.7' }, view, opts);
  assert.ok(plan.kind === 'reject');
  assert.equal(plan.error.code, 'FERRY_AUTHZ_NOT_ALLOWED');
});

test('passthrough: unknown target and self ports are refused', () => {
  const unknown = planInboundPassthrough({ dst: { ip: '10.244.9.9', port: 8080 }, peerIp: '10.244.0.7' }, view, opts);
  assert.ok(unknown.kind === 'reject');
  assert.equal(unknown.error.code, 'FERRY_UNKNOWN_TARGET');
  const self = planInboundPassthrough({ dst: { ip: '10.244.1.5', port: 15006 }, peerIp: '10.244.0.7' }, view, opts);
  assert.ok(self.kind === 'reject');
  assert.equal(self.error.code, 'FERRY_SELF_CALL');
  assert.equal(self.destination, server);
});
