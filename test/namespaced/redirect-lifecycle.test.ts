// Redirector lifecycle: the setns sandwich, enrollment errors that change nothing, idempotent re-enrollment,
// a restarted loader adopting the pins, unenroll keeping live connections, reconcile, uninstall, and a
// final check that nothing this process made is left on the machine.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before } from 'node:test';
import { promisify } from 'node:util';
import { BpfError } from '../../src/redirect-bpf/errors.ts';
import { BpfRedirector } from '../../src/redirect-bpf/loader.ts';
import { closeFd, createListenerFd, inNetns, openNetns, socketNetnsCookie } from '../../src/redirect-bpf/netns.ts';
import { cgroup2Root, leftoversOfThisProcess, sweepTestLeftovers } from '../../testkit/netns.ts';
import { privilegedTest, privilegeProblem } from '../../testkit/privileged.ts';
import { Topology } from '../../testkit/topology.ts';
import { connectFromPod, openSession, serveApp, serveOutboundEcho } from '../helpers/stand-in.ts';

const execFileP = promisify(execFile);

before(async () => {
  if (privilegeProblem() === null) await sweepTestLeftovers();
});

async function attachedPrograms(cgroupPath: string): Promise<string[]> {
  const { stdout } = await execFileP('bpftool', ['-j', 'cgroup', 'show', cgroupPath]);
  const parsed: unknown = JSON.parse(stdout.trim() || '[]');
  assert.ok(Array.isArray(parsed));
  return parsed.map((entry: { attach_type?: string }) => String(entry.attach_type)).sort();
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof BpfError, `expected a BpfError, got ${String(err)}`);
    return err.code;
  }
  return 'no error';
}

function ownSocketCookie(): bigint {
  const fd = createListenerFd({ address: '127.0.0.1', port: 0 });
  try {
    return socketNetnsCookie(fd);
  } finally {
    closeFd(fd);
  }
}

