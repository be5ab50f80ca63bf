// What an operator sees of separate ztunnel processes: plaintext inbound (15006 semantics, PERMISSIVE vs
// STRICT), Istio metrics with exact byte counts, /stats/prometheus, readiness, /config_dump, an
// independent TLS client (openssl s_client) against 15008, SIGTERM drain with a live connection and
// /quitquitquit. This file owns 127.0.3.0/24.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pkg from '../../package.json' with { type: 'json' };
import {
  accessLine,
  closedBy,
  errorCode,
  type MeshProcesses,
  namedEcho,
  readAll,
  readLine,
  sa,
  startApp,
  startMeshProcesses,
} from '../helpers/mesh-processes.ts';
import { parseMetrics } from '../helpers/parse-metrics.ts';

const PACKAGE_VERSION = pkg.version;

import { socks5Dial } from '../helpers/socks5-client.ts';

const run = promisify(execFile);

const P = '127.0.3';
const CLIENT = `${P}.2`;
const ECHO = `${P}.3`;
const STRICT = `${P}.4`;
const METERED = `${P}.7`;
const PERMISSIVE_ENTRY = `${P}.5:15006`;
const STRICT_ENTRY = `${P}.6:15006`;
const APP_PORT = 8080;

const YAML = `
workloads:
- uid: Kubernetes//Pod/default/client
  name: client
  namespace: default
  serviceAccount: client
  workloadIps: ["${CLIENT}"]
  protocol: HBONE
  node: node-a
- uid: Kubernetes//Pod/default/echo
  name: echo
  namespace: default
  serviceAccount: echo
  workloadIps: ["${ECHO}"]
  protocol: HBONE
  node: node-b
  services:
    "default/echo.default.svc.cluster.local": {80: ${APP_PORT}}
- uid: Kubernetes//Pod/default/strict
  name: strict
  namespace: default
  serviceAccount: strict
  workloadIps: ["${STRICT}"]
  protocol: HBONE
  node: node-b
  authorizationPolicies: ["istio-system/istio_converted_static_strict"]
- uid: Kubernetes//Pod/default/metered
  name: metered
  namespace: default
  serviceAccount: metered
  workloadIps: ["${METERED}"]
  protocol: HBONE
  node: node-b
services:
- name: echo
  namespace: default
  hostname: echo.default.svc.cluster.local
  vips: ["/127.10.3.1"]
  ports: {80: ${APP_PORT}}
policies:
- name: istio_converted_static_strict
  namespace: istio-system
  scope: WorkloadSelector
  action: Deny
  rules:
  - - - notPrincipals: [{presence: {}}]
`;

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});
const register = (fn: () => unknown): void => {
  cleanups.push(fn);
};

let mesh: MeshProcesses;

before(async () => {
  await startApp(ECHO, APP_PORT, namedEcho('echo'), register);
  await startApp(STRICT, APP_PORT, namedEcho('strict'), register);
  await startApp(METERED, APP_PORT, namedEcho('metered'), register);
  mesh = await startMeshProcesses(register, {
    yaml: YAML,
    prefix: P,
    bArgs: [
      '--plaintext-inbound',
      `${PERMISSIVE_ENTRY}=${ECHO}:${APP_PORT}`,
      '--plaintext-inbound',
      `${STRICT_ENTRY}=${STRICT}:${APP_PORT}`,
    ],
    drainDeadlineMs: 1500,
  });
});

function plainConnect(entry: string): net.Socket {
  const [host, port] = entry.split(':') as [string, string];
  return net.connect({ host, port: Number(port), localAddress: CLIENT });
}

async function scrape(path = '/metrics'): Promise<ReturnType<typeof parseMetrics>> {
  const r = await mesh.b.http('metrics', path);
  assert.equal(r.status, 200);
  return parseMetrics(r.body);
}

