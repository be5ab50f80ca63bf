// MeshView: one immutable, indexed snapshot of a MeshConfig (docs/architecture.md "Configuration distribution (delta xDS)", "Policy and enrollment").
// Built whole by buildMeshView and never mutated afterwards, so a reader holding a view sees one consistent
// config even while MeshStore swaps in the next. Service endpoints are derived from Workload.services, not
// listed on Service. Conflicts (duplicate uid/key/address) resolve last-wins and are reported in `warnings`.
import { formatSpiffeId, type SpiffeId } from '../identity/spiffe-id.ts';
import type { Authorization, IpAddr, MeshConfig, PolicyKey, PortMap, Service, ServiceKey, Workload } from './types.ts';
import { policyKey, serviceKey } from './types.ts';

/** One backend of a service: the workload and its own service-port → target-port mapping. */
export interface Endpoint {
  readonly workload: Workload;
  readonly ports: PortMap;
}

export interface MeshView {
  /** Increases by one with every MeshStore.replace; 0 for the initial empty view. */
  readonly version: number;
  /** Inconsistencies found while indexing (duplicates, unknown policy references); informational. */
  readonly warnings: readonly string[];
  readonly workloads: readonly Workload[];
  readonly services: readonly Service[];
  workloadByUid(uid: string): Workload | undefined;
  workloadByAddress(network: string, ip: IpAddr): Workload | undefined;
  serviceByVip(network: string, ip: IpAddr): Service | undefined;
  serviceByKey(key: ServiceKey): Service | undefined;
  policyByKey(key: PolicyKey): Authorization | undefined;
  /** Endpoints of a service (healthy or not), in config order. */
  endpointsOf(service: Service | ServiceKey): readonly Endpoint[];
  /** Services the workload is an endpoint of (for destination-service telemetry). */
  servicesOf(workload: Workload): readonly Service[];
  /** Namespace-scoped policies of the workload's namespace, Global ones, then its selector policies. */
  policiesFor(workload: Workload): readonly Authorization[];
  workloadsOnNode(node: string): readonly Workload[];
  /** JSON-serializable form for the admin /config_dump. */
  dump(): MeshViewDump;
}

export interface WorkloadDump extends Omit<Workload, 'services'> {
  readonly identity: string;
  readonly services: Record<ServiceKey, Record<string, number>>;
}

export interface MeshViewDump {
  readonly version: number;
  readonly workloads: readonly WorkloadDump[];
  readonly services: readonly Service[];
  readonly policies: readonly Authorization[];
  readonly warnings: readonly string[];
}

export interface BuildOptions {
  readonly version?: number;
}

const EMPTY: readonly never[] = Object.freeze([]);

/** The SPIFFE identity a workload's certificate carries. */
export function workloadIdentity(workload: Workload): SpiffeId {
  return { trustDomain: workload.trustDomain, namespace: workload.namespace, serviceAccount: workload.serviceAccount };
}

/** Indexes a config into a view. Pure; the config is not copied, so callers must not mutate it afterwards. */
export function buildMeshView(config: MeshConfig, options: BuildOptions = {}): MeshView {
  return new IndexedMeshView(config, options.version ?? 0);
}

function addressKey(network: string, ip: IpAddr): string {
  return `${network}/${ip}`;
}

class IndexedMeshView implements MeshView {
  readonly version: number;
  readonly warnings: readonly string[];
  readonly workloads: readonly Workload[];
  readonly services: readonly Service[];
  readonly #workloadsByUid = new Map<string, Workload>();
  readonly #workloadsByAddress = new Map<string, Workload>();
  readonly #workloadsByNode = new Map<string, Workload[]>();
  readonly #servicesByKey = new Map<ServiceKey, Service>();
  readonly #servicesByVip = new Map<string, Service>();
  readonly #endpoints = new Map<ServiceKey, Endpoint[]>();
  readonly #policiesByKey = new Map<PolicyKey, Authorization>();
  readonly #namespacePolicies = new Map<string, Authorization[]>();
  readonly #globalPolicies: Authorization[] = [];
  // Filled lazily: inbound asks per connection, most workloads in a cluster-wide config are never asked for.
  readonly #policiesForUid = new Map<string, readonly Authorization[]>();

