// Kubernetes Service → mesh Service (docs/architecture.md "Configuration distribution (delta xDS)"): hostname `<name>.<ns>.svc.<domain>`,
// the ClusterIP the orchestrator allocated as VIP (none when headless), TCP ports with numeric target
// ports (0 for a named target port: resolved per endpoint in Workload.services), and the waypoint from
// `istio.io/use-waypoint`. Endpoints are not listed here: workloads name the services they back. Pure.
import { canonicalIp } from '../../mesh/ip-addr.ts';
import type { AppProtocol, Service, ServicePort } from '../../mesh/types.ts';
import type { Labels, ServiceObject } from '../sources/types.ts';
import type { Diagnostics, ServiceVips, TranslateSettings } from './types.ts';
import type { WaypointIndex } from './waypoints.ts';

export function serviceHostname(name: string, namespace: string, settings: TranslateSettings): string {
  return `${name}.${namespace}.svc.${settings.clusterDomain}`;
}

export function translateService(
  svc: ServiceObject,
  vips: ServiceVips,
  nsLabels: Labels,
  waypoints: WaypointIndex,
  settings: TranslateSettings,
  diags: Diagnostics,
): Service | null {
  const { metadata, spec } = svc;
  if (spec.type === 'ExternalName') {
    diags.warn(
      svc,
      'FERRY_TRANSLATE_UNSUPPORTED',
      'spec.type',
      'ExternalName services are not part of the mesh; skipped',
    );
    return null;
  }
  const vip = serviceVip(svc, vips, diags);
  const ports: ServicePort[] = [];
  spec.ports.forEach((p, i) => {
    if (p.protocol !== 'TCP') {
      diags.warn(
        svc,
        'FERRY_TRANSLATE_UNSUPPORTED',
        `spec.ports[${i}].protocol`,
        `${p.protocol} is not proxied by the mesh (TCP only); port ${p.port} left out`,
      );
      return;
    }
    const appProtocol = normalizeAppProtocol(p.appProtocol ?? null);
    ports.push({
      servicePort: p.port,
      targetPort: typeof p.targetPort === 'number' ? p.targetPort : 0,
      ...(appProtocol === null ? {} : { appProtocol }),
      ...(p.name === null ? {} : { name: p.name }),
    });
  });
  return {
    name: metadata.name,
    namespace: metadata.namespace,
    hostname: serviceHostname(metadata.name, metadata.namespace, settings),
    vips: vip === null ? [] : [{ network: '', address: vip }],
    ports,
    subjectAltNames: [],
    waypoint: waypoints.forService(svc, nsLabels),
  };
}

function serviceVip(svc: ServiceObject, vips: ServiceVips, diags: Diagnostics): string | null {
  if (svc.spec.clusterIP === 'None') return null; // headless: clients reach pod IPs directly
  const allocated = vips.get(`${svc.metadata.namespace}/${svc.metadata.name}`);
  if (allocated !== undefined) {
    const ip = canonicalIp(allocated);
    if (ip === null)
      diags.error(
        svc,
        'FERRY_TRANSLATE_UNRESOLVED',
        'spec.clusterIP',
        `allocated VIP ${JSON.stringify(allocated)} is not an IP address`,
      );
    return ip;
  }
  if (svc.spec.clusterIP !== null) return svc.spec.clusterIP; // already canonical (k8s-parse)
  diags.warn(svc, 'FERRY_TRANSLATE_UNRESOLVED', 'spec.clusterIP', 'no ClusterIP allocated; the service has no VIP');
  return null;
}

/** Kubernetes appProtocol → what a waypoint speaks; unknown values (and none) leave it to sniffing. */
export function normalizeAppProtocol(value: string | null): AppProtocol | null {
  switch (value?.toLowerCase()) {
    case 'http':
    case 'http1':
    case 'http/1.1':
      return 'http';
    case 'http2':
    case 'h2c':
    case 'kubernetes.io/h2c':
      return 'http2';
    case 'grpc':
      return 'grpc';
    case 'tcp':
      return 'tcp';
    default:
      return null;
  }
}
