// HBONE CONNECT `:authority` (docs/architecture.md "HBONE (wire contract)", docs/architecture.md "HBONE (wire contract)"): `podIP:port` or `VIP:port`,
// IPv6 bracketed. The authority comes from the network, so parsing is strict and never throws; hostname
// authorities (double HBONE) are refused for now. Formatting lives here too so both ends agree on the text.

import { ProxyError } from '../errors.ts';
import { type IpPort, isIpv6, parseIpAddr } from '../mesh/ip-addr.ts';
import type { IpAddr } from '../mesh/types.ts';

export type AuthorityResult =
  | { readonly ok: true; readonly value: IpPort }
  | { readonly ok: false; readonly error: ProxyError };

// "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535" is 53 characters; refuse longer text before any work.
const MAX_AUTHORITY_LENGTH = 64;
// Decimal 1..65535 without sign or leading zeros.
const PORT_RE = /^[1-9][0-9]{0,4}$/;

/** Parses `a.b.c.d:port` or `[v6]:port` into a canonical IP and a port in 1..65535. */
export function parseHboneAuthority(text: string): AuthorityResult {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_AUTHORITY_LENGTH) {
    return bad(text, 'length');
  }
  let hostText: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return bad(text, 'expected [ipv6]:port');
    hostText = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!hostText.includes(':')) return bad(text, 'brackets are only for IPv6');
  } else {
    const colon = text.indexOf(':');
    if (colon < 0) return bad(text, 'missing port');
    if (text.indexOf(':', colon + 1) >= 0) return bad(text, 'IPv6 must be bracketed');
    hostText = text.slice(0, colon);
    portText = text.slice(colon + 1);
  }
  const port = parsePort(portText);
  if (port === null) return bad(text, 'port must be 1..65535');
  const ip = parseIpAddr(hostText);
  if (!ip.ok) return bad(text, 'host must be an IP address');
  return { ok: true, value: { ip: ip.value, port } };
}

/** `ip:port`, or `[ip]:port` for IPv6. */
export function formatAuthority(ip: IpAddr, port: number): string {
  return isIpv6(ip) ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function parsePort(text: string): number | null {
  if (!PORT_RE.test(text)) return null;
  const port = Number(text);
  return port <= 65535 ? port : null;
}

function bad(text: unknown, reason: string): AuthorityResult {
  // The text is peer-controlled: quote it (and cap it) so it cannot forge log lines.
  const shown = typeof text === 'string' ? JSON.stringify(text.slice(0, MAX_AUTHORITY_LENGTH + 1)) : typeof text;
  return { ok: false, error: new ProxyError('FERRY_HBONE_BAD_AUTHORITY', `bad HBONE authority ${shown}: ${reason}`) };
}

/** `ip:port` of a socket address, brackets around IPv6. */
export function formatIpPort(addr: IpPort): string {
  return formatAuthority(addr.ip, addr.port);
}

/** The outlier-detection key of a next hop: `ip:port` (`[v6]:port`). */
export function endpointKey(hop: IpPort): string {
  return formatAuthority(hop.ip, hop.port);
}