  constructor(config: MeshConfig, version: number) {
    const warnings: string[] = [];
    this.version = version;
    this.#indexPolicies(config.policies, warnings);
    this.#indexServices(config.services, warnings);
    this.#indexWorkloads(config.workloads, warnings);
    this.workloads = [...this.#workloadsByUid.values()];
    this.services = [...this.#servicesByKey.values()];
    for (const w of this.workloads) {
      for (const key of w.authorizationPolicies) {
        const policy = this.#policiesByKey.get(key);
        if (policy === undefined) warnings.push(`workload ${w.uid} references unknown policy ${key}; skipped`);
        else if (policy.scope !== 'WorkloadSelector') {
          warnings.push(`workload ${w.uid} references ${policy.scope} policy ${key} as a selector policy; skipped`);
        }
      }
    }
    this.warnings = warnings;
  }

  #indexPolicies(policies: readonly Authorization[], warnings: string[]): void {
    for (const p of policies) {
      const key = policyKey(p.namespace, p.name);
      if (this.#policiesByKey.has(key)) warnings.push(`duplicate policy ${key}; the last one wins`);
      this.#policiesByKey.set(key, p);
    }
    for (const p of this.#policiesByKey.values()) {
      if (p.scope === 'Global') this.#globalPolicies.push(p);
      else if (p.scope === 'Namespace') pushTo(this.#namespacePolicies, p.namespace, p);
    }
  }

  #indexServices(services: readonly Service[], warnings: string[]): void {
    for (const s of services) {
      const key = serviceKey(s.namespace, s.hostname);
      if (this.#servicesByKey.has(key)) warnings.push(`duplicate service ${key}; the last one wins`);
      this.#servicesByKey.set(key, s);
    }
    for (const [key, s] of this.#servicesByKey) {
      for (const vip of s.vips) {
        const vipKey = addressKey(vip.network, vip.address);
        const other = this.#servicesByVip.get(vipKey);
        if (other !== undefined) {
          warnings.push(`VIP ${vipKey} of ${key} is also a VIP of ${serviceKey(other.namespace, other.hostname)}`);
        }
        this.#servicesByVip.set(vipKey, s);
      }
    }
  }

  #indexWorkloads(workloads: readonly Workload[], warnings: string[]): void {
    for (const w of workloads) {
      if (this.#workloadsByUid.has(w.uid)) warnings.push(`duplicate workload ${w.uid}; the last one wins`);
      this.#workloadsByUid.set(w.uid, w);
    }
    for (const w of this.#workloadsByUid.values()) {
      for (const ip of w.addresses) {
        const key = addressKey(w.network, ip);
        const other = this.#workloadsByAddress.get(key);
        if (other !== undefined) warnings.push(`address ${key} of ${w.uid} is also an address of ${other.uid}`);
        this.#workloadsByAddress.set(key, w);
      }
      pushTo(this.#workloadsByNode, w.node, w);
      for (const [svcKey, ports] of w.services) pushTo(this.#endpoints, svcKey, { workload: w, ports });
    }
  }

  workloadByUid(uid: string): Workload | undefined {
    return this.#workloadsByUid.get(uid);
  }

  workloadByAddress(network: string, ip: IpAddr): Workload | undefined {
    return this.#workloadsByAddress.get(addressKey(network, ip));
  }

  serviceByVip(network: string, ip: IpAddr): Service | undefined {
    return this.#servicesByVip.get(addressKey(network, ip));
  }

  serviceByKey(key: ServiceKey): Service | undefined {
    return this.#servicesByKey.get(key);
  }

  policyByKey(key: PolicyKey): Authorization | undefined {
    return this.#policiesByKey.get(key);
  }

  endpointsOf(service: Service | ServiceKey): readonly Endpoint[] {
    const key = typeof service === 'string' ? service : serviceKey(service.namespace, service.hostname);
    return this.#endpoints.get(key) ?? EMPTY;
  }

  servicesOf(workload: Workload): readonly Service[] {
    const out: Service[] = [];
    for (const key of workload.services.keys()) {
      const s = this.#servicesByKey.get(key);
      if (s !== undefined) out.push(s);
    }
    return out;
  }

  policiesFor(workload: Workload): readonly Authorization[] {
    // Memoize only for this view's own object: a workload from an older view may carry other references.
    const own = this.#workloadsByUid.get(workload.uid) === workload;
    if (own) {
      const cached = this.#policiesForUid.get(workload.uid);
      if (cached !== undefined) return cached;
    }
    const selected = new Set<Authorization>([
      ...(this.#namespacePolicies.get(workload.namespace) ?? EMPTY),
      ...this.#globalPolicies,
    ]);
    for (const key of workload.authorizationPolicies) {
      // Unknown keys are a transitional state (policy not pushed yet, or just removed): skip, as ztunnel does.
      const policy = this.#policiesByKey.get(key);
      if (policy !== undefined && policy.scope === 'WorkloadSelector') selected.add(policy);
    }
    const result: readonly Authorization[] = Object.freeze([...selected]);
    if (own) this.#policiesForUid.set(workload.uid, result);
    return result;
  }

  workloadsOnNode(node: string): readonly Workload[] {
    return this.#workloadsByNode.get(node) ?? EMPTY;
  }

  dump(): MeshViewDump {
    const byKey = <T>(entries: Iterable<[string, T]>): T[] =>
      [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
    return {
      version: this.version,
      workloads: byKey(this.#workloadsByUid).map(dumpWorkload),
      services: byKey(this.#servicesByKey),
      policies: byKey(this.#policiesByKey),
      warnings: this.warnings,
    };
  }
}

function dumpWorkload(w: Workload): WorkloadDump {
  const services: Record<ServiceKey, Record<string, number>> = {};
  for (const [key, ports] of w.services) services[key] = Object.fromEntries(ports);
  return { ...w, identity: formatSpiffeId(workloadIdentity(w)), services };
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}
