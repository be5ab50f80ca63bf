// A waypoint on loopback for integration tests: real HBONE (mTLS, HTTP/2 CONNECT) on both sides. "Pods"
// are HBONE servers on 127.0.0.x:<shared port> terminating into the test app's HTTP echo; the client is
// an HBONE tunnel to the waypoint with `:authority = VIP:port`, speaking HTTP/1.1 through it.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { TestContext } from 'node:test';
import { stringify } from 'yaml';
import { startHttpEcho } from '../../src/cli/testapp/http-echo.ts';
import { HboneClientPool } from '../../src/hbone/pool.ts';
import { CertificateAuthority } from '../../src/identity/ca.ts';
import { serializeMeshConfig } from '../../src/mesh/local-config/serialize.ts';
import type { MeshConfig } from '../../src/mesh/types.ts';
import { startWaypoint, type Waypoint } from '../../src/waypoint/app.ts';
import type { WaypointProcessConfig } from '../../src/waypoint/config.ts';
import { dialAuthority, startHboneFixture } from './hbone-client.ts';
import { captureLogs, inProcessCertificates, type LogCapture } from './ztunnel-harness.ts';

export interface PodSpec {
  readonly name: string;
  readonly ip: string;
  readonly namespace?: string;
  /** Serve h2c (HTTP/2 prior knowledge) with trailers instead of the HTTP/1.1 echo. */
  readonly h2c?: boolean;
  /** Serve this backend instead (any server on `host`, port of its choosing). */
  readonly backend?: (host: string) => Promise<{ port: number; close(): void }>;
}

/** An h2c echo: JSON {pod, path, protocol, te} and trailers grpc-status 0, x-trailer yes. */
async function startH2cEcho(host: string, pod: string): Promise<{ port: number; close(): void }> {
  const server = http2.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.addTrailers({ 'grpc-status': '0', 'x-trailer': 'yes' });
      res.end(JSON.stringify({ pod, path: req.url, protocol: req.httpVersion, te: req.headers.te ?? null }));
    });
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return { port: (server.address() as import('node:net').AddressInfo).port, close: () => server.close() };
}

export interface WaypointHarness {
  readonly waypoint: Waypoint;
  readonly logs: LogCapture;
  readonly configPath: string;
  /** What each echo pod logged per request (host, path, requestId), by pod name. */
  readonly seen: ReadonlyMap<string, Record<string, unknown>[]>;
  /** Rewrites the config file and reloads (as SIGHUP would). */
  reconfigure(doc: Record<string, unknown>): Promise<void>;
  /**
   * A raw HBONE tunnel to `vip:port` through the waypoint (bytes in, bytes out), as the client
   * `spiffe://cluster.local/ns/<namespace>/sa/client` (namespace `default` unless given).
   */
  openTunnel(vip: string, port: number, source?: { readonly namespace: string }): Promise<Duplex>;
  /** Sends one HTTP/1.1 request to `vip:port` through an HBONE tunnel, as the client pod's ztunnel would. */
  request(vip: string, port: number, opts?: RequestOptions): Promise<HarnessResponse>;
}

export interface RequestOptions {
  readonly method?: string;
  readonly path?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /** The client's namespace (its SPIFFE identity); `default` unless given. */
  readonly sourceNamespace?: string;
}

export interface HarnessResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  /** The echo's JSON, when the body is one. */
  readonly echo: { pod: string; path: string; headers: Record<string, string>; query: Record<string, string> } | null;
}

export const HARNESS_TD = 'cluster.local';

