// The cluster DNS server over real sockets (src/local-cluster/dns/server.ts): node:dns's resolver (c-ares,
// UDP with TCP fallback) asks it cluster names, forwarded names (a second DnsServer stands in for the
// host's resolver, serving another zone), and hostile clients (garbage datagrams, stalled and flooding TCP
// connections) never stop it from answering.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import dnsPacket from 'dns-packet';
import { buildDnsRecords, type DnsInput } from '../../src/local-cluster/dns/records.ts';
import { DnsServer, type DnsServerLimits } from '../../src/local-cluster/dns/server.ts';
import { createUpstream, type Upstream } from '../../src/local-cluster/dns/upstream.ts';
import { silentLogger } from '../../src/runtime/logger.ts';

const execFileP = promisify(execFile);

const cluster: DnsInput = {
  services: [
    {
      namespace: 'demo',
      name: 'echo',
      clusterIps: ['10.96.0.1'],
      endpointIps: [],
      ports: [{ name: 'http', port: 80, protocol: 'tcp' }],
    },
    {
      namespace: 'demo',
      name: 'big',
      clusterIps: [],
      endpointIps: Array.from({ length: 40 }, (_, i) => `10.244.1.${i + 2}`),
      ports: [],
    },
  ],
  pods: [{ namespace: 'demo', name: 'client', ips: ['10.244.0.3'] }],
};

/** A free port for both UDP and TCP on 127.0.0.1 (c-ares falls back to TCP on the same port). */
async function freeDualPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const tcp = createServer();
    tcp.listen(0, '127.0.0.1');
    await once(tcp, 'listening');
    const port = (tcp.address() as { port: number }).port;
    const udp = createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    udp.close();
    tcp.close();
    if (ok) return port;
  }
  throw new Error('no free UDP+TCP port');
}

async function startDns(
  t: TestContext,
  input: DnsInput,
  opts: { domain?: string; upstream?: Upstream | null; limits?: Partial<DnsServerLimits> } = {},
): Promise<{ server: DnsServer; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const port = await freeDualPort();
    try {
      const server = await DnsServer.start({
        udp: { host: '127.0.0.1', port },
        tcp: { host: '127.0.0.1', port },
        records: buildDnsRecords(input, opts.domain),
        upstream: opts.upstream ?? null,
        log: silentLogger,
        ...(opts.limits === undefined ? {} : { limits: opts.limits }),
      });
      t.after(() => server.close());
      return { server, port };
    } catch (err) {
      if (attempt > 5) throw err; // the port was taken between the probe and the bind
    }
  }
}

function resolverFor(port: number): Resolver {
  const r = new Resolver({ timeout: 2_000, tries: 1 });
  r.setServers([`127.0.0.1:${port}`]);
  return r;
}

async function udpExchange(port: number, msg: Buffer, timeoutMs = 1_000): Promise<Buffer | null> {
  const s = createSocket('udp4');
  try {
    s.connect(port, '127.0.0.1');
    await once(s, 'connect');
    s.send(msg);
    const reply = await Promise.race([
      once(s, 'message').then(([m]) => m as Buffer),
      new Promise<null>((resolve) => setTimeout(resolve, timeoutMs, null).unref()),
    ]);
    return reply;
  } finally {
    s.close();
  }
}

function query(name: string, type: 'A' | 'AAAA' | 'SRV', id = 99): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type }] });
}

test('node:dns resolves services, SRV and pods; unknown names are ENOTFOUND, AAAA is ENODATA', async (t) => {
  const { port } = await startDns(t, cluster);
  const r = resolverFor(port);
  assert.deepEqual(await r.resolve4('echo.demo.svc.cluster.local'), ['10.96.0.1']);
  assert.deepEqual(await r.resolve4('ECHO.demo.SVC.cluster.local'), ['10.96.0.1']);
  assert.deepEqual(await r.resolveSrv('_http._tcp.echo.demo.svc.cluster.local'), [
    { name: 'echo.demo.svc.cluster.local', port: 80, priority: 0, weight: 100, type: 'SRV' },
  ]);
  assert.deepEqual(await r.resolve4('10-244-0-3.demo.pod.cluster.local'), ['10.244.0.3']);
  await assert.rejects(r.resolve4('nope.demo.svc.cluster.local'), { code: 'ENOTFOUND' });
  await assert.rejects(r.resolve6('echo.demo.svc.cluster.local'), { code: 'ENODATA' });
});

