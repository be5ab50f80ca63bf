// Delta xDS end to end over real gRPC on loopback: controller server → ztunnel client → MeshStore.
// Waits on ACK/NACK/push events, never on time.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { encodeResource, meshResources, workloadMessage } from '../../src/controller/xds-resources.ts';
import {
  startXdsServer,
  type XdsAckEvent,
  type XdsNackEvent,
  type XdsPushEvent,
  type XdsServer,
} from '../../src/controller/xds-server.ts';
import { parseLocalConfig } from '../../src/mesh/local-config/config.ts';
import { MeshStore } from '../../src/mesh/mesh-store.ts';
import type { MeshConfig } from '../../src/mesh/types.ts';
import { XdsClient, type XdsClientOptions, type XdsResponseEvent } from '../../src/xds/client.ts';
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, loadXdsProtos, ZTUNNEL_TYPE_URLS } from '../../src/xds/proto.ts';
import { workload } from '../helpers/mesh-builders.ts';
import { CapturingLogger, Events, sortedConfig } from '../helpers/xds-events.ts';

const FIXTURE = new URL('../fixtures/local-config/mesh.yaml', import.meta.url);
const protos = await loadXdsProtos();

async function fixtureMesh(): Promise<MeshConfig> {
  const parsed = parseLocalConfig(await readFile(FIXTURE, 'utf8'), 'mesh.yaml');
  assert.ok(parsed.ok);
  return parsed.config;
}

interface Harness {
  server: XdsServer;
  acks: Events<XdsAckEvent>;
  nacks: Events<XdsNackEvent>;
  pushes: Events<XdsPushEvent>;
  log: CapturingLogger;
}

async function startServer(t: { after: (fn: () => Promise<void>) => void }, port = 0): Promise<Harness> {
  const acks = new Events<XdsAckEvent>();
  const nacks = new Events<XdsNackEvent>();
  const pushes = new Events<XdsPushEvent>();
  const log = new CapturingLogger();
  const server = await startXdsServer({ port, log, onAck: acks.push, onNack: nacks.push, onPush: pushes.push });
  t.after(() => server.close());
  return { server, acks, nacks, pushes, log };
}

function startClient(
  t: { after: (fn: () => Promise<void>) => void },
  address: string,
  node: string,
  extra: Partial<XdsClientOptions> = {},
): { client: XdsClient; store: MeshStore; responses: Events<XdsResponseEvent> } {
  const store = new MeshStore();
  const responses = new Events<XdsResponseEvent>();
  const client = new XdsClient({
    address,
    tls: null,
    nodeId: `ztunnel~127.0.0.1~${node}`,
    nodeName: node,
    store,
    backoff: { initialMs: 20, maxMs: 200 },
    onResponse: responses.push,
    ...extra,
  });
  t.after(() => client.close());
  return { client, store, responses };
}

function storeConfig(store: MeshStore): MeshConfig {
  const view = store.view;
  return { workloads: view.workloads, services: view.services, policies: view.dump().policies };
}

/** Waits until `node` ACKed the current generation of both types. */
async function bothAcked(h: Harness, node: string): Promise<void> {
  for (const typeUrl of ZTUNNEL_TYPE_URLS) {
    // Generations only grow, so any ACK at or past the current one means the client holds it.
    const gen = h.server.generation(typeUrl);
    await h.acks.waitFor((e) => e.nodeId.endsWith(`~${node}`) && e.typeUrl === typeUrl && e.generation >= gen);
  }
}

test('initial sync: the YAML mesh reaches the MeshStore identical to the static-file parse', async (t) => {
  const mesh = await fixtureMesh();
  const h = await startServer(t);
  h.server.publish(mesh);
  const { client, store } = startClient(t, h.server.address, 'node-a');
  await client.start();
  await client.whenSynced(t.signal);
  assert.deepEqual(storeConfig(store), sortedConfig(mesh));
  await bothAcked(h, 'node-a');
  const status = client.status();
  assert.equal(status.phase, 'connected');
  assert.equal(status.synced, true);
  assert.deepEqual(
    status.types.map((x) => x.resources),
    [mesh.workloads.length + mesh.services.length, mesh.policies.length],
  );
  const clients = h.server.clients();
  assert.equal(clients.length, 1);
  assert.equal(clients[0]?.nodeId, 'ztunnel~127.0.0.1~node-a');
  assert.ok(clients[0]?.types.every((x) => x.upToDate));
});

