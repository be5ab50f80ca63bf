// Failure handling of separate ztunnel processes: upstream refused (503), policy deny (401), late rejection
// after a SIGHUP reload, a bad config on SIGHUP, certificate and SAN checks on the HBONE listener, 400s for
// bad CONNECTs, and hostile bytes on 15008, the SOCKS5 port and the CA port. This file owns 127.0.2.0/24.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import type { LogLine } from '../../src/cli/child-process.ts';
import { CaClient } from '../../src/identity/ca-client.ts';
import type { SpiffeId } from '../../src/identity/spiffe-id.ts';
import type { WorkloadCertificate } from '../../src/identity/workload-certificate.ts';
import { openRawHboneSession, rawRequest } from '../helpers/hbone-client.ts';
import {
  accessLine,
  closedBy,
  errorCode,
  type MeshProcesses,
  namedEcho,
  readLine,
  sa,
  startApp,
  startMeshProcesses,
} from '../helpers/mesh-processes.ts';
import { socks5Connect, socks5Dial } from '../helpers/socks5-client.ts';
import { createTestPki } from '../helpers/test-pki.ts';

const P = '127.0.2';
const CLIENT = `${P}.2`;
const ECHO = `${P}.3`;
const LOCKED = `${P}.4`;
const LATE = `${P}.5`;
const APP_PORT = 8080;
const NOTHING_PORT = 8099; // no app listens here
const HBONE = { ip: ECHO, port: 15008 };

function yaml(latePolicies: readonly string[]): string {
  const wl = (name: string, ip: string, policies: readonly string[]): string => `
- uid: Kubernetes//Pod/default/${name}
  name: ${name}
  namespace: default
  serviceAccount: ${name}
  workloadIps: ["${ip}"]
  protocol: HBONE
  node: node-b
  authorizationPolicies: ${JSON.stringify(policies)}`;
  return `
workloads:
- uid: Kubernetes//Pod/default/client
  name: client
  namespace: default
  serviceAccount: client
  workloadIps: ["${CLIENT}"]
  protocol: HBONE
  node: node-a
${wl('echo', ECHO, [])}
${wl('locked', LOCKED, ['default/deny-client'])}
${wl('late', LATE, latePolicies)}
policies:
- name: deny-client
  namespace: default
  scope: WorkloadSelector
  action: Deny
  rules:
  - - - principals: ["cluster.local/ns/default/sa/client"]
`;
}

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});
const register = (fn: () => unknown): void => {
  cleanups.push(fn);
};

let mesh: MeshProcesses;
let clientCert: WorkloadCertificate;

before(async () => {
  for (const [ip, name] of [
    [ECHO, 'echo'],
    [LOCKED, 'locked'],
    [LATE, 'late'],
  ] as const) {
    await startApp(ip, APP_PORT, namedEcho(name), register);
  }
  mesh = await startMeshProcesses(register, { yaml: yaml([]), prefix: P });
  clientCert = await mesh.pki.issue(sa('default', 'client'));
});

/** A line predicate that only matches lines logged from now on. */
function fromNow(proc: MeshProcesses['b']['proc'], pred: (l: LogLine) => boolean): (l: LogLine) => boolean {
  const old = new Set(proc.lines);
  return (l) => !old.has(l) && pred(l);
}

async function echoWorks(ip = ECHO, name = 'echo'): Promise<void> {
  const s = await socks5Dial({ proxy: mesh.socks5, target: { host: ip, port: APP_PORT }, localAddress: CLIENT });
  assert.equal(await readLine(s), name);
  s.end();
  await closedBy(s);
}

function stillRunning(): void {
  for (const p of [mesh.ca, mesh.a.proc, mesh.b.proc]) assert.equal(p.child.exitCode, null, `${p.name} exited`);
}

type Attempt =
  | { readonly kind: 'refused'; readonly why: string }
  | { readonly kind: 'status'; readonly status: number };

/** One CONNECT over a raw mTLS session to B's listener; any failure before a response is 'refused'. */
async function attempt(
  cert: WorkloadCertificate,
  expected: readonly SpiffeId[],
  headers: Record<string, string> = { ':method': 'CONNECT', ':authority': `${ECHO}:${APP_PORT}` },
): Promise<Attempt> {
  let session: Awaited<ReturnType<typeof openRawHboneSession>> | undefined;
  try {
    session = await openRawHboneSession(HBONE, cert, expected);
    const r = await rawRequest(session, headers);
    return r.status === null ? { kind: 'refused', why: `reset ${r.rstCode}` } : { kind: 'status', status: r.status };
  } catch (err) {
    return { kind: 'refused', why: (err as Error).message };
  } finally {
    session?.destroy();
  }
}

