// Regression (found by the fuzzer, `npm run fuzz -- --target waypoint-http1`): the waypoint chose HTTP/2
// from the first 3 bytes of the first chunk. A request line starting with "PRI" that is not the preface got
// HTTP/2 frames back, and an h2c preface whose first chunk was shorter than 3 bytes was parsed as
// HTTP/1.1 (400). Now the whole 24-byte preface decides, however the bytes are chunked.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import { Duplex } from 'node:stream';
import { test } from 'node:test';
import { sniffHttpVersion } from '../../src/waypoint/ingress.ts';
import { meshConfig, service, waypointByHostname, workload } from '../helpers/mesh-builders.ts';
import { startWaypointHarness } from '../helpers/waypoint-harness.ts';

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
const VIP = '10.96.8.10';

test('sniffHttpVersion: the whole preface means h2c, a strict prefix asks for more, anything else is HTTP/1', () => {
  const cases: [string, ReturnType<typeof sniffHttpVersion>][] = [
    ['', 'more'],
    ['P', 'more'],
    ['PRI * HTTP/2.0\r\n', 'more'],
    [PREFACE, 'http2'],
    [`${PREFACE}\x00\x00\x00\x04`, 'http2'],
    ['PRI / HTTP/1.1\r\n\r\n', 'http1'],
    ['PRIX', 'http1'],
    ['GET / HTTP/1.1\r\n', 'http1'],
    ['Q', 'http1'],
  ];
  for (const [bytes, expected] of cases) {
    assert.equal(sniffHttpVersion(Buffer.from(bytes, 'latin1')), expected, JSON.stringify(bytes));
  }
});

/** A duplex over `inner` that sends the first write as two writes, `splitAt` bytes then the rest, 20 ms apart. */
function splittingFirstWrite(inner: Duplex, splitAt: number): Duplex {
  let first = true;
  const outer = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      if (!first) return inner.write(chunk, cb);
      first = false;
      inner.write(chunk.subarray(0, splitAt));
      setTimeout(() => inner.write(chunk.subarray(splitAt), cb), 20);
    },
    read() {
      inner.resume();
    },
    final(cb) {
      inner.end(cb);
    },
    destroy(err, cb) {
      inner.destroy(err ?? undefined);
      cb(err);
    },
  });
  inner.on('data', (c: Buffer) => {
    if (!outer.push(c)) inner.pause();
  });
  inner.on('end', () => outer.push(null));
  inner.on('error', (e) => outer.destroy(e));
  return outer;
}

test('waypoint protocol detection does not depend on how the first bytes are chunked', async (t) => {
  const h = await startWaypointHarness(t, [{ name: 'echo-p', ip: '127.0.0.73' }], () => ({
    mesh: meshConfig({
      workloads: [
        workload('echo-p', '127.0.0.73', { services: { 'default/echo.default.svc.cluster.local': { 80: 8080 } } }),
      ],
      services: [
        {
          ...service('echo', VIP, { ports: { 80: 8080 } }),
          waypoint: waypointByHostname('default', 'waypoint.default.svc.cluster.local'),
        },
      ],
    }),
  }));

  await t.test('a request line starting with PRI that is not the preface gets an HTTP/1.1 answer', async () => {
    const tunnel = await h.openTunnel(VIP, 80);
    tunnel.on('error', () => {});
    const chunks: Buffer[] = [];
    tunnel.on('data', (c: Buffer) => chunks.push(c));
    tunnel.end('PRI / HTTP/1.1\r\nHost: echo\r\n\r\n');
    await Promise.race([once(tunnel, 'end'), once(tunnel, 'close')]);
    assert.match(Buffer.concat(chunks).toString('latin1'), /^HTTP\/1\.1 \d{3} /);
    tunnel.destroy();
  });

  for (const splitAt of [1, 2, 5]) {
    await t.test(`an h2c preface whose first chunk is ${splitAt} byte(s) is still h2c`, async () => {
      const tunnel = splittingFirstWrite(await h.openTunnel(VIP, 80), splitAt);
      const session = http2.connect(`http://${VIP}`, { createConnection: () => tunnel as never });
      session.on('error', () => {});
      t.after(() => session.destroy());
      const stream = session.request({ ':path': '/split', ':method': 'GET' });
      stream.on('error', () => {});
      const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
      stream.resume();
      await once(stream, 'end');
      assert.equal(headers[':status'], 200);
    });
  }
});
