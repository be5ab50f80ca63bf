// xDS resource conversion: the wire layout matches Istio's field numbers, domain → proto → domain is
// lossless for everything the static file can say, and bad or hostile resources are refused with the
// resource and field named, never thrown.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import {
  authorizationMessage,
  encodeResource,
  meshResources,
  serviceMessage,
  workloadMessage,
} from '../../../src/controller/xds-resources.ts';
import { parseLocalConfig } from '../../../src/mesh/local-config/config.ts';
import type { MeshConfig } from '../../../src/mesh/types.ts';
import { applyDeltaResponse, EMPTY_HELD_STATE, meshConfigOf } from '../../../src/xds/client-state.ts';
import { parseAddressResource, parseAuthorizationResource } from '../../../src/xds/convert.ts';
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  decodeMessage,
  encodeMessage,
  loadXdsProtos,
} from '../../../src/xds/proto.ts';
import { workload } from '../../helpers/mesh-builders.ts';
import { sortedConfig } from '../../helpers/xds-events.ts';

const protos = await loadXdsProtos();
const FIXTURE = new URL('../../fixtures/local-config/mesh.yaml', import.meta.url);

async function fixtureMesh(): Promise<MeshConfig> {
  const parsed = parseLocalConfig(await readFile(FIXTURE, 'utf8'), 'mesh.yaml');
  assert.ok(parsed.ok, 'fixture parses');
  return parsed.config;
}

test('golden: Workload field numbers match istio.workload (uid 20, addresses 3, tunnel_protocol 5, ...)', () => {
  const type = protos.root.lookupType('istio.workload.Workload');
  const bytes = encodeMessage(type, {
    uid: 'u1',
    addresses: [Buffer.from([10, 0, 0, 1])],
    tunnel_protocol: 'HBONE',
    services: { 'a/b': { ports: [{ service_port: 80, target_port: 8080 }] } },
    authorization_policies: ['ns/p'],
    capacity: { value: 3 },
  });
  // Hand-computed: tag = field << 3 | wire type, varints little-endian base 128.
  const expected = Buffer.from(
    [
      '1a 04 0a000001', // 3 addresses (LEN 4): 10.0.0.1
      '28 01', // 5 tunnel_protocol (VARINT): HBONE = 1
      '8201 04 6e732f70', // 16 authorization_policies (130 = 0x82 0x01): "ns/p"
      'a201 02 7531', // 20 uid (162): "u1"
      // 22 services (178): map entry {1: "a/b", 2: PortList {1: Port {1: 80, 2: 8080}}}
      'b201 0e 0a 03 612f62 12 07 0a 05 0850 10903f',
      'da01 02 0803', // 27 capacity (218): UInt32Value {1: 3}
    ]
      .join('')
      .replaceAll(' ', ''),
    'hex',
  );
  assert.equal(bytes.toString('hex'), expected.toString('hex'));

  // The same fields in another order (valid protobuf) decode to the same domain workload.
  const reordered = Buffer.from(
    ['a201 02 7531', '0a 02 6e6d', '12 02 6e73', '1a 04 0a000001', '28 01'].join('').replaceAll(' ', ''),
    'hex',
  ); // uid 20, name 1 "nm", namespace 2 "ns", addresses 3, tunnel_protocol 5
  const wrap = (b: Buffer) => Buffer.concat([Buffer.from([0x0a, b.length]), b]); // Address.workload = 1
  const parsed = parseAddressResource(protos, 'u1', wrap(reordered));
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.error.message);
  assert.equal(parsed.value.kind, 'workload');
  if (parsed.value.kind !== 'workload') return;
  assert.equal(parsed.value.workload.uid, 'u1');
  assert.equal(parsed.value.workload.name, 'nm');
  assert.equal(parsed.value.workload.namespace, 'ns');
  assert.deepEqual(parsed.value.workload.addresses, ['10.0.0.1']);
  assert.equal(parsed.value.workload.protocol, 'HBONE');
  assert.equal(parsed.value.workload.capacity, 1, 'absent capacity means 1');
});

