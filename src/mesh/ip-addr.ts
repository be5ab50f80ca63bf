// IP addresses: strict parsing of textual IPv4/IPv6 into the canonical form the store keys on (IpAddr in
// types.ts: dotted quad without leading zeros, or RFC 5952 compressed lowercase IPv6, IPv4-mapped printed as
// ::ffff:a.b.c.d as Node's sockets report it), CIDR containment, and the predicates the planners need. Pure:
// no DNS, no zone ids, no hostnames. IPv4-mapped IPv6 is treated as the IPv4 address it carries when
// matching, because a dual-stack socket reports an IPv4 peer that way; see ipInCidr.
import type { Cidr, IpAddr } from './types.ts';

export interface ParsedIp {
  readonly family: 4 | 6;
  /** The address as an unsigned 32-bit (v4) or 128-bit (v6) integer. */
  readonly value: bigint;
}

const V4_BITS = 32;
const V6_BITS = 128;
const MAPPED_PREFIX = 0xffffn; // ::ffff:0:0/96 marks an IPv4-mapped IPv6 address (RFC 4291 §2.5.5.2)
const MAPPED_BITS = 96;
const V4_MASK = 0xffff_ffffn;
// Decimal octet without leading zeros ("010" is ambiguous: octal in some parsers).
const OCTET_RE = /^(?:0|[1-9][0-9]{0,2})$/;
const HEXTET_RE = /^[0-9a-fA-F]{1,4}$/;

function parseV4(text: string): bigint | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!OCTET_RE.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

function parseHextets(text: string): number[] | null {
  if (text === '') return [];
  const out: number[] = [];
  for (const part of text.split(':')) {
    if (!HEXTET_RE.test(part)) return null;
    out.push(Number.parseInt(part, 16));
  }
  return out;
}

function parseV6(text: string): bigint | null {
  if (text.length > 45) return null; // longest form: 8 hextets or 6 + a dotted quad
  let body = text;
  let tail: number[] = [];
  const lastColon = body.lastIndexOf(':');
  if (lastColon >= 0 && body.includes('.', lastColon)) {
    // Embedded IPv4 in the last 32 bits (::ffff:1.2.3.4, 64:ff9b::1.2.3.4).
    const v4 = parseV4(body.slice(lastColon + 1));
    if (v4 === null) return null;
    tail = [Number((v4 >> 16n) & 0xffffn), Number(v4 & 0xffffn)];
    body = body.slice(0, lastColon + 1);
    // Keep a trailing "::" (it stands for zeros); else drop the ':' that separated the v4 part.
    if (!body.endsWith('::')) body = body.slice(0, -1);
  }
  const gap = body.indexOf('::');
  let hextets: number[];
  if (gap >= 0) {
    if (body.indexOf('::', gap + 1) >= 0) return null;
    const head = parseHextets(body.slice(0, gap));
    const rest = parseHextets(body.slice(gap + 2));
    if (head === null || rest === null) return null;
    const known = head.length + rest.length + tail.length;
    if (known > 7) return null; // "::" stands for at least one zero hextet
    hextets = [...head, ...new Array<number>(8 - known).fill(0), ...rest, ...tail];
  } else {
    const all = parseHextets(body);
    if (all === null) return null;
    hextets = [...all, ...tail];
    if (hextets.length !== 8) return null;
  }
  let value = 0n;
  for (const h of hextets) value = (value << 16n) | BigInt(h);
  return value;
}

/** Parses a textual IPv4 or IPv6 address (no zone, no brackets, no prefix); null when it is not one. */
export function parseIp(text: string): ParsedIp | null {
  if (typeof text !== 'string' || text.length === 0) return null;
  if (text.includes(':')) {
    const v6 = parseV6(text);
    return v6 === null ? null : { family: 6, value: v6 };
  }
  const v4 = parseV4(text);
  return v4 === null ? null : { family: 4, value: v4 };
}

function formatV4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

