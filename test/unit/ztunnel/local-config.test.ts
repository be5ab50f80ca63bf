// parseLocalConfig / serializeMeshConfig: the fixtures, defaults, every accepted spelling, and each class
// of bad input (unknown key, bad IP, bad port, duplicates, bad enum, YAML syntax, wrong type at each level,
// huge and deeply nested input). Any error rejects the whole file.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { spiffeId } from '../../../src/identity/spiffe-id.ts';
import { evaluateAuthz } from '../../../src/mesh/authz/evaluate.ts';
import {
  type LocalConfigError,
  type LocalConfigErrorCode,
  parseLocalConfig,
  serializeMeshConfig,
} from '../../../src/mesh/local-config/config.ts';
import type { MeshConfig } from '../../../src/mesh/types.ts';

const FIXTURES = new URL('../../fixtures/local-config/', import.meta.url);
const fixture = (name: string) => readFile(new URL(name, FIXTURES), 'utf8');

function parseOk(text: string): MeshConfig {
  const result = parseLocalConfig(text, 'test.yaml');
  if (!result.ok) assert.fail(result.errors.map((e) => e.message).join('\n'));
  return result.config;
}

function parseErrors(text: string): LocalConfigError[] {
  const result = parseLocalConfig(text, 'test.yaml');
  assert.equal(result.ok, false, 'expected the file to be rejected');
  return result.ok ? [] : result.errors;
}

/** Asserts exactly one error, with this code and path; returns it. */
function oneError(text: string, code: LocalConfigErrorCode, path: string): LocalConfigError {
  const errors = parseErrors(text);
  assert.deepEqual(
    errors.map((e) => [e.code, e.path]),
    [[code, path]],
    errors.map((e) => e.message).join('\n'),
  );
  return errors[0]!;
}

const W = `workloads:\n- uid: u1\n  name: w\n  namespace: default\n`;

test('localhost fixture: the ztunnel example shape parses into the domain model', async () => {
  const config = parseOk(await fixture('localhost.yaml'));
  assert.equal(config.workloads.length, 1);
  const w = config.workloads[0]!;
  assert.equal(w.uid, 'cluster1//v1/Pod/default/local');
  assert.deepEqual(w.addresses, ['127.0.0.1']);
  assert.equal(w.protocol, 'HBONE');
  assert.deepEqual([...w.services], [['default/example.com', new Map([[80, 8080]])]]);
  const s = config.services[0]!;
  assert.deepEqual(s.vips, [{ network: '', address: '127.10.0.1' }]);
  assert.deepEqual(s.ports, [{ servicePort: 80, targetPort: 8080 }]);
  assert.deepEqual(s.subjectAltNames, ['spiffe://cluster.local/ns/default/sa/local']);
  const p = config.policies[0]!;
  assert.deepEqual(
    [p.name, p.namespace, p.scope, p.action, p.dryRun],
    ['deny-9999', 'default', 'Namespace', 'Deny', false],
  );
  assert.deepEqual(p.rules[0]![0]![0]!.destinationPorts, [9999]);
});

