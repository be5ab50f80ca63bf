// Process-level mesh fixture (ztunnel's tests/direct.rs, but every component is its own OS process): a
// plug-in CA whose keys the test holds (so it can mint expired or foreign-domain certificates the ztunnels
// trust), `ferry ca --ca-dir` serving it over gRPC, and two `ferry ztunnel` processes (node-a with SOCKS5,
// node-b) reading one mesh YAML. Everything started is registered for cleanup as soon as it exists, so a
// failing test still leaves nothing running. Plus small socket helpers the process tests share.
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FerryProcess, type LogLine, spawnFerry } from '../../src/cli/child-process.ts';
import { type SpiffeId, spiffeId } from '../../src/identity/spiffe-id.ts';
import type { WorkloadCertificate } from '../../src/identity/workload-certificate.ts';
import {
  createIntermediateCa,
  createSelfSignedRoot,
  createSvid,
  generateP256KeyPair,
  type KeyPair,
  privateKeyToPem,
  type x509,
} from '../../src/identity/x509.ts';
import { adminSocketRequest } from '../../src/runtime/admin-socket.ts';

const HOUR_MS = 3600_000;

export type RegisterCleanup = (fn: () => unknown) => void;

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Istio's plug-in CA layout, generated here so the test keeps the signing key. */
export interface PluginCa {
  readonly dir: string;
  readonly rootPem: string;
  readonly rootPath: string;
  /** Signs an SVID with the plug-in intermediate (trusted by the ztunnels); any trust domain or window. */
  issue(identity: SpiffeId, opts?: { notBefore?: Date; notAfter?: Date }): Promise<WorkloadCertificate>;
}

export async function createPluginCa(dir: string, trustDomain = 'cluster.local'): Promise<PluginCa> {
  const now = Date.now();
  const rootKeys = await generateP256KeyPair();
  const root = await createSelfSignedRoot({
    keys: rootKeys,
    commonName: 'ferry test root',
    organization: trustDomain,
    notBefore: new Date(now - 24 * HOUR_MS),
    notAfter: new Date(now + 365 * 24 * HOUR_MS),
  });
  const interKeys: KeyPair = await generateP256KeyPair();
  const inter: x509.X509Certificate = await createIntermediateCa({
    keys: interKeys,
    commonName: 'ferry test intermediate',
    organization: trustDomain,
    notBefore: new Date(now - 24 * HOUR_MS),
    notAfter: new Date(now + 30 * 24 * HOUR_MS),
    issuerCertificate: root,
    issuerKey: rootKeys.privateKey,
  });
  const rootPem = root.toString('pem');
  const interPem = inter.toString('pem');
  await writeFile(join(dir, 'ca-cert.pem'), interPem);
  await writeFile(join(dir, 'ca-key.pem'), await privateKeyToPem(interKeys.privateKey));
  await writeFile(join(dir, 'root-cert.pem'), rootPem);
  await writeFile(join(dir, 'cert-chain.pem'), `${interPem}\n${rootPem}\n`);
  return {
    dir,
    rootPem,
    rootPath: join(dir, 'root-cert.pem'),
    async issue(identity, opts = {}) {
      const keys = await generateP256KeyPair();
      const notBefore = opts.notBefore ?? new Date(Date.now() - HOUR_MS);
      const notAfter = opts.notAfter ?? new Date(Date.now() + 24 * HOUR_MS);
      const leaf = await createSvid({
        identity,
        subjectPublicKey: keys.publicKey,
        issuerCertificate: inter,
        issuerKey: interKeys.privateKey,
        notBefore,
        notAfter,
      });
      return {
        identity,
        privateKeyPem: await privateKeyToPem(keys.privateKey),
        certChainPem: [leaf.toString('pem'), interPem],
        rootsPem: [rootPem],
        notBefore,
        notAfter,
      };
    },
  };
}

export interface ZtunnelProcess {
  readonly proc: FerryProcess;
  readonly admin: HostPort;
  readonly metrics: HostPort;
  readonly readiness: HostPort;
  readonly socks5: HostPort | null;
  /** GET (or POST) on one of its HTTP servers; resolves with status and body text. */
  http(server: 'admin' | 'metrics' | 'readiness', path: string, method?: string): Promise<HttpReply>;
}

export interface HttpReply {
  readonly status: number;
  readonly body: string;
}

