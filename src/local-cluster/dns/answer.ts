// Answering one DNS query (docs/architecture.md, "Cluster DNS"): decode with dns-packet, decide, build the
// response. Pure: no sockets, no clock. The server (server.ts) carries the outcome out: sends the answer,
// forwards to the upstream resolver, or drops. Network input is hostile: anything dns-packet cannot decode
// gets FORMERR when a query header is readable and is dropped otherwise; responses (QR set) are dropped
// so two servers can never bounce packets at each other.
import dnsPacket, { type Answer, type DecodedPacket, type OptAnswer, type Packet, type Question } from 'dns-packet';
import { type DnsRecordSet, type DnsRecords, lookupName } from './records.ts';

/** Kubernetes DNS answers live 5 s (CoreDNS's `kubernetes` plugin default), so changes show up quickly. */
export const RECORD_TTL_S = 5;
/** Classic DNS over UDP without EDNS (RFC 1035 §4.2.1). */
export const UDP_DEFAULT_LIMIT_BYTES = 512;
/** What we accept from EDNS clients and advertise: the DNS Flag Day 2020 size, safe from fragmentation. */
export const UDP_EDNS_LIMIT_BYTES = 1232;
const HEADER_BYTES = 12;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const FLAG_AA = dnsPacket.AUTHORITATIVE_ANSWER;
const FLAG_TC = dnsPacket.TRUNCATED_RESPONSE;
const FLAG_RD = dnsPacket.RECURSION_DESIRED;
const FLAG_RA = dnsPacket.RECURSION_AVAILABLE;
/** BADVERS (RFC 6891 §6.1.3) is extended RCODE 16: upper eight bits 1, header RCODE 0. */
const EXTENDED_RCODE_BADVERS = 1;

export type QueryPlan =
  /** Send `response` (encode it with encodeResponse and the limit of the transport). */
  | { readonly kind: 'answer'; readonly response: Packet; readonly udpLimitBytes: number; readonly rcode: number }
  /** Outside the cluster domain: ask the upstream resolver; on failure send `servfail`. */
  | {
      readonly kind: 'forward';
      readonly question: Question;
      readonly servfail: Packet;
      readonly udpLimitBytes: number;
    }
  | { readonly kind: 'drop'; readonly reason: string };

/** Decides what to do with one DNS message received from a client. Never throws. */
export function planQuery(message: Buffer, records: DnsRecords): QueryPlan {
  if (message.length < HEADER_BYTES) return { kind: 'drop', reason: 'shorter than a DNS header' };
  const flags = message.readUInt16BE(2);
  if ((flags & 0x8000) !== 0) return { kind: 'drop', reason: 'a response, not a query' };
  const id = message.readUInt16BE(0);
  const opcode = (flags >> 11) & 0xf;
  const rd = flags & FLAG_RD;
  let query: DecodedPacket;
  try {
    query = dnsPacket.decode(message);
  } catch {
    return bare(id, opcode, rd, RCODE.FORMERR);
  }
  if (opcode !== 0) return bare(id, opcode, rd, RCODE.NOTIMP); // only standard queries (no IQUERY, NOTIFY, UPDATE)
  const questions = query.questions ?? [];
  const opts = (query.additionals ?? []).filter((a) => a.type === 'OPT');
  const [question] = questions;
  if (questions.length !== 1 || question === undefined || opts.length > 1) return bare(id, opcode, rd, RCODE.FORMERR);
  const opt = opts[0];
  const udpLimitBytes =
    opt === undefined
      ? UDP_DEFAULT_LIMIT_BYTES
      : Math.min(Math.max(opt.udpPayloadSize, UDP_DEFAULT_LIMIT_BYTES), UDP_EDNS_LIMIT_BYTES);
  const base = {
    type: 'response' as const,
    id,
    questions: [question],
    additionals: opt === undefined ? [] : [responseOpt()],
  };
  if (opt !== undefined && opt.ednsVersion !== 0) {
    const badvers = responseOpt(EXTENDED_RCODE_BADVERS);
    return answer({ ...base, flags: rd | FLAG_RA, additionals: [badvers] }, udpLimitBytes, RCODE.NOERROR);
  }
  const lookup = lookupName(records, question.name);
  if (lookup.kind === 'outside') {
    const servfail = { ...base, flags: rd | FLAG_RA | RCODE.SERVFAIL };
    return { kind: 'forward', question, servfail, udpLimitBytes };
  }
  if (!records.synced) {
    return answer({ ...base, flags: rd | FLAG_RA | RCODE.SERVFAIL }, udpLimitBytes, RCODE.SERVFAIL);
  }
  const flagsOut = FLAG_AA | rd | FLAG_RA;
  // The decoder also yields 'ANY' and 'UNKNOWN_<n>', which its types do not list.
  const qtype: string = question.type;
  if (question.class !== 'IN' && question.class !== 'ANY') {
    return answer({ ...base, flags: flagsOut | RCODE.REFUSED }, udpLimitBytes, RCODE.REFUSED);
  }
  if (qtype === 'AXFR' || qtype === 'IXFR') {
    return answer({ ...base, flags: flagsOut | RCODE.NOTIMP }, udpLimitBytes, RCODE.NOTIMP);
  }
  const soa = soaRecord(records);
  switch (lookup.kind) {
    case 'nxdomain':
      return answer({ ...base, flags: flagsOut | RCODE.NXDOMAIN, authorities: [soa] }, udpLimitBytes, RCODE.NXDOMAIN);
    case 'apex': {
      const isSoa = qtype === 'SOA' || qtype === 'ANY';
      const reply = isSoa
        ? { ...base, flags: flagsOut, answers: [{ ...soa, name: question.name }] }
        : { ...base, flags: flagsOut, authorities: [soa] };
      return answer(reply, udpLimitBytes, RCODE.NOERROR);
    }
    case 'found': {
      const found = recordsFor(question.name, qtype, lookup.records, records);
      if (found.answers.length === 0) {
        // NOERROR/NODATA (RFC 2308 §2.2): the name exists, not this type (e.g. AAAA of an IPv4 Service).
        return answer({ ...base, flags: flagsOut, authorities: [soa] }, udpLimitBytes, RCODE.NOERROR);
      }
      const additionals = [...found.additionals, ...base.additionals];
      return answer({ ...base, flags: flagsOut, answers: found.answers, additionals }, udpLimitBytes, RCODE.NOERROR);
    }
    default:
      return lookup satisfies never;
  }
}

