import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseQuantity, podQosClass } from '../../../../src/local-cluster/kubelet/pod-qos.ts';

const c = (resources: unknown) => ({ name: 'c', image: 'ferry/echo', resources });

test('no requests or limits anywhere: BestEffort', () => {
  assert.equal(podQosClass({ containers: [c(undefined), c({})] }), 'BestEffort');
});

test('cpu and memory limits on every container (requests default to them): Guaranteed', () => {
  const limits = { cpu: '100m', memory: '64Mi' };
  assert.equal(
    podQosClass({ containers: [c({ limits }), c({ limits, requests: { cpu: '0.1', memory: '64Mi' } })] }),
    'Guaranteed',
  );
});

test('requests below limits, a missing memory limit, or one container without any: Burstable', () => {
  assert.equal(
    podQosClass({ containers: [c({ limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '500m' } })] }),
    'Burstable',
  );
  assert.equal(podQosClass({ containers: [c({ limits: { cpu: '1' } })] }), 'Burstable');
  assert.equal(podQosClass({ containers: [c({ limits: { cpu: '1', memory: '1Gi' } }), c({})] }), 'Burstable');
  assert.equal(podQosClass({ containers: [c({ requests: { cpu: '10m' } })] }), 'Burstable');
});

test('init containers count like containers', () => {
  const limits = { cpu: '1', memory: '1Gi' };
  assert.equal(podQosClass({ initContainers: [c({})], containers: [c({ limits })] }), 'Burstable');
});

test('quantities compare by value: 500m = 0.5, 1Ki = 1024', () => {
  assert.equal(parseQuantity('500m'), 0.5);
  assert.equal(parseQuantity('1Ki'), 1024);
  assert.equal(parseQuantity('2G'), 2e9);
  assert.equal(parseQuantity('lots'), null);
});
