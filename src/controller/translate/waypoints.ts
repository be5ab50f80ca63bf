// Waypoints (docs/architecture.md "Policy and enrollment", docs/architecture.md "HBONE (wire contract)"): Gateways of class ferry-waypoint with the
// listener {name: mesh, port: 15008, protocol: HBONE} become WaypointSpecs for the orchestrator, and the
// `istio.io/use-waypoint` label (object label beats namespace label; `none` opts out) assigns them to
// Services (waypoint-for service|all, the default being service) and workloads (waypoint-for workload|all).
// A waypoint is addressed by its own Service's hostname: `<ns>/<gw>.<ns>.svc.<clusterDomain>`. Pure.
import type { GatewayAddress } from '../../mesh/types.ts';
import type { GatewayObject, K8sObject, Labels } from '../sources/types.ts';
import { waypointPodName } from './pods.ts';
import type { Diagnostics, TranslateSettings, WaypointFor, WaypointSpec } from './types.ts';

export const WAYPOINT_GATEWAY_CLASS = 'ferry-waypoint';
export const USE_WAYPOINT_LABEL = 'istio.io/use-waypoint';
export const USE_WAYPOINT_NAMESPACE_LABEL = 'istio.io/use-waypoint-namespace';
export const WAYPOINT_FOR_LABEL = 'istio.io/waypoint-for';
export const HBONE_PORT = 15008;
const WAYPOINT_FOR: readonly WaypointFor[] = ['service', 'workload', 'all', 'none'];

type Traffic = 'service' | 'workload';

export class WaypointIndex {
  readonly #settings: TranslateSettings;
  readonly #diags: Diagnostics;
  /** `ns/name` → the Gateway, valid waypoint or not. */
  readonly #gateways = new Map<string, GatewayObject>();
  readonly #valid = new Map<string, WaypointSpec>();
  readonly #reported = new Set<string>();

  constructor(gateways: readonly GatewayObject[], settings: TranslateSettings, diags: Diagnostics) {
    this.#settings = settings;
    this.#diags = diags;
    for (const gw of gateways) {
      const key = `${gw.metadata.namespace}/${gw.metadata.name}`;
      this.#gateways.set(key, gw);
      if (gw.spec.gatewayClassName !== WAYPOINT_GATEWAY_CLASS) continue; // someone else's Gateway
      const spec = this.#validate(gw);
      if (spec !== null) this.#valid.set(key, spec);
    }
  }

  #validate(gw: GatewayObject): WaypointSpec | null {
    const i = gw.spec.listeners.findIndex((l) => l.name === 'mesh');
    const mesh = gw.spec.listeners[i];
    if (mesh === undefined || mesh.port !== HBONE_PORT || mesh.protocol !== 'HBONE') {
      const field = mesh === undefined ? 'spec.listeners' : `spec.listeners[${i}]`;
      this.#diags.error(
        gw,
        'FERRY_MANIFEST_INVALID_FIELD',
        field,
        `a ${WAYPOINT_GATEWAY_CLASS} Gateway needs the listener {name: mesh, port: ${HBONE_PORT}, protocol: HBONE}`,
      );
      return null;
    }
    for (let j = 0; j < gw.spec.listeners.length; j++) {
      if (j === i) continue;
      this.#diags.warn(
        gw,
        'FERRY_TRANSLATE_UNSUPPORTED',
        `spec.listeners[${j}]`,
        'a waypoint serves only its mesh listener; this one is ignored',
      );
    }
    const raw = gw.metadata.labels.get(WAYPOINT_FOR_LABEL) ?? 'service';
    const waypointFor = WAYPOINT_FOR.find((f) => f === raw);
    if (waypointFor === undefined) {
      this.#diags.error(
        gw,
        'FERRY_MANIFEST_INVALID_FIELD',
        `metadata.labels["${WAYPOINT_FOR_LABEL}"]`,
        `must be one of ${WAYPOINT_FOR.join(', ')}, got ${JSON.stringify(raw)}`,
      );
      return null;
    }
    return {
      name: gw.metadata.name,
      namespace: gw.metadata.namespace,
      for: waypointFor,
      podKey: `${gw.metadata.namespace}/${waypointPodName(gw.metadata.name)}`,
    };
  }

  /** Valid waypoints, sorted by namespace/name. */
  specs(): WaypointSpec[] {
    return [...this.#valid.values()];
  }

  /** The waypoint of a Service, or null. */
  forService(svc: K8sObject, nsLabels: Labels): GatewayAddress | null {
    return this.#resolve(svc, svc.metadata.labels, nsLabels, 'service');
  }

  /** The waypoint of a pod (reported against `source`: the Pod or its Deployment), or null. */
  forWorkload(source: K8sObject, namespace: string, podLabels: Labels, nsLabels: Labels): GatewayAddress | null {
    return this.#resolve(source, podLabels, nsLabels, 'workload', namespace);
  }

  #resolve(
    obj: K8sObject,
    own: Labels,
    nsLabels: Labels,
    traffic: Traffic,
    namespace = obj.metadata.namespace,
  ): GatewayAddress | null {
    const fromObject = own.has(USE_WAYPOINT_LABEL);
    const labels = fromObject ? own : nsLabels;
    const name = labels.get(USE_WAYPOINT_LABEL);
    if (name === undefined || name === 'none') return null;
    const wns = labels.get(USE_WAYPOINT_NAMESPACE_LABEL) ?? namespace;
    const key = `${wns}/${name}`;
    const field = fromObject ? `metadata.labels["${USE_WAYPOINT_LABEL}"]` : '';
    const via = fromObject ? '' : ` (from the label on Namespace ${namespace})`;
    const address: GatewayAddress = {
      destination: { kind: 'hostname', namespace: wns, hostname: `${name}.${wns}.svc.${this.#settings.clusterDomain}` },
      hboneMtlsPort: HBONE_PORT,
    };
    const spec = this.#valid.get(key);
    if (spec === undefined) {
      const gw = this.#gateways.get(key);
      const problem =
        gw === undefined
          ? `waypoint Gateway ${key} does not exist`
          : gw.spec.gatewayClassName !== WAYPOINT_GATEWAY_CLASS
            ? `Gateway ${key} is of class ${gw.spec.gatewayClassName}, not ${WAYPOINT_GATEWAY_CLASS}`
            : `Gateway ${key} is not a valid waypoint`;
      // A Service keeps the address (traffic fails closed at the missing waypoint rather than bypassing it);
      // a workload cannot, since nothing says the Gateway will take workload traffic.
      if (traffic === 'service' || fromObject) this.#report(obj, field, `${problem}${via}`);
      return traffic === 'service' ? address : null;
    }
    const takes = spec.for === 'all' || spec.for === traffic;
    if (!takes) {
      // A namespace label naming a service waypoint is the normal case for pods: no diagnostic then.
      if (fromObject)
        this.#report(obj, field, `waypoint ${key} is for ${spec.for} traffic, not ${traffic} traffic; not used`);
      return null;
    }
    return address;
  }

  #report(obj: K8sObject, field: string, message: string): void {
    const id = `${obj.kind}/${obj.metadata.namespace}/${obj.metadata.name}|${message}`;
    if (this.#reported.has(id)) return; // one per Deployment, not one per replica
    this.#reported.add(id);
    this.#diags.warn(obj, 'FERRY_TRANSLATE_UNRESOLVED', field, message);
  }
}