test('mesh fixture: every field and spelling lands where authz and routing expect it', async () => {
  const config = parseOk(await fixture('mesh.yaml'));
  const [sleep, echo, legacy] = config.workloads;
  assert.deepEqual(sleep!.addresses, ['10.244.1.5', 'fd00::1:5']); // canonicalized
  assert.deepEqual(echo!.waypoint, {
    destination: { kind: 'hostname', namespace: 'bar', hostname: 'waypoint.bar.svc.cluster.local' },
    hboneMtlsPort: 15008,
  });
  assert.equal(echo!.capacity, 3);
  assert.deepEqual(echo!.authorizationPolicies, ['istio-system/istio_converted_static_strict', 'bar/echo-allow']);
  assert.deepEqual(
    echo!.services.get('bar/echo.bar.svc.cluster.local'),
    new Map([
      [80, 8080],
      [443, 0],
    ]),
  );
  assert.equal(legacy!.workloadType, 'pod');
  assert.equal(legacy!.status, 'Unhealthy');
  const svc = config.services[0]!;
  assert.deepEqual(svc.vips, [
    { network: '', address: '10.96.0.10' },
    { network: '', address: 'fd00:96::10' },
  ]);
  assert.deepEqual(svc.waypoint, {
    destination: { kind: 'address', address: { network: '', address: '10.244.2.9' } },
    hboneMtlsPort: 15008,
  });
  const allow = config.policies.find((p) => p.name === 'echo-allow')!;
  assert.deepEqual(
    allow.rules[0]![0]!.map((m) => [m.principals, m.namespaces]),
    [
      [
        [
          { kind: 'exact', value: 'cluster.local/ns/foo/sa/sleep' },
          { kind: 'prefix', value: 'cluster.local/ns/bar/' },
        ],
        [],
      ],
      [
        [],
        [
          { kind: 'prefix', value: 'team-' },
          { kind: 'suffix', value: '-prod' },
          { kind: 'exact', value: 'ops' },
        ],
      ],
    ],
  );
  const audit = config.policies.find((p) => p.name === 'audit-admin')!;
  const m = audit.rules[0]![0]![0]!;
  assert.deepEqual(m.notNamespaces, [{ kind: 'suffix', value: '-prod' }, { kind: 'presence' }]);
  assert.deepEqual(m.notPrincipals, [{ kind: 'presence' }]);
  assert.deepEqual(m.destinationIps, [{ address: '10.244.2.7', prefixLength: 32 }]);
  assert.deepEqual(m.notDestinationIps, [{ address: '::ffff:10.0.0.0', prefixLength: 104 }]);
  assert.equal(audit.dryRun, true);

  // The parsed policies drive authz as written: sleep may reach echo:8080 under STRICT, plaintext may not.
  const forEcho = config.policies.filter((p) => echo!.authorizationPolicies.includes(`${p.namespace}/${p.name}`));
  const conn = {
    srcIdentity: spiffeId('cluster.local', 'foo', 'sleep'),
    srcIp: '10.244.1.5',
    dstIp: '10.244.2.7',
    dstPort: 8080,
  };
  assert.equal(evaluateAuthz(forEcho, conn).kind, 'allow');
  assert.equal(evaluateAuthz(forEcho, { ...conn, srcIdentity: null }).kind, 'deny');
  assert.equal(evaluateAuthz(forEcho, { ...conn, srcIdentity: spiffeId('cluster.local', 'baz', 'x') }).kind, 'deny');
});

test('defaults: trust domain, service account, network, protocol, status, capacity, names, cluster', () => {
  const w = parseOk(W).workloads[0]!;
  assert.deepEqual(
    {
      trustDomain: w.trustDomain,
      serviceAccount: w.serviceAccount,
      network: w.network,
      protocol: w.protocol,
      status: w.status,
      capacity: w.capacity,
      workloadName: w.workloadName,
      canonicalName: w.canonicalName,
      canonicalRevision: w.canonicalRevision,
      clusterId: w.clusterId,
      node: w.node,
      waypoint: w.waypoint,
      addresses: w.addresses,
      services: w.services.size,
      workloadType: w.workloadType,
    },
    {
      trustDomain: 'cluster.local',
      serviceAccount: 'default',
      network: '',
      protocol: 'TCP',
      status: 'Healthy',
      capacity: 1,
      workloadName: 'w',
      canonicalName: 'w',
      canonicalRevision: 'latest',
      clusterId: 'Kubernetes',
      node: '',
      waypoint: null,
      addresses: [],
      services: 0,
      workloadType: 'deployment',
    },
  );
  assert.equal(parseOk(`${W}  workloadName: sleep\n`).workloads[0]!.canonicalName, 'sleep');
  assert.equal(parseOk(`${W}  waypoint: null\n`).workloads[0]!.waypoint, null);
});

test('an empty file and empty lists are an empty mesh', () => {
  const empty = { workloads: [], services: [], policies: [] };
  assert.deepEqual(parseOk(''), empty);
  assert.deepEqual(parseOk('# nothing yet\n'), empty);
  assert.deepEqual(parseOk('workloads: []\nservices: []\npolicies: []\n'), empty);
});

