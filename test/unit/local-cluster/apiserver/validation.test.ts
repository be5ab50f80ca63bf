// Validation before storing: what the real API server refuses for the fields Ferry reads, with the field named.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crdManifests } from '../../../../src/local-cluster/apiserver/crds.ts';
import { ResourceRegistry } from '../../../../src/local-cluster/apiserver/resources.ts';
import { validateObject } from '../../../../src/local-cluster/apiserver/validation.ts';

const registry = new ResourceRegistry(crdManifests());
const type = (group: string, version: string, resource: string) => {
  const t = registry.find(group, version, resource);
  assert.ok(t, `${group}/${version}/${resource} is served`);
  return t;
};
const pods = type('', 'v1', 'pods');
const services = type('', 'v1', 'services');
const namespaces = type('', 'v1', 'namespaces');
const deployments = type('apps', 'v1', 'deployments');
const slices = type('discovery.k8s.io', 'v1', 'endpointslices');
const policies = type('security.istio.io', 'v1', 'authorizationpolicies');
const crds = type('apiextensions.k8s.io', 'v1', 'customresourcedefinitions');

const pod = (extra: object = {}, meta: object = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web', namespace: 'demo', ...meta },
  spec: { containers: [{ name: 'app', image: 'x' }] },
  ...extra,
});

type Case = [string, ReturnType<typeof type>, object, string[]];
const cases: Case[] = [
  ['valid pod', pods, pod(), []],
  ['pod name not a DNS subdomain', pods, pod({}, { name: 'Web_1' }), ['metadata.name']],
  ['bad label key', pods, pod({}, { labels: { 'bad key': 'x' } }), ['metadata.labels["bad key"]']],
  ['bad label value', pods, pod({}, { labels: { app: 'has space' } }), ['metadata.labels["app"]']],
  ['annotation values may be anything', pods, pod({}, { annotations: { note: 'has space!' } }), []],
  ['pod without containers', pods, pod({ spec: { containers: [] } }), ['spec.containers']],
  [
    'container port out of range',
    pods,
    pod({ spec: { containers: [{ name: 'a', ports: [{ containerPort: 0 }] }] } }),
    ['spec.containers[0].ports[0].containerPort'],
  ],
  [
    'namespace name must be a DNS label',
    namespaces,
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a.b' } },
    ['metadata.name'],
  ],
  [
    'service name must start with a letter',
    services,
    { apiVersion: 'v1', kind: 'Service', metadata: { name: '1svc', namespace: 'd' }, spec: { ports: [{ port: 80 }] } },
    ['metadata.name'],
  ],
  [
    'service port 70000',
    services,
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 's', namespace: 'd' }, spec: { ports: [{ port: 70000 }] } },
    ['spec.ports[0].port'],
  ],
  [
    'duplicate service ports',
    services,
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 's', namespace: 'd' },
      spec: {
        ports: [
          { port: 80, name: 'a' },
          { port: 80, name: 'b' },
        ],
      },
    },
    ['spec.ports[1]'],
  ],
  [
    'deployment selector not matching the template',
    deployments,
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'd', namespace: 'x' },
      spec: {
        selector: { matchLabels: { app: 'a' } },
        template: { metadata: { labels: { app: 'b' } }, spec: { containers: [{ name: 'c' }] } },
      },
    },
    ['spec.selector'],
  ],
  [
    'endpointslice without addressType',
    slices,
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'e', namespace: 'x' },
      endpoints: [],
    },
    ['addressType'],
  ],
  [
    'authorization policy with an unknown action',
    policies,
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'p', namespace: 'x' },
      spec: { action: 'MAYBE' },
    },
    ['spec.action'],
  ],
  [
    'authorization policy with a typo field',
    policies,
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'p', namespace: 'x' },
      spec: { rulez: [] },
    },
    ['spec.rulez'],
  ],
  [
    'CRD name must be plural.group',
    crds,
    {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'wrong' },
      spec: {
        group: 'example.com',
        scope: 'Namespaced',
        names: { plural: 'widgets', kind: 'Widget' },
        versions: [{ name: 'v1', served: true, storage: true }],
      },
    },
    ['metadata.name'],
  ],
];

for (const [name, t, obj, fields] of cases) {
  test(`validation: ${name}`, () => {
    const causes = validateObject(t, obj as Record<string, unknown>);
    assert.deepEqual(
      causes.map((c) => c.field),
      fields,
      JSON.stringify(causes),
    );
    for (const c of causes) assert.match(c.reason, /^FieldValue/);
  });
}
