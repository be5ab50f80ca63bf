// planOutbound, table-driven like ztunnel's run_build_request: one mesh, one helper, many named cases.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatSpiffeId } from '../../../src/identity/spiffe-id.ts';
import type { MeshView } from '../../../src/mesh/mesh-view.ts';
import type { Workload } from '../../../src/mesh/types.ts';
import { type OutboundOptions, type OutboundPlan, planOutbound } from '../../../src/ztunnel/outbound-plan.ts';
import {
  keyOf,
  meshView,
  SELF_PORTS,
  service,
  waypointByAddress,
  waypointByHostname,
  workload,
} from '../../helpers/mesh-builders.ts';

// ---- the mesh ----
const echo = service('echo', '10.96.0.10', {
  ports: { 80: 8080 },
  subjectAltNames: ['spiffe://cluster.local/ns/default/sa/echo-canary', 'not-a-spiffe-id'],
});
const named = service('named', '10.96.0.11', { ports: { 80: 0 } });
const empty = service('empty', '10.96.0.12');
const sick = service('sick', '10.96.0.13');
const wpSvc = service('waypoint', '10.96.0.30', { ports: { 15021: 15021 } }); // 15008 not declared, as is common
const reviews = service('reviews', '10.96.0.20', { waypoint: waypointByHostname('default', wpSvc.hostname) });
const byAddr = service('by-addr', '10.96.0.21', { waypoint: waypointByAddress('10.244.0.30') });
const byVip = service('by-vip', '10.96.0.22', { waypoint: waypointByAddress('10.96.0.30') });
const brokenWp = service('broken-wp', '10.96.0.23', { waypoint: waypointByHostname('default', 'nope.default.svc') });
const legacySvc = service('legacy', '10.96.0.50');
const v6 = service('v6', 'fd00:96::10');

const sleep = workload('sleep', '10.244.0.7', { node: 'node-a' });
const echoA = workload('echo-a', '10.244.0.5', { capacity: 1, services: { [keyOf(echo)]: { 80: 8080 } } });
const echoB = workload('echo-b', '10.244.1.6', {
  capacity: 3,
  node: 'node-b',
  services: { [keyOf(echo)]: { 80: 8080 } },
});
const namedPod = workload('named-pod', '10.244.0.8', { services: { [keyOf(named)]: { 80: 9090 } } });
const namedNoMap = workload('named-nomap', '10.244.0.9', { capacity: 50, services: { [keyOf(named)]: {} } });
const sickPod = workload('sick-pod', '10.244.0.10', { status: 'Unhealthy', services: { [keyOf(sick)]: { 80: 8080 } } });
const waypointPod = workload('waypoint', '10.244.0.30', { services: { [keyOf(wpSvc)]: { 15021: 15021 } } });
const reviewsPod = workload('reviews-pod', '10.244.0.31', { services: { [keyOf(reviews)]: { 80: 8080 } } });
const ratings = workload('ratings', '10.244.0.40', { waypoint: waypointByHostname('default', wpSvc.hostname) });
const legacy = workload('legacy', '10.244.0.50', { protocol: 'TCP', services: { [keyOf(legacySvc)]: { 80: 8080 } } });
const v6Pod = workload('v6-pod', ['10.244.0.60', 'fd00:244::60'], { services: { [keyOf(v6)]: { 80: 8080 } } });
const wpUnknownPod = workload('wp-unknown', '10.244.0.41', { waypoint: waypointByAddress('10.244.9.99') });

const view: MeshView = meshView({
  workloads: [
    sleep,
    echoA,
    echoB,
    namedPod,
    namedNoMap,
    sickPod,
    waypointPod,
    reviewsPod,
    ratings,
    legacy,
    v6Pod,
    wpUnknownPod,
  ],
  services: [echo, named, empty, sick, wpSvc, reviews, byAddr, byVip, brokenWp, legacySvc, v6],
});

// ---- the helper ----
interface Expected {
  kind: OutboundPlan['kind'];
  via?: 'direct' | 'waypoint';
  to?: string; // actualDestination as ip:port ([v6]:port)
  authority?: string;
  identities?: string[];
  destination?: string | null; // destination workload name
  service?: string | null; // intended service name
  waypoint?: string | null;
  error?: string;
}

function summarize(plan: OutboundPlan): Expected {
  const base = {
    kind: plan.kind,
    destination: plan.destinationWorkload?.name ?? null,
    service: plan.intendedService?.name ?? null,
  };
  const hp = (a: { ip: string; port: number }): string =>
    a.ip.includes(':') ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
  switch (plan.kind) {
    case 'hbone':
      return {
        ...base,
        via: plan.via,
        to: hp(plan.actualDestination),
        authority: plan.authority,
        identities: plan.expectedIdentities.map(formatSpiffeId),
        waypoint: plan.waypoint?.name ?? null,
      };
    case 'tcp':
    case 'passthrough':
      return { ...base, to: hp(plan.actualDestination) };
    case 'reject':
      return { ...base, error: plan.error.code };
  }
}