test('StringMatch spellings: shorthand, lowercase, capitalized, presence forms', () => {
  const text = `policies:
- {name: p, namespace: ns, scope: Namespace, action: Allow, rules: [[[{principals: [
    "*", "a*", "*b", "c", {exact: d}, {Exact: e}, {prefix: f}, {Prefix: g}, {suffix: h}, {Suffix: i},
    {presence: {}}, {Presence: []}, {presence: null}]}]]]}
`;
  assert.deepEqual(parseOk(text).policies[0]!.rules[0]![0]![0]!.principals, [
    { kind: 'presence' },
    { kind: 'prefix', value: 'a' },
    { kind: 'suffix', value: 'b' },
    { kind: 'exact', value: 'c' },
    { kind: 'exact', value: 'd' },
    { kind: 'exact', value: 'e' },
    { kind: 'prefix', value: 'f' },
    { kind: 'prefix', value: 'g' },
    { kind: 'suffix', value: 'h' },
    { kind: 'suffix', value: 'i' },
    { kind: 'presence' },
    { kind: 'presence' },
    { kind: 'presence' },
  ]);
});

test('rules keep their nesting: empty rules, empty clauses and empty matches are preserved', () => {
  const p = (rules: string) =>
    parseOk(`policies:\n- {name: p, namespace: ns, scope: Global, action: Deny, rules: ${rules}}\n`).policies[0]!.rules;
  assert.deepEqual(p('[]'), []);
  assert.deepEqual(p('[[]]'), [[]]);
  assert.deepEqual(p('[[[]]]'), [[[]]]);
  assert.equal(p('[[[{}]]]')[0]![0]![0]!.destinationPorts.length, 0);
});

test('IPs, VIPs and CIDRs are canonicalized; network/ip keeps its network', () => {
  const config = parseOk(`workloads:
- {uid: u, name: w, namespace: ns, network: net1, workloadIps: ["2001:DB8:0:0::1", "::FFFF:10.0.0.1"]}
services:
- {name: s, namespace: ns, hostname: s.ns, vips: ["net1/10.96.0.1", "10.96.0.2", "/2001:db8::a"]}
policies:
- {name: p, namespace: ns, scope: Namespace, action: Deny, rules: [[[{sourceIps: ["10.1.2.3", "2001:DB8::/32", "0.0.0.0/0"]}]]]}
`);
  assert.deepEqual(config.workloads[0]!.addresses, ['2001:db8::1', '::ffff:10.0.0.1']);
  assert.deepEqual(config.services[0]!.vips, [
    { network: 'net1', address: '10.96.0.1' },
    { network: '', address: '10.96.0.2' },
    { network: '', address: '2001:db8::a' },
  ]);
  assert.deepEqual(config.policies[0]!.rules[0]![0]![0]!.sourceIps, [
    { address: '10.1.2.3', prefixLength: 32 },
    { address: '2001:db8::', prefixLength: 32 },
    { address: '0.0.0.0', prefixLength: 0 },
  ]);
});

test('serializeMeshConfig is plain JSON and parses back to the same MeshConfig', async () => {
  for (const name of ['localhost.yaml', 'mesh.yaml']) {
    const config = parseOk(await fixture(name));
    const dumped = serializeMeshConfig(config);
    assert.deepEqual(JSON.parse(JSON.stringify(dumped)), dumped, 'JSON-able');
    assert.deepEqual(parseOk(stringify(dumped)), config, name);
    assert.deepEqual(parseOk(JSON.stringify(dumped)), config, `${name} as JSON`);
  }
});

// ---- bad input: one row per class, each naming its path ----

interface BadRow {
  readonly name: string;
  readonly text: string;
  readonly code: LocalConfigErrorCode;
  readonly path: string;
}

const P = (match: string) =>
  `policies:\n- {name: p, namespace: ns, scope: Namespace, action: Allow, rules: [[[${match}]]]}\n`;