test('golden: Authorization, Address oneof and delta envelope field numbers', () => {
  const any = encodeMessage(protos.address, { service: { name: 's' } });
  assert.equal(any.toString('hex'), '12 03 0a 01 73'.replaceAll(' ', ''), 'Address.service = 2, Service.name = 1');
  const authz = encodeMessage(protos.authorization, {
    name: 'p',
    scope: 'WORKLOAD_SELECTOR',
    action: 'DENY',
    dry_run: true,
    rules: [
      {
        clauses: [
          {
            matches: [
              { not_principals: [{ presence: {} }], service_accounts: [{ namespace: 'a', serviceAccount: 'b' }] },
            ],
          },
        ],
      },
    ],
  });
  // name 1, scope 3 = 2, action 4 = 1, rules 5 {clauses 1 {matches 2 {not_principals 4 {presence 4 {}}, service_accounts 11 {...}}}}, dry_run 6
  const match = '22 02 2200' + '5a 06 0a0161 120162'; // presence = Empty: 22 00
  assert.equal(authz.toString('hex'), `0a0170 1802 2001 2a 10 0a 0e 12 0c ${match} 3001`.replaceAll(' ', ''));
  const resp = encodeMessage(protos.response, {
    system_version_info: 'v',
    type_url: 't',
    nonce: 'n',
    removed_resources: ['r'],
    resources: [{ name: 'x', version: '1', resource: { type_url: 'u', value: Buffer.from([1]) } }],
  });
  // 1 system_version_info, 2 resources {1 version, 2 Any {1 type_url, 2 value}, 3 name}, 4 type_url, 5 nonce, 6 removed
  assert.equal(
    resp.toString('hex'),
    '0a0176 12 0e 0a0131 12 06 0a0175 120101 1a0178 220174 2a016e 320172'.replaceAll(' ', ''),
  );
  const req = encodeMessage(protos.request, {
    node: { id: 'i' },
    type_url: 't',
    resource_names_subscribe: ['s'],
    resource_names_unsubscribe: ['u'],
    initial_resource_versions: { k: 'v' },
    response_nonce: 'n',
    error_detail: { code: 3, message: 'm' },
  });
  assert.equal(
    req.toString('hex'),
    '0a 03 0a0169 120174 1a0173 220175 2a 06 0a016b 120176 32016e 3a 05 0803 12016d'.replaceAll(' ', ''),
  );
});

test('the YAML fixture mesh survives domain → proto → domain unchanged', async () => {
  const mesh = await fixtureMesh();
  const resources = meshResources(protos, mesh);
  let held = EMPTY_HELD_STATE;
  for (const [typeUrl, map] of resources) {
    const response = decodeMessage(
      protos.response,
      encodeMessage(protos.response, {
        type_url: typeUrl,
        nonce: '1',
        resources: [...map].map(([name, r]) => ({
          name,
          version: r.version,
          resource: { type_url: typeUrl, value: r.value },
        })),
      }),
    );
    const out = applyDeltaResponse(protos, held, response);
    assert.ok(out.ok, out.ok ? '' : out.error.message);
    held = out.state;
  }
  assert.deepEqual(meshConfigOf(held), sortedConfig(mesh));
});

test('versions are content hashes: equal content, equal version; any change, new version', async () => {
  const mesh = await fixtureMesh();
  const a = meshResources(protos, mesh).get(ADDRESS_TYPE_URL)!;
  const b = meshResources(protos, mesh).get(ADDRESS_TYPE_URL)!;
  for (const [name, r] of a) assert.equal(b.get(name)?.version, r.version);
  const w = workload('x', '10.0.0.9');
  const v1 = encodeResource(protos.address, { workload: workloadMessage(w) }).version;
  const v2 = encodeResource(protos.address, { workload: workloadMessage({ ...w, capacity: 2 }) }).version;
  assert.notEqual(v1, v2);
});

type Case = { name: string; message: Record<string, unknown>; field: string; authz?: boolean };

