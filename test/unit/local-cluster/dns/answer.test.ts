// Answering queries (src/local-cluster/dns/answer.ts): what a resolver gets back for each kind of question,
// and that hostile bytes never throw (a fast-check property over random and mutated packets).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import dnsPacket, { type Packet } from 'dns-packet';
import fc from 'fast-check';
import {
  encodeResponse,
  planQuery,
  type QueryPlan,
  RCODE,
  UDP_DEFAULT_LIMIT_BYTES,
} from '../../../../src/local-cluster/dns/answer.ts';
import { buildDnsRecords, unsyncedDnsRecords } from '../../../../src/local-cluster/dns/records.ts';

const records = buildDnsRecords({
  services: [
    {
      namespace: 'demo',
      name: 'echo',
      clusterIps: ['10.96.0.1'],
      endpointIps: [],
      ports: [{ name: 'http', port: 80, protocol: 'tcp' }],
    },
    {
      namespace: 'demo',
      name: 'big',
      clusterIps: [],
      endpointIps: Array.from({ length: 60 }, (_, i) => `10.244.1.${i + 2}`),
      ports: [],
    },
    {
      namespace: 'demo',
      name: 'mid',
      clusterIps: [],
      endpointIps: Array.from({ length: 20 }, (_, i) => `10.244.2.${i + 2}`),
      ports: [],
    },
  ],
  pods: [{ namespace: 'demo', name: 'client', ips: ['10.244.0.3'] }],
});

function query(name: string, type: string, more: Partial<Packet> = {}): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as 'A' }],
    ...more,
  });
}

/** Plans, encodes as UDP would, decodes again: what the client sees. */
function ask(msg: Buffer): ReturnType<typeof dnsPacket.decode> & { rcode: string } {
  const plan = planQuery(msg, records);
  assert.equal(plan.kind, 'answer', `expected an answer, got ${plan.kind}`);
  if (plan.kind !== 'answer') throw new Error('unreachable');
  return dnsPacket.decode(encodeResponse(plan.response, plan.udpLimitBytes)) as ReturnType<typeof dnsPacket.decode> & {
    rcode: string;
  };
}

const table: readonly { name: string; q: Buffer; rcode: string; answers: readonly string[]; authority?: string }[] = [
  { name: 'A of a service', q: query('echo.demo.svc.cluster.local', 'A'), rcode: 'NOERROR', answers: ['A 10.96.0.1'] },
  {
    name: 'mixed case keeps the asker spelling in the answer',
    q: query('EcHo.DeMo.svc.Cluster.Local', 'A'),
    rcode: 'NOERROR',
    answers: ['A 10.96.0.1'],
  },
  {
    name: 'AAAA of an IPv4-only service is NOERROR/NODATA with SOA',
    q: query('echo.demo.svc.cluster.local', 'AAAA'),
    rcode: 'NOERROR',
    answers: [],
    authority: 'SOA',
  },
  {
    name: 'SRV of a named port',
    q: query('_http._tcp.echo.demo.svc.cluster.local', 'SRV'),
    rcode: 'NOERROR',
    answers: ['SRV 80 echo.demo.svc.cluster.local'],
  },
  {
    name: 'unknown service: NXDOMAIN with SOA in authority',
    q: query('nope.demo.svc.cluster.local', 'A'),
    rcode: 'NXDOMAIN',
    answers: [],
    authority: 'SOA',
  },
  {
    name: 'search-list expansion of an outside name is NXDOMAIN (the resolver moves on)',
    q: query('example.com.demo.svc.cluster.local', 'A'),
    rcode: 'NXDOMAIN',
    answers: [],
    authority: 'SOA',
  },
  {
    name: 'pod record',
    q: query('10-244-0-3.demo.pod.cluster.local', 'A'),
    rcode: 'NOERROR',
    answers: ['A 10.244.0.3'],
  },
  {
    name: 'TXT of a known name is NODATA',
    q: query('echo.demo.svc.cluster.local', 'TXT'),
    rcode: 'NOERROR',
    answers: [],
    authority: 'SOA',
  },
  { name: 'SOA at the apex', q: query('cluster.local', 'SOA'), rcode: 'NOERROR', answers: ['SOA'] },
  {
    name: 'ANY of a service',
    q: query('echo.demo.svc.cluster.local', 'ANY'),
    rcode: 'NOERROR',
    answers: ['A 10.96.0.1'],
  },
  {
    name: 'zone transfer refused as not implemented',
    q: query('cluster.local', 'AXFR'),
    rcode: 'NOTIMP',
    answers: [],
  },
  {
    name: 'two questions: FORMERR',
    q: dnsPacket.encode({
      type: 'query',
      id: 1,
      questions: [
        { name: 'a.cluster.local', type: 'A' },
        { name: 'b.cluster.local', type: 'A' },
      ],
    }),
    rcode: 'FORMERR',
    answers: [],
  },
  {
    name: 'no question: FORMERR',
    q: dnsPacket.encode({ type: 'query', id: 1, questions: [] }),
    rcode: 'FORMERR',
    answers: [],
  },
  {
    name: 'truncated question bytes: FORMERR keeping the id',
    q: query('echo.demo.svc.cluster.local', 'A').subarray(0, 20),
    rcode: 'FORMERR',
    answers: [],
  },
  {
    name: 'opcode UPDATE: NOTIMP',
    q: (() => {
      const b = query('echo.demo.svc.cluster.local', 'A');
      b.writeUInt16BE(b.readUInt16BE(2) | (5 << 11), 2);
      return b;
    })(),
    rcode: 'NOTIMP',
    answers: [],
  },
];