test('a large headless answer is truncated over UDP and complete over TCP (the resolver retries)', async (t) => {
  const { server, port } = await startDns(t, cluster);
  const udp = await udpExchange(port, query('big.demo.svc.cluster.local', 'A'));
  assert.ok(udp !== null);
  const decoded = dnsPacket.decode(udp);
  assert.equal(decoded.flag_tc, true);
  assert.ok(udp.length <= 512);
  const all = await resolverFor(port).resolve4('big.demo.svc.cluster.local');
  assert.equal(all.length, 40);
  assert.ok(server.stats.queries >= 2);
});

test('update() swaps the table: the next query sees the new service', async (t) => {
  const { server, port } = await startDns(t, cluster);
  const r = resolverFor(port);
  await assert.rejects(r.resolve4('new.demo.svc.cluster.local'), { code: 'ENOTFOUND' });
  server.update(
    buildDnsRecords({
      ...cluster,
      services: [
        ...cluster.services,
        { namespace: 'demo', name: 'new', clusterIps: ['10.96.0.9'], endpointIps: [], ports: [] },
      ],
    }),
  );
  assert.deepEqual(await r.resolve4('new.demo.svc.cluster.local'), ['10.96.0.9']);
});

test('names outside the cluster domain are forwarded to the upstream; a dead upstream gives SERVFAIL in time', async (t) => {
  const upstreamDns = await startDns(
    t,
    { services: [{ namespace: 'x', name: 'www', clusterIps: ['192.0.2.7'], endpointIps: [], ports: [] }], pods: [] },
    { domain: 'example.test' },
  );
  const upstream = createUpstream({ servers: [{ host: '127.0.0.1', port: upstreamDns.port }] });
  const { server, port } = await startDns(t, cluster, { upstream });
  const r = resolverFor(port);
  assert.deepEqual(await r.resolve4('www.x.svc.example.test'), ['192.0.2.7']);
  await assert.rejects(r.resolve4('missing.x.svc.example.test'), { code: 'ENOTFOUND' }); // upstream's NXDOMAIN relayed
  assert.equal(server.stats.forwarded, 2);

  // An upstream that never answers (a bound socket that reads nothing).
  const blackhole = createSocket('udp4');
  blackhole.bind(0, '127.0.0.1');
  await once(blackhole, 'listening');
  t.after(() => blackhole.close());
  const dead = createUpstream({
    servers: [{ host: '127.0.0.1', port: blackhole.address().port }],
    attemptTimeoutMs: 300,
  });
  const other = await startDns(t, cluster, { upstream: dead, limits: { forwardTimeoutMs: 500 } });
  const started = performance.now();
  const reply = await udpExchange(other.port, query('www.example.org', 'A', 7), 3_000);
  assert.ok(reply !== null, 'answered, not silently dropped');
  assert.equal((dnsPacket.decode(reply) as unknown as { rcode: string }).rcode, 'SERVFAIL');
  assert.ok(performance.now() - started < 2_000, 'SERVFAIL within the forward budget');
});

