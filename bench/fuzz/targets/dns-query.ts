// Fuzz target for the cluster DNS query path (src/local-cluster/dns/answer.ts): valid queries (every record
// type the server knows, names inside and outside the cluster domain, EDNS or not) with bytes broken, and
// arbitrary bytes. planQuery never throws; an answer always encodes, keeps the query's id, fits the UDP
// limit it names, and is a response; a forward always carries an encodable SERVFAIL.
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { encodeResponse, planQuery } from '../../../src/local-cluster/dns/answer.ts';
import { buildDnsRecords } from '../../../src/local-cluster/dns/records.ts';
import { type FuzzTarget, FuzzViolation, mustNotThrow } from '../engine.ts';
import { mutatedBytes } from '../mutate.ts';

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
      name: 'db',
      clusterIps: [],
      endpointIps: Array.from({ length: 30 }, (_, i) => `10.244.0.${i + 2}`),
      ports: [],
    },
  ],
  pods: [{ namespace: 'demo', name: 'client', ips: ['10.244.1.2'] }],
});

const names = fc.oneof(
  fc.constantFrom(
    'echo.demo.svc.cluster.local',
    '_http._tcp.echo.demo.svc.cluster.local',
    'db.demo.svc.cluster.local',
    '10-244-1-2.demo.pod.cluster.local',
    'cluster.local',
    'example.com',
  ),
  fc.domain(),
);
const types = fc.constantFrom('A', 'AAAA', 'SRV', 'TXT', 'SOA', 'ANY', 'AXFR', 'PTR') as fc.Arbitrary<'A'>;
const query = fc
  .tuple(fc.nat({ max: 0xffff }), names, types, fc.option(fc.integer({ min: 0, max: 65535 })))
  .map(([id, name, type, edns]) =>
    dnsPacket.encode({
      type: 'query',
      id,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ name, type }],
      additionals:
        edns === null
          ? []
          : [
              {
                type: 'OPT',
                name: '.',
                udpPayloadSize: edns,
                extendedRcode: 0,
                ednsVersion: 0,
                flags: 0,
                flag_do: false,
                options: [],
              },
            ],
    }),
  );

export const dnsBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 1, arbitrary: query },
  { weight: 4, arbitrary: mutatedBytes(query, 4) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 600 }) },
);

function check(input: Uint8Array): void {
  const msg = Buffer.from(input);
  const plan = mustNotThrow('planQuery', () => planQuery(msg, records));
  if (plan.kind === 'drop') return;
  const reply = mustNotThrow('encodeResponse', () =>
    plan.kind === 'answer'
      ? encodeResponse(plan.response, plan.udpLimitBytes)
      : encodeResponse(plan.servfail, plan.udpLimitBytes),
  );
  if (reply.length > Math.max(plan.udpLimitBytes, 512))
    throw new FuzzViolation(`reply of ${reply.length} bytes over ${plan.udpLimitBytes}`);
  if (reply.readUInt16BE(0) !== msg.readUInt16BE(0)) throw new FuzzViolation('reply id differs from the query id');
  if ((reply.readUInt16BE(2) & 0x8000) === 0) throw new FuzzViolation('reply is not a response (QR clear)');
}

export const dnsQueryTarget: FuzzTarget = {
  name: 'dns-query',
  kind: 'pure',
  what: 'cluster DNS query planning and response encoding (planQuery, encodeResponse)',
  hangMs: 5_000,
  async start() {
    return { sync: true, arbitrary: dnsBytes, run: check, async close() {} };
  },
};