export interface MeshProcessesOptions {
  /** The mesh YAML both ztunnels read. */
  readonly yaml: string;
  /** This file's 127.0.N.0/24 prefix, e.g. '127.0.1': readiness servers bind `<prefix>.250/.251:15021`. */
  readonly prefix: string;
  /** Extra flags for ztunnel B (e.g. --plaintext-inbound). */
  readonly bArgs?: readonly string[];
  readonly drainDeadlineMs?: number;
}

export interface MeshProcesses {
  readonly dir: string;
  readonly configPath: string;
  readonly pki: PluginCa;
  readonly ca: FerryProcess;
  readonly caAddress: HostPort;
  readonly a: ZtunnelProcess;
  readonly b: ZtunnelProcess;
  /** Node A's SOCKS5 entry. */
  readonly socks5: HostPort;
  /** Rewrites the mesh YAML (both ztunnels see it on their next SIGHUP). */
  writeConfig(yaml: string): Promise<void>;
}

/**
 * Starts the CA and the two ztunnels and waits for 'ztunnel ready' on both. `cleanup` (t.after or a suite
 * `after`) is called for each thing as soon as it is started.
 */
export async function startMeshProcesses(cleanup: RegisterCleanup, opts: MeshProcessesOptions): Promise<MeshProcesses> {
  // One stack, registered before anything starts: disposal runs in reverse order (processes, then files).
  const stack = new AsyncDisposableStack();
  cleanup(() => stack.disposeAsync());
  const dir = await mkdtemp(join(tmpdir(), 'ferry-proc-'));
  stack.defer(() => rm(dir, { recursive: true, force: true }));
  const caDir = join(dir, 'cacerts');
  await mkdir(caDir);
  const pki = await createPluginCa(caDir);
  const configPath = join(dir, 'mesh.yaml');
  await writeFile(configPath, opts.yaml);

  const ca = spawnFerry('ca', ['ca', '--listen', '127.0.0.1:0', '--ca-dir', caDir]);
  stack.defer(() => ca.stop().then(() => {}));
  const caReady = await ca.waitFor((l) => l.msg === 'CA ready', 'CA ready');
  const caAddress = parseAddress(caReady.address);

  const startZtunnel = (node: string, readinessIp: string, extra: readonly string[]): FerryProcess => {
    const proc = spawnFerry(`ztunnel ${node}`, [
      'ztunnel',
      '--config',
      configPath,
      '--node',
      node,
      '--ca-address',
      `${caAddress.host}:${caAddress.port}`,
      '--ca-root',
      pki.rootPath,
      '--admin',
      '127.0.0.1:0',
      '--admin-socket', // changes (/quitquitquit, /logging) are accepted only there
      join(dir, `${node}-admin.sock`),
      '--metrics',
      '127.0.0.1:0',
      // Not logged at startup: a fixed port on this file's own loopback address cannot collide.
      '--readiness',
      `${readinessIp}:15021`,
      '--drain-deadline-ms',
      String(opts.drainDeadlineMs ?? 2000),
      '--log-level',
      'debug',
      ...extra,
    ]);
    stack.defer(() => proc.stop().then(() => dumpLogs(proc)));
    return proc;
  };
  const aProc = startZtunnel('node-a', `${opts.prefix}.250`, ['--socks5', '127.0.0.1:0']);
  const bProc = startZtunnel('node-b', `${opts.prefix}.251`, opts.bArgs ?? []);
  const [a, b] = await Promise.all([
    ready(aProc, `${opts.prefix}.250`, join(dir, 'node-a-admin.sock')),
    ready(bProc, `${opts.prefix}.251`, join(dir, 'node-b-admin.sock')),
  ]);
  if (a.socks5 === null) throw new Error('ztunnel node-a started without SOCKS5');
  return {
    dir,
    configPath,
    pki,
    ca,
    caAddress,
    a,
    b,
    socks5: a.socks5,
    writeConfig: (yaml) => writeFile(configPath, yaml),
  };
}

async function ready(proc: FerryProcess, readinessIp: string, adminSocket: string): Promise<ZtunnelProcess> {
  const line = await proc.waitFor((l) => l.msg === 'ztunnel ready', 'ztunnel ready');
  const admin = parseAddress(line.admin);
  const metrics = parseAddress(line.metrics);
  const socks5 = line.socks5 === null || line.socks5 === undefined ? null : parseAddress(line.socks5);
  const readiness = { host: readinessIp, port: 15021 };
  const servers = { admin, metrics, readiness };
  return {
    proc,
    admin,
    metrics,
    readiness,
    socks5,
    async http(server, path, method = 'GET') {
      if (server === 'admin' && method !== 'GET' && method !== 'HEAD') {
        const res = await adminSocketRequest(adminSocket, method, path);
        return { status: res.status, body: res.text };
      }
      const { host, port } = servers[server];
      const res = await fetch(`http://${host}:${port}${path}`, { method });
      return { status: res.status, body: await res.text() };
    },
  };
}

