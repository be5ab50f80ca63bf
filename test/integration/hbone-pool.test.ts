// HboneClientPool behaviour users rely on (docs/architecture.md "HBONE (wire contract)"): tunnels share HTTP/2 connections up to 100
// streams, one dial per key, GOAWAY'd and idle connections are not reused, and the key separates sources.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { type TestContext, test } from 'node:test';
import { setImmediate as nextLoop } from 'node:timers/promises';
import { ProxyError } from '../../src/errors.ts';
import { HboneClientPool, type HboneConnectOptions } from '../../src/hbone/pool.ts';
import { startEchoServer } from '../helpers/echo-server.ts';
import { startHboneFixture } from '../helpers/hbone-client.ts';
import { createTestPki } from '../helpers/test-pki.ts';

const pki = await createTestPki();
const clientCert = await pki.issue('default', 'sleep');
const serverCert = await pki.issue('default', 'echo');
const otherIdentity = (await pki.issue('default', 'other')).identity;

async function setup(t: TestContext, poolOpts: ConstructorParameters<typeof HboneClientPool>[0] = {}) {
  const stack = new AsyncDisposableStack();
  t.after(() => stack.disposeAsync());
  const fixture = stack.use(await startHboneFixture(serverCert));
  const echo = stack.use(await startEchoServer());
  const pool = new HboneClientPool(poolOpts);
  stack.defer(() => pool.destroy());
  const opts = (extra: Partial<HboneConnectOptions> = {}): HboneConnectOptions => ({
    source: clientCert,
    dst: fixture.server.address,
    expectedIdentities: [serverCert.identity],
    authority: `127.0.0.1:${echo.port}`,
    ...extra,
  });
  return { stack, fixture, echo, pool, opts };
}

/** One round trip through a tunnel, proving it carries bytes. */
async function roundTrip(tunnel: Duplex, text: string): Promise<void> {
  tunnel.write(text);
  const [chunk] = (await once(tunnel, 'data')) as [Buffer];
  assert.equal(chunk.toString(), text);
}

/** Bounded wait for state without an event to subscribe to (STYLE.md §7: assert_eventually). */
async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (check()) return;
    await nextLoop();
    if (i > 100) await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail(`never became true: ${what}`);
}

test('50 concurrent tunnels from cold share ONE HTTP/2 connection (one dial in flight per key)', async (t) => {
  const { fixture, echo, pool, opts } = await setup(t);
  const tunnels = await Promise.all(Array.from({ length: 50 }, () => pool.connect(opts())));
  await Promise.all(tunnels.map((tun, i) => roundTrip(tun, `tunnel ${i}`)));
  assert.equal(fixture.server.stats().sessions, 1);
  assert.equal(pool.stats().connections, 1);
  assert.equal(pool.stats().streams, 50);
  assert.equal(echo.accepted, 50);
  for (const tun of tunnels) tun.end();
});

test('150 concurrent tunnels use 2 connections (at most 100 streams each)', async (t) => {
  const { fixture, pool, opts } = await setup(t);
  const tunnels = await Promise.all(Array.from({ length: 150 }, () => pool.connect(opts())));
  await Promise.all(tunnels.map((tun, i) => roundTrip(tun, `t${i}`)));
  assert.equal(fixture.server.stats().sessions, 2);
  const [key] = pool.stats().keys;
  assert.deepEqual(key && { connections: key.connections, streams: key.streams }, { connections: 2, streams: 150 });
  for (const tun of tunnels) tun.end();
});

test('the pool key ignores the order of expected identities and separates source IPs', async (t) => {
  const { fixture, pool, opts } = await setup(t);
  const a = await pool.connect(opts({ expectedIdentities: [serverCert.identity, otherIdentity] }));
  const b = await pool.connect(opts({ expectedIdentities: [otherIdentity, serverCert.identity] }));
  assert.equal(fixture.server.stats().sessions, 1);
  const c = await pool.connect(opts({ sourceIp: '127.0.0.8' }));
  assert.equal(fixture.server.stats().sessions, 2);
  await roundTrip(c, 'from pod 127.0.0.8');
  assert.equal(fixture.requests.at(-1)?.peer.ip, '127.0.0.8');
  for (const tun of [a, b, c]) tun.end();
});

test('a connection that got GOAWAY is not reused; its open tunnel still finishes', async (t) => {
  const { fixture, pool, opts } = await setup(t);
  const held = await pool.connect(opts());
  await roundTrip(held, 'before goaway');
  const closing = fixture.server.close({ graceful: true, deadlineMs: 60_000 });
  await eventually(() => pool.stats().keys.length === 0, 'connection retired from its key');
  await roundTrip(held, 'after goaway'); // graceful: in-flight tunnel keeps working
  // A new tunnel needs a new connection, and the listener is gone: it must not land on the old one.
  await assert.rejects(
    pool.connect(opts()),
    (e: unknown) => e instanceof ProxyError && e.code === 'FERRY_HBONE_HANDSHAKE_FAILED',
  );
  held.end();
  await closing;
  await eventually(() => pool.stats().connections === 0, 'drained connection closed');
});

test('idle connections are evicted after idleTimeoutMs and the next tunnel dials again', async (t) => {
  const { fixture, pool, opts } = await setup(t, { idleTimeoutMs: 20 });
  const first = await pool.connect(opts());
  await roundTrip(first, 'one');
  first.end();
  await eventually(() => pool.stats().connections === 0 && fixture.server.stats().sessions === 0, 'idle eviction');
  const second = await pool.connect(opts());
  await roundTrip(second, 'two');
  assert.equal(pool.stats().connections, 1);
  second.end();
});

test('an aborted connect rejects with the abort reason and leaves the shared dial alone', async (t) => {
  const { pool, opts } = await setup(t);
  const ac = new AbortController();
  const reason = new Error('caller gave up');
  ac.abort(reason);
  await assert.rejects(pool.connect(opts({ signal: ac.signal })), (e: unknown) => e === reason);
  const ok = await pool.connect(opts());
  await roundTrip(ok, 'still fine');
  ok.end();
});

test('close() refuses new tunnels with FERRY_DRAINING', async (t) => {
  const { pool, opts } = await setup(t);
  const tun = await pool.connect(opts());
  await roundTrip(tun, 'x');
  tun.end();
  await pool.close(1000);
  await assert.rejects(pool.connect(opts()), (e: unknown) => e instanceof ProxyError && e.code === 'FERRY_DRAINING');
});
