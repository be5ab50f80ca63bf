// Traffic through two ztunnel processes (CA, node-a with SOCKS5, node-b; each its own OS process): by pod
// IP, by Service VIP with weighted load balancing, passthrough outside the mesh, 10 MiB byte-exact both
// ways, half-close in both orders, and 100 concurrent tunnels sharing one pooled HTTP/2 connection.
// This file owns 127.0.1.0/24.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  accessLine,
  closedBy,
  type MeshProcesses,
  namedEcho,
  readAll,
  readLine,
  startApp,
  startMeshProcesses,
} from '../helpers/mesh-processes.ts';
import { socks5Dial } from '../helpers/socks5-client.ts';

const P = '127.0.1';
const CLIENT = `${P}.2`;
const ECHO1 = `${P}.3`;
const ECHO2 = `${P}.4`;
const OUTSIDE = `${P}.9`;
const VIP = '127.10.1.1';
const ECHO_PORT = 8080;
const BULK_PORT = 8081;
const HALF_CLOSE_PORT = 8082;
const SERVER_FIRST_PORT = 8083;

const YAML = `
workloads:
- uid: Kubernetes//Pod/default/client
  name: client
  namespace: default
  serviceAccount: client
  workloadIps: ["${CLIENT}"]
  protocol: HBONE
  node: node-a
- uid: Kubernetes//Pod/default/echo-1
  name: echo-1
  namespace: default
  serviceAccount: echo
  workloadIps: ["${ECHO1}"]
  protocol: HBONE
  node: node-b
  capacity: 1
  services:
    "default/echo.default.svc.cluster.local": {80: ${ECHO_PORT}}
- uid: Kubernetes//Pod/default/echo-2
  name: echo-2
  namespace: default
  serviceAccount: echo
  workloadIps: ["${ECHO2}"]
  protocol: HBONE
  node: node-b
  capacity: 3
  services:
    "default/echo.default.svc.cluster.local": {80: ${ECHO_PORT}}
services:
- name: echo
  namespace: default
  hostname: echo.default.svc.cluster.local
  vips: ["/${VIP}"]
  ports: {80: ${ECHO_PORT}}
`;

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});
const register = (fn: () => unknown): void => {
  cleanups.push(fn);
};

let mesh: MeshProcesses;
const bulkReceived: Array<Promise<string>> = [];
const lateData: Array<Promise<string>> = [];
const BULK = randomBytes(10 * 1024 * 1024);

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

before(async () => {
  await startApp(ECHO1, ECHO_PORT, namedEcho('echo-1'), register);
  await startApp(ECHO2, ECHO_PORT, namedEcho('echo-2'), register);
  await startApp(OUTSIDE, 9090, namedEcho('outside'), register);
  // Sends its own 10 MiB while hashing what arrives; ends after the client ended.
  await startApp(
    ECHO1,
    BULK_PORT,
    (s) => {
      const hash = createHash('sha256');
      s.on('data', (c: Buffer) => hash.update(c));
      bulkReceived.push(once(s, 'end').then(() => hash.digest('hex')));
      s.write(BULK, () => {});
      s.once('end', () => s.end());
    },
    register,
  );
  // Answers only after the client half-closed: data must still flow back to a client that ended.
  await startApp(
    ECHO1,
    HALF_CLOSE_PORT,
    (s) => {
      let n = 0;
      s.on('data', (c: Buffer) => {
        n += c.length;
      });
      s.once('end', () => s.end(`got ${n} bytes after your end\n`));
    },
    register,
  );
  // Ends first, keeps reading: the client may still send after the server's FIN.
  await startApp(
    ECHO1,
    SERVER_FIRST_PORT,
    (s) => {
      lateData.push(readAll(s).then(String));
      s.end('server done\n');
    },
    register,
  );
  mesh = await startMeshProcesses(register, { yaml: YAML, prefix: P });
});

function dial(host: string, port: number): Promise<net.Socket> {
  return socks5Dial({ proxy: mesh.socks5, target: { host, port }, localAddress: CLIENT });
}

