// The fail-closed guard in the datapath (docs/redirect.md, "Fail-closed capture for new pods"): with a guard
// root set, a connect from a pod cgroup under it that is neither enrolled nor classified `exempt` is
// refused (EPERM) and counted; with no root (the admin-enrolled mode, sidecars) nothing changes. Real
// cgroups, netns and BPF; the node agent's side is test/namespaced/ztunnel-fail-closed.test.ts.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { before } from 'node:test';
import { BpfRedirector } from '../../src/redirect-bpf/loader.ts';
import { leftoversOfThisProcess, sweepTestLeftovers } from '../../testkit/netns.ts';
import { privilegedTest, privilegeProblem } from '../../testkit/privileged.ts';
import { Topology } from '../../testkit/topology.ts';
import { connectFromPod, serveApp, serveEnrollment } from '../helpers/stand-in.ts';

before(async () => {
  if (privilegeProblem() === null) await sweepTestLeftovers();
});

const cgroupIdOf = (path: string): bigint => statSync(path, { bigint: true }).ino;

privilegedTest(
  'guard root: unclassified pods are refused, exempt ones connect, enrolled ones are captured',
  async (t) => {
    const stack = new AsyncDisposableStack();
    t.after(() => stack.disposeAsync());
    const topo = stack.use(await Topology.create('guard'));
    const server = await topo.addPod('server');
    const fresh = await topo.addPod('fresh');
    const enrolled = await topo.addPod('enrolled');
    await serveApp(server, '0.0.0.0', 8080, stack);
    await serveApp(fresh, '0.0.0.0', 9090, stack);

    const redirector = await BpfRedirector.open({ cgroupPath: topo.cgroupRoot, pinRoot: topo.pinRoot });
    stack.defer(() => redirector.uninstall());
    const enrollment = redirector.enrollPod({
      netnsPath: enrolled.netnsPath,
      cgroupPath: enrolled.cgroupPath,
      podIp: enrolled.ip,
    });
    await serveEnrollment(redirector, enrolled, enrollment, stack);

    await t.test('no guard root (admin-enrolled mode): an unknown pod connects directly, as before', async () => {
      assert.equal(redirector.guardRoot(), null);
      const res = await connectFromPod(fresh, server.ip, 8080);
      assert.equal(res.ok && res.reply.via === 'app' && res.reply.remote, fresh.ip);
      assert.equal(redirector.readCounters().outboundRefused, 0n);
    });

    await t.test('guard root set: a pod nobody classified is refused with EPERM and counted', async () => {
      redirector.setGuardRoot(cgroupIdOf(topo.cgroupRoot));
      assert.deepEqual(await connectFromPod(fresh, server.ip, 8080), { ok: false, code: 'EPERM' });
      assert.deepEqual(await connectFromPod(fresh, `::ffff:${server.ip}`, 8080), { ok: false, code: 'EPERM' });
      // From a container cgroup below the pod too.
      assert.deepEqual(await connectFromPod(fresh, server.ip, 8080, { container: 'app' }), {
        ok: false,
        code: 'EPERM',
      });
      assert.equal(redirector.readCounters().outboundRefused, 3n);
    });

    await t.test('loopback stays the pod own business', async () => {
      const res = await connectFromPod(fresh, '127.0.0.1', 9090);
      assert.equal(res.ok && res.reply.via, 'app');
    });

    await t.test('classified ambient (enrollment pending) is refused; exempt connects directly', async () => {
      const id = cgroupIdOf(fresh.cgroupPath);
      redirector.classifyCgroup(id, 'ambient');
      assert.deepEqual(await connectFromPod(fresh, server.ip, 8080, { container: 'app' }), {
        ok: false,
        code: 'EPERM',
      });
      redirector.classifyCgroup(id, 'exempt');
      const res = await connectFromPod(fresh, server.ip, 8080, { container: 'app' });
      assert.equal(res.ok && res.reply.via === 'app' && res.reply.remote, fresh.ip);
      assert.deepEqual([...redirector.listClassified()], [[id, 'exempt']]);
      assert.equal(redirector.unclassifyCgroup(id), true);
      assert.deepEqual(await connectFromPod(fresh, server.ip, 8080), { ok: false, code: 'EPERM' });
    });

    await t.test('an enrolled pod is captured whatever its classification', async () => {
      redirector.classifyCgroup(enrollment.cgroupId, 'ambient');
      const res = await connectFromPod(enrolled, server.ip, 8080);
      assert.deepEqual(res, {
        ok: true,
        reply: { via: 'ztunnel-outbound', pod: 'enrolled', orig: `${server.ip}:8080` },
      });
    });

    await t.test('the guard is pinned: a second open sees it; clearing the root turns it off', async () => {
      const again = await BpfRedirector.open({ cgroupPath: topo.cgroupRoot, pinRoot: topo.pinRoot });
      try {
        assert.equal(again.guardRoot(), cgroupIdOf(topo.cgroupRoot));
        again.setGuardRoot(null);
      } finally {
        again.close();
      }
      const res = await connectFromPod(fresh, server.ip, 8080);
      assert.equal(res.ok && res.reply.via === 'app' && res.reply.remote, fresh.ip);
    });
  },
);

privilegedTest('leaves no netns, cgroup or pin behind', async () => {
  assert.deepEqual(leftoversOfThisProcess(), []);
});
