// The DNS lookup table as a pure function of services and pods (src/local-cluster/dns/records.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  buildDnsRecords,
  type DnsInput,
  type DnsServiceInput,
  dashedIp,
  foldCase,
  lookupName,
} from '../../../../src/local-cluster/dns/records.ts';

function svc(ns: string, name: string, more: Partial<DnsServiceInput> = {}): DnsServiceInput {
  return { namespace: ns, name, clusterIps: [], endpointIps: [], ports: [], ...more };
}

const input: DnsInput = {
  services: [
    svc('demo', 'echo', {
      clusterIps: ['10.96.0.1'],
      endpointIps: ['10.244.0.2'],
      ports: [
        { name: 'http', port: 80, protocol: 'tcp' },
        { name: null, port: 81, protocol: 'tcp' },
      ],
    }),
    svc('demo', 'db', {
      endpointIps: ['10.244.1.3', '10.244.0.9'],
      ports: [{ name: 'pg', port: 5432, protocol: 'tcp' }],
    }),
    svc('demo', 'empty'),
    svc('other', 'v6', { clusterIps: ['fd00::10'] }),
  ],
  pods: [
    { namespace: 'demo', name: 'echo-1', ips: ['10.244.0.2'] },
    { namespace: 'demo', name: 'client', ips: ['10.244.0.3'] },
  ],
};
const records = buildDnsRecords(input);

const cases: readonly { name: string; query: string; expect: ReturnType<typeof lookupName> }[] = [
  {
    name: 'service with a ClusterIP resolves to the VIP, not its endpoints',
    query: 'echo.demo.svc.cluster.local',
    expect: { kind: 'found', records: { a: ['10.96.0.1'], aaaa: [], srv: [] } },
  },
  {
    name: 'lookup is case-insensitive and ignores a trailing dot',
    query: 'ECHO.Demo.SVC.cluster.LOCAL.',
    expect: { kind: 'found', records: { a: ['10.96.0.1'], aaaa: [], srv: [] } },
  },
  {
    name: 'headless service resolves to its ready endpoints, sorted',
    query: 'db.demo.svc.cluster.local',
    expect: { kind: 'found', records: { a: ['10.244.0.9', '10.244.1.3'], aaaa: [], srv: [] } },
  },
  {
    name: 'headless endpoint has its own name under the service',
    query: '10-244-1-3.db.demo.svc.cluster.local',
    expect: { kind: 'found', records: { a: ['10.244.1.3'], aaaa: [], srv: [] } },
  },
  {
    name: 'headless service without endpoints exists with no data',
    query: 'empty.demo.svc.cluster.local',
    expect: { kind: 'found', records: { a: [], aaaa: [], srv: [] } },
  },
  {
    name: 'named port gets SRV pointing at the service',
    query: '_http._tcp.echo.demo.svc.cluster.local',
    expect: {
      kind: 'found',
      records: {
        a: [],
        aaaa: [],
        srv: [{ priority: 0, weight: 100, port: 80, target: 'echo.demo.svc.cluster.local' }],
      },
    },
  },
  {
    name: 'headless SRV names each endpoint, weight split',
    query: '_pg._tcp.db.demo.svc.cluster.local',
    expect: {
      kind: 'found',
      records: {
        a: [],
        aaaa: [],
        srv: [
          { priority: 0, weight: 50, port: 5432, target: '10-244-1-3.db.demo.svc.cluster.local' },
          { priority: 0, weight: 50, port: 5432, target: '10-244-0-9.db.demo.svc.cluster.local' },
        ],
      },
    },
  },
  { name: 'unnamed port has no SRV', query: '_81._tcp.echo.demo.svc.cluster.local', expect: { kind: 'nxdomain' } },
  {
    name: 'IPv6 ClusterIP is AAAA',
    query: 'v6.other.svc.cluster.local',
    expect: { kind: 'found', records: { a: [], aaaa: ['fd00::10'], srv: [] } },
  },
  {
    name: 'pod A record by dashed IP',
    query: '10-244-0-3.demo.pod.cluster.local',
    expect: { kind: 'found', records: { a: ['10.244.0.3'], aaaa: [], srv: [] } },
  },
  { name: 'pod record is namespace-scoped', query: '10-244-0-3.other.pod.cluster.local', expect: { kind: 'nxdomain' } },
  { name: 'unknown pod IP', query: '10-244-9-9.demo.pod.cluster.local', expect: { kind: 'nxdomain' } },
  { name: 'unknown service', query: 'nope.demo.svc.cluster.local', expect: { kind: 'nxdomain' } },
  { name: 'unknown namespace', query: 'echo.nope.svc.cluster.local', expect: { kind: 'nxdomain' } },
  {
    name: 'namespace is an empty non-terminal (RFC 8020), not NXDOMAIN',
    query: 'demo.svc.cluster.local',
    expect: { kind: 'found', records: { a: [], aaaa: [], srv: [] } },
  },
  {
    name: 'svc is an empty non-terminal',
    query: 'svc.cluster.local',
    expect: { kind: 'found', records: { a: [], aaaa: [], srv: [] } },
  },
  { name: 'zone apex', query: 'cluster.local', expect: { kind: 'apex' } },
  { name: 'search-list miss is NXDOMAIN', query: 'example.com.demo.svc.cluster.local', expect: { kind: 'nxdomain' } },
  { name: 'outside the cluster domain', query: 'example.com', expect: { kind: 'outside' } },
  { name: 'a look-alike suffix is outside', query: 'echo.demo.svc.notcluster.local', expect: { kind: 'outside' } },
  {
    name: 'non-ASCII that lower-cases to ASCII does not match (KELVIN SIGN is not k)',
    query: 'echo.demo.svc.cluster.local'.replace('c', '\u212A'),
    expect: { kind: 'nxdomain' },
  },
  { name: 'bare service name is not a cluster name', query: 'echo', expect: { kind: 'outside' } },
];

for (const c of cases) {
  test(`lookupName: ${c.name}`, () => {
    assert.deepEqual(lookupName(records, c.query), c.expect);
  });
}

test('a custom cluster domain is used for every name', () => {
  const r = buildDnsRecords(input, 'Corp.Example.');
  assert.equal(r.domain, 'corp.example');
  assert.deepEqual(lookupName(r, 'echo.demo.svc.corp.example'), {
    kind: 'found',
    records: { a: ['10.96.0.1'], aaaa: [], srv: [] },
  });
  assert.deepEqual(lookupName(r, 'echo.demo.svc.cluster.local'), { kind: 'outside' });
});

test('invalid addresses from a source are skipped, not served', () => {
  const r = buildDnsRecords({ services: [svc('a', 'b', { clusterIps: ['300.1.1.1', 'x:y'] })], pods: [] });
  assert.deepEqual(lookupName(r, 'b.a.svc.cluster.local'), { kind: 'found', records: { a: [], aaaa: [], srv: [] } });
});

test('an empty cluster has only the apex', () => {
  const r = buildDnsRecords({ services: [], pods: [] });
  assert.equal(r.names.size, 0);
  assert.deepEqual(lookupName(r, 'cluster.local'), { kind: 'apex' });
  assert.deepEqual(lookupName(r, 'svc.cluster.local'), { kind: 'nxdomain' });
});

test('helpers: dashed IPs and ASCII case folding', () => {
  assert.equal(dashedIp('10.244.0.5'), '10-244-0-5');
  assert.equal(dashedIp('fd00::5'), 'fd00--5');
  assert.equal(foldCase('EcHo.\u212A'), 'echo.\u212A');
});