describe('ztunnel processes: traffic through SOCKS5', () => {
  it('reaches a workload by pod IP over mTLS; node-b logs the caller identity', async () => {
    const s = await dial(ECHO1, ECHO_PORT);
    assert.equal(await readLine(s), 'echo-1');
    s.write('ping\n');
    assert.equal(await readLine(s), 'ping');
    s.end();
    await closedBy(s);
    const inbound = await accessLine(
      mesh.b.proc,
      (l) => l.direction === 'inbound' && l['dst.workload'] === 'echo-1' && l.bytes_sent === 5,
      'inbound access log',
    );
    assert.equal(inbound['src.identity'], 'spiffe://cluster.local/ns/default/sa/client');
    assert.equal(inbound.msg, 'connection complete');
    const outbound = await accessLine(
      mesh.a.proc,
      (l) => l.direction === 'outbound' && l['dst.hbone_addr'] === `${ECHO1}:${ECHO_PORT}`,
      'outbound access log',
    );
    assert.equal(outbound['dst.addr'], `${ECHO1}:15008`);
  });

  it('balances a Service VIP by endpoint capacity (1 vs 3 → about 25/75 over 200 connections)', async () => {
    const counts = new Map<string, number>();
    const one = async (): Promise<void> => {
      const s = await dial(VIP, 80);
      const who = await readLine(s);
      counts.set(who, (counts.get(who) ?? 0) + 1);
      s.end();
      await closedBy(s);
    };
    for (let batch = 0; batch < 10; batch++) await Promise.all(Array.from({ length: 20 }, one));
    const e1 = counts.get('echo-1') ?? 0;
    const e2 = counts.get('echo-2') ?? 0;
    assert.equal(e1 + e2, 200, `unexpected replies: ${JSON.stringify([...counts])}`);
    // Expected 50 ± 6 (binomial, p = 0.25): the band is about ±4.5σ wide, so it never flakes.
    assert.ok(e1 >= 23 && e1 <= 80, `echo-1 got ${e1}/200, expected about 50`);
    assert.ok(e2 > e1, `echo-2 (capacity 3) got ${e2}, echo-1 (capacity 1) got ${e1}`);
  });

  it('passes a non-mesh destination through as plain TCP', async () => {
    const s = await dial(OUTSIDE, 9090);
    assert.equal(await readLine(s), 'outside');
    s.end();
    await closedBy(s);
    const line = await accessLine(
      mesh.a.proc,
      (l) => l.direction === 'outbound' && l['dst.addr'] === `${OUTSIDE}:9090`,
      'passthrough access log',
    );
    assert.equal(line['dst.hbone_addr'], undefined);
    assert.equal(line['dst.identity'], undefined);
  });

  it('carries 10 MiB byte-exact in both directions at once', async () => {
    const s = await dial(ECHO1, BULK_PORT);
    const received = readAll(s);
    s.end(BULK);
    const back = await received;
    assert.equal(back.length, BULK.length);
    assert.equal(sha256(back), sha256(BULK), 'server → client bytes differ');
    const serverSaw = bulkReceived.at(-1);
    assert.ok(serverSaw !== undefined);
    assert.equal(await serverSaw, sha256(BULK), 'client → server bytes differ');
  });

  it('half-close: the client ends its side and still receives what the server sends after', async () => {
    const s = await dial(ECHO1, HALF_CLOSE_PORT);
    const reply = readAll(s);
    s.end('twelve bytes');
    assert.equal(String(await reply), 'got 12 bytes after your end\n');
  });

  it('half-close: the server ends first and the client can still send to it', async () => {
    const s = await dial(ECHO1, SERVER_FIRST_PORT);
    assert.equal(await readLine(s), 'server done');
    // The server's FIN arrives through both ztunnels as a FIN, not a reset or a full close.
    assert.equal(await closedBy(s), 'end');
    assert.ok(!s.writableEnded && !s.destroyed, 'the client side must still be writable');
    s.end('late data from the client');
    const got = lateData.at(-1);
    assert.ok(got !== undefined);
    assert.equal(await got, 'late data from the client');
  });

  it('100 concurrent connections share one pooled HBONE connection', async () => {
    const sockets = await Promise.all(Array.from({ length: 100 }, () => dial(ECHO1, ECHO_PORT)));
    try {
      for (const line of await Promise.all(sockets.map(readLine))) assert.equal(line, 'echo-1');
      const dump = JSON.parse((await mesh.a.http('admin', '/config_dump')).body) as {
        pool: { keys: Array<{ key: string; connections: number; streams: number }> };
      };
      const toEcho1 = dump.pool.keys.filter((k) => k.key.endsWith(`|${ECHO1}:15008`));
      // Per-connection cap is min(100, server's 200): exactly 100 streams fit in one connection.
      assert.equal(toEcho1.length, 1, JSON.stringify(dump.pool));
      assert.equal(toEcho1[0]?.connections, 1, JSON.stringify(dump.pool));
      assert.equal(toEcho1[0]?.streams, 100, JSON.stringify(dump.pool));
    } finally {
      for (const s of sockets) s.end();
      await Promise.all(sockets.map(closedBy));
    }
  });
});