const badRows: BadRow[] = [
  // unknown keys at each level
  { name: 'unknown top-level key', text: 'workload: []\n', code: 'FERRY_CONFIG_UNKNOWN_KEY', path: 'workload' },
  {
    name: 'unknown workload key',
    text: `${W}  addresses: []\n`,
    code: 'FERRY_CONFIG_UNKNOWN_KEY',
    path: 'workloads[0].addresses',
  },
  {
    name: 'unknown service key',
    text: 'services:\n- {name: s, namespace: ns, hostname: h, vip: []}\n',
    code: 'FERRY_CONFIG_UNKNOWN_KEY',
    path: 'services[0].vip',
  },
  {
    name: 'unknown policy key',
    text: 'policies:\n- {name: p, namespace: ns, scope: Global, action: Deny, rules: [], when: []}\n',
    code: 'FERRY_CONFIG_UNKNOWN_KEY',
    path: 'policies[0].when',
  },
  {
    name: 'unknown match key',
    text: P('{ports: [80]}'),
    code: 'FERRY_CONFIG_UNKNOWN_KEY',
    path: 'policies[0].rules[0][0][0].ports',
  },
  {
    name: 'unknown waypoint key',
    text: `${W}  waypoint: {destination: "/10.0.0.1", port: 1}\n`,
    code: 'FERRY_CONFIG_UNKNOWN_KEY',
    path: 'workloads[0].waypoint.port',
  },
  {
    name: 'unknown StringMatch kind',
    text: P('{principals: [{regex: "a.*"}]}'),
    code: 'FERRY_CONFIG_UNKNOWN_KEY',
    path: 'policies[0].rules[0][0][0].principals[0]',
  },
  {
    name: 'unknown serviceAccount match key',
    text: P('{serviceAccounts: [{namespace: a, serviceAccount: b, x: 1}]}'),
    code: 'FERRY_CONFIG_UNKNOWN_KEY',
    path: 'policies[0].rules[0][0][0].serviceAccounts[0].x',
  },
  {
    name: 'ztunnel key Ferry does not implement',
    text: `${W}  networkGateway: {destination: "/1.2.3.4"}\n`,
    code: 'FERRY_CONFIG_UNSUPPORTED_KEY',
    path: 'workloads[0].networkGateway',
  },
  {
    name: 'service loadBalancer is unsupported',
    text: 'services:\n- {name: s, namespace: ns, hostname: h, loadBalancer: {mode: Strict}}\n',
    code: 'FERRY_CONFIG_UNSUPPORTED_KEY',
    path: 'services[0].loadBalancer',
  },
  // missing keys
  {
    name: 'workload without uid',
    text: 'workloads:\n- {name: w, namespace: ns}\n',
    code: 'FERRY_CONFIG_MISSING_KEY',
    path: 'workloads[0].uid',
  },
  {
    name: 'policy without rules',
    text: 'policies:\n- {name: p, namespace: ns, scope: Global, action: Deny}\n',
    code: 'FERRY_CONFIG_MISSING_KEY',
    path: 'policies[0].rules',
  },
  {
    name: 'waypoint without destination',
    text: `${W}  waypoint: {hboneMtlsPort: 15008}\n`,
    code: 'FERRY_CONFIG_MISSING_KEY',
    path: 'workloads[0].waypoint.destination',
  },
  // IPs and CIDRs
  {
    name: 'bad workload IP',
    text: `${W}  workloadIps: ["10.0.0.1", "10.0.0.300"]\n`,
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'workloads[0].workloadIps[1]',
  },
  {
    name: 'workload IP with a prefix',
    text: `${W}  workloadIps: ["10.0.0.1/32"]\n`,
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'workloads[0].workloadIps[0]',
  },
  {
    name: 'bad VIP',
    text: 'services:\n- {name: s, namespace: ns, hostname: h, vips: ["net/not-an-ip"]}\n',
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'services[0].vips[0]',
  },
  {
    name: 'bad CIDR prefix length',
    text: P('{sourceIps: ["10.0.0.0/33"]}'),
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'policies[0].rules[0][0][0].sourceIps[0]',
  },
  {
    name: 'bad IPv6 CIDR',
    text: P('{notDestinationIps: ["fd00::/129"]}'),
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'policies[0].rules[0][0][0].notDestinationIps[0]',
  },
  {
    name: 'bad waypoint destination',
    text: `${W}  waypoint: {destination: "nowhere"}\n`,
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'workloads[0].waypoint.destination',
  },
  // ports
  {
    name: 'port 0 in a match',
    text: P('{destinationPorts: [0]}'),
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'policies[0].rules[0][0][0].destinationPorts[0]',
  },
  {
    name: 'port above 65535',
    text: P('{notDestinationPorts: [65536]}'),
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'policies[0].rules[0][0][0].notDestinationPorts[0]',
  },
  {
    name: 'fractional port',
    text: P('{destinationPorts: [80.5]}'),
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'policies[0].rules[0][0][0].destinationPorts[0]',
  },
  {
    name: 'service port key out of range',
    text: 'services:\n- {name: s, namespace: ns, hostname: h, ports: {70000: 80}}\n',
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'services[0].ports["70000"]',
  },
  {
    name: 'target port out of range',
    text: 'services:\n- {name: s, namespace: ns, hostname: h, ports: {80: -1}}\n',
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'services[0].ports["80"]',
  },
  {
    name: 'waypoint port 0',
    text: `${W}  waypoint: {destination: "/10.0.0.1", hboneMtlsPort: 0}\n`,
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'workloads[0].waypoint.hboneMtlsPort',
  },
  {
    name: 'workload services port map',
    text: `${W}  services: {"ns/h": {http: 8080}}\n`,
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'workloads[0].services["ns/h"].http',
  },
  {
    name: 'capacity 0',
    text: `${W}  capacity: 0\n`,
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'workloads[0].capacity',
  },
  // enums
  {
    name: 'bad protocol',
    text: `${W}  protocol: hbone\n`,
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'workloads[0].protocol',
  },
  {
    name: 'bad status',
    text: `${W}  status: Ready\n`,
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'workloads[0].status',
  },
  {
    name: 'bad workloadType',
    text: `${W}  workloadType: statefulset\n`,
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'workloads[0].workloadType',
  },
  {
    name: 'bad scope',
    text: 'policies:\n- {name: p, namespace: ns, scope: Cluster, action: Deny, rules: []}\n',
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'policies[0].scope',
  },
  {
    name: 'bad action (AUDIT is L7 only)',
    text: 'policies:\n- {name: p, namespace: ns, scope: Global, action: Audit, rules: []}\n',
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'policies[0].action',
  },
  // names and identities
  {
    name: 'bad namespace',
    text: 'workloads:\n- {uid: u, name: w, namespace: Default}\n',
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'workloads[0].namespace',
  },
  {
    name: 'network name with a slash',
    text: `${W}  network: a/b\n`,
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'workloads[0].network',
  },
  {
    name: 'empty uid',
    text: 'workloads:\n- {uid: "", name: w, namespace: ns}\n',
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'workloads[0].uid',
  },
  {
    name: 'bad trust domain',
    text: `${W}  trustDomain: Cluster.Local\n`,
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'workloads[0].trustDomain',
  },
  {
    name: 'service account with a slash',
    text: `${W}  serviceAccount: a/b\n`,
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'workloads[0].serviceAccount',
  },
  {
    name: 'bad subjectAltName',
    text: 'services:\n- {name: s, namespace: ns, hostname: h, subjectAltNames: ["cluster.local/ns/a/sa/b"]}\n',
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'services[0].subjectAltNames[0]',
  },
  {
    name: 'principal written with spiffe://',
    text: P('{principals: ["spiffe://cluster.local/ns/a/sa/b"]}'),
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'policies[0].rules[0][0][0].principals[0]',
  },
  {
    name: 'empty StringMatch value',
    text: P('{namespaces: [{prefix: ""}]}'),
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'policies[0].rules[0][0][0].namespaces[0].prefix',
  },
  {
    name: 'presence with a value',
    text: P('{principals: [{presence: x}]}'),
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'policies[0].rules[0][0][0].principals[0].presence',
  },
  {
    name: 'bad service key in workload services',
    text: `${W}  services: {"example.com": {80: 8080}}\n`,
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'workloads[0].services["example.com"]',
  },
  {
    name: 'bad policy reference form',
    text: `${W}  authorizationPolicies: ["just-a-name"]\n`,
    code: 'FERRY_CONFIG_INVALID_VALUE',
    path: 'workloads[0].authorizationPolicies[0]',
  },
  // references and duplicates
  {
    name: 'reference to an undefined policy',
    text: `${W}  authorizationPolicies: ["ns/missing"]\n`,
    code: 'FERRY_CONFIG_UNKNOWN_REFERENCE',
    path: 'workloads[0].authorizationPolicies[0]',
  },
  {
    name: 'duplicate uid',
    text: 'workloads:\n- {uid: u, name: a, namespace: ns}\n- {uid: u, name: b, namespace: ns}\n',
    code: 'FERRY_CONFIG_DUPLICATE',
    path: 'workloads[1].uid',
  },
  {
    name: 'duplicate workload address in a network',
    text: 'workloads:\n- {uid: a, name: a, namespace: ns, workloadIps: ["10.0.0.1"]}\n- {uid: b, name: b, namespace: ns, workloadIps: ["10.0.0.01"]}\n'.replace(
      '10.0.0.01',
      '10.0.0.1',
    ),
    code: 'FERRY_CONFIG_DUPLICATE',
    path: 'workloads[1].workloadIps[0]',
  },
  {
    name: 'duplicate service',
    text: 'services:\n- {name: a, namespace: ns, hostname: h}\n- {name: b, namespace: ns, hostname: h}\n',
    code: 'FERRY_CONFIG_DUPLICATE',
    path: 'services[1].hostname',
  },
  {
    name: 'duplicate VIP',
    text: 'services:\n- {name: a, namespace: ns, hostname: a, vips: ["/10.96.0.1"]}\n- {name: b, namespace: ns, hostname: b, vips: ["10.96.0.1"]}\n',
    code: 'FERRY_CONFIG_DUPLICATE',
    path: 'services[1].vips[0]',
  },
  {
    name: 'duplicate policy',
    text: 'policies:\n- {name: p, namespace: ns, scope: Global, action: Deny, rules: []}\n- {name: p, namespace: ns, scope: Global, action: Allow, rules: []}\n',
    code: 'FERRY_CONFIG_DUPLICATE',
    path: 'policies[1].name',
  },
  {
    name: 'service port listed twice (number and string key)',
    text: 'services:\n- {name: s, namespace: ns, hostname: h, ports: {80: 8080, "80": 9090}}\n',
    code: 'FERRY_CONFIG_DUPLICATE',
    path: 'services[0].ports["80"]',
  },
  // wrong types at each level
  { name: 'document is a list', text: '- a\n- b\n', code: 'FERRY_CONFIG_WRONG_TYPE', path: '' },
  { name: 'document is a scalar', text: 'hello\n', code: 'FERRY_CONFIG_WRONG_TYPE', path: '' },
  { name: 'workloads is a map', text: 'workloads: {a: 1}\n', code: 'FERRY_CONFIG_WRONG_TYPE', path: 'workloads' },
  { name: 'a workload is a string', text: 'workloads: [w]\n', code: 'FERRY_CONFIG_WRONG_TYPE', path: 'workloads[0]' },
  { name: 'a workload is null', text: 'workloads:\n-\n', code: 'FERRY_CONFIG_WRONG_TYPE', path: 'workloads[0]' },
  {
    name: 'uid is a number',
    text: 'workloads:\n- {uid: 1, name: w, namespace: ns}\n',
    code: 'FERRY_CONFIG_WRONG_TYPE',
    path: 'workloads[0].uid',
  },
  {
    name: 'workloadIps is a string',
    text: `${W}  workloadIps: 10.0.0.1\n`,
    code: 'FERRY_CONFIG_WRONG_TYPE',
    path: 'workloads[0].workloadIps',
  },
  {
    name: 'an IP is a number',
    text: `${W}  workloadIps: [10]\n`,
    code: 'FERRY_CONFIG_WRONG_TYPE',
    path: 'workloads[0].workloadIps[0]',
  },
  {
    name: 'capacity is a string',
    text: `${W}  capacity: "2"\n`,
    code: 'FERRY_CONFIG_WRONG_TYPE',
    path: 'workloads[0].capacity',
  },
  {
    name: 'workload services is a list',
    text: `${W}  services: []\n`,
    code: 'FERRY_CONFIG_WRONG_TYPE',
    path: 'workloads[0].services',
  },
  {
    name: 'service ports is a list',
    text: 'services:\n- {name: s, namespace: ns, hostname: h, ports: [80]}\n',
    code: 'FERRY_CONFIG_WRONG_TYPE',
    path: 'services[0].ports',
  },
  {
    name: 'dryRun is a string',
    text: 'policies:\n- {name: p, namespace: ns, scope: Global, action: Deny, dryRun: "yes", rules: []}\n',
    code: 'FERRY_CONFIG_WRONG_TYPE',
    path: 'policies[0].dryRun',
  },
  {
    name: 'rules is a map',
    text: 'policies:\n- {name: p, namespace: ns, scope: Global, action: Deny, rules: {a: 1}}\n',
    code: 'FERRY_CONFIG_WRONG_TYPE',
    path: 'policies[0].rules',
  },
  {
    name: 'a rule is a map',
    text: 'policies:\n- {name: p, namespace: ns, scope: Global, action: Deny, rules: [{a: 1}]}\n',
    code: 'FERRY_CONFIG_WRONG_TYPE',
    path: 'policies[0].rules[0]',
  },
  {
    name: 'a clause is a map',
    text: 'policies:\n- {name: p, namespace: ns, scope: Global, action: Deny, rules: [[{a: 1}]]}\n',
    code: 'FERRY_CONFIG_WRONG_TYPE',
    path: 'policies[0].rules[0][0]',
  },
  { name: 'a match is a list', text: P('[]'), code: 'FERRY_CONFIG_WRONG_TYPE', path: 'policies[0].rules[0][0][0]' },
  {
    name: 'match field is a scalar',
    text: P('{destinationPorts: 80}'),
    code: 'FERRY_CONFIG_WRONG_TYPE',
    path: 'policies[0].rules[0][0][0].destinationPorts',
  },
  {
    name: 'StringMatch is a number',
    text: P('{namespaces: [1]}'),
    code: 'FERRY_CONFIG_WRONG_TYPE',
    path: 'policies[0].rules[0][0][0].namespaces[0]',
  },
  {
    name: 'StringMatch map with two kinds',
    text: P('{namespaces: [{exact: a, prefix: b}]}'),
    code: 'FERRY_CONFIG_WRONG_TYPE',
    path: 'policies[0].rules[0][0][0].namespaces[0]',
  },
  { name: 'non-string key', text: '? [a]\n: 1\n', code: 'FERRY_CONFIG_WRONG_TYPE', path: '' },
];

