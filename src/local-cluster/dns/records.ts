// The cluster DNS lookup table (docs/architecture.md, "Cluster DNS"): a pure function from the cluster's
// services and pods to every name the server answers for, following the Kubernetes DNS specification
// (github.com/kubernetes/dns, docs/specification.md): `<svc>.<ns>.svc.<domain>` A/AAAA (the ClusterIP, or
// the ready endpoints' IPs when headless), `_<port>._<proto>.<svc>.<ns>.svc.<domain>` SRV for named ports,
// `<ip-dashed>.<svc>.<ns>.svc.<domain>` for headless endpoints, `<ip-dashed>.<ns>.pod.<domain>` for pods.
// Names are stored lower-case (ASCII only: DNS case folding is ASCII, RFC 4343). No I/O, no clock.

/** A port of a Service as DNS needs it (named ports get SRV records). */
export interface DnsServicePort {
  readonly name: string | null;
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
}

export interface DnsServiceInput {
  readonly namespace: string;
  readonly name: string;
  /** ClusterIPs (IPv4 dotted quad or IPv6); empty = headless. */
  readonly clusterIps: readonly string[];
  /** Ready endpoint IPs: what a headless Service resolves to (ignored when it has a ClusterIP). */
  readonly endpointIps: readonly string[];
  readonly ports: readonly DnsServicePort[];
}

export interface DnsPodInput {
  readonly namespace: string;
  readonly name: string;
  readonly ips: readonly string[];
}

/** The cluster state DNS is built from: what a Kubernetes API source or the local mesh state provides. */
export interface DnsInput {
  readonly services: readonly DnsServiceInput[];
  readonly pods: readonly DnsPodInput[];
}

export interface SrvRecord {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  /** Lower-case, no trailing dot. */
  readonly target: string;
}

/** Everything one name has; a name with all lists empty exists but has no data (an empty non-terminal). */
export interface DnsRecordSet {
  readonly a: readonly string[];
  readonly aaaa: readonly string[];
  readonly srv: readonly SrvRecord[];
}

export interface DnsRecords {
  /** Lower-case cluster domain without dots around it, e.g. `cluster.local`. */
  readonly domain: string;
  /** Lower-case fully qualified name (no trailing dot) → its records; includes every empty non-terminal. */
  readonly names: ReadonlyMap<string, DnsRecordSet>;
  /**
   * false before the first data arrived (a restarted DNS process waiting for its first push): cluster
   * names then get SERVFAIL, "try again", instead of an NXDOMAIN that would be wrong.
   */
  readonly synced: boolean;
}

export type NameLookup =
  | { readonly kind: 'outside' }
  | { readonly kind: 'apex' }
  | { readonly kind: 'nxdomain' }
  | { readonly kind: 'found'; readonly records: DnsRecordSet };

export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';
const EMPTY: DnsRecordSet = { a: [], aaaa: [], srv: [] };
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** ASCII-only lower-casing: `toLowerCase` would fold e.g. U+212A KELVIN SIGN into `k` (RFC 4343 §3). */
export function foldCase(name: string): string {
  return HAS_UPPER.test(name) ? name.replace(/[A-Z]+/g, (s) => s.toLowerCase()) : name;
}
const HAS_UPPER = /[A-Z]/;

/** `10.244.0.5` → `10-244-0-5`; IPv6 `fd00::5` → `fd00--5` (the Kubernetes pod A record form). */
export function dashedIp(ip: string): string {
  return ip.replaceAll(/[.:]/g, '-');
}