/** Starts echo pods, their HBONE listeners, and a waypoint `default/waypoint` serving `mesh`. */
export async function startWaypointHarness(
  t: TestContext,
  pods: readonly PodSpec[],
  doc: (hbonePort: number) => Record<string, unknown>,
): Promise<WaypointHarness> {
  const ca = await CertificateAuthority.generate({ trustDomain: HARNESS_TD });
  const certs = inProcessCertificates(ca);
  let hbonePort = 0;
  const seen = new Map<string, Record<string, unknown>[]>();
  for (const pod of pods) {
    const lines: Record<string, unknown>[] = [];
    seen.set(pod.name, lines);
    const h2 =
      pod.backend !== undefined
        ? await pod.backend(pod.ip)
        : pod.h2c === true
          ? await startH2cEcho(pod.ip, pod.name)
          : null;
    if (h2 !== null) t.after(() => h2.close());
    const echo = await startHttpEcho({
      port: 0,
      host: pod.ip,
      podName: pod.name,
      namespace: pod.namespace ?? 'default',
      log: (line) => {
        if (line.msg === 'request') lines.push(line);
      },
    });
    t.after(() => echo[Symbol.asyncDispose]());
    const cert = await certs.getCertificate({
      trustDomain: HARNESS_TD,
      namespace: pod.namespace ?? 'default',
      serviceAccount: pod.name,
    });
    // Every pod listens on the same HBONE port (as 15008 in a cluster), on its own loopback IP.
    const fixture = await startHboneFixture(cert, {
      host: pod.ip,
      onConnect: async (req, tunnel) => {
        // The authority names the pod's target port; the echo listens on its own port: map it.
        const rewritten = { ...req, authority: `${pod.ip}:${h2?.port ?? echo.port}` };
        await dialAuthority(rewritten, tunnel);
      },
      ...(hbonePort === 0 ? {} : { extra: { port: hbonePort } }),
    });
    hbonePort = fixture.server.address.port;
    t.after(() => fixture[Symbol.asyncDispose]());
  }
  const dir = await mkdtemp(join(tmpdir(), 'ferry-waypoint-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const configPath = join(dir, 'waypoint.yaml');
  await writeFile(configPath, toYaml(doc(hbonePort)));
  const logs = captureLogs();
  const config: WaypointProcessConfig = {
    waypoint: { namespace: 'default', name: 'waypoint' },
    serviceAccount: 'waypoint',
    trustDomain: HARNESS_TD,
    clusterDomain: 'cluster.local',
    node: 'node-a',
    network: '',
    source: { kind: 'file', path: configPath },
    ca: { kind: 'in-process', caDir: null },
    listen: { host: '127.0.0.1', port: 0 },
    hbonePort,
    netns: null,
    adminAddress: { host: '127.0.0.1', port: 0 },
    adminSocketPath: null,
    metricsAddress: { host: '127.0.0.1', port: 0 },
    readinessAddress: { host: '127.0.0.1', port: 0 },
    drainDeadlineMs: 1000,
    logLevel: 'info',
    accessLog: true, // tests read the per-request lines; the process default is off
  };
  const waypoint = await startWaypoint(config, { certificates: certs, logDestination: logs });
  t.after(() => waypoint.shutdown(0));
  const clientCertOf = (namespace = 'default') =>
    certs.getCertificate({ trustDomain: HARNESS_TD, namespace, serviceAccount: 'client' });
  const waypointId = { trustDomain: HARNESS_TD, namespace: 'default', serviceAccount: 'waypoint' };
  const pool = new HboneClientPool({});
  t.after(() => pool.destroy());
  return {
    waypoint,
    logs,
    configPath,
    seen,
    async reconfigure(next) {
      await writeFile(configPath, toYaml(next));
      await waypoint.reload();
    },
    async openTunnel(vip, port, source) {
      return pool.connect({
        source: await clientCertOf(source?.namespace),
        dst: waypoint.addresses.hbone,
        expectedIdentities: [waypointId],
        authority: `${vip}:${port}`,
      });
    },
    async request(vip, port, opts = {}) {
      const tunnel = await pool.connect({
        source: await clientCertOf(opts.sourceNamespace),
        dst: waypoint.addresses.hbone,
        expectedIdentities: [waypointId],
        authority: `${vip}:${port}`,
        headers: { forwardedFor: { ip: '127.0.0.1', port: 40000 } },
      });
      return httpOverTunnel(tunnel, vip, port, opts);
    },
  };
}

function toYaml(doc: Record<string, unknown>): string {
  const { mesh, ...rest } = doc as { mesh?: MeshConfig };
  const meshDoc = mesh === undefined ? {} : serializeMeshConfig(mesh);
  return stringify({ ...meshDoc, ...rest });
}

function httpOverTunnel(tunnel: Duplex, vip: string, port: number, opts: RequestOptions): Promise<HarnessResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        createConnection: () => tunnel as unknown as import('node:net').Socket,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: { host: `${vip}:${port}`, ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString();
          let echo = null;
          try {
            echo = JSON.parse(body);
          } catch {}
          tunnel.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, echo });
        });
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}