for (const row of badRows) {
  test(`rejects: ${row.name}`, () => {
    const error = oneError(row.text, row.code, row.path);
    assert.equal(error.file, 'test.yaml');
    assert.ok(error.reason.length > 0);
    assert.ok(error.message.startsWith('test.yaml'), error.message);
    assert.ok(error.message.includes(row.path === '' ? '<document>' : row.path), error.message);
  });
}

test('errors carry the bad value and its line and column', () => {
  const e = oneError(
    `${W}  workloadIps:\n  - 10.0.0.1\n  - 10.0.0.300\n`,
    'FERRY_CONFIG_INVALID_VALUE',
    'workloads[0].workloadIps[1]',
  );
  assert.equal(e.value, '"10.0.0.300"');
  assert.deepEqual([e.line, e.column], [7, 5]);
  assert.equal(
    e.message,
    'test.yaml:7:5: workloads[0].workloadIps[1]: expected an IPv4 or IPv6 address (got "10.0.0.300")',
  );
  const unknown = oneError(`${W}  colour: blue\n`, 'FERRY_CONFIG_UNKNOWN_KEY', 'workloads[0].colour');
  assert.deepEqual([unknown.line, unknown.column], [5, 3]);
  assert.match(unknown.reason, /unknown key "colour"/);
});

