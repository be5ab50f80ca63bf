// Which outbound connections the sidecar serves as HTTP (src/cli/sidecar-l7.ts, docs/architecture.md
// "Sidecar mode"): Service-bound HTTPRoutes apply client-side, producer and consumer routes as at a
// waypoint, also for a Service that has a waypoint; routes bound only to a waypoint Gateway, TCPRoutes,
// other ports and pod IPs stay L4; only the served pod's connections are taken.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ObjectInput } from '../../../gateway-api/types.ts';
import { buildSidecarState, sidecarClaims } from '../../../src/cli/sidecar-l7.ts';
import type { Service, Workload } from '../../../src/mesh/types.ts';
import type { Held, XdsHeldState } from '../../../src/xds/client-state.ts';
import type { AddressValue, L7Value } from '../../../src/xds/convert.ts';
import { service, waypointByHostname, workload } from '../../helpers/mesh-builders.ts';

const client = workload('client', '10.0.0.2', { namespace: 'bk' });
const other = workload('other', '10.0.0.3', { namespace: 'bk' });
const services: Service[] = [
  service('reviews', '10.96.0.10', { namespace: 'bk', ports: { 9080: 8080 } }),
  service('plain', '10.96.0.11', { namespace: 'bk', ports: { 9080: 8080 } }),
  service('gw-only', '10.96.0.12', { namespace: 'bk', ports: { 9080: 8080 } }),
  service('behind-waypoint', '10.96.0.13', {
    namespace: 'bk',
    ports: { 9080: 8080 },
    waypoint: waypointByHostname('bk', 'waypoint.bk.svc.cluster.local'),
  }),
  service('tcp', '10.96.0.14', { namespace: 'bk', ports: { 9080: 8080 } }),
  service('elsewhere', '10.96.0.15', { namespace: 'shop', ports: { 80: 8080 } }),
];

let sequence = 0;
const route = (
  kind: 'HTTPRoute' | 'TCPRoute',
  namespace: string,
  name: string,
  parent: object,
): [string, Held<L7Value>] => [
  `${kind}/${namespace}/${name}`,
  {
    version: '1',
    value: {
      kind,
      input: {
        namespace,
        name,
        creationTimestampMs: null,
        sequence: sequence++,
        spec: { parentRefs: [parent], rules: [{ backendRefs: [{ name: 'plain', namespace: 'bk', port: 9080 }] }] },
      } satisfies ObjectInput,
    },
  },
];
const svcRef = (name: string, namespace = 'bk', port?: number) => ({
  group: '',
  kind: 'Service',
  name,
  namespace,
  ...(port === undefined ? {} : { port }),
});

const held: XdsHeldState = {
  addresses: new Map<string, Held<AddressValue>>([
    ...[client, other].map((w: Workload): [string, Held<AddressValue>] => [
      w.uid,
      { version: '1', value: { kind: 'workload', workload: w } },
    ]),
    ...services.map((s): [string, Held<AddressValue>] => [
      `${s.namespace}/${s.hostname}`,
      { version: '1', value: { kind: 'service', service: s } },
    ]),
  ]),
  authorizations: new Map(),
  l7: new Map([
    route('HTTPRoute', 'bk', 'reviews', svcRef('reviews', 'bk', 9080)),
    route('HTTPRoute', 'bk', 'behind-waypoint', svcRef('behind-waypoint')),
    route('HTTPRoute', 'bk', 'gw-only', { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' }),
    route('TCPRoute', 'bk', 'tcp', svcRef('tcp')),
    // A consumer route: bk's clients calling shop/elsewhere get it.
    route('HTTPRoute', 'bk', 'to-elsewhere', svcRef('elsewhere', 'shop')),
    ['Gateway/bk/waypoint', { version: '1', value: { kind: 'Gateway', ref: 'bk/waypoint' } }],
  ]),
};

test('sidecarClaims: which connections the sidecar serves as HTTP', () => {
  const state = buildSidecarState(held, '', 1);
  const cases: [string, Workload, string, number, boolean][] = [
    ['Service port with a producer HTTPRoute', client, '10.96.0.10', 9080, true],
    ['same Service, a port the route does not name', client, '10.96.0.10', 9081, false],
    ['Service without routes', client, '10.96.0.11', 9080, false],
    ['route bound only to the waypoint Gateway', client, '10.96.0.12', 9080, false],
    ['Service with a waypoint and a Service-bound route', client, '10.96.0.13', 9080, true],
    ['TCPRoute only', client, '10.96.0.14', 9080, false],
    ['consumer route of the client namespace', client, '10.96.0.15', 80, true],
    ['a pod IP, not a Service', client, '10.0.0.3', 8080, false],
    ['outside the mesh', client, '192.0.2.1', 80, false],
    ['another pod than the served one', other, '10.96.0.10', 9080, false],
  ];
  for (const [name, source, ip, port, expected] of cases) {
    assert.equal(sidecarClaims(state, client.uid, source, { ip, port }), expected, name);
  }
});

test('buildSidecarState: no L7 policies client-side, every Service is a target', () => {
  const state = buildSidecarState(held, '', 1);
  assert.deepEqual(state.policies, []);
  assert.equal(state.serviceByVip('10.96.0.13', 9080)?.service.name, 'behind-waypoint');
  assert.equal(state.serviceByVip('10.96.0.13', 1), null);
});
