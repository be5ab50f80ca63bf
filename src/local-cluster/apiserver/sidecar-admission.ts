// Sidecar injection at pod CREATE, as Istio's mutating webhook does it (docs/architecture.md "Sidecars on
// the local API"): the decision is src/mesh/sidecar-injection.ts (the same one `ferry up -f` and the
// controller use), read from the pod and its namespace's labels; an injected pod gets Istio's labels and
// status annotation, an `istio-proxy` container running `ferry ztunnel --sidecar`, and two volumes (a
// projected ServiceAccount token for the CA's audience, the trust bundle ConfigMap). What only the node
// knows (the pod's netns, its cgroup, its app containers' cgroups, a pin root) the container names as
// `$(SIDECAR_*)` variables the kubelet fills (SIDECAR_KUBELET_ENV). Pure.
import {
  decideSidecarInjection,
  type InjectionDecision,
  injectedMetadata,
  SIDECAR_CONTAINER,
} from '../../mesh/sidecar-injection.ts';
import { isObj, metaOf, type Obj, own } from './json.ts';

export interface SidecarInjectionValues {
  /** The container image (the kubelet runs the local Ferry build for `ferry/ferry`). */
  readonly image: string;
  readonly trustDomain: string;
  /** host:port the pods dial for xDS and the CA (the pod gateway relay). */
  readonly xdsAddress: string;
  readonly caAddress: string;
  /** The audience the CA's TokenReview accepts. */
  readonly caAudience: string;
  /** The ConfigMap holding `root-cert.pem`. */
  readonly rootCertConfigMap: string;
}

/**
 * The variables the kubelet sets in an `istio-proxy` container's environment (the container's args name
 * them as `$(VAR)`): paths on the node only the kubelet knows when it starts the pod.
 */
export const SIDECAR_KUBELET_ENV = {
  netns: 'SIDECAR_NETNS',
  cgroupRoot: 'SIDECAR_CGROUP_ROOT',
  /** The cgroup dir of the pod's app containers (every container but istio-proxy; see the kubelet). */
  appCgroups: 'SIDECAR_APP_CGROUPS',
  pinRoot: 'SIDECAR_PIN_ROOT',
} as const;

export const SIDECAR_TOKEN_VOLUME = 'ferry-sidecar-ca-token';
export const SIDECAR_ROOT_VOLUME = 'ferry-sidecar-ca-root';
const TOKEN_DIR = '/var/run/secrets/ferry/sidecar-ca-token';
const ROOT_DIR = '/var/run/secrets/ferry/sidecar-ca-root';
/** The chart's `ca.tokenExpirationSeconds`: the kubelet renews the file at 80% of it. */
const TOKEN_EXPIRATION_S = 43_200;

const VALUE_KEYS = ['image', 'trustDomain', 'xdsAddress', 'caAddress', 'caAudience', 'rootCertConfigMap'] as const;

