// The pod gateway relay with real sockets: its listener is made inside the given netns (here this process's
// own, through the same setns path), bytes go both ways unchanged, a half-close reaches the other side
// (a TLS close_notify then FIN must not be cut short), and close() ends open relayed connections. The relay
// in the bridge netns of a cluster is covered by test/e2e/api-waypoint.test.ts.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { startPodGatewayRelay } from '../../../src/local-cluster/pod-gateway-relay.ts';
import { freePorts } from '../../../src/local-cluster/ports.ts';
import { silentLogger } from '../../../src/runtime/logger.ts';
import { privilegedTest } from '../../../testkit/privileged.ts';

privilegedTest('relays bytes both ways, keeps half-close, and closes what it relays', async (t) => {
  // Upstream: answers each connection with what it got, once the client has finished sending.
  const upstream = createServer({ allowHalfOpen: true }, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => s.end(Buffer.concat([Buffer.from('got:'), ...chunks])));
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  t.after(() => upstream.close());
  const upstreamPort = (upstream.address() as { port: number }).port;
  const [relayPort] = await freePorts(1);
  assert.ok(relayPort !== undefined);
  const relay = await startPodGatewayRelay({
    netnsPath: '/proc/self/ns/net',
    address: '127.0.0.1',
    routes: [{ port: relayPort, target: { host: '127.0.0.1', port: upstreamPort } }],
    log: silentLogger,
  });
  let closed = false;
  t.after(() => (closed ? undefined : relay.close()));

  const client = connect({ host: '127.0.0.1', port: relayPort, allowHalfOpen: true });
  await once(client, 'connect');
  client.end('hello'); // half-close: the answer must still come back
  const answer: Buffer[] = [];
  client.on('data', (c: Buffer) => answer.push(c));
  await once(client, 'end');
  assert.equal(Buffer.concat(answer).toString(), 'got:hello');
  client.destroy();

  const open: Socket = connect({ host: '127.0.0.1', port: relayPort });
  open.on('error', () => undefined); // a reset is one way for close() to end it
  await once(open, 'connect');
  const ended = once(open, 'close');
  await relay.close();
  closed = true;
  await ended;
});
