// MeshStore: whole-config replace with an atomic swap, versioning, and change notification.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MeshStore } from '../../../src/mesh/mesh-store.ts';
import type { MeshView } from '../../../src/mesh/mesh-view.ts';
import type { MeshConfig } from '../../../src/mesh/types.ts';
import { keyOf, meshConfig, service, workload } from '../../helpers/mesh-builders.ts';

const echo = service('echo', '10.96.0.10');
const v1 = meshConfig({
  workloads: [workload('echo-a', '10.244.0.5', { services: { [keyOf(echo)]: { 80: 8080 } } })],
  services: [echo],
});
const v2 = meshConfig({
  workloads: [workload('echo-b', '10.244.0.6', { services: { [keyOf(echo)]: { 80: 8080 } } })],
  services: [echo],
});

test('starts empty at version 0, or from an initial config', () => {
  assert.equal(new MeshStore().view.version, 0);
  assert.equal(new MeshStore().view.workloads.length, 0);
  assert.equal(new MeshStore({ initial: v1 }).view.workloads.length, 1);
});

test('a listener sees the whole new view, and the old view is unchanged', () => {
  const store = new MeshStore({ initial: v1 });
  const before = store.view;
  const seen: { next: MeshView; prev: MeshView; current: MeshView }[] = [];
  using _sub = store.onChange((next, prev) => seen.push({ next, prev, current: store.view }));
  const returned = store.replace(v2);

  assert.equal(seen.length, 1);
  const [event] = seen;
  assert.ok(event !== undefined);
  assert.equal(event.next, returned);
  assert.equal(event.prev, before);
  assert.equal(event.current, returned, 'the swap happens before listeners run');
  // New view: complete.
  assert.equal(event.next.version, 1);
  assert.equal(event.next.workloadByAddress('', '10.244.0.6')?.name, 'echo-b');
  assert.deepEqual(
    event.next.endpointsOf(echo).map((e) => e.workload.name),
    ['echo-b'],
  );
  assert.equal(event.next.workloadByAddress('', '10.244.0.5'), undefined);
  // Old view: untouched, still answers as before for readers that hold it.
  assert.equal(before.version, 0);
  assert.equal(before.workloadByAddress('', '10.244.0.5')?.name, 'echo-a');
  assert.deepEqual(
    before.endpointsOf(echo).map((e) => e.workload.name),
    ['echo-a'],
  );
});

test('versions increase by one per replace', () => {
  const store = new MeshStore();
  assert.equal(store.replace(v1).version, 1);
  assert.equal(store.replace(v2).version, 2);
  assert.equal(store.replace(v1).version, 3);
});

test('a config that fails to build leaves the current view in place and notifies nobody', () => {
  const store = new MeshStore({ initial: v1 });
  const before = store.view;
  let calls = 0;
  using _sub = store.onChange(() => calls++);
  const broken: MeshConfig = {
    workloads: v2.workloads,
    get services(): MeshConfig['services'] {
      throw new Error('conversion bug');
    },
    policies: [],
  };
  assert.throws(() => store.replace(broken), /conversion bug/);
  assert.equal(store.view, before);
  assert.equal(calls, 0);
});

test('disposing a subscription stops notifications', () => {
  const store = new MeshStore();
  let calls = 0;
  const sub = store.onChange(() => calls++);
  store.replace(v1);
  sub[Symbol.dispose]();
  sub[Symbol.dispose](); // idempotent
  store.replace(v2);
  assert.equal(calls, 1);
});

test('the same function subscribed twice is called twice and unsubscribes independently', () => {
  const store = new MeshStore();
  let calls = 0;
  const listener = (): void => {
    calls++;
  };
  const a = store.onChange(listener);
  using _b = store.onChange(listener);
  store.replace(v1);
  assert.equal(calls, 2);
  a[Symbol.dispose]();
  store.replace(v2);
  assert.equal(calls, 3);
});

test('a listener unsubscribed by an earlier listener is not called', () => {
  const store = new MeshStore();
  const order: string[] = [];
  const second = { sub: undefined as Disposable | undefined };
  using _first = store.onChange(() => {
    order.push('first');
    second.sub?.[Symbol.dispose]();
  });
  second.sub = store.onChange(() => order.push('second'));
  store.replace(v1);
  assert.deepEqual(order, ['first']);
});

test('a throwing listener does not stop the others or undo the update', () => {
  const store = new MeshStore();
  let laterCalled = false;
  using _a = store.onChange(() => {
    throw new Error('listener bug');
  });
  using _b = store.onChange(() => {
    laterCalled = true;
  });
  assert.throws(
    () => store.replace(v1),
    (err: unknown) => err instanceof AggregateError && err.errors.length === 1,
  );
  assert.ok(laterCalled);
  assert.equal(store.view.version, 1);
});

test('onListenerError receives listener failures instead of replace throwing', () => {
  const errors: unknown[] = [];
  const store = new MeshStore({ onListenerError: (e) => errors.push(e) });
  using _a = store.onChange(() => {
    throw new Error('listener bug');
  });
  assert.equal(store.replace(v1).version, 1);
  assert.equal(errors.length, 1);
});

test('replace from inside a listener is refused (it would reorder notifications)', () => {
  const store = new MeshStore({ onListenerError: () => {} });
  let inner: unknown;
  using _a = store.onChange(() => {
    try {
      store.replace(v2);
    } catch (e) {
      inner = e;
    }
  });
  store.replace(v1);
  assert.ok(inner instanceof Error && /from a change listener/.test(inner.message));
  assert.equal(store.view.version, 1);
});
