// The mesh state (what the controller publishes over xDS: workloads and services) as cluster DNS input.
// Pure. A Service's name and namespace are its own; headless Services (no VIP) resolve to the addresses of
// their healthy endpoint workloads, as the Kubernetes DNS specification asks for ready endpoints only.
// Every mesh Service port is TCP (ztunnel carries TCP only), so SRV records are `_<name>._tcp`.
import type { MeshConfig } from '../../mesh/types.ts';
import { serviceKey } from '../../mesh/types.ts';
import type { DnsInput, DnsServiceInput } from './records.ts';

export function dnsInputFromMesh(config: Pick<MeshConfig, 'workloads' | 'services'>): DnsInput {
  const endpoints = new Map<string, string[]>();
  for (const w of config.workloads) {
    if (w.status !== 'Healthy') continue;
    for (const key of w.services.keys()) {
      const list = endpoints.get(key) ?? [];
      list.push(...w.addresses);
      endpoints.set(key, list);
    }
  }
  const services: DnsServiceInput[] = config.services.map((s) => ({
    namespace: s.namespace,
    name: s.name,
    clusterIps: s.vips.map((v) => v.address),
    endpointIps: endpoints.get(serviceKey(s.namespace, s.hostname)) ?? [],
    ports: s.ports.map((p) => ({ name: p.name ?? null, port: p.servicePort, protocol: 'tcp' as const })),
  }));
  // Every workload of the local cluster is a pod (Deployments are expanded into pods before translation).
  const pods = config.workloads.map((w) => ({ namespace: w.namespace, name: w.name, ips: w.addresses }));
  return { services, pods };
}