privilegedTest('redirector lifecycle', async (t) => {
  const stack = new AsyncDisposableStack();
  t.after(() => stack.disposeAsync());
  const topo = stack.use(await Topology.create('lifecycle'));
  const client = await topo.addPod('client');
  const server = await topo.addPod('server');
  await serveApp(server, '0.0.0.0', 8080, stack);
  const r1 = await BpfRedirector.open({ cgroupPath: topo.cgroupRoot, pinRoot: topo.pinRoot });
  stack.defer(() => r1.uninstall());
  const podPins = (): string[] => readdirSync(join(topo.pinRoot, 'pods'));

  await t.test('inNetns: synchronous only, and always back in the host netns', () => {
    const host = ownSocketCookie();
    const fd = openNetns(client.netnsPath);
    try {
      const inside = inNetns(fd, ownSocketCookie);
      assert.notEqual(inside, host);
      assert.equal(
        codeOf(() => inNetns(fd, async () => 1)),
        'FERRY_BPF_INVALID_ARGUMENT',
      );
      assert.throws(() =>
        inNetns(fd, () => {
          throw new Error('boom');
        }),
      );
    } finally {
      closeFd(fd);
    }
    assert.equal(ownSocketCookie(), host);
  });

  await t.test('bad enrollments fail clearly and change nothing', () => {
    const base = { netnsPath: client.netnsPath, cgroupPath: client.cgroupPath, podIp: client.ip };
    assert.equal(
      codeOf(() => r1.enrollPod({ ...base, netnsPath: `${client.netnsPath}-missing` })),
      'FERRY_BPF_NETNS_NOT_FOUND',
    );
    assert.equal(
      codeOf(() => r1.enrollPod({ ...base, cgroupPath: `${client.cgroupPath}-missing` })),
      'FERRY_BPF_CGROUP_NOT_FOUND',
    );
    assert.equal(
      codeOf(() => r1.enrollPod({ ...base, cgroupPath: cgroup2Root() })),
      'FERRY_BPF_CGROUP_OUTSIDE_SUBTREE',
    );
    assert.equal(
      codeOf(() => r1.enrollPod({ ...base, podIp: 'fd00::1' })),
      'FERRY_BPF_INVALID_ARGUMENT',
    );
    // A pod IP the netns does not own: the 15008 bind fails after 15001/15006 were created; all undone.
    assert.equal(
      codeOf(() => r1.enrollPod({ ...base, podIp: '10.244.9.9' })),
      'FERRY_BPF_SOCKET_FAILED',
    );
    assert.deepEqual(r1.listEnrollments(), []);
    assert.deepEqual(podPins(), []);
  });

  const first = r1.enrollPod({ netnsPath: client.netnsPath, cgroupPath: client.cgroupPath, podIp: client.ip });
  const second = r1.enrollPod({ netnsPath: client.netnsPath, cgroupPath: client.cgroupPath, podIp: client.ip });

  await t.test('enrolling twice is idempotent: one entry, one link, the newest listeners serve', async () => {
    assert.deepEqual(r1.listEnrollments(), [{ cgroupId: first.cgroupId, podIp: client.ip }]);
    assert.deepEqual(podPins(), [String(first.cgroupId)]);
    assert.equal(second.netnsCookie, first.netnsCookie);
    // The first set plays the ztunnel that is shutting down: its listeners go, the second set takes over.
    for (const fd of Object.values(first.listeners)) closeFd(fd);
    closeFd(second.listeners.inboundPlaintext);
    closeFd(second.listeners.hbone);
    await serveOutboundEcho(r1, client, second, stack);
    const session = await openSession(client, server.ip, 8080);
    assert.deepEqual(JSON.parse(await session.nextLine()), {
      via: 'ztunnel-outbound',
      pod: 'client',
      orig: `${server.ip}:8080`,
    });
    await session.close();
  });

  await t.test('a second loader adopts the pins: no double attach, same maps, capture continues', async () => {
    const r2 = await BpfRedirector.open({ cgroupPath: topo.cgroupRoot, pinRoot: topo.pinRoot });
    try {
      assert.deepEqual(await attachedPrograms(topo.cgroupRoot), [
        'cgroup_inet4_connect',
        'cgroup_inet6_connect',
        'cgroup_sock_ops',
      ]);
      assert.deepEqual(r2.listEnrollments(), r1.listEnrollments());
      const before = r2.readCounters().outboundRedirected;
      const session = await openSession(client, server.ip, 8080);
      assert.equal(JSON.parse(await session.nextLine()).orig, `${server.ip}:8080`);
      await session.close();
      assert.equal(r2.readCounters().outboundRedirected, before + 1n);
    } finally {
      r2.close();
    }
    assert.equal((await attachedPrograms(topo.cgroupRoot)).length, 3, 'closing a loader leaves the datapath');
  });

  await t.test('unenroll keeps an open connection working; new connects go direct', async (t2) => {
    const session = await openSession(client, server.ip, 8080);
    t2.after(() => session.close());
    assert.equal(JSON.parse(await session.nextLine()).via, 'ztunnel-outbound');
    session.send('one');
    assert.equal(await session.nextLine(), 'one');

    r1.unenrollPod({ cgroupPath: client.cgroupPath });
    assert.deepEqual(r1.listEnrollments(), []);
    session.send('two');
    assert.equal(await session.nextLine(), 'two');

    const direct = await connectFromPod(client, server.ip, 8080);
    assert.equal(direct.ok && direct.reply.via, 'app');
  });

  await t.test('reconcile drops enrollments the caller no longer wants', () => {
    const again = r1.enrollPod({ netnsPath: client.netnsPath, cgroupPath: client.cgroupPath, podIp: client.ip });
    for (const fd of Object.values(again.listeners)) closeFd(fd);
    assert.deepEqual(r1.reconcileEnrollments(new Set([again.cgroupId])), []);
    assert.deepEqual(r1.reconcileEnrollments(new Set()), [again.cgroupId]);
    assert.deepEqual(r1.listEnrollments(), []);
    assert.deepEqual(podPins(), []);
  });

  await t.test('uninstall detaches everything and removes the pins', async () => {
    r1.uninstall();
    assert.deepEqual(await attachedPrograms(topo.cgroupRoot), []);
    assert.equal(existsSync(topo.pinRoot), false);
    assert.equal(
      codeOf(() => r1.listEnrollments()),
      'FERRY_BPF_CLOSED',
    );
  });
});

privilegedTest('namespaced tests leave no netns, cgroup or pin behind', async () => {
  assert.deepEqual(leftoversOfThisProcess(), []);
  assert.equal(readFileSync('/proc/self/mounts', 'utf8').includes(`ferrytest-${process.pid}-`), false);
});
