// The ztunnel in in-pod mode, end to end on a real kernel (issue 3): two simulated nodes, one ztunnel
// process each (--redirect bpf), pods enrolled over the admin API. Apps in pods make plain TCP connections;
// the BPF redirector steers them through the ztunnels, which speak HBONE (mTLS) between pods. Asserted
// from the app's side (who answered, which peer address it saw) and from the ztunnels' access logs and
// metrics. Everything (processes, netns, cgroups, pins, files) is torn down also when a test fails.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before } from 'node:test';
import { uninstallPins } from '../../src/redirect-bpf/loader.ts';
import { adminSocketRequest } from '../../src/runtime/admin-socket.ts';
import { leftoversOfThisProcess, sweepTestLeftovers } from '../../testkit/netns.ts';
import { privilegedTest, privilegeProblem } from '../../testkit/privileged.ts';
import { type Pod, Topology } from '../../testkit/topology.ts';
import {
  captureBridge,
  type Greeting,
  type NodeZtunnel,
  serveGreetingApp,
  startNodeZtunnel,
  tempDir,
  writeCaDir,
} from '../helpers/inpod-nodes.ts';
import { type ClientResult, connectFromPod, openSession } from '../helpers/stand-in.ts';

before(async () => {
  if (privilegeProblem() === null) await sweepTestLeftovers();
});

const VIP = '10.96.0.10';
const TCP_CLIENT = new URL('./fixtures/tcp-client.ts', import.meta.url).pathname;
const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';
const uid = (ns: string, name: string): string => `Kubernetes//Pod/${ns}/${name}`;

function meshYaml(pods: Record<string, Pod>, extraPolicies = ''): string {
  const w = (pod: Pod, ns: string, sa: string, node: string, services = ''): string => `
- uid: ${uid(ns, pod.name)}
  name: ${pod.name}
  namespace: ${ns}
  serviceAccount: ${sa}
  workloadIps: ["${pod.ip}"]
  protocol: HBONE
  node: ${node}${services}`;
  return `workloads:${w(pods.client as Pod, 'default', 'client', 'node-a')}${w(pods.local as Pod, 'default', 'local', 'node-a')}${w(
    pods.server as Pod,
    'default',
    'echo',
    'node-b',
    `
  services:
    "default/echo.default.svc.cluster.local": {80: 8080}`,
  )}${w(pods.strict as Pod, 'secure', 'vault', 'node-b')}
services:
- name: echo
  namespace: default
  hostname: echo.default.svc.cluster.local
  vips: ["/${VIP}"]
  ports: {80: 8080}
policies:
- name: strict-mtls
  namespace: secure
  scope: Namespace
  action: Deny
  rules:
  - - - notPrincipals: [{presence: {}}]
${extraPolicies}`;
}

function greeting(res: ClientResult): Greeting {
  assert.ok(res.ok, `connection failed: ${JSON.stringify(res)}`);
  return res.reply as unknown as Greeting;
}

type LogLine = Record<string, unknown>;
const inboundFrom =
  (dstAddr: string, identity: string | null) =>
  (l: LogLine): boolean =>
    l.msg === 'connection complete' &&
    l.direction === 'inbound' &&
    l['dst.addr'] === dstAddr &&
    (identity === null ? l['src.identity'] === undefined : l['src.identity'] === identity);

