// Istio's ambient enrollment rule (src/mesh/ambient-enrollment.ts), which the controller (HBONE or TCP) and
// the ztunnel's node agent (capture or not) both use: named cases, then every combination of namespace
// label, pod label, sidecar and hostNetwork against the rule as Istio states it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type AmbientPodFacts,
  type AmbientReason,
  DATAPLANE_MODE_LABEL,
  decideAmbient,
  podWorkloadUid,
} from '../../../src/mesh/ambient-enrollment.ts';
import { SIDECAR_CONTAINER, SIDECAR_STATUS_ANNOTATION } from '../../../src/mesh/sidecar-injection.ts';

type LabelValue = 'ambient' | 'none' | 'sidecar' | null;
type Sidecar = 'no' | 'annotation' | 'container';

function facts(ns: LabelValue, pod: LabelValue, sidecar: Sidecar = 'no', hostNetwork = false): AmbientPodFacts {
  const label = (v: LabelValue) => new Map(v === null ? [] : [[DATAPLANE_MODE_LABEL, v]]);
  return {
    namespaceLabels: label(ns),
    podLabels: label(pod),
    podAnnotations: new Map(sidecar === 'annotation' ? [[SIDECAR_STATUS_ANNOTATION, '{}']] : []),
    containerNames: sidecar === 'container' ? ['app', SIDECAR_CONTAINER] : ['app'],
    hostNetwork,
  };
}

const CASES: ReadonlyArray<[string, AmbientPodFacts, boolean, AmbientReason]> = [
  ['namespace ambient', facts('ambient', null), true, 'namespace-ambient'],
  ['pod ambient in a plain namespace', facts(null, 'ambient'), true, 'pod-ambient'],
  ['pod ambient in an ambient namespace', facts('ambient', 'ambient'), true, 'pod-ambient'],
  ['nothing labelled', facts(null, null), false, 'not-labelled'],
  ['namespace none', facts('none', null), false, 'not-labelled'],
  ['pod none in an ambient namespace opts out', facts('ambient', 'none'), false, 'pod-opted-out'],
  [
    'pod with another value in an ambient namespace (Istio: still ambient)',
    facts('ambient', 'sidecar'),
    true,
    'namespace-ambient',
  ],
  ['pod with another value alone', facts(null, 'sidecar'), false, 'not-labelled'],
  ['sidecar annotation', facts('ambient', null, 'annotation'), false, 'sidecar'],
  ['istio-proxy container', facts(null, 'ambient', 'container'), false, 'sidecar'],
  ['hostNetwork', facts('ambient', null, 'no', true), false, 'host-network'],
  ['hostNetwork, pod ambient', facts(null, 'ambient', 'no', true), false, 'host-network'],
];

test('named cases', () => {
  for (const [name, f, ambient, reason] of CASES) {
    assert.deepEqual(decideAmbient(f), { ambient, reason }, name);
  }
});

test('every combination follows Istio: (namespace or pod says ambient) and no sidecar, not none, not hostNetwork', () => {
  const values: LabelValue[] = ['ambient', 'none', 'sidecar', null];
  let n = 0;
  for (const ns of values) {
    for (const pod of values) {
      for (const sidecar of ['no', 'annotation', 'container'] as const) {
        for (const hostNetwork of [false, true]) {
          const expected =
            (ns === 'ambient' || pod === 'ambient') && sidecar === 'no' && pod !== 'none' && !hostNetwork;
          const got = decideAmbient(facts(ns, pod, sidecar, hostNetwork));
          const label = JSON.stringify({ ns, pod, sidecar, hostNetwork });
          assert.equal(got.ambient, expected, label);
          if (!(ns === 'ambient' || pod === 'ambient')) assert.equal(got.reason, 'not-labelled', label);
          else if (sidecar !== 'no') assert.equal(got.reason, 'sidecar', label);
          n++;
        }
      }
    }
  }
  assert.equal(n, 96);
});

test('the workload uid of a pod is the one the controller publishes', () => {
  assert.equal(podWorkloadUid('Kubernetes', 'demo', 'web-0'), 'Kubernetes//Pod/demo/web-0');
});