describe('ztunnel processes: plaintext inbound (15006 semantics)', () => {
  it('PERMISSIVE accepts plaintext: no identity, connection_security_policy unknown', async () => {
    const s = plainConnect(PERMISSIVE_ENTRY);
    assert.equal(await readLine(s), 'echo');
    s.end();
    await closedBy(s);
    const line = await accessLine(
      mesh.b.proc,
      (l) => l.direction === 'inbound' && l['dst.addr'] === `${ECHO}:${APP_PORT}` && l['src.identity'] === undefined,
      'plaintext access log',
    );
    assert.equal(line.msg, 'connection complete');
    const metrics = await scrape();
    // The build tag is the package version however the process was started (here: not by npm).
    assert.equal(metrics.sum('istio_build', { component: 'ztunnel', tag: PACKAGE_VERSION }), 1);
    const opened = metrics.sum('istio_tcp_connections_opened_total', {
      reporter: 'destination',
      destination_workload: 'echo',
      connection_security_policy: 'unknown',
    });
    assert.ok(opened >= 1, `plaintext connection not counted as unknown security policy (${opened})`);
  });

  it('STRICT resets plaintext at once and logs the static strict policy', async () => {
    const s = plainConnect(STRICT_ENTRY);
    let code: string | undefined;
    s.on('error', (err: Error & { code?: string }) => {
      code = err.code;
    });
    const received = await readAll(s).catch(() => Buffer.alloc(0));
    assert.equal(received.length, 0);
    if (!s.closed) await new Promise((r) => s.once('close', r));
    assert.equal(code, 'ECONNRESET');
    const line = await accessLine(
      mesh.b.proc,
      (l) => l.direction === 'inbound' && l['dst.workload'] === 'strict',
      'strict access log',
    );
    assert.equal(errorCode(line), 'FERRY_AUTHZ_DENIED');
    assert.equal(line.policy, 'istio-system/istio_converted_static_strict');
  });
});

describe('ztunnel processes: observability', () => {
  it('metrics on the destination carry Istio labels and exact byte counts', async () => {
    const s = await socks5Dial({ proxy: mesh.socks5, target: { host: METERED, port: APP_PORT }, localAddress: CLIENT });
    const reply = readAll(s);
    s.end(Buffer.alloc(1000, 0x61));
    const back = await reply;
    assert.equal(back.length, 'metered\n'.length + 1000);
    await accessLine(mesh.b.proc, (l) => l['dst.workload'] === 'metered', 'metered access log');
    const labels = {
      reporter: 'destination',
      source_principal: 'spiffe://cluster.local/ns/default/sa/client',
      source_workload: 'client',
      destination_workload: 'metered',
      connection_security_policy: 'mutual_tls',
    };
    const m = await scrape();
    const series = JSON.stringify(m.query('istio_tcp_connections_opened_total', { destination_workload: 'metered' }));
    assert.equal(m.sum('istio_tcp_connections_opened_total', labels), 1, series);
    assert.equal(m.sum('istio_tcp_connections_closed_total', labels), 1);
    // Istio's direction: received = request bytes (client → app), sent = response bytes.
    assert.equal(m.sum('istio_tcp_received_bytes_total', labels), 1000);
    assert.equal(m.sum('istio_tcp_sent_bytes_total', labels), back.length);
  });

  it('/stats/prometheus serves the same traffic metrics as /metrics', async () => {
    const pick = (m: ReturnType<typeof parseMetrics>): string[] =>
      m.samples
        .filter((x) => x.name.startsWith('istio_tcp_'))
        .map((x) => `${x.name}${JSON.stringify(x.labels)} ${x.value}`)
        .sort();
    const a = pick(await scrape('/metrics'));
    const b = pick(await scrape('/stats/prometheus'));
    assert.ok(a.length > 0);
    assert.deepEqual(b, a);
  });

  it('/healthz/ready answers 200 once ready', async () => {
    for (const z of [mesh.a, mesh.b]) assert.equal((await z.http('readiness', '/healthz/ready')).status, 200);
  });

  it('/config_dump shows workloads, services, policies, certificates with expiry and listeners', async () => {
    const r = await mesh.b.http('admin', '/config_dump');
    assert.equal(r.status, 200);
    const dump = JSON.parse(r.body) as Record<string, unknown>;
    const text = JSON.stringify(dump);
    for (const key of ['workloads', 'services', 'policies', 'certificates', 'listeners']) {
      assert.ok(dump[key] !== undefined, `config_dump lacks ${key}: ${Object.keys(dump).join(', ')}`);
    }
    assert.match(text, /echo\.default\.svc\.cluster\.local/);
    assert.match(text, /istio_converted_static_strict/);
    assert.match(text, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/echo/);
    assert.match(JSON.stringify(dump.certificates), /notAfter|expir/i, 'certificates carry their expiry');
    assert.match(JSON.stringify(dump.listeners), new RegExp(`${ECHO.replaceAll('.', '\\.')}:15008`));
    assert.doesNotMatch(text, /PRIVATE KEY/);
  });
});

