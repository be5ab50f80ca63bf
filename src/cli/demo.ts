// `ferry demo`: the two-ztunnel loopback demo. A CA, two ztunnel processes (node-a serves the client at
// 127.0.0.2, node-b serves echo v1/v2 at 127.0.0.3/.4), and traffic from the client through node-a's SOCKS5
// entry: by pod IP, by Service VIP (load balanced), and to an address outside the mesh. Prints what the
// servers saw, the destination ztunnel's access log and metrics, then stops everything.
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FerryProcess, spawnFerry } from './child-process.ts';
import { dialViaSocks5 } from './socks5-dial.ts';

const APP_PORT = 8080;
const OUTSIDE = { host: '127.0.0.9', port: 9090 };

function meshYaml(): string {
  const echo = (name: string, ip: string, version: string): string => `
- uid: Kubernetes//Pod/demo/${name}
  name: ${name}
  namespace: demo
  serviceAccount: echo
  workloadIps: ["${ip}"]
  protocol: HBONE
  node: node-b
  canonicalName: echo
  canonicalRevision: ${version}
  services:
    "demo/echo.demo.svc.cluster.local": {80: ${APP_PORT}}`;
  return `workloads:
- uid: Kubernetes//Pod/demo/client
  name: client
  namespace: demo
  serviceAccount: client
  workloadIps: ["127.0.0.2"]
  protocol: HBONE
  node: node-a
${echo('echo-v1', '127.0.0.3', 'v1')}
${echo('echo-v2', '127.0.0.4', 'v2')}
services:
- name: echo
  namespace: demo
  hostname: echo.demo.svc.cluster.local
  vips: ["/127.10.0.1"]
  ports: {80: ${APP_PORT}}
`;
}

/** A server that answers each connection with one line naming itself and the peer it saw. */
async function startApp(host: string, port: number, name: string): Promise<net.Server> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.end(`hello from ${name} (it saw the caller as ${s.remoteAddress})\n`);
  });
  server.listen(port, host);
  await once(server, 'listening');
  return server;
}

async function call(socks: { host: string; port: number }, target: { host: string; port: number }): Promise<string> {
  const socket = await dialViaSocks5({ proxy: socks, target, localAddress: '127.0.0.2' });
  let reply = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    reply += d;
  });
  socket.resume();
  await once(socket, 'end');
  socket.destroy();
  return reply.trim();
}

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

export async function run(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-demo-'));
  const stack = new AsyncDisposableStack();
  stack.defer(() => rm(dir, { recursive: true, force: true }));
  try {
    const configPath = join(dir, 'mesh.yaml');
    const rootPath = join(dir, 'root-cert.pem');
    await writeFile(configPath, meshYaml());
    const apps = [
      await startApp('127.0.0.3', APP_PORT, 'echo-v1'),
      await startApp('127.0.0.4', APP_PORT, 'echo-v2'),
      await startApp(OUTSIDE.host, OUTSIDE.port, 'outside-the-mesh'),
    ];
    stack.defer(async () => {
      await Promise.all(apps.map((a) => new Promise((r) => a.close(r))));
    });

    say('» starting the CA and two ztunnels (node-a: client 127.0.0.2; node-b: echo v1 127.0.0.3, v2 127.0.0.4)');
    const ca = stack.use(spawnFerry('ca', ['ca', '--listen', '127.0.0.1:0', '--root-out', rootPath]));
    const caReady = await ca.waitFor((l) => l.msg === 'CA ready', 'CA ready');
    const ztunnel = (node: string, socks: boolean): FerryProcess =>
      stack.use(
        spawnFerry(`ztunnel ${node}`, [
          'ztunnel',
          '--config',
          configPath,
          '--node',
          node,
          '--ca-address',
          String(caReady.address),
          '--ca-root',
          rootPath,
          '--admin',
          '127.0.0.1:0',
          '--metrics',
          '127.0.0.1:0',
          '--readiness',
          '127.0.0.1:0',
          ...(socks ? ['--socks5', '127.0.0.1:0'] : []),
        ]),
      );
    const a = ztunnel('node-a', true);
    const b = ztunnel('node-b', false);
    const readyA = await a.waitFor((l) => l.msg === 'ztunnel ready', 'ztunnel ready');
    const readyB = await b.waitFor((l) => l.msg === 'ztunnel ready', 'ztunnel ready');
    const socksAddr = readyA.socks5 as { ip: string; port: number };
    const socks = { host: socksAddr.ip, port: socksAddr.port };

    say('\n» client → echo-v1 by pod IP (127.0.0.3:8080): HBONE mTLS between the ztunnels');
    say(`  ${await call(socks, { host: '127.0.0.3', port: APP_PORT })}`);

    say('\n» client → Service echo.demo (VIP 127.10.0.1:80), 10 connections: load balanced over v1 and v2');
    const counts = new Map<string, number>();
    for (let i = 0; i < 10; i++) {
      const reply = await call(socks, { host: '127.10.0.1', port: 80 });
      const who = /hello from (\S+)/.exec(reply)?.[1] ?? reply;
      counts.set(who, (counts.get(who) ?? 0) + 1);
    }
    for (const [who, n] of counts) say(`  ${who}: ${n}`);

    say(`\n» client → ${OUTSIDE.host}:${OUTSIDE.port}, outside the mesh: plain TCP passthrough`);
    say(`  ${await call(socks, OUTSIDE)}`);

    await b.waitFor(
      (l) => l.scope === 'access' && l.msg === 'connection complete' && l['dst.workload'] === 'echo-v2',
      'access log',
    );
    say('\n» node-b access log (one line per connection; the caller identity came from its certificate):');
    for (const l of b.lines.filter((x) => x.scope === 'access' && x.msg === 'connection complete').slice(0, 3)) {
      say(`  ${l['src.identity']} → ${l['dst.workload']} (${l['dst.addr']}) bytes ${l.bytes_sent}/${l.bytes_recv}`);
    }
    const metricsAddr = readyB.metrics as { host: string; port: number };
    const text = await (await fetch(`http://${metricsAddr.host}:${metricsAddr.port}/metrics`)).text();
    say('\n» node-b metrics (istio_tcp_connections_opened_total):');
    for (const line of text.split('\n').filter((l) => l.startsWith('istio_tcp_connections_opened_total'))) {
      const dst = /destination_workload="([^"]*)"/.exec(line)?.[1];
      const src = /source_principal="([^"]*)"/.exec(line)?.[1];
      const mtls = /connection_security_policy="([^"]*)"/.exec(line)?.[1];
      say(`  ${src} → ${dst} [${mtls}] ${line.split(' ').pop()}`);
    }
    say('\n» stopping (graceful drain)');
    return 0;
  } finally {
    await stack.disposeAsync();
  }
}