/** The values from their JSON file (`ferry apiserver --sidecar-injection`), or what is wrong with it. */
export function parseSidecarInjectionValues(text: string): SidecarInjectionValues | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    return `not JSON: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (!isObj(v)) return 'expected a JSON object';
  const bad = VALUE_KEYS.filter((k) => typeof own(v, k) !== 'string' || own(v, k) === '');
  if (bad.length > 0) return `missing or empty string field(s): ${bad.join(', ')}`;
  const s = (k: (typeof VALUE_KEYS)[number]) => String(own(v, k));
  return {
    image: s('image'),
    trustDomain: s('trustDomain'),
    xdsAddress: s('xdsAddress'),
    caAddress: s('caAddress'),
    caAudience: s('caAudience'),
    rootCertConfigMap: s('rootCertConfigMap'),
  };
}

export interface AdmissionResult {
  readonly pod: Obj;
  readonly decision: InjectionDecision;
}

/** The pod as it is stored: injected when the decision says so, unchanged otherwise. */
export function admitPodForSidecar(
  pod: Obj,
  namespace: string,
  namespaceLabels: Readonly<Record<string, string>>,
  values: SidecarInjectionValues,
): AdmissionResult {
  const meta = metaOf(pod);
  const spec = isObj(own(pod, 'spec')) ? (own(pod, 'spec') as Obj) : {};
  const containers = objects(own(spec, 'containers'));
  const decision = decideSidecarInjection({
    namespace,
    namespaceLabels: stringMap(namespaceLabels),
    podLabels: stringMap(own(meta, 'labels')),
    podAnnotations: stringMap(own(meta, 'annotations')),
    containerNames: containers.map((c) => String(own(c, 'name') ?? '')),
  });
  if (!decision.inject) return { pod, decision };
  const added = injectedMetadata(stringMap(own(meta, 'labels')), stringMap(own(meta, 'annotations')));
  const volumes = objects(own(spec, 'volumes')).filter((v) => {
    const name = own(v, 'name');
    return name !== SIDECAR_TOKEN_VOLUME && name !== SIDECAR_ROOT_VOLUME;
  });
  const injected: Obj = {
    ...pod,
    metadata: {
      ...meta,
      labels: Object.fromEntries(added.labels),
      annotations: Object.fromEntries(added.annotations),
    },
    spec: {
      ...spec,
      containers: [...containers, sidecarContainer(values)],
      volumes: [...volumes, ...sidecarVolumes(values)],
    },
  };
  return { pod: injected, decision };
}

/** `ferry ztunnel --sidecar` for the pod it runs in: identity from fieldRefs, node paths from the kubelet. */
export function sidecarContainer(v: SidecarInjectionValues): Obj {
  const env = SIDECAR_KUBELET_ENV;
  return {
    name: SIDECAR_CONTAINER,
    image: v.image,
    args: [
      'ztunnel',
      '--sidecar',
      'Kubernetes//Pod/$(POD_NAMESPACE)/$(POD_NAME)',
      '--node',
      '$(NODE_NAME)',
      '--trust-domain',
      v.trustDomain,
      '--xds-address',
      v.xdsAddress,
      '--xds-root',
      `${ROOT_DIR}/root-cert.pem`,
      '--ca-address',
      v.caAddress,
      '--ca-root',
      `${ROOT_DIR}/root-cert.pem`,
      '--ca-token-file',
      `${TOKEN_DIR}/token`,
      '--netns',
      `$(${env.netns})`,
      '--cgroup-root',
      `$(${env.cgroupRoot})`,
      '--app-cgroup',
      `$(${env.appCgroups})`,
      '--pin-root',
      `$(${env.pinRoot})`,
      '--admin',
      '127.0.0.1:15000',
      '--metrics',
      '0.0.0.0:15020',
      '--readiness',
      '0.0.0.0:15021',
    ],
    env: [
      fieldRefEnv('POD_NAME', 'metadata.name'),
      fieldRefEnv('POD_NAMESPACE', 'metadata.namespace'),
      fieldRefEnv('NODE_NAME', 'spec.nodeName'),
    ],
    ports: [
      { name: 'tunnel', containerPort: 15008, protocol: 'TCP' },
      { name: 'status-port', containerPort: 15021, protocol: 'TCP' },
    ],
    readinessProbe: { httpGet: { path: '/healthz/ready', port: 15021 }, periodSeconds: 2 },
    volumeMounts: [
      { name: SIDECAR_TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true },
      { name: SIDECAR_ROOT_VOLUME, mountPath: ROOT_DIR, readOnly: true },
    ],
  };
}

function sidecarVolumes(v: SidecarInjectionValues): Obj[] {
  return [
    {
      name: SIDECAR_TOKEN_VOLUME,
      projected: {
        sources: [
          { serviceAccountToken: { audience: v.caAudience, expirationSeconds: TOKEN_EXPIRATION_S, path: 'token' } },
        ],
      },
    },
    { name: SIDECAR_ROOT_VOLUME, configMap: { name: v.rootCertConfigMap } },
  ];
}

function fieldRefEnv(name: string, fieldPath: string): Obj {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

function objects(v: unknown): Obj[] {
  return Array.isArray(v) ? v.filter(isObj) : [];
}

/** String-valued entries only: a malformed label map is the validator's to reject, not a reason to inject. */
function stringMap(v: unknown): Map<string, string> {
  if (!isObj(v)) return new Map();
  return new Map(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
}