test('every error in the file is reported, and nothing is half-accepted', () => {
  const errors = parseErrors(`workloads:
- {uid: a, name: a, namespace: ns, workloadIps: ["bad"]}
- {uid: b, name: b, namespace: ns, protocol: QUIC}
services:
- {name: s, namespace: ns, hostname: h, ports: {0: 1}}
policies:
- {name: ok, namespace: ns, scope: Global, action: Deny, rules: []}
- {name: p, namespace: ns, scope: Global, action: Deny, rules: [], extra: 1}
`);
  assert.deepEqual(
    errors.map((e) => e.path),
    ['workloads[0].workloadIps[0]', 'workloads[1].protocol', 'services[0].ports["0"]', 'policies[1].extra'],
  );
});

test('YAML syntax errors name line and column', () => {
  const errors = parseErrors('workloads:\n- uid: a\n  name: [unclosed\n');
  assert.ok(errors.length >= 1);
  assert.equal(errors[0]!.code, 'FERRY_CONFIG_YAML_SYNTAX');
  assert.ok(errors[0]!.line !== null && errors[0]!.line >= 3, errors[0]!.message);
  assert.match(errors[0]!.message, /^test\.yaml:\d+:\d+: YAML syntax error/);
  const tab = parseErrors('workloads:\n\t- uid: a\n');
  assert.equal(tab[0]!.code, 'FERRY_CONFIG_YAML_SYNTAX');
  const dupKey = parseErrors('workloads: []\nworkloads: []\n');
  assert.equal(dupKey[0]!.code, 'FERRY_CONFIG_YAML_SYNTAX');
  assert.equal(dupKey[0]!.line, 2);
  const twoDocs = parseErrors('workloads: []\n---\nservices: []\n');
  assert.equal(twoDocs[0]!.code, 'FERRY_CONFIG_YAML_SYNTAX');
});

