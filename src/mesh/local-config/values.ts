// Leaf values of the static config format: names, IPs and `network/ip` addresses, CIDRs, port maps,
// StringMatch forms and waypoint addresses. Each reader records its own error and returns null.
import { isMap, isScalar, isSeq, type Node } from 'yaml';
import { canonicalIp, parseCidr } from '../ip-addr.ts';
import { HBONE_PORT, isName, isNamespace, MAX_PORT, NAME_RE, NAMESPACE_RE } from '../names.ts';
import type { Cidr, GatewayAddress, NetworkAddress, PortMap, StringMatch } from '../types.ts';
import type { ConfigReader } from './reader.ts';

export { HBONE_PORT, isName, isNamespace, MAX_PORT };

export function readNamespace(r: ConfigReader, node: Node | undefined, path: string): string | null {
  const s = r.string(node, path);
  if (s === null) return null;
  if (!NAMESPACE_RE.test(s)) {
    r.fail('FERRY_CONFIG_INVALID_VALUE', path, node, 'expected a namespace (lowercase RFC 1123 label)');
    return null;
  }
  return s;
}

export function readName(r: ConfigReader, node: Node | undefined, path: string): string | null {
  const s = r.string(node, path);
  if (s === null) return null;
  if (!NAME_RE.test(s)) {
    r.fail('FERRY_CONFIG_INVALID_VALUE', path, node, "expected a non-empty name without whitespace or '/'");
    return null;
  }
  return s;
}

/** A network name: "" is the default network; no '/' since it prefixes addresses ("network/ip"). */
export function readNetwork(r: ConfigReader, node: Node | undefined, path: string): string | null {
  const s = r.string(node, path);
  if (s === null) return null;
  if (s !== '' && !NAME_RE.test(s)) {
    r.fail('FERRY_CONFIG_INVALID_VALUE', path, node, "expected a network name without whitespace or '/'");
    return null;
  }
  return s;
}

/** `namespace/hostname`, the key of a Service (Workload.services, waypoint by hostname). */
export function readServiceKey(r: ConfigReader, text: string, path: string, node: Node | undefined): string | null {
  const slash = text.indexOf('/');
  const namespace = text.slice(0, slash);
  const hostname = text.slice(slash + 1);
  if (slash < 0 || !NAMESPACE_RE.test(namespace) || !NAME_RE.test(hostname)) {
    r.fail('FERRY_CONFIG_INVALID_VALUE', path, node, 'expected a service key "namespace/hostname"');
    return null;
  }
  return `${namespace}/${hostname}`;
}

export function readIp(r: ConfigReader, node: Node | undefined, path: string): string | null {
  const s = r.string(node, path);
  if (s === null) return null;
  const ip = canonicalIp(s);
  if (ip === null) r.fail('FERRY_CONFIG_INVALID_VALUE', path, node, 'expected an IPv4 or IPv6 address');
  return ip;
}

/** Splits "network/ip" at the last '/' (IPv6 has none); a bare IP is on the default network "". */
function splitNetworkAddress(text: string): NetworkAddress | null {
  const slash = text.lastIndexOf('/');
  const ip = canonicalIp(slash < 0 ? text : text.slice(slash + 1));
  if (ip === null) return null;
  return { network: slash < 0 ? '' : text.slice(0, slash), address: ip };
}

export function readNetworkAddress(r: ConfigReader, node: Node | undefined, path: string): NetworkAddress | null {
  const s = r.string(node, path);
  if (s === null) return null;
  const addr = splitNetworkAddress(s);
  if (addr === null) r.fail('FERRY_CONFIG_INVALID_VALUE', path, node, 'expected "network/ip" or an IP address');
  return addr;
}

export function readCidr(r: ConfigReader, node: Node | undefined, path: string): Cidr | null {
  const s = r.string(node, path);
  if (s === null) return null;
  const cidr = parseCidr(s);
  if (cidr === null)
    r.fail('FERRY_CONFIG_INVALID_VALUE', path, node, 'expected a CIDR ("10.0.0.0/8") or an IP address');
  return cidr;
}

export function readPort(r: ConfigReader, node: Node | undefined, path: string): number | null {
  return r.integer(node, path, 1, MAX_PORT, 'a port');
}

/** `{servicePort: targetPort}`; keys may be written as numbers or strings; target 0 = named/unspecified. */
export function readPortMap(r: ConfigReader, node: Node | undefined, path: string): PortMap | null {
  const entries = r.entries(node, path);
  if (entries === null) return null;
  const out = new Map<number, number>();
  let ok = true;
  for (const e of entries) {
    const port = /^[0-9]{1,5}$/.test(e.key) ? Number(e.key) : Number.NaN;
    if (!(port >= 1 && port <= MAX_PORT)) {
      r.fail('FERRY_CONFIG_INVALID_VALUE', e.path, e.keyNode, `expected a service port in 1..${MAX_PORT} as key`);
      ok = false;
      continue;
    }
    if (out.has(port)) {
      r.fail('FERRY_CONFIG_DUPLICATE', e.path, e.keyNode, `service port ${port} is listed twice`);
      ok = false;
      continue;
    }
    const target = r.integer(e.value, e.path, 0, MAX_PORT, 'a target port (0 = named)');
    if (target === null) ok = false;
    else out.set(port, target);
  }
  return ok ? out : null;
}

