// splice() between real sockets: byte counts each way, half-close, resets that end a splice without being
// errors, and abort for late policy rejection.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { splice } from '../../src/ztunnel/splice.ts';
import { startTcpServer } from '../helpers/echo-server.ts';

/** A connected TCP pair [client side, server side], both allowHalfOpen, destroyed after the test. */
async function pair(t: TestContext): Promise<[Socket, Socket]> {
  const { promise, resolve } = Promise.withResolvers<Socket>();
  const server = await startTcpServer(resolve);
  t.after(() => server.close());
  const client = netConnect({ host: server.ip, port: server.port, allowHalfOpen: true });
  client.on('error', () => {});
  t.after(() => client.destroy());
  await once(client, 'connect');
  return [client, await promise];
}

function drain(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return once(s, 'end').then(() => Buffer.concat(chunks));
}

test('splice counts bytes each way and ends after both half-closes', async (t) => {
  const [downClient, downServer] = await pair(t);
  const [upClient, upServer] = await pair(t);
  const done = splice(downServer, upClient);
  const up = randomBytes(300_000);
  const down = randomBytes(123_456);
  const atUpstream = drain(upServer);
  const atDownstream = drain(downClient);
  downClient.end(up);
  assert.ok((await atUpstream).equals(up)); // downstream FIN reached the upstream…
  upServer.end(down); // …which can still answer
  assert.ok((await atDownstream).equals(down));
  const result = await done;
  assert.deepEqual(result, { bytesSent: up.length, bytesReceived: down.length });
});

test('a reset on one side ends the splice without an error and closes the other side', async (t) => {
  const [downClient, downServer] = await pair(t);
  const [upClient, upServer] = await pair(t);
  const done = splice(downServer, upClient);
  downClient.write('x');
  await once(upServer, 'data');
  upServer.resetAndDestroy();
  const result = await done;
  assert.equal(result.error, undefined);
  assert.equal(result.bytesSent, 1);
  downClient.resume();
  await once(downClient, 'end'); // the downstream sees its connection end
});

test('abort tears both sides down and reports the reason', async (t) => {
  const [downClient, downServer] = await pair(t);
  const [upClient, upServer] = await pair(t);
  const ac = new AbortController();
  const done = splice(downServer, upClient, { signal: ac.signal });
  const reason = new Error('connection closed due to policy change');
  ac.abort(reason);
  const result = await done;
  assert.equal(result.error, reason);
  downClient.resume();
  upServer.resume();
  await Promise.all([once(downClient, 'end'), once(upServer, 'end')]);
});

test('bulk and small chunks from the peer reach the socket intact and in order (writes are coalesced)', async (t) => {
  const [downClient, downServer] = await pair(t);
  const [upClient, upServer] = await pair(t);
  const done = splice(downServer, upClient);
  // Alternating small and bulk-sized writes: the bulk ones cork the socket, the small ones join them.
  const parts = Array.from({ length: 200 }, (_, i) => randomBytes(i % 2 === 0 ? 100 : 20_000 + i));
  const down = Buffer.concat(parts);
  const atDownstream = drain(downClient);
  for (const p of parts) upServer.write(p);
  upServer.end();
  assert.ok((await atDownstream).equals(down));
  downClient.end();
  const result = await done;
  assert.deepEqual(result, { bytesSent: 0, bytesReceived: down.length });
});