describe('ztunnel processes: refusals', () => {
  it('upstream refused: SOCKS5 refusal, connection closed, 503 on the wire', async () => {
    const b = fromNow(mesh.b.proc, () => true);
    const a = fromNow(mesh.a.proc, () => true);
    const out = await socks5Connect({
      proxy: mesh.socks5,
      target: { host: ECHO, port: NOTHING_PORT },
      localAddress: CLIENT,
    });
    assert.equal(out.ok, false);
    if (out.ok) return;
    assert.notEqual(out.rep, 0);
    await out.closed;
    const inbound = await accessLine(mesh.b.proc, (l) => b(l) && l.direction === 'inbound', 'B access log');
    assert.equal(errorCode(inbound), 'FERRY_UPSTREAM_CONNECT_FAILED');
    const outbound = await accessLine(mesh.a.proc, (l) => a(l) && l.direction === 'outbound', 'A access log');
    assert.equal(errorCode(outbound), 'FERRY_HBONE_UPSTREAM_STATUS');
    assert.match(String((outbound.error as { message?: string }).message), /\b503\b/);
  });

  it('authz DENY: client refused, B logs the policy, A saw 401', async () => {
    const b = fromNow(mesh.b.proc, () => true);
    const a = fromNow(mesh.a.proc, () => true);
    const out = await socks5Connect({
      proxy: mesh.socks5,
      target: { host: LOCKED, port: APP_PORT },
      localAddress: CLIENT,
    });
    assert.equal(out.ok, false);
    if (out.ok) return;
    assert.notEqual(out.rep, 0);
    await out.closed;
    const inbound = await accessLine(mesh.b.proc, (l) => b(l) && l.direction === 'inbound', 'B access log');
    assert.equal(errorCode(inbound), 'FERRY_AUTHZ_DENIED');
    assert.equal(inbound.policy, 'default/deny-client');
    assert.equal(inbound['src.identity'], 'spiffe://cluster.local/ns/default/sa/client');
    const outbound = await accessLine(mesh.a.proc, (l) => a(l) && l.direction === 'outbound', 'A access log');
    assert.equal(errorCode(outbound), 'FERRY_HBONE_UPSTREAM_STATUS');
    assert.match(String((outbound.error as { message?: string }).message), /\b401\b/);
    // The peer learns nothing about the policy: only the status.
    assert.doesNotMatch(String((outbound.error as { message?: string }).message), /deny-client/);
  });

  it('a policy change on SIGHUP closes a live connection it now denies', async () => {
    const s = await socks5Dial({ proxy: mesh.socks5, target: { host: LATE, port: APP_PORT }, localAddress: CLIENT });
    assert.equal(await readLine(s), 'late');
    const closed = closedBy(s);
    const reloaded = fromNow(mesh.b.proc, (l) => l.msg === 'config applied');
    const rejected = fromNow(mesh.b.proc, (l) => l.scope === 'access' && errorCode(l) === 'FERRY_AUTHZ_LATE_REJECTION');
    await mesh.writeConfig(yaml(['default/deny-client']));
    mesh.b.proc.child.kill('SIGHUP');
    await mesh.b.proc.waitFor(reloaded, 'config applied');
    await closed;
    const line = await mesh.b.proc.waitFor(rejected, 'late rejection');
    assert.equal(line['dst.workload'], 'late');
    assert.match(String((line.error as { message?: string }).message), /default\/deny-client/);
    // New connections are refused too.
    const again = await socks5Connect({
      proxy: mesh.socks5,
      target: { host: LATE, port: APP_PORT },
      localAddress: CLIENT,
    });
    assert.equal(again.ok, false);
  });

  it('a bad config on SIGHUP is rejected naming file:line and field; the old config keeps serving', async () => {
    const good = yaml(['default/deny-client']);
    const bad = good.replace(`workloadIps: ["${ECHO}"]`, 'workloadIps: ["not-an-ip"]');
    assert.notEqual(bad, good);
    const errorLine = fromNow(mesh.b.proc, (l) => l.level === 'error' && l.code === 'FERRY_CONFIG_INVALID_VALUE');
    const kept = fromNow(mesh.b.proc, (l) => l.msg === 'config rejected; keeping the running config');
    await mesh.writeConfig(bad);
    mesh.b.proc.child.kill('SIGHUP');
    const err = await mesh.b.proc.waitFor(errorLine, 'config error');
    await mesh.b.proc.waitFor(kept, 'config rejected');
    const badLine = bad.split('\n').findIndex((l) => l.includes('not-an-ip')) + 1;
    assert.match(String(err.msg), new RegExp(`mesh\\.yaml:${badLine}:\\d+: workloads\\[\\d+\\]\\.workloadIps\\[0\\]`));
    assert.equal(err.path, 'workloads[1].workloadIps[0]');
    await echoWorks();
    await mesh.writeConfig(good);
    stillRunning();
  });
});