const STRING_MATCH_KINDS = new Map<string, StringMatch['kind']>([
  ['exact', 'exact'],
  ['Exact', 'exact'],
  ['prefix', 'prefix'],
  ['Prefix', 'prefix'],
  ['suffix', 'suffix'],
  ['Suffix', 'suffix'],
  ['presence', 'presence'],
  ['Presence', 'presence'],
]);

/**
 * StringMatch in any of the forms users meet: `{exact: x}` / `{prefix: x}` / `{suffix: x}` / `{presence: {}}`
 * (proto JSON), the capitalized serde forms ztunnel writes (`{Exact: x}`, `{Presence: []}`), and Istio
 * AuthorizationPolicy shorthand strings: `"*"` presence, `"x*"` prefix, `"*x"` suffix, else exact.
 * Empty strings are rejected: they match plaintext's "" namespace, which is never what was meant.
 */
export function readStringMatch(
  r: ConfigReader,
  node: Node | undefined,
  path: string,
  opts: { principal: boolean },
): StringMatch | null {
  if (isScalar(node) && typeof node.value === 'string') {
    const s = node.value;
    if (s === '*') return { kind: 'presence' };
    if (s.startsWith('*')) return checkedMatch(r, { kind: 'suffix', value: s.slice(1) }, s, node, path, opts);
    if (s.endsWith('*')) return checkedMatch(r, { kind: 'prefix', value: s.slice(0, -1) }, s, node, path, opts);
    return checkedMatch(r, { kind: 'exact', value: s }, s, node, path, opts);
  }
  if (!isMap(node) || node.items.length !== 1) {
    r.wrongType(path, node, 'a string match ("x", "x*", "*x", "*", {exact|prefix|suffix: x} or {presence: {}})');
    return null;
  }
  const pair = node.items[0]!;
  const keyNode = r.resolve(pair.key);
  const key = isScalar(keyNode) && typeof keyNode.value === 'string' ? keyNode.value : null;
  const kind = key === null ? undefined : STRING_MATCH_KINDS.get(key);
  if (key === null || kind === undefined) {
    r.fail('FERRY_CONFIG_UNKNOWN_KEY', path, keyNode, 'expected one of exact, prefix, suffix, presence', node);
    return null;
  }
  const value = r.resolve(pair.value);
  const valuePath = `${path}.${key}`;
  if (kind === 'presence') {
    // `presence: {}` (proto JSON), `Presence: []` (serde unit variant) or `presence:` (null).
    if (value === undefined || ((isMap(value) || isSeq(value)) && value.items.length === 0)) return { kind };
    r.fail('FERRY_CONFIG_INVALID_VALUE', valuePath, value, 'presence takes no value ({})');
    return null;
  }
  const text = r.string(value, valuePath);
  return text === null ? null : checkedMatch(r, { kind, value: text }, text, value, valuePath, opts);
}

function checkedMatch(
  r: ConfigReader,
  sm: StringMatch & { value: string },
  written: string,
  node: Node | undefined,
  path: string,
  opts: { principal: boolean },
): StringMatch | null {
  if (sm.value === '') {
    r.fail('FERRY_CONFIG_INVALID_VALUE', path, node, 'empty match value (use "*" / presence to match any)');
    return null;
  }
  if (opts.principal && written.startsWith('spiffe://')) {
    r.fail('FERRY_CONFIG_INVALID_VALUE', path, node, 'principals are written without "spiffe://" (td/ns/<ns>/sa/<sa>)');
    return null;
  }
  return sm;
}

/** `{destination: "network/ip" | "ns/hostname", hboneMtlsPort?: 15008}`. */
export function readGatewayAddress(r: ConfigReader, node: Node | undefined, path: string): GatewayAddress | null {
  const f = r.fields(node, path, { required: ['destination'], optional: ['hboneMtlsPort'] });
  if (f === null) return null;
  const portNode = f.get('hboneMtlsPort');
  const port = portNode === undefined ? HBONE_PORT : readPort(r, portNode, f.at('hboneMtlsPort'));
  const destNode = f.get('destination');
  const dest = r.string(destNode, f.at('destination'));
  if (dest === null || port === null) return null;
  const address = splitNetworkAddress(dest);
  if (address !== null) return { destination: { kind: 'address', address }, hboneMtlsPort: port };
  const slash = dest.indexOf('/');
  const namespace = dest.slice(0, slash);
  const hostname = dest.slice(slash + 1);
  if (slash < 0 || !NAMESPACE_RE.test(namespace) || !NAME_RE.test(hostname)) {
    r.fail(
      'FERRY_CONFIG_INVALID_VALUE',
      f.at('destination'),
      destNode,
      'expected "network/ip" or "namespace/hostname"',
    );
    return null;
  }
  return { destination: { kind: 'hostname', namespace, hostname }, hboneMtlsPort: port };
}

/** Reads every item of a list with `item`; null if the list or any item is bad. */
export function readList<T>(
  r: ConfigReader,
  node: Node | undefined,
  path: string,
  item: (node: Node | undefined, path: string) => T | null,
): T[] | null {
  const items = r.list(node, path);
  if (items === null) return null;
  const out: T[] = [];
  let ok = true;
  for (const it of items) {
    const v = item(it.node, it.path);
    if (v === null) ok = false;
    else out.push(v);
  }
  return ok ? out : null;
}