function runPlan(
  dst: string,
  expected: Expected,
  options: { source?: Workload; random?: number; opts?: Partial<OutboundOptions> } = {},
): void {
  const [, ip = '', port = ''] = /^\[?([^\]]+?)\]?:(\d+)$/.exec(dst) ?? [];
  const plan = planOutbound({ source: options.source ?? sleep, dst: { ip, port: Number(port) } }, view, {
    random: () => options.random ?? 0,
    selfPorts: SELF_PORTS,
    selfAddresses: new Set(['10.244.0.7']),
    ...options.opts,
  });
  const got = summarize(plan);
  // Compare only the fields the case states, plus kind.
  const picked = Object.fromEntries(Object.keys(expected).map((k) => [k, got[k as keyof Expected]]));
  assert.deepEqual(picked, expected, `full plan: ${JSON.stringify(got)}`);
}

const id = (ns: string, sa: string): string => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

const cases: [name: string, dst: string, expected: Expected, options?: Parameters<typeof runPlan>[2]][] = [
  [
    'VIP → low random picks the capacity-1 endpoint first in order',
    '10.96.0.10:80',
    {
      kind: 'hbone',
      via: 'direct',
      to: '10.244.0.5:15008',
      authority: '10.244.0.5:8080',
      identities: [id('default', 'echo-a'), id('default', 'echo-canary')],
      destination: 'echo-a',
      service: 'echo',
      waypoint: null,
    },
    { random: 0.2 },
  ],
  [
    'VIP → high random picks the capacity-3 endpoint',
    '10.96.0.10:80',
    { kind: 'hbone', to: '10.244.1.6:15008', authority: '10.244.1.6:8080', destination: 'echo-b' },
    { random: 0.3 },
  ],
  ['VIP on an undeclared port', '10.96.0.10:81', { kind: 'reject', error: 'FERRY_UNKNOWN_PORT', service: 'echo' }],
  [
    'VIP with a named port resolves per endpoint and skips endpoints without it',
    '10.96.0.11:80',
    { kind: 'hbone', to: '10.244.0.8:15008', authority: '10.244.0.8:9090', destination: 'named-pod' },
    { random: 0.99 },
  ],
  ['VIP without endpoints', '10.96.0.12:80', { kind: 'reject', error: 'FERRY_NO_HEALTHY_UPSTREAM', service: 'empty' }],
  ['VIP with only unhealthy endpoints', '10.96.0.13:80', { kind: 'reject', error: 'FERRY_NO_HEALTHY_UPSTREAM' }],
  [
    'VIP whose endpoint speaks plain TCP',
    '10.96.0.50:80',
    { kind: 'tcp', to: '10.244.0.50:8080', destination: 'legacy', service: 'legacy' },
  ],
  [
    'service waypoint by hostname: VIP authority, waypoint identity, port not declared on the waypoint service',
    '10.96.0.20:80',
    {
      kind: 'hbone',
      via: 'waypoint',
      to: '10.244.0.30:15008',
      authority: '10.96.0.20:80',
      identities: [id('default', 'waypoint')],
      destination: null,
      service: 'reviews',
      waypoint: 'waypoint',
    },
  ],
  [
    'service waypoint applies on any port, even one the service does not declare',
    '10.96.0.20:9999',
    { kind: 'hbone', via: 'waypoint', authority: '10.96.0.20:9999' },
  ],
  [
    'service waypoint by pod address',
    '10.96.0.21:80',
    { kind: 'hbone', via: 'waypoint', to: '10.244.0.30:15008', authority: '10.96.0.21:80', waypoint: 'waypoint' },
  ],
  [
    'service waypoint by its service VIP',
    '10.96.0.22:80',
    { kind: 'hbone', via: 'waypoint', to: '10.244.0.30:15008', waypoint: 'waypoint' },
  ],
  ['service waypoint that does not resolve', '10.96.0.23:80', { kind: 'reject', error: 'FERRY_UNKNOWN_TARGET' }],
  [
    'pod IP → direct HBONE with the port as dialed',
    '10.244.0.5:8080',
    {
      kind: 'hbone',
      via: 'direct',
      to: '10.244.0.5:15008',
      authority: '10.244.0.5:8080',
      identities: [id('default', 'echo-a')],
      destination: 'echo-a',
      service: null,
    },
  ],
  [
    'pod IP → unhealthy pods are still reachable directly',
    '10.244.0.10:8080',
    { kind: 'hbone', to: '10.244.0.10:15008', destination: 'sick-pod' },
  ],
  ['pod IP of a TCP workload', '10.244.0.50:8080', { kind: 'tcp', to: '10.244.0.50:8080', destination: 'legacy' }],
  [
    'pod IP with a workload waypoint: original pod authority',
    '10.244.0.40:9080',
    {
      kind: 'hbone',
      via: 'waypoint',
      to: '10.244.0.30:15008',
      authority: '10.244.0.40:9080',
      destination: 'ratings',
      waypoint: 'waypoint',
    },
  ],
  [
    'pod IP with a workload waypoint, from that waypoint: direct (no loop)',
    '10.244.0.40:9080',
    { kind: 'hbone', via: 'direct', to: '10.244.0.40:15008', authority: '10.244.0.40:9080', waypoint: null },
    { source: waypointPod },
  ],
  [
    'service waypoint, from that waypoint: load-balanced direct',
    '10.96.0.20:80',
    {
      kind: 'hbone',
      via: 'direct',
      to: '10.244.0.31:15008',
      authority: '10.244.0.31:8080',
      destination: 'reviews-pod',
    },
    { source: waypointPod },
  ],
  ['pod IP whose waypoint address is unknown', '10.244.0.41:80', { kind: 'reject', error: 'FERRY_UNKNOWN_TARGET' }],
  [
    'unknown address → passthrough unchanged',
    '93.184.216.34:443',
    { kind: 'passthrough', to: '93.184.216.34:443', destination: null, service: null },
  ],
  ['loop guard: loopback to 15001', '127.0.0.1:15001', { kind: 'reject', error: 'FERRY_SELF_CALL' }],
  ['loop guard: loopback to 15080', '127.0.0.1:15080', { kind: 'reject', error: 'FERRY_SELF_CALL' }],
  ['loop guard: IPv6 loopback to 15006', '[::1]:15006', { kind: 'reject', error: 'FERRY_SELF_CALL' }],
  ['loop guard: our own pod address and 15008', '10.244.0.7:15008', { kind: 'reject', error: 'FERRY_SELF_CALL' }],
  ['loopback on an ordinary port is passed through', '127.0.0.1:8080', { kind: 'passthrough', to: '127.0.0.1:8080' }],
  [
    'IPv6 VIP → bracketed authority on the v6 address of a dual-stack pod',
    '[fd00:96::10]:80',
    { kind: 'hbone', to: '[fd00:244::60]:15008', authority: '[fd00:244::60]:8080', destination: 'v6-pod' },
  ],
  [
    'IPv6 pod address → bracketed authority',
    '[fd00:244::60]:8080',
    { kind: 'hbone', to: '[fd00:244::60]:15008', authority: '[fd00:244::60]:8080' },
  ],
  [
    'custom HBONE port for destination ztunnels',
    '10.244.0.5:8080',
    { kind: 'hbone', to: '10.244.0.5:25008', authority: '10.244.0.5:8080' },
    { opts: { hbonePort: 25008 } },
  ],
  [
    'source on another network does not see default-network services',
    '10.96.0.10:80',
    { kind: 'passthrough', to: '10.96.0.10:80' },
    { source: workload('far', '10.9.0.1', { network: 'west' }) },
  ],
];

for (const [name, dst, expected, options] of cases) {
  test(`planOutbound: ${name}`, () => runPlan(dst, expected, options));
}

test('planOutbound: VIP distribution follows capacity over evenly spread randomness', () => {
  const counts: Record<string, number> = {};
  for (let i = 0; i < 400; i++) {
    const plan = planOutbound({ source: sleep, dst: { ip: '10.96.0.10', port: 80 } }, view, {
      random: () => i / 400,
      selfPorts: SELF_PORTS,
    });
    assert.equal(plan.kind, 'hbone');
    const name = plan.destinationWorkload?.name ?? 'none';
    counts[name] = (counts[name] ?? 0) + 1;
  }
  assert.deepEqual(counts, { 'echo-a': 100, 'echo-b': 300 });
});

test('planOutbound: every plan names the source and its identity for telemetry', () => {
  const plan = planOutbound({ source: sleep, dst: { ip: '93.184.216.34', port: 443 } }, view, {
    random: Math.random,
    selfPorts: SELF_PORTS,
  });
  assert.equal(plan.source, sleep);
  assert.equal(formatSpiffeId(plan.sourceIdentity), id('default', 'sleep'));
  assert.deepEqual(plan.originalDestination, { ip: '93.184.216.34', port: 443 });
});