function describeAnswer(a: dnsPacket.Answer): string {
  if (a.type === 'A') return `A ${a.data}`;
  if (a.type === 'SRV') return `SRV ${a.data.port} ${a.data.target}`;
  return a.type;
}

for (const c of table) {
  test(`answer: ${c.name}`, () => {
    const res = ask(c.q);
    assert.equal(res.rcode, c.rcode);
    assert.equal(res.type, 'response');
    assert.equal(res.id, c.q.readUInt16BE(0));
    assert.deepEqual((res.answers ?? []).map(describeAnswer), c.answers);
    if (c.authority !== undefined)
      assert.deepEqual(
        (res.authorities ?? []).map((a) => a.type),
        [c.authority],
      );
    if (c.rcode === 'NOERROR' || c.rcode === 'NXDOMAIN') {
      assert.equal(res.flag_aa, true, 'authoritative for the cluster domain');
      assert.equal(res.flag_rd, true, 'RD copied from the query');
    }
  });
}

test('answer names echo the question spelling (DNS 0x20 clients compare it)', () => {
  const res = ask(query('EcHo.DeMo.svc.Cluster.Local', 'A'));
  assert.equal(res.answers?.[0]?.name, 'EcHo.DeMo.svc.Cluster.Local');
  assert.equal(res.questions?.[0]?.name, 'EcHo.DeMo.svc.Cluster.Local');
});

test('SRV answers carry the target address in the additional section', () => {
  const res = ask(query('_http._tcp.echo.demo.svc.cluster.local', 'SRV'));
  assert.deepEqual((res.additionals ?? []).map(describeAnswer), ['A 10.96.0.1']);
});

test('names outside the cluster domain are forwarded, with a SERVFAIL ready for failures', () => {
  const plan = planQuery(query('example.com', 'A'), records);
  assert.equal(plan.kind, 'forward');
  if (plan.kind !== 'forward') return;
  const servfail = dnsPacket.decode(encodeResponse(plan.servfail, 512)) as unknown as { rcode: string; id?: number };
  assert.equal(servfail.rcode, 'SERVFAIL');
  assert.equal(servfail.id, 4242);
});

