// The waypoint template `ferry up --api` gives its controller (`--waypoint-template`): the same shape as the
// chart's (charts/ferry/templates/waypoint-template.yaml: ServiceAccount, Deployment, Service per Gateway
// of class ferry-waypoint, owned by the Gateway, placeholders filled by src/controller/waypoint-template.ts),
// with the local cluster's values: the image `ferry/ferry` (the kubelet runs this Ferry for it), the
// controller at the pods' gateway address (the relay of pod-gateway-relay.ts) instead of a Service name,
// and the mounts a real node gives a waypoint pod: a projected ServiceAccount token for the CA's audience
// and the trust bundle ConfigMap. Pure.
import { stringify } from 'yaml';
import { ROOT_CERT_CONFIGMAP, WAYPOINT_CA_AUDIENCE } from './system-processes.ts';

export interface ApiWaypointTemplateValues {
  readonly trustDomain: string;
  /** host:port the waypoint pods dial for xDS and the CA (the gateway address and the relay's ports). */
  readonly xdsAddress: string;
  readonly caAddress: string;
}

const TOKEN_DIR = '/var/run/secrets/ferry/ca-token';
const ROOT_DIR = '/var/run/secrets/ferry/ca-root';
/** The chart's `ca.tokenExpirationSeconds`: the kubelet renews the file at 80% of it. */
const TOKEN_EXPIRATION_S = 43_200;

export function apiWaypointTemplate(v: ApiWaypointTemplateValues): string {
  const ownedByGateway = [
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      name: '__GATEWAY_NAME__',
      uid: '__GATEWAY_UID__',
      controller: true,
    },
  ];
  const meta = (labels: Record<string, string>) => ({
    name: '__GATEWAY_NAME__',
    namespace: '__GATEWAY_NAMESPACE__',
    labels: { 'gateway.networking.k8s.io/gateway-name': '__GATEWAY_NAME__', ...labels },
    ownerReferences: ownedByGateway,
  });
  const podLabels = {
    'gateway.networking.k8s.io/gateway-name': '__GATEWAY_NAME__',
    'gateway.networking.k8s.io/gateway-class-name': 'ferry-waypoint',
    'app.kubernetes.io/name': 'ferry-waypoint',
    // A waypoint terminates HBONE itself: never captured, never given a sidecar.
    'istio.io/dataplane-mode': 'none',
    'sidecar.istio.io/inject': 'false',
  };
  const serviceAccount = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta({}) };
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta({ 'gateway.networking.k8s.io/gateway-class-name': 'ferry-waypoint' }),
    spec: {
      replicas: 1,
      selector: { matchLabels: { 'gateway.networking.k8s.io/gateway-name': '__GATEWAY_NAME__' } },
      template: {
        metadata: { labels: podLabels },
        spec: {
          serviceAccountName: '__GATEWAY_NAME__',
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 10,
          containers: [waypointContainer(v)],
          volumes: [
            {
              name: 'ca-token',
              projected: {
                sources: [
                  {
                    serviceAccountToken: {
                      audience: WAYPOINT_CA_AUDIENCE,
                      expirationSeconds: TOKEN_EXPIRATION_S,
                      path: 'token',
                    },
                  },
                ],
              },
            },
            { name: 'ca-root', configMap: { name: ROOT_CERT_CONFIGMAP } },
          ],
        },
      },
    },
  };
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta({ 'gateway.networking.k8s.io/gateway-class-name': 'ferry-waypoint' }),
    spec: {
      type: 'ClusterIP',
      selector: { 'gateway.networking.k8s.io/gateway-name': '__GATEWAY_NAME__' },
      ports: [
        { name: 'mesh', port: 15008, targetPort: 15008, protocol: 'TCP' },
        { name: 'status-port', port: 15021, targetPort: 15021, protocol: 'TCP' },
      ],
    },
  };
  return [serviceAccount, deployment, service].map((o) => stringify(o)).join('---\n');
}

function waypointContainer(v: ApiWaypointTemplateValues) {
  return {
    name: 'waypoint',
    image: 'ferry/ferry:local',
    args: [
      'waypoint',
      '--waypoint=__GATEWAY_NAMESPACE__/__GATEWAY_NAME__',
      '--node=$(NODE_NAME)',
      `--trust-domain=${v.trustDomain}`,
      '--cluster-domain=cluster.local',
      `--xds-address=${v.xdsAddress}`,
      `--xds-root=${ROOT_DIR}/root-cert.pem`,
      `--ca-address=${v.caAddress}`,
      `--ca-root=${ROOT_DIR}/root-cert.pem`,
      `--ca-token-file=${TOKEN_DIR}/token`,
      '--listen=0.0.0.0:15008',
      '--admin=127.0.0.1:15000',
      '--metrics=0.0.0.0:15020',
      '--readiness=0.0.0.0:15021',
      '--drain-deadline-ms=5000',
    ],
    env: [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
    ports: [
      { name: 'mesh', containerPort: 15008, protocol: 'TCP' },
      { name: 'http-monitoring', containerPort: 15020, protocol: 'TCP' },
      { name: 'status-port', containerPort: 15021, protocol: 'TCP' },
    ],
    readinessProbe: { httpGet: { path: '/healthz/ready', port: 15021 }, periodSeconds: 2 },
    volumeMounts: [
      { name: 'ca-token', mountPath: TOKEN_DIR, readOnly: true },
      { name: 'ca-root', mountPath: ROOT_DIR, readOnly: true },
    ],
  };
}
