// Cluster DNS end to end below the local cluster (src/local-cluster/dns/): the DNS process body serving in
// a "bridge" netns on the gateway address, fed by the controller's xDS server; a pod netns on a veth with
// its /etc/netns/<name>/resolv.conf bind-mounted by the pod launcher's wrapper. Debian's curl (glibc
// getaddrinfo) and the built-in test curl (Node's dns.lookup) fetch `http://echo:8080` by service name,
// search list and all; a service published later resolves after the push. Cleans up even on failure.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startXdsServer } from '../../src/controller/xds-server.ts';
import { runClusterDns } from '../../src/local-cluster/dns/cluster-dns.ts';
import {
  podResolvConf,
  removePodResolvConfs,
  withPodResolvConf,
  writePodResolvConf,
} from '../../src/local-cluster/dns/resolv-conf.ts';
import type { MeshConfig } from '../../src/mesh/types.ts';
import { closeFd, createListenerFd, inNetns, openNetns } from '../../src/redirect-bpf/netns.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { run, sweepTestLeftovers } from '../../testkit/netns.ts';
import { privilegedTest, privilegeProblem } from '../../testkit/privileged.ts';
import { meshConfig, service, workload } from '../helpers/mesh-builders.ts';

const execFileP = promisify(execFile);
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const GATEWAY = '10.250.255.254';
const POD_IP = '10.250.0.2';

before(async () => {
  if (privilegeProblem() === null) await sweepTestLeftovers();
});

function mesh(extra: boolean): MeshConfig {
  // Headless, so the name resolves to the pod IP itself: this test has no ztunnel to carry a VIP.
  const echo = service('echo', POD_IP, { namespace: 'demo', vips: [], ports: { 8080: 8080 } });
  const later = service('later', POD_IP, { namespace: 'demo', vips: [], ports: { 8080: 8080 } });
  const services = extra ? [echo, later] : [echo];
  return meshConfig({
    workloads: [
      workload('echo-1', POD_IP, {
        namespace: 'demo',
        protocol: 'TCP',
        services: Object.fromEntries(services.map((s) => [`demo/${s.hostname}`, { 8080: 8080 }])),
      }),
    ],
    services,
  });
}

privilegedTest('Debian curl and the test app curl in a pod netns resolve service names via cluster DNS', async (t) => {
  const stack = new AsyncDisposableStack();
  t.after(() => stack.disposeAsync());
  const br = `ferrytest-${process.pid}-dnsbr`;
  const pod = `ferrytest-${process.pid}-dnspod`;
  for (const ns of [br, pod]) {
    await run('ip', ['netns', 'add', ns]);
    stack.defer(() => run('ip', ['netns', 'delete', ns]).then(() => undefined));
  }
  await run('ip', ['-n', br, 'link', 'add', 'dnsv0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod]);
  await run('ip', ['-n', br, 'addr', 'add', `${GATEWAY}/16`, 'dev', 'dnsv0']);
  for (const [ns, dev] of [
    [br, 'dnsv0'],
    [br, 'lo'],
    [pod, 'eth0'],
    [pod, 'lo'],
  ] as const) {
    await run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
  }
  await run('ip', ['-n', pod, 'addr', 'add', `${POD_IP}/16`, 'dev', 'eth0']);

  // The app: an HTTP server whose listener lives in the pod netns.
  const podNs = openNetns(`/run/netns/${pod}`);
  const listenFd = inNetns(podNs, () => createListenerFd({ address: POD_IP, port: 8080 }));
  closeFd(podNs);
  const app = createServer((_req, res) => res.end('hello from echo\n'));
  app.listen({ fd: listenFd });
  stack.defer(() => new Promise<void>((resolve) => app.close(() => resolve())));

  const xds = await startXdsServer({});
  stack.defer(() => xds.close());
  xds.publish(mesh(false));

  // Upstream: a resolv.conf naming a black hole, so nothing leaves the machine (forwarding is tested in
  // test/integration/dns-server.test.ts).
  const dir = mkdtempSync(join(tmpdir(), 'ferry-dns-'));
  stack.defer(() => rmSync(dir, { recursive: true, force: true }));
  const upstreamConf = join(dir, 'upstream.conf');
  writeFileSync(upstreamConf, 'nameserver 127.0.0.1\n');

  const stop = new AbortController();
  const probe = createNetServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const readinessPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const dns = runClusterDns({
    xdsAddress: xds.address,
    netnsPath: `/run/netns/${br}`,
    address: GATEWAY,
    port: 53,
    resolvConfPath: upstreamConf,
    readiness: { host: '127.0.0.1', port: readinessPort },
    log: silentLogger,
    signal: stop.signal,
  });
  stack.defer(async () => {
    stop.abort();
    await dns;
  });
  await eventually(async () => (await fetch(`http://127.0.0.1:${readinessPort}/healthz/ready`)).ok);

  const resolvConf = writePodResolvConf(pod, podResolvConf({ nameserver: GATEWAY, namespace: 'demo' }));
  stack.defer(() => {
    removePodResolvConfs(`ferrytest-${process.pid}-`);
  });
  assert.ok(existsSync(resolvConf));
  const inPod = (argv: [string, ...string[]]) =>
    execFileP('nsenter', [`--net=/run/netns/${pod}`, '--', ...withPodResolvConf(argv, resolvConf)], {
      timeout: 20_000,
    });

  // Debian curl: glibc expands `echo` with the search list (ndots:5) to echo.demo.svc.cluster.local.
  const debian = await inPod(['curl', '-sS', '--max-time', '5', 'http://echo:8080/']);
  assert.equal(debian.stdout, 'hello from echo\n');
  const fqdn = await inPod(['curl', '-sS', '--max-time', '5', 'http://echo.demo.svc.cluster.local:8080/']);
  assert.equal(fqdn.stdout, 'hello from echo\n');
  const crossNs = await inPod(['curl', '-sS', '--max-time', '5', 'http://echo.demo:8080/']);
  assert.equal(crossNs.stdout, 'hello from echo\n');

  // The built-in test app: Node's dns.lookup (getaddrinfo) reads the same mounted file.
  const testapp = await inPod([process.execPath, MAIN, 'testapp', 'curl', 'http://echo:8080/']);
  assert.match(testapp.stdout, /HTTP 200/);
  assert.match(testapp.stdout, /hello from echo/);

  // An unknown name fails fast with "could not resolve" (curl exit 6), not a timeout.
  const missing = await inPod(['curl', '-sS', '--max-time', '5', 'http://nope:8080/']).catch((e: unknown) => e);
  assert.equal((missing as { code?: number }).code, 6);

  // The host's own /etc/resolv.conf was never touched.
  const hostConf = await execFileP('cat', ['/etc/resolv.conf']);
  assert.doesNotMatch(hostConf.stdout, new RegExp(GATEWAY.replaceAll('.', '\\.')));

  // A service published later resolves once the push arrived.
  xds.publish(mesh(true));
  await eventually(async () => {
    const r = await inPod(['curl', '-sS', '--max-time', '2', 'http://later:8080/']).catch(() => null);
    return r?.stdout === 'hello from echo\n';
  });
});

async function eventually(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 20; ; wait = Math.min(wait * 2, 500)) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await delay(wait);
  }
}