describe('ztunnel processes: the HBONE listener checks certificates and requests', () => {
  it('accepts a valid client certificate (baseline)', async () => {
    assert.deepEqual(await attempt(clientCert, [sa('default', 'echo')]), { kind: 'status', status: 200 });
  });

  it('refuses a client certificate from another trust domain (signed by the trusted CA)', async () => {
    const seen = fromNow(mesh.b.proc, (l) => l.code === 'FERRY_HBONE_TRUST_DOMAIN_MISMATCH');
    const foreign = await mesh.pki.issue(sa('default', 'client', 'evil.example'));
    const out = await attempt(foreign, [sa('default', 'echo')]);
    assert.equal(out.kind, 'refused', JSON.stringify(out));
    await mesh.b.proc.waitFor(seen, 'trust domain mismatch log');
  });

  it('refuses a client certificate from an untrusted root', async () => {
    const other = await createTestPki('cluster.local');
    const cert = await other.issue('default', 'client', { extraRootsPem: [mesh.pki.rootPem] });
    const seen = fromNow(mesh.b.proc, (l) => l.code === 'FERRY_HBONE_HANDSHAKE_FAILED');
    const out = await attempt(cert, [sa('default', 'echo')]);
    assert.equal(out.kind, 'refused', JSON.stringify(out));
    await mesh.b.proc.waitFor(seen, 'handshake failure log');
  });

  it('refuses an expired client certificate', async () => {
    const expired = await mesh.pki.issue(sa('default', 'client'), {
      notBefore: new Date(Date.now() - 48 * 3600_000),
      notAfter: new Date(Date.now() - 3600_000),
    });
    const seen = fromNow(mesh.b.proc, (l) => l.code === 'FERRY_HBONE_HANDSHAKE_FAILED');
    const out = await attempt(expired, [sa('default', 'echo')]);
    assert.equal(out.kind, 'refused', JSON.stringify(out));
    // Node itself reports this refusal as "socket hang up"; the log carries the verify result instead.
    const line = await mesh.b.proc.waitFor(seen, 'handshake failure log');
    assert.equal(line.reason, 'expired');
    assert.equal(line.tls_error, 'CERT_HAS_EXPIRED');
    assert.match(String(line.peer), /^\d+\.\d+\.\d+\.\d+:\d+$/);
  });

  it('refuses a client without a certificate (TLS alert "certificate required")', async () => {
    const seen = fromNow(mesh.b.proc, (l) => l.code === 'FERRY_HBONE_HANDSHAKE_FAILED');
    const socket = tls.connect({
      host: HBONE.ip,
      port: HBONE.port,
      ca: mesh.pki.rootPem,
      ALPNProtocols: ['h2'],
      minVersion: 'TLSv1.3',
      checkServerIdentity: () => undefined,
    });
    let error: (Error & { code?: string }) | undefined;
    socket.on('error', (err) => {
      error = err;
    });
    let received = 0;
    socket.on('data', (d: Buffer) => {
      received += d.length;
    });
    const closed = new Promise((r) => socket.once('close', r));
    // TLS 1.3: our side finishes first; the server's verdict on the (missing) certificate comes after.
    socket.once('secureConnect', () => socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')));
    await closed;
    assert.equal(error?.code, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', String(error));
    assert.equal(received, 0, 'the server must not speak HTTP/2 to a client without a certificate');
    const line = await mesh.b.proc.waitFor(seen, 'handshake failure log');
    assert.match(String(line.error), /did not return a certificate/);
  });

  it('the client refuses a server whose URI SAN is not the expected identity', async () => {
    const out = await attempt(clientCert, [sa('default', 'someone-else')]);
    assert.equal(out.kind, 'refused', JSON.stringify(out));
  });

  it('answers 400 to a non-CONNECT, a malformed authority and an authority not matching the dialed IP', async () => {
    const echoId = [sa('default', 'echo')];
    const get = { ':method': 'GET', ':path': '/', ':scheme': 'https', ':authority': `${ECHO}:${APP_PORT}` };
    assert.deepEqual(await attempt(clientCert, echoId, get), { kind: 'status', status: 400 });
    const malformed = { ':method': 'CONNECT', ':authority': 'not-an-address' };
    assert.deepEqual(await attempt(clientCert, echoId, malformed), { kind: 'status', status: 400 });
    const noPort = { ':method': 'CONNECT', ':authority': `${ECHO}` };
    assert.deepEqual(await attempt(clientCert, echoId, noPort), { kind: 'status', status: 400 });
    const mismatch = { ':method': 'CONNECT', ':authority': `${LOCKED}:${APP_PORT}` };
    assert.deepEqual(await attempt(clientCert, echoId, mismatch), { kind: 'status', status: 400 });
    assert.deepEqual(await attempt(clientCert, echoId), { kind: 'status', status: 200 });
  });
});

/** Connects, writes `bytes`, ends, and waits until the peer closed (any way). */
async function hostile(host: string, port: number, bytes: Buffer, viaTls = false): Promise<void> {
  const socket: net.Socket = viaTls
    ? tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'] })
    : net.connect({ host, port });
  socket.on('error', () => {});
  socket.resume(); // whatever the server answers is read and dropped, so its FIN can arrive
  const closed = new Promise((r) => socket.once('close', r));
  await once(socket, viaTls ? 'secureConnect' : 'connect').catch(() => {});
  if (!socket.destroyed) socket.end(bytes);
  await closed;
}

/** The first bytes a TLS client sends (a ClientHello), captured from a local listener. */
async function clientHello(): Promise<Buffer> {
  const server = net.createServer();
  server.listen(0, `${P}.30`);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const captured = new Promise<Buffer>((resolve) =>
    server.once('connection', (s) =>
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
      }),
    ),
  );
  const c = tls.connect({ host: `${P}.30`, port, ALPNProtocols: ['h2'] });
  c.on('error', () => {});
  const hello = await captured;
  c.destroy();
  server.close();
  return hello;
}