async function opensslAvailable(): Promise<boolean> {
  try {
    await run('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
}

/** Runs s_client (stdin closed) and returns stdout + stderr, whatever the exit code. */
async function sClient(args: readonly string[]): Promise<string> {
  const child = execFile('openssl', ['s_client', ...args], { timeout: 20_000 });
  let out = '';
  child.stdout?.on('data', (d: string) => {
    out += d;
  });
  child.stderr?.on('data', (d: string) => {
    out += d;
  });
  child.stdin?.end();
  await new Promise((r) => child.once('close', r));
  return out;
}

describe('ztunnel processes: an independent TLS client', () => {
  it('openssl s_client sees TLS 1.3, ALPN h2, a required client certificate and the workload SPIFFE ID', async (t) => {
    if (!(await opensslAvailable())) {
      t.skip('openssl not installed');
      return;
    }
    const base = ['-connect', `${ECHO}:15008`, '-alpn', 'h2', '-tls1_3', '-CAfile', mesh.pki.rootPath];
    const cert = await mesh.pki.issue(sa('default', 'client'));
    const certPath = join(mesh.dir, 'client-cert.pem');
    const keyPath = join(mesh.dir, 'client-key.pem');
    await writeFile(certPath, cert.certChainPem.join('\n'));
    await writeFile(keyPath, cert.privateKeyPem);

    const withCert = await sClient([...base, '-cert', certPath, '-key', keyPath, '-showcerts']);
    assert.match(withCert, /TLSv1\.3/);
    assert.match(withCert, /ALPN protocol: h2/);
    assert.match(withCert, /Verify return code: 0 \(ok\)/);
    const leaf = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(withCert)?.[0];
    assert.ok(leaf !== undefined, withCert);
    const leafPath = join(mesh.dir, 'server-leaf.pem');
    await writeFile(leafPath, `${leaf}\n`);
    const san = await run('openssl', ['x509', '-in', leafPath, '-noout', '-ext', 'subjectAltName']);
    assert.match(san.stdout, /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/echo\s*$/m);

    // Without a certificate the handshake completes on our side (TLS 1.3) and the server then sends
    // the "certificate required" alert; -ign_eof keeps s_client reading until it arrives.
    const without = await sClient([...base, '-ign_eof']);
    assert.match(without, /alert certificate required|alert number 116/, without);
  });
});

describe('ztunnel processes: shutdown', () => {
  // Regression: node-b used to hang after the forced close at the deadline, because the HBONE listener's
  // close waited on a TLS connection whose session had been destroyed without 'close'.
  it('SIGTERM with a live connection: keeps serving it until the drain deadline, then exits', {
    timeout: 8000,
  }, async () => {
    const s = await socks5Dial({ proxy: mesh.socks5, target: { host: ECHO, port: APP_PORT }, localAddress: CLIENT });
    assert.equal(await readLine(s), 'echo');
    const closed = closedBy(s);
    s.pause();
    mesh.b.proc.child.kill('SIGTERM');
    await mesh.b.proc.waitFor((l) => l.msg === 'draining', 'draining');
    // Still tunnelled while draining.
    s.write('still here\n');
    assert.equal(await readLine(s), 'still here');
    s.resume(); // readLine paused it: flowing again, or a FIN at the deadline would never surface as 'end'
    const stopped = await mesh.b.proc.waitFor((l) => l.msg === 'stopped', 'stopped');
    assert.equal(stopped.forced, true, 'the live connection outlived the deadline');
    assert.equal(await mesh.b.proc.exited, 1);
    await closed;
  });

  it('POST /quitquitquit drains and the process exits 0', async () => {
    const r = await mesh.a.http('admin', '/quitquitquit', 'POST');
    assert.equal(r.status, 200);
    assert.equal(await mesh.a.proc.exited, 0);
  });
});
