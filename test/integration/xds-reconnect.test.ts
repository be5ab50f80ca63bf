// The xDS client comes back quickly after a controller outage (issue 9, item 3: a ztunnel took ~12 s after
// a 30 s outage). Real gRPC on loopback with the production backoff (5 s cap, full jitter): the controller
// stays down until the client's retry ceiling has reached the cap, then returns on the same port; the
// client must be connected again within the cap plus a margin for the connect itself.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { startXdsServer, type XdsAckEvent, type XdsServer } from '../../src/controller/xds-server.ts';
import { MeshStore } from '../../src/mesh/mesh-store.ts';
import { DEFAULT_XDS_BACKOFF, reconnectCeilingMs } from '../../src/xds/backoff.ts';
import { XdsClient } from '../../src/xds/client.ts';
import { workload } from '../helpers/mesh-builders.ts';
import { CapturingLogger, Events } from '../helpers/xds-events.ts';

/** Time for the TCP connect, the stream and the first response once the retry fires (generous: shared CPUs). */
const CONNECT_MARGIN_MS = 2_000;

async function startServer(t: { after: (fn: () => Promise<void>) => void }, port = 0) {
  const acks = new Events<XdsAckEvent>();
  const server: XdsServer = await startXdsServer({ port, log: new CapturingLogger(), onAck: acks.push });
  t.after(() => server.close());
  server.publish({ workloads: [workload('a', '10.244.1.2')], services: [], policies: [] });
  return { server, acks };
}

test('after an outage long enough to reach the backoff cap, the client reconnects within the cap', async (t) => {
  const h1 = await startServer(t);
  const port = h1.server.port;
  const log = new CapturingLogger();
  const client = new XdsClient({
    address: h1.server.address,
    tls: null,
    nodeId: 'ztunnel~127.0.0.1~node-r',
    nodeName: 'node-r',
    store: new MeshStore(),
    log, // the production backoff: no override
  });
  t.after(() => client.close());
  await client.start();
  await client.whenSynced(t.signal);

  await h1.server.close();
  // Stay down until a retry was scheduled with the capped ceiling (attempt 7: 100 ms · 2^7 > 5 s). The
  // old schedule (15 s cap, ±20%) waited 10–15 s here.
  let capAttempt = 0;
  while (reconnectCeilingMs(capAttempt, DEFAULT_XDS_BACKOFF) < DEFAULT_XDS_BACKOFF.maxMs) capAttempt++;
  const from = log.events.mark();
  let failures = 0;
  await log.events.waitFor((l) => l.fields.code === 'FERRY_XDS_STREAM_FAILED' && ++failures > capAttempt + 1, from);
  for (const f of log.events.since(from).filter((l) => l.fields.code === 'FERRY_XDS_STREAM_FAILED')) {
    assert.ok(Number(f.fields.delayMs) <= DEFAULT_XDS_BACKOFF.maxMs, `delay over the cap: ${JSON.stringify(f.fields)}`);
  }

  const back = log.events.mark();
  const h2 = await startServer(t, port);
  const restartedAt = performance.now();
  const connected = await log.events.waitFor((l) => l.msg === 'xDS stream connected', back);
  const reconnectMs = performance.now() - restartedAt;
  await h2.acks.waitFor((e) => e.nodeId === 'ztunnel~127.0.0.1~node-r');
  assert.ok(
    reconnectMs <= DEFAULT_XDS_BACKOFF.maxMs + CONNECT_MARGIN_MS,
    `reconnected ${Math.round(reconnectMs)} ms after the controller came back`,
  );
  assert.ok(Number(connected.fields.disconnectedMs) > 0, 'the reconnect log line says how long it was away');
  assert.equal(client.status().phase, 'connected');
  t.diagnostic(`reconnected ${Math.round(reconnectMs)} ms after the controller came back`);
});

test('a controller that accepts TCP but never answers: the attempt is abandoned and retried', async (t) => {
  // A stopped or hung controller: the kernel completes the TCP handshake, nothing else happens.
  const held = new Set<Socket>();
  const silent = createServer((s) => {
    held.add(s);
    s.on('error', () => {});
  });
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  const port = (silent.address() as AddressInfo).port;
  const closeSilent = async () => {
    for (const s of held) s.destroy();
    if (silent.listening) await new Promise((resolve) => silent.close(resolve));
  };
  t.after(closeSilent);
  const log = new CapturingLogger();
  const connectTimeoutMs = 300;
  const client = new XdsClient({
    address: `127.0.0.1:${port}`,
    tls: null,
    nodeId: 'ztunnel~127.0.0.1~node-s',
    nodeName: 'node-s',
    store: new MeshStore(),
    log,
    connectTimeoutMs,
  });
  t.after(() => client.close());
  await client.start();
  const timedOut = await log.events.waitFor((l) => l.fields.code === 'FERRY_XDS_STREAM_FAILED');
  assert.equal(timedOut.fields.details, `no connection to the controller within ${connectTimeoutMs} ms`);
  assert.match(client.status().lastError ?? '', /no connection to the controller/);
  assert.ok(held.size >= 1, 'the client did connect at the TCP level');

  // The controller recovers on the same port: the client is back within the cap.
  await closeSilent();
  const back = log.events.mark();
  const h = await startServer(t, port);
  const restartedAt = performance.now();
  await log.events.waitFor((l) => l.msg === 'xDS stream connected', back);
  const reconnectMs = performance.now() - restartedAt;
  await h.acks.waitFor((e) => e.nodeId === 'ztunnel~127.0.0.1~node-s');
  assert.ok(
    reconnectMs <= DEFAULT_XDS_BACKOFF.maxMs + CONNECT_MARGIN_MS,
    `reconnected after ${Math.round(reconnectMs)} ms`,
  );
});