describe('ztunnel processes: hostile bytes', () => {
  it('garbage and truncated frames on 15008, the SOCKS5 port and the CA port do not stop anything', async () => {
    const hello = await clientHello();
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    const truncatedFrame = Buffer.from([0x00, 0x40, 0x00, 0x04, 0x00]); // a SETTINGS header, cut short
    const ca = mesh.caAddress;
    const socks = mesh.socks5;
    const cases: Array<[string, () => Promise<void>]> = [
      ['15008: random bytes', () => hostile(HBONE.ip, HBONE.port, randomBytes(4096))],
      ['15008: truncated ClientHello', () => hostile(HBONE.ip, HBONE.port, hello.subarray(0, hello.length >> 1))],
      ['15008: TLS then random bytes', () => hostile(HBONE.ip, HBONE.port, randomBytes(2048), true)],
      [
        '15008: TLS, preface, truncated frame',
        () => hostile(HBONE.ip, HBONE.port, Buffer.concat([preface, truncatedFrame]), true),
      ],
      ['socks5: random bytes', () => hostile(socks.host, socks.port, randomBytes(1024))],
      ['socks5: truncated greeting', () => hostile(socks.host, socks.port, Buffer.from([5, 2, 0]))],
      ['socks5: truncated request', () => hostile(socks.host, socks.port, Buffer.from([5, 1, 0, 5, 1, 0, 1, 127]))],
      ['socks5: bad domain', () => hostile(socks.host, socks.port, Buffer.from([5, 1, 0, 5, 1, 0, 3, 200, 1, 2]))],
      ['ca: random bytes', () => hostile(ca.host, ca.port, randomBytes(4096))],
      ['ca: truncated ClientHello', () => hostile(ca.host, ca.port, hello.subarray(0, 40))],
      ['ca: TLS then random bytes', () => hostile(ca.host, ca.port, randomBytes(2048), true)],
      [
        'ca: TLS, preface, truncated frame',
        () => hostile(ca.host, ca.port, Buffer.concat([preface, truncatedFrame]), true),
      ],
    ];
    for (const [name, run] of cases) {
      await run();
      stillRunning();
      await echoWorks().catch((err: unknown) => assert.fail(`after ${name}: ${String(err)}`));
    }
    // The CA still issues certificates to the next client.
    const client = await CaClient.create({
      address: `${ca.host}:${ca.port}`,
      roots: { pem: [mesh.pki.rootPem] },
    });
    try {
      const cert = await client.fetch(sa('default', 'fresh'));
      assert.equal(cert.identity.serviceAccount, 'fresh');
    } finally {
      client.close();
    }
    stillRunning();
  });
});