test('anchors and aliases resolve like ordinary values', () => {
  const config = parseOk(`policies:
- name: a
  namespace: ns
  scope: Global
  action: Deny
  rules: &r [[[{destinationPorts: [1]}]]]
- {name: b, namespace: ns, scope: Global, action: Deny, rules: *r}
`);
  assert.deepEqual(config.policies[1]!.rules, config.policies[0]!.rules);
});

test('hostile input: deep nesting, alias bombs and huge files are rejected without blowing the stack', () => {
  const deep = parseErrors(`policies: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n`);
  assert.ok(deep.length >= 1);
  assert.ok(
    ['FERRY_CONFIG_TOO_LARGE', 'FERRY_CONFIG_YAML_SYNTAX', 'FERRY_CONFIG_WRONG_TYPE'].includes(deep[0]!.code),
    deep[0]!.message,
  );

  const deepBlock = Array.from({ length: 5000 }, (_, i) => `${' '.repeat(i)}- `).join('\n');
  assert.ok(parseErrors(`workloads:\n${deepBlock}x\n`).length >= 1);

  // Aliases at each list level of a policy: 100 rules × 100 clauses × 100 matches × 100 ports = 10^8 values
  // after expansion, from a file of a few kilobytes.
  const aliases = (anchor: string, n: number) => Array(n).fill(`*${anchor}`).join(', ');
  const match = `&m {destinationPorts: [${Array(100).fill(1).join(', ')}]}`;
  const clause = `&c [${match}, ${aliases('m', 99)}]`;
  const rule = `&r [${clause}, ${aliases('c', 99)}]`;
  const bomb = `policies:\n- {name: p, namespace: ns, scope: Global, action: Deny, rules: [${rule}, ${aliases('r', 99)}]}\n`;
  assert.ok(bomb.length < 10_000);
  assert.deepEqual(
    parseErrors(bomb).map((e) => e.code),
    ['FERRY_CONFIG_TOO_LARGE'],
  );
  // The same shape at a sane size is accepted, aliases and all.
  const small = `policies:\n- {name: p, namespace: ns, scope: Global, action: Deny, rules: [&r [&c [&m {destinationPorts: [1]}, *m]], *r]}\n`;
  assert.equal(parseOk(small).policies[0]!.rules.length, 2);

  const flat = `policies:\n- {name: p, namespace: ns, scope: Global, action: Deny, rules: [[[{destinationPorts: [${Array(300_000).fill(1).join(',')}]}]]]}\n`;
  assert.equal(parseOk(flat).policies[0]!.rules[0]![0]![0]!.destinationPorts.length, 300_000);

  const huge = parseErrors(`# ${'x'.repeat(17 * 1024 * 1024)}\n`);
  assert.deepEqual(
    huge.map((e) => e.code),
    ['FERRY_CONFIG_TOO_LARGE'],
  );
});

test('garbage input never throws: random bytes and truncations of a valid file', async () => {
  const valid = await fixture('mesh.yaml');
  let seed = 17;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  for (let i = 0; i < 300; i++) {
    const garbage = Array.from({ length: Math.floor(rand() * 200) }, () =>
      String.fromCharCode(Math.floor(rand() * 256)),
    ).join('');
    const result = parseLocalConfig(garbage, 'garbage.yaml');
    if (!result.ok) for (const e of result.errors) assert.equal(e.file, 'garbage.yaml');
  }
  for (let cut = 0; cut < valid.length; cut += 7) {
    const result = parseLocalConfig(valid.slice(0, cut), 'cut.yaml');
    if (!result.ok) assert.ok(result.errors.length > 0 && result.errors.every((e) => e.message.startsWith('cut.yaml')));
  }
  for (let i = 0; i < 300; i++) {
    const at = Math.floor(rand() * valid.length);
    const mutated = valid.slice(0, at) + String.fromCharCode(Math.floor(rand() * 128)) + valid.slice(at + 1);
    parseLocalConfig(mutated, 'mutated.yaml');
  }
});
