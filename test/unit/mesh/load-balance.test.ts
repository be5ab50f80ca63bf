// Load balancing: weighted random by capacity among healthy endpoints, service port → target port.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  pickEndpoint,
  type ResolveEndpointOptions,
  resolveServiceEndpoint,
  resolveTargetPort,
} from '../../../src/mesh/load-balance.ts';
import type { Service, Workload } from '../../../src/mesh/types.ts';
import { keyOf, meshView, sequenceRandom, service, workload } from '../../helpers/mesh-builders.ts';

const svc = service('echo', '10.96.0.10', { ports: { 80: 8080, 9000: 0 } });
const sk = keyOf(svc);

function resolve(workloads: Workload[], port: number, opts: Partial<ResolveEndpointOptions> = {}, s: Service = svc) {
  const view = meshView({ workloads, services: [s] });
  return resolveServiceEndpoint(s, port, view.endpointsOf(s), { random: () => 0, network: '', ...opts });
}

test('capacity weights the choice: capacity 3 vs 1 splits [0,1) at 0.75', () => {
  const big = workload('big', '10.0.0.1', { capacity: 3, services: { [sk]: { 80: 8080 } } });
  const small = workload('small', '10.0.0.2', { capacity: 1, services: { [sk]: { 80: 8080 } } });
  const counts = new Map<string, number>();
  // 100 evenly spaced draws stand in for a uniform source: exactly 75 must land on `big`.
  for (let i = 0; i < 100; i++) {
    const r = resolve([big, small], 80, { random: () => i / 100 });
    assert.ok(r.ok);
    counts.set(r.value.workload.name, (counts.get(r.value.workload.name) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(counts), { big: 75, small: 25 });
});

test('unhealthy endpoints are never picked, whatever the random value', () => {
  const sick = workload('sick', '10.0.0.1', { status: 'Unhealthy', capacity: 100, services: { [sk]: { 80: 8080 } } });
  const well = workload('well', '10.0.0.2', { services: { [sk]: { 80: 8080 } } });
  for (const r of [0, 0.5, 0.999999]) {
    const res = resolve([sick, well], 80, { random: () => r });
    assert.ok(res.ok);
    assert.equal(res.value.workload.name, 'well');
  }
});

test('only unhealthy endpoints → FERRY_NO_HEALTHY_UPSTREAM', () => {
  const sick = workload('sick', '10.0.0.1', { status: 'Unhealthy', services: { [sk]: { 80: 8080 } } });
  const r = resolve([sick], 80);
  assert.ok(!r.ok);
  assert.equal(r.error.code, 'FERRY_NO_HEALTHY_UPSTREAM');
  assert.match(r.error.message, /echo\.default\.svc\.cluster\.local.*port 80/);
});

test('no endpoints → FERRY_NO_HEALTHY_UPSTREAM', () => {
  const r = resolve([], 80);
  assert.ok(!r.ok);
  assert.equal(r.error.code, 'FERRY_NO_HEALTHY_UPSTREAM');
});

test('a port the service does not declare → FERRY_UNKNOWN_PORT', () => {
  const w = workload('w', '10.0.0.1', { services: { [sk]: { 80: 8080 } } });
  const r = resolve([w], 81);
  assert.ok(!r.ok);
  assert.equal(r.error.code, 'FERRY_UNKNOWN_PORT');
});

test('named port: each endpoint maps it itself; endpoints without a mapping are skipped', () => {
  const mapped = workload('mapped', '10.0.0.1', { services: { [sk]: { 80: 8080, 9000: 9443 } } });
  const unmapped = workload('unmapped', '10.0.0.2', { capacity: 100, services: { [sk]: { 80: 8080 } } });
  for (const r of [0, 0.99]) {
    const res = resolve([unmapped, mapped], 9000, { random: () => r });
    assert.ok(res.ok);
    assert.deepEqual([res.value.workload.name, res.value.targetPort], ['mapped', 9443]);
  }
  const none = resolve([unmapped], 9000);
  assert.ok(!none.ok);
  assert.equal(none.error.code, 'FERRY_NO_HEALTHY_UPSTREAM');
});

test('resolveTargetPort: endpoint mapping, else the service target port, else null', () => {
  assert.equal(resolveTargetPort(svc, 80, new Map()), 8080);
  assert.equal(resolveTargetPort(svc, 80, new Map([[80, 0]])), 8080);
  assert.equal(resolveTargetPort(svc, 80, new Map([[80, 8081]])), 8081);
  assert.equal(resolveTargetPort(svc, 9000, new Map()), null);
  assert.equal(resolveTargetPort(svc, 9000, new Map([[9000, 9443]])), 9443);
  assert.equal(resolveTargetPort(svc, 1234, new Map()), null);
});

test('endpoints on another network are skipped (no E/W gateway support)', () => {
  const remote = workload('remote', '10.0.0.1', { network: 'west', services: { [sk]: { 80: 8080 } } });
  const r = resolve([remote], 80);
  assert.ok(!r.ok);
  const fromWest = resolve([remote], 80, { network: 'west' });
  assert.ok(fromWest.ok);
});

test('dual-stack endpoint: the dialed family is preferred', () => {
  const dual = workload('dual', ['10.0.0.1', 'fd00::1'], { services: { [sk]: { 80: 8080 } } });
  const v4 = resolve([dual], 80);
  const v6 = resolve([dual], 80, { preferIpv6: true });
  assert.ok(v4.ok && v6.ok);
  assert.equal(v4.value.ip, '10.0.0.1');
  assert.equal(v6.value.ip, 'fd00::1');
  const v6only = workload('v6', 'fd00::2', { services: { [sk]: { 80: 8080 } } });
  const fallback = resolve([v6only], 80);
  assert.ok(fallback.ok);
  assert.equal(fallback.value.ip, 'fd00::2');
});

test('an endpoint without any address is skipped', () => {
  const ghost = workload('ghost', [], { services: { [sk]: { 80: 8080 } } });
  assert.equal(resolve([ghost], 80).ok, false);
});

test('waypoint mode does not require the port to be declared on the service', () => {
  const wp = workload('waypoint', '10.0.0.9', { services: { [sk]: {} } });
  assert.equal(resolve([wp], 15008).ok, false);
  const r = resolve([wp], 15008, { mode: 'waypoint' });
  assert.ok(r.ok);
  assert.equal(r.value.targetPort, 15008);
});

test('pickEndpoint survives a random source outside [0, 1)', () => {
  const a = { workload: workload('a', '10.0.0.1') };
  const b = { workload: workload('b', '10.0.0.2') };
  assert.equal(
    pickEndpoint([a, b], () => 1),
    b,
  );
  assert.equal(
    pickEndpoint([a, b], () => 7),
    b,
  );
  assert.equal(
    pickEndpoint([a, b], () => -1),
    a,
  );
  assert.equal(pickEndpoint([a, b], () => Number.NaN) !== undefined, true);
  assert.equal(
    pickEndpoint([], () => 0.5),
    undefined,
  );
});

test('pickEndpoint treats a non-positive capacity as 1', () => {
  const zero = { workload: workload('zero', '10.0.0.1', { capacity: 0 }) };
  const one = { workload: workload('one', '10.0.0.2') };
  const random = sequenceRandom(0.25, 0.75);
  assert.equal(pickEndpoint([zero, one], random), zero);
  assert.equal(pickEndpoint([zero, one], random), one);
});