/**
 * Encodes a response for a transport that carries at most `limitBytes` (UDP: 512, or the EDNS size; TCP:
 * 65535). Too large: the question alone with TC set (RFC 2181 §9), so the client retries over TCP.
 */
export function encodeResponse(response: Packet, limitBytes: number): Buffer {
  const full = dnsPacket.encode(response);
  if (full.length <= limitBytes) return full;
  const opt = (response.additionals ?? []).filter((a) => a.type === 'OPT');
  return dnsPacket.encode({
    ...response,
    flags: (response.flags ?? 0) | FLAG_TC,
    answers: [],
    authorities: [],
    additionals: opt,
  });
}

/** The rcode in an encoded or built response's flags (low four bits). */
export function rcodeOf(response: Packet): number {
  return (response.flags ?? 0) & 0xf;
}

function answer(response: Packet, udpLimitBytes: number, rcode: number): QueryPlan {
  return { kind: 'answer', response, udpLimitBytes, rcode };
}

/** A response with no question: for queries we could not (or will not) read past the header. */
function bare(id: number, opcode: number, rd: number, rcode: number): QueryPlan {
  return {
    kind: 'answer',
    response: { type: 'response', id, flags: (opcode << 11) | rd | rcode, questions: [] },
    udpLimitBytes: UDP_DEFAULT_LIMIT_BYTES,
    rcode,
  };
}

function responseOpt(extendedRcode = 0): OptAnswer {
  return {
    type: 'OPT',
    name: '.',
    udpPayloadSize: UDP_EDNS_LIMIT_BYTES,
    extendedRcode,
    ednsVersion: 0,
    flags: 0,
    flag_do: false,
    options: [],
  };
}

function soaRecord(records: DnsRecords): Answer {
  return {
    type: 'SOA',
    name: records.domain,
    ttl: RECORD_TTL_S,
    data: {
      mname: `ns.dns.${records.domain}`,
      rname: `hostmaster.${records.domain}`,
      serial: 1,
      refresh: 7200,
      retry: 1800,
      expire: 86400,
      minimum: RECORD_TTL_S, // negative-caching TTL (RFC 2308 §4)
    },
  };
}

interface Found {
  readonly answers: Answer[];
  readonly additionals: Answer[];
}

/** The records of `set` matching the question type; answer names keep the question's spelling (0x20). */
function recordsFor(name: string, qtype: string, set: DnsRecordSet, records: DnsRecords): Found {
  const a = (n: string, ips: readonly string[]): Answer[] =>
    ips.map((data) => ({ type: 'A', name: n, ttl: RECORD_TTL_S, data }));
  const aaaa = (n: string, ips: readonly string[]): Answer[] =>
    ips.map((data) => ({ type: 'AAAA', name: n, ttl: RECORD_TTL_S, data }));
  const srv = (): Answer[] =>
    set.srv.map((r) => ({
      type: 'SRV',
      name,
      ttl: RECORD_TTL_S,
      data: { priority: r.priority, weight: r.weight, port: r.port, target: r.target },
    }));
  const targetAddresses = (): Answer[] =>
    set.srv.flatMap((r) => {
      const target = records.names.get(r.target);
      return target === undefined ? [] : [...a(r.target, target.a), ...aaaa(r.target, target.aaaa)];
    });
  switch (qtype) {
    case 'A':
      return { answers: a(name, set.a), additionals: [] };
    case 'AAAA':
      return { answers: aaaa(name, set.aaaa), additionals: [] };
    case 'SRV':
      return { answers: srv(), additionals: targetAddresses() };
    case 'ANY':
      return { answers: [...a(name, set.a), ...aaaa(name, set.aaaa), ...srv()], additionals: [] };
    default:
      return { answers: [], additionals: [] };
  }
}