/** Canonical text: dotted quad, or lowercase RFC 5952 IPv6 (longest zero run compressed; ::ffff:a.b.c.d). */
export function formatIp(ip: ParsedIp): IpAddr {
  if (ip.family === 4) return formatV4(ip.value);
  if (ip.value >> 32n === MAPPED_PREFIX) return `::ffff:${formatV4(ip.value & V4_MASK)}`;
  const hextets: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) hextets.push(Number((ip.value >> shift) & 0xffffn));
  // Longest run of ≥ 2 zero hextets, the first one on ties (RFC 5952 §4.2).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (hextets[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && hextets[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (hs: number[]): string => hs.map((h) => h.toString(16)).join(':');
  if (bestStart < 0) return hex(hextets);
  return `${hex(hextets.slice(0, bestStart))}::${hex(hextets.slice(bestStart + bestLen))}`;
}

/** Canonical form of a textual address, or null when it is not an IP address. */
export function canonicalIp(text: string): IpAddr | null {
  const ip = parseIp(text);
  return ip === null ? null : formatIp(ip);
}

/** Parses "10.0.0.0/8", "2001:db8::/32", or a bare address (= /32 or /128). Host bits may be set. */
export function parseCidr(text: string): Cidr | null {
  if (typeof text !== 'string') return null;
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (ip === null) return null;
  const bits = ip.family === 4 ? V4_BITS : V6_BITS;
  if (slash < 0) return { address: formatIp(ip), prefixLength: bits };
  const lenText = text.slice(slash + 1);
  if (!/^(?:0|[1-9][0-9]{0,2})$/.test(lenText)) return null;
  const prefixLength = Number(lenText);
  if (prefixLength > bits) return null;
  return { address: formatIp(ip), prefixLength };
}

export function formatCidr(cidr: Cidr): string {
  return `${cidr.address}/${cidr.prefixLength}`;
}

/** IPv4-mapped IPv6 → the IPv4 address it carries; anything else unchanged. */
function unmapIp(ip: ParsedIp): ParsedIp {
  if (ip.family === 6 && ip.value >> 32n === MAPPED_PREFIX) return { family: 4, value: ip.value & V4_MASK };
  return ip;
}

function contains(base: ParsedIp, prefixLength: number, ip: ParsedIp): boolean {
  if (base.family !== ip.family) return false;
  const bits = base.family === 4 ? V4_BITS : V6_BITS;
  const hostBits = BigInt(bits - prefixLength);
  return base.value >> hostBits === ip.value >> hostBits;
}

/**
 * Whether `address` lies in `cidr`. Families never cross (0.0.0.0/0 does not hold IPv6, ::/0 not IPv4), with one
 * bridge: an IPv4-mapped IPv6 address also matches as its IPv4 form, and a CIDR inside ::ffff:0:0/96 also
 * matches the IPv4 addresses it maps (so `::ffff:10.0.0.1` is in 10.0.0.0/8 and `10.0.0.1` is in
 * ::ffff:10.0.0.0/104). Unparseable input matches nothing.
 */
export function ipInCidr(address: IpAddr, cidr: Cidr): boolean {
  const ip = parseIp(address);
  const base = parseIp(cidr.address);
  if (ip === null || base === null) return false;
  if (contains(base, cidr.prefixLength, ip)) return true;
  const ip4 = unmapIp(ip);
  if (base.family === 4) return contains(base, cidr.prefixLength, ip4);
  if (cidr.prefixLength >= MAPPED_BITS && base.value >> 32n === MAPPED_PREFIX) {
    return contains(unmapIp(base), cidr.prefixLength - MAPPED_BITS, ip4);
  }
  return false;
}

/** An IP and a TCP port: a socket address. */
export interface IpPort {
  readonly ip: IpAddr;
  readonly port: number;
}

export type IpParseResult =
  | { readonly ok: true; readonly value: IpAddr }
  | { readonly ok: false; readonly error: string };

// Longest textual IPv6 (with an embedded IPv4 tail) is 45 characters; anything longer is not an address.
const MAX_IP_TEXT = 45;

/** Parses an IPv4 or IPv6 literal into canonical text; never throws. */
export function parseIpAddr(text: string): IpParseResult {
  const canonical = typeof text === 'string' && text.length <= MAX_IP_TEXT ? canonicalIp(text) : null;
  return canonical === null
    ? { ok: false, error: `not an IP address: ${quote(text)}` }
    : { ok: true, value: canonical };
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

function quote(text: unknown): string {
  return typeof text === 'string' ? JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text) : typeof text;
}
