// Issue 9 §2: a restarting controller must never answer a reconnecting ztunnel before its state is loaded.
// Over real gRPC on loopback: a ztunnel synced from one server reconnects to a new one on the same port. An
// empty server that serves at once wipes the ztunnel's config (the delta diff removes what it holds: the
// fail-open this guards against); with deferServing the subscription is held, the ztunnel keeps its config,
// and it gets the published state only at startServing().
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { startXdsServer, type XdsPushEvent, type XdsServer } from '../../src/controller/xds-server.ts';
import { parseLocalConfig } from '../../src/mesh/local-config/config.ts';
import { MeshStore } from '../../src/mesh/mesh-store.ts';
import type { MeshConfig } from '../../src/mesh/types.ts';
import { XdsClient, type XdsResponseEvent } from '../../src/xds/client.ts';
import { ZTUNNEL_TYPE_URLS } from '../../src/xds/proto.ts';
import { CapturingLogger, Events, sortedConfig } from '../helpers/xds-events.ts';

type After = { after: (fn: () => Promise<void>) => void };

async function fixtureMesh(): Promise<MeshConfig> {
  const parsed = parseLocalConfig(
    await readFile(new URL('../fixtures/local-config/mesh.yaml', import.meta.url), 'utf8'),
    'mesh.yaml',
  );
  assert.ok(parsed.ok);
  assert.ok(parsed.config.policies.length > 0, 'the fixture has policies');
  return parsed.config;
}

async function server(t: After, port: number, deferServing: boolean) {
  const pushes = new Events<XdsPushEvent>();
  const log = new CapturingLogger();
  const s = await startXdsServer({ port, log, onPush: pushes.push, deferServing });
  t.after(() => s.close());
  return { server: s, pushes, log };
}

function config(store: MeshStore): MeshConfig {
  const view = store.view;
  return { workloads: view.workloads, services: view.services, policies: view.dump().policies };
}

/** A ztunnel synced from a first server, which is then closed (the controller was killed). */
async function syncedClientOfDeadServer(t: After, node: string) {
  const mesh = await fixtureMesh();
  const first = await server(t, 0, false);
  first.server.publish(mesh);
  const store = new MeshStore();
  const responses = new Events<XdsResponseEvent>();
  const client = new XdsClient({
    address: first.server.address,
    tls: null,
    nodeId: `ztunnel~127.0.0.1~${node}`,
    nodeName: node,
    store,
    backoff: { initialMs: 20, maxMs: 100 },
    onResponse: responses.push,
  });
  t.after(() => client.close());
  await client.start();
  await client.whenSynced(AbortSignal.timeout(10_000));
  const port = first.server.port;
  await first.server.close();
  return { mesh, store, responses, port };
}

async function subscribed(h: { server: XdsServer; log: CapturingLogger }): Promise<void> {
  let n = 0;
  await h.log.events.waitFor((l) => l.msg === 'xDS client subscribed' && ++n >= ZTUNNEL_TYPE_URLS.length);
}

test('an empty server that serves at once wipes a reconnecting ztunnel (the hazard)', async (t) => {
  const { store, responses, port } = await syncedClientOfDeadServer(t, 'wiped');
  const from = responses.mark();
  await server(t, port, false);
  for (const typeUrl of ZTUNNEL_TYPE_URLS) await responses.waitFor((e) => e.accepted && e.typeUrl === typeUrl, from);
  assert.equal(config(store).policies.length, 0, 'every policy removed: fail-open');
  assert.equal(config(store).workloads.length, 0, 'every workload removed');
});

test('deferServing: the subscription is held, the ztunnel keeps its config until startServing()', async (t) => {
  const { mesh, store, responses, port } = await syncedClientOfDeadServer(t, 'held');
  const before = config(store);
  const from = responses.mark();
  const h = await server(t, port, true);
  assert.equal(h.server.serving, false);
  await subscribed(h);
  // The state loads; publishing is not serving yet.
  const changed: MeshConfig = { ...mesh, policies: mesh.policies.slice(1) };
  h.server.publish(changed);
  // A round trip on the stream's server side has happened (both subscriptions logged): nothing was sent.
  assert.equal(h.pushes.mark(), 0, 'no response written');
  assert.deepEqual(config(store), before, 'the ztunnel still holds its last config');
  assert.deepEqual(responses.items.slice(from), []);

  h.server.startServing();
  h.server.startServing(); // idempotent
  assert.equal(h.server.serving, true);
  for (const typeUrl of ZTUNNEL_TYPE_URLS) await responses.waitFor((e) => e.accepted && e.typeUrl === typeUrl, from);
  assert.deepEqual(config(store), sortedConfig(changed), 'exactly the published state, in one step');
  assert.equal(
    h.pushes.items.filter((p) => p.typeUrl === ZTUNNEL_TYPE_URLS[1]).length,
    1,
    'one response per type: no empty snapshot before it',
  );
});