const good = workloadMessage(workload('sleep', '10.0.0.5', { services: { 'default/echo': { 80: 8080 } } }));
const cases: Case[] = [
  { name: 'empty uid', message: { workload: { ...good, uid: '' } }, field: 'workload.uid' },
  {
    name: '5-byte address',
    message: { workload: { ...good, addresses: [Buffer.alloc(5)] } },
    field: 'workload.addresses[0]',
  },
  { name: 'bad namespace', message: { workload: { ...good, namespace: 'Not_A_Label' } }, field: 'workload.namespace' },
  {
    name: 'legacy mTLS',
    message: { workload: { ...good, tunnel_protocol: 'LEGACY_ISTIO_MTLS' } },
    field: 'workload.tunnel_protocol',
  },
  { name: 'capacity 0', message: { workload: { ...good, capacity: { value: 0 } } }, field: 'workload.capacity' },
  {
    name: 'bad service key',
    message: { workload: { ...good, services: { nope: { ports: [] } } } },
    field: 'workload.services["nope"]',
  },
  {
    name: 'port 0',
    message: { workload: { ...good, services: { 'a/b': { ports: [{ service_port: 0, target_port: 1 }] } } } },
    field: 'workload.services["a/b"].ports[0].service_port',
  },
  {
    name: 'bad policy ref',
    message: { workload: { ...good, authorization_policies: ['x'] } },
    field: 'workload.authorization_policies[0]',
  },
  {
    name: 'network gateway',
    message: { workload: { ...good, network_gateway: { hbone_mtls_port: 1 } } },
    field: 'workload.network_gateway',
  },
  { name: 'empty Address', message: {}, field: 'type' },
  {
    name: 'service waypoint without destination',
    message: {
      service: {
        ...serviceMessage({
          name: 's',
          namespace: 'a',
          hostname: 'h',
          vips: [],
          ports: [],
          subjectAltNames: [],
          waypoint: null,
        }),
        waypoint: { hbone_mtls_port: 15008 },
      },
    },
    field: 'service.waypoint.destination',
  },
  {
    name: 'service SAN not SPIFFE',
    message: { service: { name: 's', namespace: 'a', hostname: 'h', subject_alt_names: ['x'] } },
    field: 'service.subject_alt_names[0]',
  },
  {
    name: 'CIDR length 33',
    authz: true,
    message: {
      ...authorizationMessage({
        name: 'p',
        namespace: 'a',
        scope: 'Namespace',
        action: 'Allow',
        dryRun: false,
        rules: [],
      }),
      rules: [{ clauses: [{ matches: [{ source_ips: [{ address: Buffer.from([10, 0, 0, 0]), length: 33 }] }] }] }],
    },
    field: 'rules[0].clauses[0].matches[0].source_ips[0].length',
  },
  {
    name: 'spiffe:// principal',
    authz: true,
    message: {
      name: 'p',
      namespace: 'a',
      rules: [{ clauses: [{ matches: [{ principals: [{ exact: 'spiffe://td/ns/a/sa/b' }] }] }] }],
    },
    field: 'rules[0].clauses[0].matches[0].principals[0].exact',
  },
  {
    name: 'empty StringMatch',
    authz: true,
    message: { name: 'p', namespace: 'a', rules: [{ clauses: [{ matches: [{ namespaces: [{}] }] }] }] },
    field: 'rules[0].clauses[0].matches[0].namespaces[0]',
  },
  { name: 'policy without name', authz: true, message: { namespace: 'a' }, field: 'name' },
];

for (const c of cases) {
  test(`rejects ${c.name}, naming the resource and ${c.field}`, () => {
    const bytes = encodeMessage(c.authz ? protos.authorization : protos.address, c.message);
    const out = c.authz
      ? parseAuthorizationResource(protos, 'res-1', bytes)
      : parseAddressResource(protos, 'res-1', bytes);
    assert.equal(out.ok, false);
    if (out.ok) return;
    assert.equal(out.error.code, 'FERRY_XDS_RESOURCE_REJECTED');
    assert.equal(out.error.field, c.field, out.error.message);
    assert.ok(out.error.message.startsWith(`res-1: ${c.field}: `), out.error.message);
  });
}

test('a response with one bad resource is rejected whole; held state unchanged', async () => {
  const mesh = await fixtureMesh();
  const map = meshResources(protos, mesh).get(ADDRESS_TYPE_URL)!;
  const items = [...map].map(([name, r]) => ({
    name,
    version: r.version,
    resource: { type_url: ADDRESS_TYPE_URL, value: r.value },
  }));
  const bad = encodeMessage(protos.address, { workload: { ...good, uid: '' } });
  items.splice(1, 0, { name: 'bad', version: 'x', resource: { type_url: ADDRESS_TYPE_URL, value: bad } });
  const response = { type_url: ADDRESS_TYPE_URL, nonce: '7', resources: items };
  const out = applyDeltaResponse(protos, EMPTY_HELD_STATE, response);
  assert.equal(out.ok, false);
  if (!out.ok) assert.equal(out.error.resource, 'bad');
  // Wrong Any type inside the right response type.
  const mixed = { type_url: AUTHORIZATION_TYPE_URL, nonce: '8', resources: [items[0]] };
  const out2 = applyDeltaResponse(protos, EMPTY_HELD_STATE, mixed);
  assert.equal(out2.ok, false);
  if (!out2.ok) assert.equal(out2.error.field, 'resource.type_url');
});

test('fuzz: garbage and truncated resource bytes are refused, never thrown', () => {
  const valid = encodeMessage(protos.address, { workload: good });
  for (let i = 0; i < 2000; i++) {
    const bytes = i % 2 === 0 ? randomBytes(i % 97) : valid.subarray(0, i % valid.length);
    const a = parseAddressResource(protos, 'r', bytes);
    const b = parseAuthorizationResource(protos, 'r', bytes);
    assert.equal(typeof a.ok, 'boolean');
    assert.equal(typeof b.ok, 'boolean');
  }
  // Flipped bytes of a valid message.
  for (let i = 0; i < valid.length; i++) {
    const copy = Buffer.from(valid);
    copy[i] = (copy[i] ?? 0) ^ 0xff;
    assert.equal(typeof parseAddressResource(protos, 'r', copy).ok, 'boolean');
  }
});