privilegedTest(
  'ztunnel in-pod mode with the BPF redirector, two nodes',
  async (t) => {
    const stack = new AsyncDisposableStack();
    t.after(() => stack.disposeAsync());
    const topo = stack.use(await Topology.create('inpod'));
    // node-a: client (enrolled), local (enrolled), plain (never enrolled, not in the mesh)
    // node-b: server (enrolled, PERMISSIVE), strict (enrolled, STRICT), outside (not in the mesh)
    const client = await topo.addPod('client', { node: 'node-a' });
    const local = await topo.addPod('local', { node: 'node-a' });
    const plain = await topo.addPod('plain', { node: 'node-a' });
    const server = await topo.addPod('server', { node: 'node-b' });
    const strict = await topo.addPod('strict', { node: 'node-b' });
    const outside = await topo.addPod('outside', { node: 'node-b' });
    const marker = `MARKER-${randomUUID()}`;
    for (const pod of [local, server, strict, outside]) await serveGreetingApp(pod, 8080, marker, stack);
    await serveGreetingApp(client, 9090, marker, stack);

    const dir = await tempDir(stack, 'inpod');
    const caDir = join(dir, 'ca');
    await mkdir(caDir);
    await writeCaDir(caDir);
    const pods = { client, local, server, strict };
    const configPath = join(dir, 'mesh.yaml');
    await writeFile(configPath, meshYaml(pods));
    const nodeOpts = (node: 'node-a' | 'node-b') => {
      const pinRoot = `${topo.pinRoot}-${node}`;
      stack.defer(() => uninstallPins(pinRoot)); // runs after the processes are gone (LIFO)
      return {
        node,
        configPath,
        cgroupRoot: topo.nodeCgroup(node),
        pinRoot,
        statePath: join(dir, `${node}-pods.json`),
        caDir,
      };
    };
    const optsA = nodeOpts('node-a');
    const optsB = nodeOpts('node-b');
    let za: NodeZtunnel = await startNodeZtunnel(optsA, stack);
    const zb = await startNodeZtunnel(optsB, stack);
    const enroll = async (zt: NodeZtunnel, pod: Pod, ns = 'default') => {
      const res = await zt.admin('POST', '/pods', {
        uid: uid(ns, pod.name),
        netnsPath: pod.netnsPath,
        cgroupPath: pod.cgroupPath,
      });
      assert.equal(res.status, 200, `enroll ${pod.name}: ${JSON.stringify(res.json)}`);
    };

    await t.test('bad enrollments fail clearly and change nothing', async () => {
      const cases: Array<[unknown, number, string]> = [
        [
          { uid: uid('default', 'nobody'), netnsPath: client.netnsPath, cgroupPath: client.cgroupPath },
          404,
          'FERRY_INPOD_UNKNOWN_WORKLOAD',
        ],
        [
          { uid: uid('default', 'server'), netnsPath: server.netnsPath, cgroupPath: server.cgroupPath },
          409,
          'FERRY_INPOD_NOT_LOCAL',
        ],
        [
          { uid: uid('default', 'client'), netnsPath: '/run/netns/missing', cgroupPath: client.cgroupPath },
          500,
          'FERRY_INPOD_ENROLL_FAILED',
        ],
        [
          { uid: uid('default', 'client'), netnsPath: client.netnsPath, cgroupPath: `${client.cgroupPath}-x` },
          500,
          'FERRY_INPOD_ENROLL_FAILED',
        ],
        [{ uid: 7 }, 400, 'FERRY_INPOD_BAD_REQUEST'],
      ];
      for (const [body, status, code] of cases) {
        const res = await za.admin('POST', '/pods', body);
        assert.equal(res.status, status, JSON.stringify(res.json));
        assert.equal((res.json as { code: string }).code, code);
      }
      const garbage = await adminSocketRequest(za.adminSocket, 'POST', '/pods', { rawBody: '{"uid": ' });
      assert.equal(garbage.status, 400);
      // Over the loopback TCP admin port a change is refused: only root (the 0600 socket) enrolls.
      const overTcp = await fetch(`${za.adminUrl}/pods`, {
        method: 'POST',
        body: JSON.stringify({
          uid: uid('default', 'client'),
          netnsPath: client.netnsPath,
          cgroupPath: client.cgroupPath,
        }),
      });
      assert.equal(overTcp.status, 403);
      assert.deepEqual((await za.admin('GET', '/pods')).json, { pods: [] });
      // Not enrolled: the client still goes direct.
      assert.equal(greeting(await connectFromPod(client, server.ip, 8080)).remote, client.ip);
    });

    await enroll(za, client);
    await enroll(za, local);
    await enroll(zb, server);
    await enroll(zb, strict, 'secure');

    await t.test('enrolling twice is idempotent; GET /pods lists the pods', async () => {
      await enroll(za, client);
      const listed = (await za.admin('GET', '/pods')).json as { pods: Array<{ uid: string; podIp: string }> };
      assert.deepEqual(listed.pods.map((p) => [p.uid, p.podIp]).sort(), [
        [uid('default', 'client'), client.ip],
        [uid('default', 'local'), local.ip],
      ]);
    });

    await t.test('captured → captured across nodes by pod IP: mTLS on the wire, identity in the log', async () => {
      const capture = await captureBridge(topo, dir, 'mesh');
      const res = await connectFromPod(client, server.ip, 8080);
      const { pcap, list } = await capture.stop();
      assert.deepEqual(greeting(res), { via: 'app', pod: 'server', remote: '127.0.0.6', marker });
      await zb.logs.waitFor(inboundFrom(`${server.ip}:8080`, CLIENT_ID));
      await za.logs.waitFor(
        (l) =>
          l.msg === 'connection complete' && l.direction === 'outbound' && l['dst.hbone_addr'] === `${server.ip}:8080`,
      );
      // HBONE from the client pod's own IP (its socket lives in its netns), nothing to the app port.
      const hbone = await list(`tcp and src host ${client.ip} and dst host ${server.ip} and dst port 15008`);
      assert.notEqual(hbone.trim(), '', 'HBONE packets from the client pod to 15008 were captured');
      assert.equal((await list(`tcp and host ${server.ip} and port 8080`)).trim(), '', 'nothing to 8080 on the wire');
      assert.equal(pcap.includes(marker), false, 'the payload never crossed the wire in clear');
      // Sanity check of the capture itself: the same payload between two unenrolled pods is visible.
      // A capture can miss a connection's first packets right after it starts under load: try a few times.
      const plainCapture = await captureBridge(topo, dir, 'plain');
      for (let i = 0; i < 3 && !(await plainCapture.peek()).includes(marker); i++) {
        assert.equal(greeting(await connectFromPod(plain, outside.ip, 8080)).remote, plain.ip);
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal((await plainCapture.stop((pcap) => pcap.includes(marker))).pcap.includes(marker), true);
    });

    await t.test('captured → captured on the same node', async () => {
      assert.deepEqual(greeting(await connectFromPod(client, local.ip, 8080)), {
        via: 'app',
        pod: 'local',
        remote: '127.0.0.6',
        marker,
      });
      await za.logs.waitFor(inboundFrom(`${local.ip}:8080`, CLIENT_ID));
    });

    await t.test('by Service VIP (resolved by the source ztunnel), also from an AF_INET6 socket', async () => {
      assert.equal(greeting(await connectFromPod(client, VIP, 80)).pod, 'server');
      await za.logs.waitFor(
        (l) =>
          l.msg === 'connection complete' &&
          l['dst.service'] === 'echo.default.svc.cluster.local' &&
          l.direction === 'outbound',
      );
      const v6 = greeting(await connectFromPod(client, `::ffff:${VIP}`, 80));
      assert.equal(v6.pod, 'server');
      assert.equal(v6.remote, '127.0.0.6');
    });

    await t.test('captured → uncaptured server: plain passthrough from the pod IP', async () => {
      assert.deepEqual(greeting(await connectFromPod(client, outside.ip, 8080)), {
        via: 'app',
        pod: 'outside',
        remote: client.ip,
        marker,
      });
      await za.logs.waitFor(
        (l) => l.msg === 'connection complete' && l.direction === 'outbound' && l['dst.addr'] === `${outside.ip}:8080`,
      );
    });

    await t.test('uncaptured → captured: PERMISSIVE accepted via 15006 without identity, STRICT reset', async () => {
      assert.equal(greeting(await connectFromPod(plain, server.ip, 8080)).remote, '127.0.0.6');
      await zb.logs.waitFor(
        (l) => inboundFrom(`${server.ip}:8080`, null)(l) && String(l['src.addr']).startsWith(`${plain.ip}:`),
      );
      assert.deepEqual(await connectFromPod(plain, strict.ip, 8080), { ok: false, code: 'ECONNRESET' });
      await zb.logs.waitFor(
        (l) => l.msg === 'connection failed' && l['dst.addr'] === `${strict.ip}:8080` && l.direction === 'inbound',
      );
    });

    await t.test('garbage to an in-pod 15008 ends only that connection; the pod keeps being served', async () => {
      const res = await plain.run(process.execPath, [TCP_CLIENT, server.ip, '15008']);
      assert.equal(res.code, 0, res.stderr);
      await zb.logs.waitFor((l) => l.msg === 'HBONE peer error' && l.uid === uid('default', 'server'));
      assert.equal(greeting(await connectFromPod(client, server.ip, 8080)).remote, '127.0.0.6');
    });

    await t.test('loopback and the pod calling itself are not captured', async () => {
      const before = (await za.metrics()).sum('ferry_redirect_outbound_redirected_total');
      assert.equal(greeting(await connectFromPod(client, '127.0.0.1', 9090)).remote, '127.0.0.1');
      assert.equal(greeting(await connectFromPod(client, client.ip, 9090)).remote, client.ip);
      const after = await za.metrics();
      assert.equal(after.sum('ferry_redirect_outbound_redirected_total'), before);
      assert.ok(after.sum('ferry_redirect_outbound_bypassed_total') >= 2);
      assert.equal(after.sum('ferry_inpod_enrolled_pods'), 2);
    });

    await t.test('metrics: BPF counters and Istio traffic series', async () => {
      const a = await za.metrics();
      assert.ok(a.sum('ferry_redirect_outbound_redirected_total') >= 5);
      assert.ok(a.sum('istio_tcp_connections_opened_total', { reporter: 'source' }) >= 5);
      const b = await zb.metrics();
      assert.ok(b.sum('ferry_redirect_inbound_steered_total') >= 2);
    });

    await t.test('unenroll with a connection open: it continues, new ones go direct; re-enroll', async (t2) => {
      const session = await openSession(client, server.ip, 8080);
      t2.after(() => session.close());
      assert.equal(JSON.parse(await session.nextLine()).remote, '127.0.0.6');
      const clientUid = encodeURIComponent(uid('default', 'client'));
      assert.equal((await za.admin('DELETE', `/pods/${clientUid}`)).status, 200);
      session.send('still-there');
      assert.equal(await session.nextLine(), 'still-there');
      // Not captured any more: the server's ztunnel sees a plaintext connection from the client's own IP
      // (steered to its 15006), with no identity.
      const before = (await za.metrics()).sum('ferry_redirect_outbound_redirected_total');
      const direct = await connectFromPod(client, outside.ip, 8080);
      assert.equal(greeting(direct).remote, client.ip);
      assert.equal(greeting(await connectFromPod(client, server.ip, 8080)).pod, 'server');
      await zb.logs.waitFor(
        (l) => inboundFrom(`${server.ip}:8080`, null)(l) && String(l['src.addr']).startsWith(`${client.ip}:`),
      );
      assert.equal((await za.metrics()).sum('ferry_redirect_outbound_redirected_total'), before);
      assert.equal((await za.admin('DELETE', `/pods/${clientUid}`)).status, 404);
      await enroll(za, client);
      assert.equal(greeting(await connectFromPod(client, server.ip, 8080)).remote, '127.0.0.6');
      assert.equal((await za.metrics()).sum('ferry_redirect_outbound_redirected_total'), before + 1);
    });

    await t.test(
      'ztunnel stopped: enrolled pods are refused at once, both ways; restarted: it reconciles, traffic resumes',
      async () => {
        await za.stop();
        // The pinned datapath still captures: refused (no listener), not a direct connection, not a hang.
        assert.deepEqual(await connectFromPod(client, server.ip, 8080), { ok: false, code: 'ECONNREFUSED' });
        // Inbound fails closed too: plaintext to an enrolled pod is refused, never delivered around the mesh.
        assert.deepEqual(await connectFromPod(plain, local.ip, 8080), { ok: false, code: 'ECONNREFUSED' });
        za = await startNodeZtunnel(optsA, stack);
        const reconciled = await za.logs.waitFor((l) => l.msg === 'in-pod enrollments reconciled');
        assert.deepEqual((reconciled.restored as string[]).sort(), [uid('default', 'client'), uid('default', 'local')]);
        assert.deepEqual(reconciled.unpinned, []);
        assert.equal(greeting(await connectFromPod(client, server.ip, 8080)).remote, '127.0.0.6');
        assert.equal(greeting(await connectFromPod(client, local.ip, 8080)).remote, '127.0.0.6');
      },
    );

    await t.test('an L4 DENY from client to server applies to new connections and closes a live one', async (t2) => {
      const session = await openSession(client, server.ip, 8080);
      t2.after(() => session.close());
      assert.equal(JSON.parse(await session.nextLine()).pod, 'server');
      const deny = `- name: deny-client
  namespace: default
  scope: Namespace
  action: Deny
  rules:
  - - - principals: ["cluster.local/ns/default/sa/client"]
`;
      await writeFile(configPath, meshYaml(pods, deny));
      const applied = zb.logs.lines.length;
      zb.reload();
      await zb.logs.waitFor(
        (l) => l.msg === 'config applied' && l.policies === 2 && zb.logs.lines.indexOf(l) >= applied,
      );
      await assert.rejects(session.nextLine(), /"event":"(end|error)"/);
      const refused = await connectFromPod(client, server.ip, 8080);
      assert.equal(refused.ok, false, `expected a refusal, got ${JSON.stringify(refused)}`);
      await zb.logs.waitFor((l) => l.msg === 'connection failed' && l.policy === 'default/deny-client');
      // Other pairs are unaffected.
      assert.equal(greeting(await connectFromPod(plain, server.ip, 8080)).remote, '127.0.0.6');
    });

    await za.stop();
    await zb.stop();
  },
  { timeout: 120_000 },
);

privilegedTest('leaves no netns, cgroup or pin behind', async () => {
  assert.deepEqual(leftoversOfThisProcess(), []);
});
