// Two ztunnels in one process, each serving its own loopback "pods", traffic in through SOCKS5 (ztunnel's
// direct tests). Real TLS 1.3, HTTP/2 and sockets throughout.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { dialViaSocks5 } from '../../src/cli/socks5-dial.ts';
import { readLine } from '../helpers/mesh-processes.ts';
import { parseMetrics } from '../helpers/parse-metrics.ts';
import { inProcessCertificates, startTestZtunnel, testCa, writeTempConfig } from '../helpers/ztunnel-harness.ts';

interface Backend extends AsyncDisposable {
  readonly port: number;
  readonly peers: string[];
}

/** A TCP server that greets with its name, then echoes; records each peer address. */
async function namedEcho(host: string, name: string, port = 0): Promise<Backend> {
  const peers: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    peers.push(s.remoteAddress ?? '');
    s.write(`${name}\n`);
    s.pipe(s);
  });
  server.listen(port, host);
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    peers,
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

function meshYaml(appPort: number, extra = ''): string {
  return `
workloads:
- uid: Kubernetes//Pod/default/client
  name: client
  namespace: default
  serviceAccount: client
  workloadIps: ["127.0.0.2"]
  protocol: HBONE
  node: node-a
- uid: Kubernetes//Pod/default/echo-1
  name: echo-1
  namespace: default
  serviceAccount: echo
  workloadIps: ["127.0.0.3"]
  protocol: HBONE
  node: node-b
  services:
    "default/echo.default.svc.cluster.local": {80: ${appPort}}
- uid: Kubernetes//Pod/default/echo-2
  name: echo-2
  namespace: default
  serviceAccount: echo
  workloadIps: ["127.0.0.4"]
  protocol: HBONE
  node: node-b
  services:
    "default/echo.default.svc.cluster.local": {80: ${appPort}}
services:
- name: echo
  namespace: default
  hostname: echo.default.svc.cluster.local
  vips: ["/127.10.0.1"]
  ports: {80: ${appPort}}
${extra}`;
}

test('client reaches a workload by pod IP over mTLS; the server side sees its SPIFFE identity', async (t) => {
  const stack = new AsyncDisposableStack();
  t.after(() => stack.disposeAsync());
  const echo1 = stack.use(await namedEcho('127.0.0.3', 'echo-1'));
  stack.use(await namedEcho('127.0.0.4', 'echo-2', echo1.port));
  const ca = await testCa();
  const certificates = inProcessCertificates(ca);
  const configPath = await writeTempConfig(meshYaml(echo1.port));
  const a = stack.use(await startTestZtunnel({ node: 'node-a', configPath, certificates }));
  const b = stack.use(await startTestZtunnel({ node: 'node-b', configPath, certificates, socks5: false }));
  const socks = a.zt.addresses.socks5!;

  const conn = await dialViaSocks5({
    proxy: socks,
    target: { host: '127.0.0.3', port: echo1.port },
    localAddress: '127.0.0.2',
  });
  assert.equal(await readLine(conn), 'echo-1');
  conn.end();
  await once(conn, 'close');

  const inbound = await b.logs.waitFor((l) => l.msg === 'connection complete' && l.direction === 'inbound');
  assert.equal(inbound['src.identity'], 'spiffe://cluster.local/ns/default/sa/client');
  assert.equal(inbound['dst.workload'], 'echo-1');
  const outbound = await a.logs.waitFor((l) => l.msg === 'connection complete' && l.direction === 'outbound');
  assert.equal(outbound['dst.addr'], '127.0.0.3:15008');
  assert.equal(outbound['dst.hbone_addr'], `127.0.0.3:${echo1.port}`);
  // The app saw the ztunnel's in-pod source address, as with Istio's 127.0.0.6.
  assert.deepEqual(echo1.peers, ['127.0.0.6']);

  const metrics = parseMetrics(await (await fetch(`http://127.0.0.1:${b.zt.addresses.metrics.port}/metrics`)).text());
  const opened = metrics.sum('istio_tcp_connections_opened_total', {
    reporter: 'destination',
    source_principal: 'spiffe://cluster.local/ns/default/sa/client',
    destination_workload: 'echo-1',
    // The server side knows who it is and which service the pod backs (Istio's labels).
    destination_principal: 'spiffe://cluster.local/ns/default/sa/echo',
    destination_service: 'echo.default.svc.cluster.local',
    connection_security_policy: 'mutual_tls',
  });
  assert.equal(opened, 1);
});