/** FERRY_TEST_DUMP_LOGS=1: print a stopped process's log to stderr (debugging a failing test). */
function dumpLogs(proc: FerryProcess): void {
  if (process.env.FERRY_TEST_DUMP_LOGS !== '1') return;
  process.stderr.write(
    `--- ${proc.name}\n${proc.lines.map((l) => JSON.stringify(l)).join('\n')}\n${proc.text.join('')}\n`,
  );
}

function parseAddress(value: unknown): HostPort {
  if (typeof value === 'string') {
    const i = value.lastIndexOf(':');
    return { host: value.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(value.slice(i + 1)) };
  }
  const v = value as { host?: string; ip?: string; port?: number } | undefined;
  const host = v?.host ?? v?.ip;
  if (host === undefined || typeof v?.port !== 'number') throw new Error(`not an address: ${JSON.stringify(value)}`);
  return { host, port: v.port };
}

/** Identity helper for the default trust domain. */
export function sa(ns: string, name: string, trustDomain = 'cluster.local'): SpiffeId {
  return spiffeId(trustDomain, ns, name);
}

/** Resolves with the first access-log line ('connection complete' or 'connection failed') matching. */
export function accessLine(proc: FerryProcess, pred: (l: LogLine) => boolean, what: string): Promise<LogLine> {
  return proc.waitFor(
    (l) => l.scope === 'access' && (l.msg === 'connection complete' || l.msg === 'connection failed') && pred(l),
    what,
  );
}

/** The error code of an access-log line, if any. */
export function errorCode(l: LogLine): string | undefined {
  return (l.error as { code?: string } | undefined)?.code;
}

export interface AppServer extends AsyncDisposable {
  readonly host: string;
  readonly port: number;
  /** Peer addresses of accepted connections, in order. */
  readonly peers: string[];
  readonly sockets: Set<net.Socket>;
}

/** A TCP server on host:port running `handler` per connection (allowHalfOpen); closed with its sockets. */
export async function startApp(
  host: string,
  port: number,
  handler: (socket: net.Socket) => void,
  cleanup?: RegisterCleanup,
): Promise<AppServer> {
  const peers: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    peers.push(s.remoteAddress ?? '');
    handler(s);
  });
  server.listen(port, host);
  await once(server, 'listening');
  const app: AppServer = {
    host,
    port: (server.address() as net.AddressInfo).port,
    peers,
    sockets,
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  cleanup?.(() => app[Symbol.asyncDispose]());
  return app;
}

/** Greets with `name\n`, then echoes everything; ends its side when the client ends. */
export function namedEcho(name: string): (s: net.Socket) => void {
  return (s) => {
    s.write(`${name}\n`);
    s.pipe(s);
  };
}

/** Reads up to the first newline without consuming more of the stream. */
export function readLine(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (chunk: Buffer): void => {
      const text = String(chunk);
      const i = text.indexOf('\n');
      if (i < 0) {
        buf += text;
        return;
      }
      done();
      const rest = chunk.subarray(Buffer.byteLength(text.slice(0, i + 1)));
      if (rest.length > 0) socket.unshift(rest);
      resolve(buf + text.slice(0, i));
    };
    const onEnd = (): void => {
      done();
      resolve(buf);
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    const done = (): void => {
      socket.pause();
      socket.off('data', onData).off('end', onEnd).off('error', onError);
    };
    socket.on('data', onData).on('end', onEnd).on('error', onError);
    socket.resume();
  });
}

/** Everything the socket sends until its end (or close), as one buffer. */
export function readAll(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('close', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
    socket.resume();
  });
}

/** Resolves once the peer closed the socket (end, reset or close), with how it ended. */
export function closedBy(socket: net.Socket): Promise<'end' | 'error' | 'close'> {
  return new Promise((resolve) => {
    socket.once('end', () => resolve('end'));
    socket.once('error', () => resolve('error'));
    socket.once('close', () => resolve('close'));
    socket.resume();
  });
}