test('an empty mesh still syncs (first response of each type is sent even when empty)', async (t) => {
  const h = await startServer(t);
  const { client, store } = startClient(t, h.server.address, 'empty');
  await client.start();
  await client.whenSynced(t.signal);
  assert.deepEqual(storeConfig(store), { workloads: [], services: [], policies: [] });
});

test('incremental update and removal push only the delta', async (t) => {
  const mesh = await fixtureMesh();
  const h = await startServer(t);
  h.server.publish(mesh);
  const { client, store, responses } = startClient(t, h.server.address, 'node-a');
  await client.start();
  await client.whenSynced(t.signal);
  await bothAcked(h, 'node-a');

  const from = h.pushes.mark();
  const [first, ...rest] = mesh.workloads;
  assert.ok(first);
  const changed: MeshConfig = {
    workloads: [{ ...first, capacity: 7 }, ...rest, workload('new-pod', '10.244.3.3')],
    services: [], // the one service goes away
    policies: mesh.policies,
  };
  h.server.publish(changed);
  await bothAcked(h, 'node-a');
  const pushes = h.pushes.since(from);
  assert.equal(pushes.length, 1, 'policies did not change: only an Address push');
  assert.equal(pushes[0]?.typeUrl, ADDRESS_TYPE_URL);
  assert.deepEqual([...(pushes[0]?.resources ?? [])].sort(), [first.uid, 'Kubernetes//Pod/default/new-pod'].sort());
  assert.deepEqual(pushes[0]?.removed, ['bar/echo.bar.svc.cluster.local']);
  const applied = await responses.waitFor((e) => e.accepted && e.nonce === pushes[0]?.nonce);
  assert.ok(applied.accepted);
  assert.deepEqual(storeConfig(store), sortedConfig(changed));
  assert.equal(store.view.workloadByUid(first.uid)?.capacity, 7);

  // Publishing the same config again sends nothing.
  const again = h.pushes.mark();
  h.server.publish(changed);
  assert.equal(h.pushes.since(again).length, 0);
});

test('a NACKed resource keeps the old config, is logged with the node id, and is not resent', async (t) => {
  const mesh = await fixtureMesh();
  const h = await startServer(t);
  h.server.publish(mesh);
  const { client, store, responses } = startClient(t, h.server.address, 'node-n');
  await client.start();
  await client.whenSynced(t.signal);
  await bothAcked(h, 'node-n');
  const before = storeConfig(store);
  const versionBefore = store.view.version;

  const resources = new Map(meshResources(protos, mesh).get(ADDRESS_TYPE_URL));
  const bad = workloadMessage(workload('bad', '10.9.9.9'));
  resources.set('bad', encodeResource(protos.address, { workload: { ...bad, addresses: [Buffer.alloc(3)] } }));
  resources.set(
    'good-too',
    encodeResource(protos.address, { workload: workloadMessage(workload('good-too', '10.9.9.8')) }),
  );
  const nackFrom = h.nacks.mark();
  h.server.setResources(ADDRESS_TYPE_URL, resources);
  const nack = await h.nacks.waitFor(() => true, nackFrom);
  assert.equal(nack.nodeId, 'ztunnel~127.0.0.1~node-n');
  assert.match(nack.error, /FERRY_XDS_RESOURCE_REJECTED: bad: workload\.addresses\[0\]/);
  const rejected = await responses.waitFor((e) => !e.accepted);
  assert.ok(!rejected.accepted);
  // All or nothing: the valid resource in the same response was not applied either.
  assert.equal(store.view.version, versionBefore);
  assert.deepEqual(storeConfig(store), before);
  const line = h.log.lines.find((l) => l.fields.code === 'FERRY_XDS_NACKED');
  assert.equal(line?.level, 'warn');
  assert.equal(line?.fields.nodeId, 'ztunnel~127.0.0.1~node-n');
  assert.equal(client.status().types[0]?.lastRejected?.nonce, nack.nonce);

  // The next change is pushed alone; the rejected version is not sent again.
  const from = h.pushes.mark();
  resources.set('third', encodeResource(protos.address, { workload: workloadMessage(workload('third', '10.9.9.7')) }));
  h.server.setResources(ADDRESS_TYPE_URL, resources);
  const push = await h.pushes.waitFor(() => true, from);
  assert.deepEqual(push.resources, ['third']);
  await responses.waitFor((e) => e.accepted && e.nonce === push.nonce);
  assert.ok(store.view.workloadByUid('Kubernetes//Pod/default/third'));
  assert.equal(store.view.workloadByUid('Kubernetes//Pod/default/bad'), undefined);
});

