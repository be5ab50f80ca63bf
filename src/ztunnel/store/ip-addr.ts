// IP address text: strict parsing into the canonical form the store keys on (IpAddr in types.ts), and the
// few address predicates the planners need. Canonical = IPv4 dotted quad without leading zeros, or IPv6
// compressed lowercase per RFC 5952 §4 (IPv4-mapped printed as ::ffff:a.b.c.d, as Node's sockets report it).
// Pure: no DNS, no zone ids, no hostnames.
import type { IpAddr } from './types.ts';

/** An IP and a TCP port: a socket address. */
export interface IpPort {
  readonly ip: IpAddr;
  readonly port: number;
}

export type IpParseResult =
  | { readonly ok: true; readonly value: IpAddr }
  | { readonly ok: false; readonly error: string };

// Leading zeros are refused: "010" is octal to some parsers and decimal to others.
const IPV4_RE = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP_RE = /^[0-9a-fA-F]{1,4}$/;
// Longest textual IPv6 (with an embedded IPv4 tail) is 45 characters; anything longer is not an address.
const MAX_IP_TEXT = 45;

/** Parses an IPv4 or IPv6 literal into canonical text; never throws. */
export function parseIpAddr(text: string): IpParseResult {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_IP_TEXT) {
    return { ok: false, error: `not an IP address: ${quote(text)}` };
  }
  if (text.includes(':')) {
    const groups = parseIpv6Groups(text);
    return groups === null
      ? { ok: false, error: `not an IPv6 address: ${quote(text)}` }
      : { ok: true, value: formatIpv6(groups) };
  }
  const v4 = parseIpv4Octets(text);
  return v4 === null ? { ok: false, error: `not an IPv4 address: ${quote(text)}` } : { ok: true, value: v4.join('.') };
}

/** True for canonical IPv6 text (the store only holds canonical addresses). */
export function isIpv6(ip: IpAddr): boolean {
  return ip.includes(':');
}

/** `::ffff:a.b.c.d` → `a.b.c.d`; other addresses unchanged (a dual-stack socket reports v4 peers mapped). */
export function unmapIpv4(ip: IpAddr): IpAddr {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice('::ffff:'.length) : ip;
}

/** 127.0.0.0/8, ::1, and IPv4-mapped loopback. */
export function isLoopback(ip: IpAddr): boolean {
  if (ip === '::1') return true;
  const v4 = unmapIpv4(ip);
  return !v4.includes(':') && v4.startsWith('127.');
}

function parseIpv4Octets(text: string): number[] | null {
  const m = IPV4_RE.exec(text);
  if (m === null) return null;
  const octets = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
  return octets.every((o) => o <= 255) ? octets : null;
}

/** Eight 16-bit groups, or null. Accepts one `::` and an IPv4 tail in the last 32 bits. */
function parseIpv6Groups(text: string): number[] | null {
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const compressed = halves.length === 2;
  const head = hexGroups(halves[0] ?? '', !compressed);
  const tail = compressed ? hexGroups(halves[1] ?? '', true) : [];
  if (head === null || tail === null) return null;
  if (!compressed) return head.length === 8 ? head : null;
  // `::` stands for at least one zero group (RFC 4291 §2.2).
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return null;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}

/** Colon-separated hex groups (empty text = none); the last one may be an IPv4 tail when allowed. */
function hexGroups(text: string, allowV4Tail: boolean): number[] | null {
  if (text === '') return [];
  const parts = text.split(':');
  const out: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] ?? '';
    if (allowV4Tail && i === parts.length - 1 && part.includes('.')) {
      const v4 = parseIpv4Octets(part);
      if (v4 === null) return null;
      const [a = 0, b = 0, c = 0, d = 0] = v4;
      out.push((a << 8) | b, (c << 8) | d);
    } else if (HEX_GROUP_RE.test(part)) {
      out.push(Number.parseInt(part, 16));
    } else {
      return null;
    }
  }
  return out;
}

function formatIpv6(groups: readonly number[]): string {
  // IPv4-mapped (::ffff:0:0/96): dotted tail, the form Node and Rust print.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const hi = groups[6] ?? 0;
    const lo = groups[7] ?? 0;
    return `::ffff:${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  // RFC 5952 §4.2: compress the longest run of ≥ 2 zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

function quote(text: unknown): string {
  return typeof text === 'string' ? JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text) : typeof text;
}
