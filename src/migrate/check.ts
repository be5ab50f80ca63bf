// Findings about configuration the converters do not turn into objects (docs/migration.md "What is not
// converted"): EnvoyFilters and other Envoy/sidecar-only kinds, Sidecar resources, PeerAuthentication
// settings, exportTo on Services, and namespaces still in sidecar mode. Pure.
import { type Finding, type Inventory, type IstioObject, isObj, objectRefOf } from './types.ts';

const EXPORT_TO_ANNOTATION = 'networking.istio.io/exportTo';

export function otherFindings(inv: Inventory): Finding[] {
  const out: Finding[] = [];
  for (const o of inv.otherIstio) out.push(...istioKindFindings(o));
  for (const pa of inv.peerAuthentications) {
    const ns = pa.metadata.namespace;
    const object = objectRefOf('PeerAuthentication', ns, pa.metadata.name);
    const add = (severity: Finding['severity'], field: string, message: string) =>
      out.push({ severity, category: 'peer-authentication', namespace: ns, object, field, message });
    if (pa.spec.mode === 'DISABLE')
      add('warning', 'spec.mtls.mode', 'DISABLE is not supported in ambient: ztunnel treats it as PERMISSIVE');
    else if (pa.spec.mode !== 'UNSET') add('info', 'spec.mtls.mode', `${pa.spec.mode}: enforced by ztunnel as written`);
    for (const [port, mode] of pa.spec.portLevelMtls) {
      add(
        'warning',
        `spec.portLevelMtls[${port}]`,
        mode === 'DISABLE'
          ? `port ${port}: DISABLE acts as PERMISSIVE in ambient (ztunnel still accepts HBONE there)`
          : `port ${port}: ${mode} is enforced by ztunnel on the pod's target port ${port}; check that ${port} is a container port, not a Service port`,
      );
    }
  }
  for (const svc of inv.services) {
    const exportTo = svc.metadata.annotations.get(EXPORT_TO_ANNOTATION);
    if (exportTo !== undefined) {
      out.push({
        severity: 'warning',
        category: 'export-to',
        namespace: svc.metadata.namespace,
        object: objectRefOf('Service', svc.metadata.namespace, svc.metadata.name),
        field: `metadata.annotations["${EXPORT_TO_ANNOTATION}"]`,
        message: `exportTo ${exportTo} has no ambient equivalent: the Service is visible to the whole mesh`,
      });
    }
  }
  for (const ns of inv.namespaces) {
    if (ns.metadata.labels.get('istio-injection') === 'enabled') {
      out.push({
        severity: 'info',
        category: 'sidecar',
        namespace: ns.metadata.name,
        object: objectRefOf('Namespace', '', ns.metadata.name),
        field: 'metadata.labels["istio-injection"]',
        message:
          'in sidecar mode: after applying the converted config, move the workloads to ambient (`ferry migrate namespace` is not built yet; see docs/migration.md)',
      });
    }
  }
  return out;
}

function istioKindFindings(o: IstioObject): Finding[] {
  const object = objectRefOf(o.kind, o.namespace, o.name);
  const one = (
    severity: Finding['severity'],
    category: Finding['category'],
    field: string,
    message: string,
  ): Finding[] => [{ severity, category, namespace: o.namespace, object, field, message }];
  switch (o.kind) {
    case 'EnvoyFilter':
      return one(
        'blocker',
        'envoy-filter',
        'spec',
        'EnvoyFilter patches sidecar Envoy configuration; ambient runs no sidecar Envoy (ztunnel, Ferry waypoints): re-express it (HTTPRoute filters, policies) or drop it, then delete it',
      );
    case 'WasmPlugin':
      return one('blocker', 'unsupported-kind', 'spec', 'Wasm extensions are not supported by Ferry waypoints');
    case 'RequestAuthentication':
      return one(
        'blocker',
        'unsupported-kind',
        'spec',
        'JWT validation (RequestAuthentication) is not supported by Ferry waypoints',
      );
    case 'Sidecar': {
      const outbound = isObj(o.spec.outboundTrafficPolicy) ? o.spec.outboundTrafficPolicy.mode : undefined;
      if (outbound === 'REGISTRY_ONLY') {
        return one(
          'blocker',
          'sidecar',
          'spec.outboundTrafficPolicy.mode',
          'REGISTRY_ONLY egress lockdown has no ambient equivalent in Ferry: without a replacement (an egress policy), outbound traffic becomes unrestricted',
        );
      }
      const parts = ['egress', 'ingress', 'workloadSelector'].filter((k) => o.spec[k] !== undefined);
      return one(
        'warning',
        'sidecar',
        parts.length > 0 ? `spec.${parts[0]}` : 'spec',
        `Sidecar resources have no effect in ambient (${parts.length > 0 ? parts.join(', ') : 'no settings'} ignored): delete it after the migration`,
      );
    }
    case 'Telemetry':
      return one(
        'warning',
        'unsupported-kind',
        'spec',
        'Telemetry customization is not converted (Ferry emits Istio standard metrics and access logs)',
      );
    case 'ServiceEntry':
    case 'WorkloadEntry':
      return one(
        'warning',
        'unsupported-kind',
        'spec',
        `${o.kind} is not converted (Ferry does not model mesh-external services yet)`,
      );
    case 'Gateway':
      return one(
        'warning',
        'unsupported-kind',
        'spec',
        'ingress/egress Gateways are out of scope: they keep working, their VirtualService routing is not converted',
      );
    default:
      return one('warning', 'unsupported-kind', 'spec', `${o.kind} is not converted`);
  }
}