/** Builds the table. Pure; invalid IPs and names are skipped (the sources validate them already). */
export function buildDnsRecords(input: DnsInput, domain: string = DEFAULT_CLUSTER_DOMAIN): DnsRecords {
  const zone = foldCase(domain).replace(/^\.+|\.+$/g, '');
  const builder = new TableBuilder(zone);
  for (const svc of input.services) {
    const ns = foldCase(svc.namespace);
    const host = `${foldCase(svc.name)}.${ns}.svc.${zone}`;
    const ips = svc.clusterIps.length > 0 ? svc.clusterIps : svc.endpointIps;
    for (const ip of ips) builder.address(host, ip);
    // Without any address the name still exists (a headless Service with no ready endpoint): NODATA.
    builder.touch(host);
    const headless = svc.clusterIps.length === 0;
    if (headless) {
      for (const ip of svc.endpointIps) builder.address(`${dashedIp(ip)}.${host}`, ip);
    }
    for (const port of svc.ports) {
      if (port.name === null || port.name === '') continue;
      const srvName = `_${foldCase(port.name)}._${port.protocol}.${host}`;
      // A headless Service's SRV names each endpoint (kubernetes/dns specification §2.4.2); otherwise the
      // Service itself. Weight splits 100 evenly, as CoreDNS does.
      const targets = headless ? svc.endpointIps.map((ip) => `${dashedIp(ip)}.${host}`) : [host];
      const weight = targets.length === 0 ? 0 : Math.max(1, Math.floor(100 / targets.length));
      for (const target of targets) builder.srv(srvName, { priority: 0, weight, port: port.port, target });
      builder.touch(srvName);
    }
  }
  for (const pod of input.pods) {
    const ns = foldCase(pod.namespace);
    for (const ip of pod.ips) builder.address(`${dashedIp(ip)}.${ns}.pod.${zone}`, ip);
  }
  return builder.done();
}

/** The table of a server that has no data yet: every cluster name answers SERVFAIL (see `synced`). */
export function unsyncedDnsRecords(domain: string = DEFAULT_CLUSTER_DOMAIN): DnsRecords {
  return { ...buildDnsRecords({ services: [], pods: [] }, domain), synced: false };
}

/** Looks a (any-case) name up: outside the zone, the zone apex, a name with records, or NXDOMAIN. */
export function lookupName(records: DnsRecords, name: string): NameLookup {
  const n = foldCase(name).replace(/\.$/, '');
  if (n === records.domain) return { kind: 'apex' };
  if (!n.endsWith(`.${records.domain}`)) return { kind: 'outside' };
  const found = records.names.get(n);
  return found === undefined ? { kind: 'nxdomain' } : { kind: 'found', records: found };
}

interface MutableSet {
  readonly a: string[];
  readonly aaaa: string[];
  readonly srv: SrvRecord[];
}

class TableBuilder {
  readonly #zone: string;
  readonly #names = new Map<string, MutableSet>();

  constructor(zone: string) {
    this.#zone = zone;
  }

  address(name: string, ip: string): void {
    if (IPV4.test(ip)) {
      if (ip.split('.').some((p) => Number(p) > 255)) return;
      pushUnique(this.#set(name).a, ip);
    } else if (ip.includes(':') && /^[0-9a-fA-F:.]+$/.test(ip)) {
      pushUnique(this.#set(name).aaaa, ip.toLowerCase());
    }
  }

  srv(name: string, record: SrvRecord): void {
    const list = this.#set(name).srv;
    if (!list.some((r) => r.target === record.target && r.port === record.port)) list.push(record);
  }

  touch(name: string): void {
    this.#set(name);
  }

  done(): DnsRecords {
    const names = new Map<string, DnsRecordSet>();
    for (const [name, set] of this.#names) {
      names.set(name, { a: set.a.sort(compareIp), aaaa: set.aaaa.sort(), srv: set.srv });
      // Every ancestor up to the zone exists too (RFC 8020: NXDOMAIN would deny everything below it).
      for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.', dot + 1)) {
        const parent = name.slice(dot + 1);
        if (parent === this.#zone || !parent.endsWith(`.${this.#zone}`)) break;
        if (!names.has(parent) && !this.#names.has(parent)) names.set(parent, EMPTY);
      }
    }
    return { domain: this.#zone, names, synced: true };
  }

  #set(name: string): MutableSet {
    let set = this.#names.get(name);
    if (set === undefined) {
      set = { a: [], aaaa: [], srv: [] };
      this.#names.set(name, set);
    }
    return set;
  }
}

function pushUnique(list: string[], value: string): void {
  if (!list.includes(value)) list.push(value);
}

function compareIp(x: string, y: string): number {
  const a = x.split('.').map(Number);
  const b = y.split('.').map(Number);
  for (let i = 0; i < 4; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