test('UDP answers over 512 bytes are truncated (TC), TCP gets them whole', () => {
  const plan = planQuery(query('big.demo.svc.cluster.local', 'A'), records);
  assert.equal(plan.kind, 'answer');
  if (plan.kind !== 'answer') return;
  const udp = encodeResponse(plan.response, plan.udpLimitBytes);
  assert.ok(udp.length <= UDP_DEFAULT_LIMIT_BYTES);
  const udpDecoded = dnsPacket.decode(udp);
  assert.equal(udpDecoded.flag_tc, true);
  assert.equal(udpDecoded.answers?.length, 0);
  const tcp = dnsPacket.decode(encodeResponse(plan.response, 65_535));
  assert.equal(tcp.flag_tc, false);
  assert.equal(tcp.answers?.length, 60);
});

test('EDNS: a client offering 4096 bytes gets 1232: 20 records over UDP (not 512) and an OPT back', () => {
  const q = query('mid.demo.svc.cluster.local', 'A', {
    additionals: [
      {
        type: 'OPT',
        name: '.',
        udpPayloadSize: 4096,
        extendedRcode: 0,
        ednsVersion: 0,
        flags: 0,
        flag_do: false,
        options: [],
      },
    ],
  });
  const plan = planQuery(q, records);
  assert.equal(plan.kind, 'answer');
  if (plan.kind !== 'answer') return;
  assert.equal(plan.udpLimitBytes, 1232, 'clamped to the flag-day size');
  const res = dnsPacket.decode(encodeResponse(plan.response, plan.udpLimitBytes));
  assert.equal(res.flag_tc, false);
  assert.equal(res.answers?.length, 20);
  assert.deepEqual(
    (res.additionals ?? []).map((a) => a.type),
    ['OPT'],
  );
});

test('messages that are not queries are dropped, never answered', () => {
  const response = dnsPacket.encode({
    type: 'response',
    id: 7,
    questions: [{ name: 'echo.demo.svc.cluster.local', type: 'A' }],
  });
  assert.equal(planQuery(response, records).kind, 'drop');
  assert.equal(planQuery(Buffer.alloc(5), records).kind, 'drop');
  assert.equal(planQuery(Buffer.alloc(0), records).kind, 'drop');
});

test('fuzz: random bytes and mutated queries never throw, and every answer encodes', () => {
  const seedQueries = [
    query('echo.demo.svc.cluster.local', 'A'),
    query('_http._tcp.echo.demo.svc.cluster.local', 'SRV'),
    query('example.com', 'AAAA'),
  ];
  const mutated = fc
    .tuple(
      fc.constantFrom(...seedQueries),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
      fc.nat(),
    )
    .map(([q, flips, cut]) => {
      const b = Buffer.from(q);
      for (const [i, v] of flips) b[i % b.length] = v;
      return b.subarray(0, Math.max(0, b.length - (cut % 4 === 0 ? cut % b.length : 0)));
    });
  const random = fc.uint8Array({ maxLength: 600 }).map((u) => Buffer.from(u));
  fc.assert(
    fc.property(fc.oneof(mutated, random), (msg) => {
      const plan: QueryPlan = planQuery(msg, records);
      if (plan.kind === 'answer') {
        const out = encodeResponse(plan.response, plan.udpLimitBytes);
        assert.ok(out.length <= Math.max(plan.udpLimitBytes, 512));
        assert.equal(out.readUInt16BE(0), msg.readUInt16BE(0), 'answers keep the query id');
        assert.ok(RCODE.NOERROR <= (out.readUInt16BE(2) & 0xf));
      }
      if (plan.kind === 'forward') encodeResponse(plan.servfail, plan.udpLimitBytes);
    }),
    { seed: 20_261_202, numRuns: 5_000 },
  );
});

test('before the first data, cluster names get SERVFAIL (try again), not a wrong NXDOMAIN; others still forward', () => {
  const empty = unsyncedDnsRecords();
  const plan = planQuery(query('echo.demo.svc.cluster.local', 'A'), empty);
  assert.equal(plan.kind, 'answer');
  if (plan.kind === 'answer') assert.equal(plan.rcode, RCODE.SERVFAIL);
  assert.equal(planQuery(query('example.com', 'A'), empty).kind, 'forward');
});
