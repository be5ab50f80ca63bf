// Placement from the API: a pod runs at spec.nodeName with status.podIP; no IP or a finished pod: no
// workload; a waypoint's pod stands for its Gateway's waypoint (once, not also as itself).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { placeFromApi } from '../../../src/controller/kubernetes-placement.ts';
import { listPods, translateCluster } from '../../../src/controller/translate/translate.ts';
import { stateOf } from '../../helpers/controller-fixtures.ts';

const pod = (name: string, ip: string | null, phase = 'Running', labels = '{}') =>
  `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: demo, labels: ${labels}}\nspec: {nodeName: node-a, containers: [{name: app, image: x}]}\n${ip === null ? '' : `status: {phase: ${phase}, podIP: "${ip}"}\n`}---\n`;

test('pods are placed from spec.nodeName and status.podIP; unscheduled and finished pods are not', () => {
  const { state } = stateOf(
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n---\n${pod('a', '10.1.0.1')}${pod('pending', null)}${pod('done', '10.1.0.3', 'Succeeded')}`,
  );
  const inputs = placeFromApi(listPods(state), state);
  assert.deepEqual([...inputs.placement], [['demo/a', { ip: '10.1.0.1', node: 'node-a' }]]);
  const names = translateCluster(state, inputs).config.workloads.map((w) => w.name);
  assert.deepEqual(names, ['a']);
});

test("a waypoint's pod is the waypoint's workload, not a second one of its own", () => {
  const { state } = stateOf(
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: wp, namespace: demo}\nspec: {gatewayClassName: ferry-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}\n---\n${pod('wp-7f9c', '10.1.0.9', 'Running', '{gateway.networking.k8s.io/gateway-name: wp}')}`,
  );
  const result = translateCluster(state, placeFromApi(listPods(state), state));
  const withIp = result.config.workloads.filter((w) => w.addresses.includes('10.1.0.9'));
  assert.equal(withIp.length, 1);
  assert.equal(withIp[0]?.name, 'wp-waypoint');
  assert.deepEqual(result.waypointWorkloads, [withIp[0]?.uid]);
});