test('garbage datagrams get FORMERR or nothing, and the server keeps answering', async (t) => {
  const { server, port } = await startDns(t, cluster);
  const formerr = await udpExchange(
    port,
    Buffer.concat([query('echo.demo.svc.cluster.local', 'A', 5).subarray(0, 14)]),
  );
  assert.ok(formerr !== null);
  assert.equal(formerr.readUInt16BE(0), 5);
  assert.equal(formerr.readUInt16BE(2) & 0xf, 1, 'FORMERR');
  assert.equal(await udpExchange(port, Buffer.from([1, 2, 3]), 300), null, 'too short for a header: dropped');
  const s = createSocket('udp4');
  for (let i = 0; i < 200; i++)
    s.send(Buffer.from(Array.from({ length: 40 }, () => (i * 31) & 0xff)), port, '127.0.0.1');
  s.close();
  assert.deepEqual(await resolverFor(port).resolve4('echo.demo.svc.cluster.local'), ['10.96.0.1']);
  assert.ok(server.stats.dropped >= 1);
});

test('TCP: pipelined queries on one connection, idle connections closed, connection cap enforced', async (t) => {
  const { server, port } = await startDns(t, cluster, { limits: { tcpIdleTimeoutMs: 300, maxTcpConnections: 4 } });
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const frames = [1, 2, 3].map((id) => {
    const q = query('echo.demo.svc.cluster.local', 'A', id);
    const f = Buffer.alloc(2 + q.length);
    f.writeUInt16BE(q.length, 0);
    q.copy(f, 2);
    return f;
  });
  socket.write(Buffer.concat(frames));
  const ids = await readTcpReplies(socket, 3);
  assert.deepEqual(ids.sort(), [1, 2, 3]);
  const closedAt = performance.now();
  await once(socket, 'close'); // idle: closed by the server
  assert.ok(performance.now() - closedAt < 2_000);

  const held: Socket[] = [];
  t.after(() => {
    for (const s of held) s.destroy();
  });
  for (let i = 0; i < 6; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    held.push(s);
    await once(s, 'connect');
  }
  await waitFor(() => server.stats.tcpRejected >= 2);
  assert.equal(server.stats.tcpRejected, 2);
  // A half-sent frame then silence: still closed by the idle timeout.
  const partial = connect(port, '127.0.0.1');
  partial.on('error', () => undefined);
  partial.write(Buffer.from([0, 50, 1, 2]));
  for (const s of held) s.destroy();
  await once(partial, 'close');
});

function readTcpReplies(socket: Socket, count: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const ids: number[] = [];
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        ids.push(msg.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
      }
      if (ids.length >= count) {
        socket.off('data', onData);
        resolve(ids);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed after ${ids.length} replies`)));
  });
}

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
}

test('dig (bind9-dnsutils) over UDP and TCP: answers, NXDOMAIN with SOA, SRV, and EDNS', async (t) => {
  const dig = await execFileP('dig', ['-v']).then(
    () => true,
    () => false,
  );
  if (!dig) {
    t.skip('dig not installed (apt-get install bind9-dnsutils)');
    return;
  }
  const { port } = await startDns(t, cluster);
  const ask = async (...args: string[]) =>
    (await execFileP('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', ...args])).stdout;
  assert.match(await ask('+short', 'echo.demo.svc.cluster.local', 'A'), /^10\.96\.0\.1$/m);
  assert.match(await ask('+short', '+tcp', 'echo.demo.svc.cluster.local', 'A'), /^10\.96\.0\.1$/m);
  const nx = await ask('nope.demo.svc.cluster.local', 'A');
  assert.match(nx, /status: NXDOMAIN/);
  assert.match(nx, /flags: qr aa rd ra/);
  assert.match(nx, /AUTHORITY SECTION:\s+cluster\.local\.\s+5\s+IN\s+SOA/);
  assert.match(
    await ask('+short', '_http._tcp.echo.demo.svc.cluster.local', 'SRV'),
    /^0 100 80 echo\.demo\.svc\.cluster\.local\.$/m,
  );
  const big = await ask('+bufsize=1232', 'big.demo.svc.cluster.local', 'A');
  assert.match(big, /status: NOERROR/);
  assert.match(big, /EDNS: version: 0.*udp: 1232/);
  assert.match(big, /ANSWER: 40/, 'dig retries over TCP after the TC answer and gets all 40');
});
