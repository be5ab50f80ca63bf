// Outbound capture end to end (docs/architecture.md "How a connection flows through the code" steps 1–2): an enrolled pod's connect lands on its in-pod
// 15001 listener and the stand-in ztunnel recovers the original destination from the pinned maps.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { decodePodInfo, encodePodInfo, encodeU64, POD_FLAG_STEER_LISTENERS } from '../../src/redirect-bpf/layout.ts';
import { BpfRedirector } from '../../src/redirect-bpf/loader.ts';
import { leftoversOfThisProcess, sweepTestLeftovers } from '../../testkit/netns.ts';
import { privilegedTest, privilegeProblem } from '../../testkit/privileged.ts';
import { Topology } from '../../testkit/topology.ts';
import { connectFromPod, serveApp, serveEnrollment } from '../helpers/stand-in.ts';

before(async () => {
  if (privilegeProblem() === null) await sweepTestLeftovers();
});

privilegedTest('enrolled pod: connects are captured, loopback/own IP/ztunnel ports are not', async (t) => {
  const stack = new AsyncDisposableStack();
  t.after(() => stack.disposeAsync());
  const topo = stack.use(await Topology.create('outbound'));
  const client = await topo.addPod('client');
  const server = await topo.addPod('server');
  const plain = await topo.addPod('plain');
  await serveApp(server, '0.0.0.0', 8080, stack);
  await serveApp(client, '0.0.0.0', 9090, stack);

  const redirector = await BpfRedirector.open({ cgroupPath: topo.cgroupRoot, pinRoot: topo.pinRoot });
  stack.defer(() => redirector.uninstall());
  const enrollment = redirector.enrollPod({
    netnsPath: client.netnsPath,
    cgroupPath: client.cgroupPath,
    podIp: client.ip,
  });
  await serveEnrollment(redirector, client, enrollment, stack);

  await t.test('connect to another pod is redirected and the original destination recovered', async () => {
    const res = await connectFromPod(client, server.ip, 8080);
    assert.deepEqual(res, { ok: true, reply: { via: 'ztunnel-outbound', pod: 'client', orig: `${server.ip}:8080` } });
  });

  await t.test('a destination nobody serves is still captured (a Service VIP)', async () => {
    const res = await connectFromPod(client, '10.96.0.10', 80);
    assert.deepEqual(res, { ok: true, reply: { via: 'ztunnel-outbound', pod: 'client', orig: '10.96.0.10:80' } });
  });

  await t.test('AF_INET6 socket to a v4-mapped address is captured too', async () => {
    const res = await connectFromPod(client, `::ffff:${server.ip}`, 8080);
    assert.deepEqual(res, { ok: true, reply: { via: 'ztunnel-outbound', pod: 'client', orig: `${server.ip}:8080` } });
  });

  await t.test('a process in a container cgroup below the pod cgroup is captured', async () => {
    const res = await connectFromPod(client, server.ip, 8080, { container: 'app' });
    assert.deepEqual(res, { ok: true, reply: { via: 'ztunnel-outbound', pod: 'client', orig: `${server.ip}:8080` } });
  });

  await t.test('loopback is not captured', async () => {
    const res = await connectFromPod(client, '127.0.0.1', 9090);
    assert.equal(res.ok && res.reply.via, 'app');
  });

  await t.test('the pod own IP is not captured', async () => {
    const res = await connectFromPod(client, client.ip, 9090);
    assert.equal(res.ok && res.reply.via, 'app');
  });

  await t.test('ztunnel ports of another pod are not captured', async () => {
    const res = await connectFromPod(client, server.ip, 15008);
    assert.deepEqual(res, { ok: false, code: 'ECONNREFUSED' });
  });

  await t.test('an unenrolled pod is untouched', async () => {
    const res = await connectFromPod(plain, server.ip, 8080);
    assert.equal(res.ok && res.reply.via, 'app');
    assert.equal(res.ok && res.reply.via === 'app' && res.reply.remote, plain.ip);
  });

  await t.test('counters show redirected and bypassed connects', () => {
    const counters = redirector.readCounters();
    assert.equal(counters.outboundRedirected, 4n);
    assert.equal(counters.outboundBypassed, 3n);
  });

  await t.test(
    'an entry written before the steering flag (mid-upgrade) keeps the 127.0.0.1:15001 rewrite',
    async () => {
      const key = encodeU64(enrollment.cgroupId);
      const value = redirector.map('enrolled').lookup(key);
      assert.ok(value !== null);
      assert.equal(decodePodInfo(value).flags, POD_FLAG_STEER_LISTENERS);
      // Such a connect meets the 127.0.0.1:15001 listener by the ordinary lookup, as before the flag existed.
      redirector.map('enrolled').update(key, encodePodInfo(client.ip, 0));
      const res = await connectFromPod(client, server.ip, 8080);
      redirector.map('enrolled').update(key, value);
      assert.deepEqual(res, { ok: true, reply: { via: 'ztunnel-outbound', pod: 'client', orig: `${server.ip}:8080` } });
    },
  );
});

privilegedTest('leaves no netns, cgroup or pin behind', async () => {
  assert.deepEqual(leftoversOfThisProcess(), []);
});
