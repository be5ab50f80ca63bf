// Two redirectors on one pod (docs/redirect.md, "Two redirectors on one pod"): a sidecar's, attached to
// the pod's app container, and the node ztunnel's, attached to the node's pod subtree, both enrolled with
// an sk_lookup program on the pod netns, as during `ferry migrate namespace` and `rollback`. Whichever
// enrolled first, a connect reaches the listener of the redirector that captured it (the only one that
// has its original destination); other SYNs go to the first attached.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { before } from 'node:test';
import type { PodEnrollment } from '../../src/redirect-bpf/enroll.ts';
import { BpfRedirector, uninstallPins } from '../../src/redirect-bpf/loader.ts';
import { leftoversOfThisProcess, sweepTestLeftovers } from '../../testkit/netns.ts';
import { privilegedTest, privilegeProblem } from '../../testkit/privileged.ts';
import { type Pod, Topology } from '../../testkit/topology.ts';
import { type ClientResult, connectFromPod, serveApp, serveEnrollment } from '../helpers/stand-in.ts';

before(async () => {
  if (privilegeProblem() === null) await sweepTestLeftovers();
});

/** Connects made one after the other from each side; enough to see a mix-up, cheap on a shared machine. */
const CONNECTS = 4;

interface Enrolled {
  readonly redirector: BpfRedirector;
  readonly enrollment: PodEnrollment;
  /** Unenrolls and closes the stand-in's listeners. */
  readonly release: () => Promise<void>;
}

/** Enrolls `pod` in `redirector` and serves it with a stand-in that answers as `<pod>@<who>`. */
async function enrollAs(redirector: BpfRedirector, pod: Pod, who: string): Promise<Enrolled> {
  const enrollment = redirector.enrollPod({ netnsPath: pod.netnsPath, cgroupPath: pod.cgroupPath, podIp: pod.ip });
  const servers = new AsyncDisposableStack();
  await serveEnrollment(redirector, { ...pod, name: `${pod.name}@${who}` }, enrollment, servers);
  const release = async (): Promise<void> => {
    redirector.unenrollPod({ cgroupId: enrollment.cgroupId });
    await servers.disposeAsync();
  };
  return { redirector, enrollment, release };
}

async function connectMany(pod: Pod, host: string, port: number, container?: string): Promise<ClientResult[]> {
  const results: ClientResult[] = [];
  for (let i = 0; i < CONNECTS; i++) {
    results.push(await connectFromPod(pod, host, port, container === undefined ? {} : { container }));
  }
  return results;
}

function captured(by: string, orig: string | null): ClientResult {
  return { ok: true, reply: { via: 'ztunnel-outbound', pod: by, orig } };
}

privilegedTest('a sidecar and the node ztunnel on one pod: each connect reaches its own capturer', async (t) => {
  const stack = new AsyncDisposableStack();
  t.after(() => stack.disposeAsync());
  const topo = stack.use(await Topology.create('nested'));
  const client = await topo.addPod('client');
  const server = await topo.addPod('server');
  const peer = await topo.addPod('peer');
  await serveApp(server, '0.0.0.0', 8080, stack);
  await serveApp(client, '0.0.0.0', 9090, stack);
  const appCgroup = join(client.cgroupPath, 'app');
  mkdirSync(appCgroup);

  const sidecarPinRoot = `${topo.pinRoot}-sidecar`;
  // Pins go even when a load fails part-way (the loader has made the pin directories by then).
  stack.defer(() => uninstallPins(topo.pinRoot));
  stack.defer(() => uninstallPins(sidecarPinRoot));
  const node = stack.use(await BpfRedirector.open({ cgroupPath: topo.cgroupRoot, pinRoot: topo.pinRoot }));
  const sidecar = stack.use(
    await BpfRedirector.open({
      cgroupPath: client.cgroupPath,
      attachCgroupPaths: [appCgroup],
      pinRoot: sidecarPinRoot,
    }),
  );
  const orig = `${server.ip}:8080`;

  await t.test('rollback order (node enrolled first, then the sidecar): the app is served by its sidecar', async () => {
    const nodeSide = await enrollAs(node, client, 'node');
    const sidecarSide = await enrollAs(sidecar, client, 'sidecar');
    try {
      const fromApp = await connectMany(client, server.ip, 8080, 'app');
      assert.deepEqual(fromApp, Array(CONNECTS).fill(captured('client@sidecar', orig)));
      // A process of the pod outside the app container (the proxy's own cgroup) is the node's capture.
      const fromPod = await connectFromPod(client, server.ip, 8080);
      assert.deepEqual(fromPod, captured('client@node', orig));
      // Inbound and peers dialing podIP:15001 go to the first attached: the node's listeners.
      const inbound = await connectFromPod(peer, client.ip, 9090);
      assert.equal(inbound.ok && inbound.reply.via === 'ztunnel-inbound' && inbound.reply.pod, 'client@node');
      const stray = await connectFromPod(peer, client.ip, 15001);
      assert.deepEqual(stray, captured('client@node', null));
      // Each note of a captured connect is dropped once its handshake completed.
      assert.deepEqual([...sidecar.map('captured_connects').keys()], []);
      assert.deepEqual([...node.map('captured_connects').keys()], []);
    } finally {
      await nodeSide.release();
      await sidecarSide.release();
    }
  });

  await t.test(
    'migration order (sidecar enrolled first, then the node): the app is still served by its sidecar',
    async () => {
      const sidecarSide = await enrollAs(sidecar, client, 'sidecar');
      const nodeSide = await enrollAs(node, client, 'node');
      try {
        const fromApp = await connectMany(client, server.ip, 8080, 'app');
        assert.deepEqual(fromApp, Array(CONNECTS).fill(captured('client@sidecar', orig)));
        const fromPod = await connectFromPod(client, server.ip, 8080);
        assert.deepEqual(fromPod, captured('client@node', orig));
        const inbound = await connectFromPod(peer, client.ip, 9090);
        assert.equal(inbound.ok && inbound.reply.via === 'ztunnel-inbound' && inbound.reply.pod, 'client@sidecar');
        // The sidecar leaves: from then on the node captures the app too.
        await sidecarSide.release();
        const afterSidecar = await connectMany(client, server.ip, 8080, 'app');
        assert.deepEqual(afterSidecar, Array(CONNECTS).fill(captured('client@node', orig)));
      } finally {
        await nodeSide.release();
        await sidecarSide.release();
      }
    },
  );

  await t.test('one redirector alone: captured connects still reach its listener', async () => {
    const nodeSide = await enrollAs(node, client, 'node');
    try {
      assert.deepEqual(
        await connectFromPod(client, server.ip, 8080, { container: 'app' }),
        captured('client@node', orig),
      );
    } finally {
      await nodeSide.release();
    }
  });

  await t.test('no listener on either side once both left: the app connects directly', async () => {
    const res = await connectFromPod(client, server.ip, 8080, { container: 'app' });
    assert.equal(res.ok && res.reply.via, 'app');
  });
});

privilegedTest('leaves no netns, cgroup or pin behind', async () => {
  assert.deepEqual(leftoversOfThisProcess(), []);
});
