// The sidecar injection decision (Istio's injector rules, src/mesh/sidecar-injection.ts): one table, and
// what the translation makes of it (istio-proxy container, status annotation, HBONE, never enrolled).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decideSidecarInjection,
  type InjectionReason,
  SIDECAR_CONTAINER,
  SIDECAR_STATUS_ANNOTATION,
} from '../../../src/mesh/sidecar-injection.ts';
import { ns, translateYaml } from '../../helpers/controller-fixtures.ts';

type Case = {
  name: string;
  ns?: Record<string, string>;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  namespace?: string;
  containers?: string[];
  inject: boolean;
  reason: InjectionReason;
};

const cases: Case[] = [
  { name: 'nothing set', inject: false, reason: 'not-selected' },
  { name: 'namespace enabled', ns: { 'istio-injection': 'enabled' }, inject: true, reason: 'namespace-enabled' },
  {
    name: 'namespace enabled, pod label false',
    ns: { 'istio-injection': 'enabled' },
    labels: { 'sidecar.istio.io/inject': 'false' },
    inject: false,
    reason: 'pod-opt-out',
  },
  {
    name: 'namespace enabled, pod annotation false',
    ns: { 'istio-injection': 'enabled' },
    annotations: { 'sidecar.istio.io/inject': 'false' },
    inject: false,
    reason: 'pod-opt-out',
  },
  { name: 'pod label true', labels: { 'sidecar.istio.io/inject': 'true' }, inject: true, reason: 'pod-opt-in' },
  {
    name: 'pod annotation true',
    annotations: { 'sidecar.istio.io/inject': 'true' },
    inject: true,
    reason: 'pod-opt-in',
  },
  {
    name: 'label wins over annotation',
    labels: { 'sidecar.istio.io/inject': 'false' },
    annotations: { 'sidecar.istio.io/inject': 'true' },
    inject: false,
    reason: 'pod-opt-out',
  },
  {
    name: 'namespace disabled beats the pod',
    ns: { 'istio-injection': 'disabled' },
    labels: { 'sidecar.istio.io/inject': 'true' },
    inject: false,
    reason: 'namespace-disabled',
  },
  {
    name: 'ambient namespace plays no part',
    ns: { 'istio.io/dataplane-mode': 'ambient' },
    labels: { 'sidecar.istio.io/inject': 'true' },
    inject: true,
    reason: 'pod-opt-in',
  },
  {
    name: 'ambient pod in an injected namespace still gets a sidecar',
    ns: { 'istio-injection': 'enabled' },
    labels: { 'istio.io/dataplane-mode': 'ambient' },
    inject: true,
    reason: 'namespace-enabled',
  },
  {
    name: 'kube-system never',
    namespace: 'kube-system',
    labels: { 'sidecar.istio.io/inject': 'true' },
    inject: false,
    reason: 'system-namespace',
  },
  {
    name: 'already has istio-proxy',
    ns: { 'istio-injection': 'enabled' },
    containers: ['app', SIDECAR_CONTAINER],
    inject: false,
    reason: 'already-injected',
  },
  {
    name: 'already annotated',
    ns: { 'istio-injection': 'enabled' },
    annotations: { [SIDECAR_STATUS_ANNOTATION]: '{}' },
    inject: false,
    reason: 'already-injected',
  },
  {
    name: 'unknown value is ignored',
    labels: { 'sidecar.istio.io/inject': 'maybe' },
    inject: false,
    reason: 'not-selected',
  },
];

for (const c of cases) {
  test(`injection: ${c.name}`, () => {
    const d = decideSidecarInjection({
      namespace: c.namespace ?? 'demo',
      namespaceLabels: new Map(Object.entries(c.ns ?? {})),
      podLabels: new Map(Object.entries(c.labels ?? {})),
      podAnnotations: new Map(Object.entries(c.annotations ?? {})),
      containerNames: c.containers ?? ['app'],
    });
    assert.deepEqual(d, { inject: c.inject, reason: c.reason });
  });
}

const pod = (name: string, labels = '{}', namespace = 'demo') =>
  `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: ${namespace}, labels: ${labels}}\nspec: {containers: [{name: app, image: x}]}\n---\n`;

const MIXED =
  ns('side', '{istio-injection: enabled}') +
  ns('amb', '{istio.io/dataplane-mode: ambient}') +
  pod('a', '{}', 'side') +
  pod('b', '{sidecar.istio.io/inject: "false"}', 'side') +
  pod('c', '{}', 'amb') +
  pod('d', '{sidecar.istio.io/inject: "true"}', 'amb');

test('translation with injection (the local cluster): injected pods are HBONE sidecar workloads', () => {
  const r = translateYaml(MIXED, { injectSidecars: true });
  const byName = new Map(r.config.workloads.map((w) => [w.name, w]));
  assert.equal(byName.get('a')?.protocol, 'HBONE');
  assert.equal(byName.get('b')?.protocol, 'TCP');
  assert.equal(byName.get('c')?.protocol, 'HBONE');
  assert.equal(byName.get('d')?.protocol, 'HBONE');
  assert.deepEqual(r.sidecarWorkloads, ['Kubernetes//Pod/amb/d', 'Kubernetes//Pod/side/a']);
});

test('translation without injection (pods from a Kubernetes API, already admitted): nothing injected', () => {
  const r = translateYaml(MIXED);
  const byName = new Map(r.config.workloads.map((w) => [w.name, w]));
  assert.equal(byName.get('a')?.protocol, 'TCP', 'no Ferry sidecar runs there: plain TCP as before');
  assert.equal(byName.get('d')?.protocol, 'HBONE', 'ambient: its node ztunnel');
  assert.deepEqual(r.sidecarWorkloads, []);
});

test('translation with the pods created with a sidecar (the local controller): those, whatever the labels now', () => {
  const r = translateYaml(MIXED, { sidecarPods: new Set(['side/b', 'amb/c']) });
  const byName = new Map(r.config.workloads.map((w) => [w.name, w]));
  assert.deepEqual(r.sidecarWorkloads, ['Kubernetes//Pod/amb/c', 'Kubernetes//Pod/side/b']);
  assert.equal(byName.get('a')?.protocol, 'TCP', 'labelled for injection after it was created: no sidecar runs');
  assert.equal(byName.get('b')?.protocol, 'HBONE', 'opted out after it was created: its sidecar still runs');
});