test('reconnect after a server restart sends initial_resource_versions: only changed resources come back', async (t) => {
  const mesh = await fixtureMesh();
  const h1 = await startServer(t);
  h1.server.publish(mesh);
  const { client, store, responses } = startClient(t, h1.server.address, 'node-r');
  await client.start();
  await client.whenSynced(t.signal);
  const port = h1.server.port;
  const config = storeConfig(store);

  await h1.server.close();
  // While the controller is away the ztunnel keeps serving the last config.
  assert.deepEqual(storeConfig(store), config);
  assert.equal(store.view.workloadByUid(mesh.workloads[0]!.uid)?.uid, mesh.workloads[0]!.uid);

  const [first, second, ...rest] = mesh.workloads;
  assert.ok(first && second);
  const changed: MeshConfig = { ...mesh, workloads: [{ ...first, node: 'node-z' }, ...rest] }; // second removed
  const fromResponses = responses.mark();
  const h2 = await startServer(t, port);
  h2.server.publish(changed);
  await bothAcked(h2, 'node-r');
  const pushes = h2.pushes.items;
  const addressPush = pushes.find((p) => p.typeUrl === ADDRESS_TYPE_URL);
  const authzPush = pushes.find((p) => p.typeUrl === AUTHORIZATION_TYPE_URL);
  assert.deepEqual(addressPush?.resources, [first.uid]);
  assert.deepEqual(addressPush?.removed, [second.uid]);
  assert.deepEqual(authzPush?.resources, [], 'policies unchanged: an empty response, nothing resent');
  assert.deepEqual(authzPush?.removed, []);
  await responses.waitFor((e) => e.accepted && e.typeUrl === ADDRESS_TYPE_URL, fromResponses);
  assert.deepEqual(storeConfig(store), sortedConfig(changed));
  assert.ok(client.status().streams >= 2);
});

test('the client keeps the last config while the server is down; failed reconnects never touch the store', async (t) => {
  const mesh = await fixtureMesh();
  const h1 = await startServer(t);
  h1.server.publish(mesh);
  const log = new CapturingLogger();
  const { client, store } = startClient(t, h1.server.address, 'node-d', { log });
  await client.start();
  await client.whenSynced(t.signal);
  const version = store.view.version;
  await h1.server.close();
  // The stream ends, then reconnects fail against the closed port; each failure is logged.
  let failures = 0;
  await log.events.waitFor((l) => l.fields.code === 'FERRY_XDS_STREAM_FAILED' && ++failures >= 3);
  assert.equal(store.view.version, version);
  assert.deepEqual(storeConfig(store), sortedConfig(mesh));
  assert.notEqual(client.status().phase, 'connected');
  assert.match(client.status().lastError ?? '', /UNAVAILABLE/);
  assert.equal(client.synced, true, 'readiness stays up once reached');
});
