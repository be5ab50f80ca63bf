// Issue 9 §5: the in-pod listeners are bound with SO_REUSEPORT (for the hitless handoff between two
// ztunnel processes), so a process in the pod running as the ztunnel's UID could join their reuseport
// groups and take part of the pod's captured connections in plaintext. The datapath must hand captured
// connections (15001) and HBONE (15008) to the sockets the ztunnel registered, never to another member of
// the group (docs/redirect.md, "Only the ztunnel's own sockets"), and a second ztunnel must still take over
// without a failed connection. One simulated node, one ztunnel process, a competitor in each pod.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { before } from 'node:test';
import { uninstallPins } from '../../src/redirect-bpf/loader.ts';
import { leftoversOfThisProcess, sweepTestLeftovers } from '../../testkit/netns.ts';
import { privilegedTest, privilegeProblem } from '../../testkit/privileged.ts';
import { type Pod, Topology } from '../../testkit/topology.ts';
import { type NodeZtunnel, serveGreetingApp, startNodeZtunnel, tempDir, writeCaDir } from '../helpers/inpod-nodes.ts';
import type { LogCapture } from '../helpers/ztunnel-harness.ts';

before(async () => {
  if (privilegeProblem() === null) await sweepTestLeftovers();
});

const COMPETITOR = new URL('./fixtures/reuseport-competitor.ts', import.meta.url).pathname;
const BURST = new URL('./fixtures/tcp-burst.ts', import.meta.url).pathname;
const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';
const CONNECTIONS = 64;
const uid = (name: string): string => `Kubernetes//Pod/default/${name}`;

function meshYaml(pods: readonly Pod[]): string {
  const workloads = pods.map(
    (pod) => `
- uid: ${uid(pod.name)}
  name: ${pod.name}
  namespace: default
  serviceAccount: ${pod.name}
  workloadIps: ["${pod.ip}"]
  protocol: HBONE
  node: node-a`,
  );
  return `workloads:${workloads.join('')}\nservices: []\npolicies: []\n`;
}

interface Competitor {
  readonly bound: readonly string[];
  /** Connections it accepted so far ("local ← remote"). */
  readonly accepted: string[];
}

/** Starts the competitor fixture in `pod` on `addresses` (ip:port, SO_REUSEPORT); stopped with `stack`. */
async function startCompetitor(
  pod: Pod,
  addresses: readonly string[],
  stack: AsyncDisposableStack,
): Promise<Competitor> {
  const child = pod.spawn(process.execPath, [COMPETITOR, ...addresses]);
  const exited = once(child, 'close');
  stack.defer(async () => {
    child.stdin.end();
    await exited;
  });
  const accepted: string[] = [];
  const lines = createInterface({ input: child.stdout });
  const listening = new Promise<{ bound: string[]; failed: unknown[] }>((resolve, reject) => {
    void exited.then(() => reject(new Error('competitor exited before listening')));
    lines.on('line', (line) => {
      const event = JSON.parse(line) as {
        event: string;
        bound: string[];
        failed: unknown[];
        local: string;
        remote: string;
      };
      if (event.event === 'listening') resolve(event);
      else if (event.event === 'accepted') accepted.push(`${event.local} ← ${event.remote}`);
    });
  });
  const { bound, failed } = await listening;
  assert.deepEqual(failed, [], 'the competitor could join every reuseport group it tried');
  return { bound, accepted };
}

/** `count` connections from `pod` to host:port, 16 at a time; resolves the replies (or error codes). */
async function burst(pod: Pod, host: string, port: number, count = CONNECTIONS): Promise<string[]> {
  const res = await pod.run(process.execPath, [BURST, host, String(port), String(count), '16']);
  assert.equal(res.code, 0, res.stderr);
  const { results } = JSON.parse(res.stdout) as { results: Array<{ ok: boolean; reply?: string; code?: string }> };
  return results.map((r) => (r.ok ? String(r.reply).trim() : `error ${r.code}`));
}

/** Connections from `pod` to host:port, 4 at a time, until `stop()`; resolves the replies then. */
function startLoad(pod: Pod, host: string, port: number): { stop(): Promise<string[]> } {
  const child = pod.spawn(process.execPath, [BURST, host, String(port), '-', '4']);
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  const exited = once(child, 'close');
  return {
    async stop() {
      child.stdin.end();
      await exited;
      const { results } = JSON.parse(stdout) as { results: Array<{ ok: boolean; reply?: string; code?: string }> };
      return results.map((r) => (r.ok ? String(r.reply).trim() : `error ${r.code}`));
    },
  };
}

/** Replies tallied by who answered: the app (through the mesh: peer 127.0.0.6) or anything else. */
function tally(replies: readonly string[], marker: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const reply of replies) {
    let key = reply;
    try {
      const parsed = JSON.parse(reply) as { via?: string; remote?: string; marker?: string };
      if (parsed.via === 'app' && parsed.marker === marker) key = `app from ${parsed.remote}`;
      else if (parsed.via === 'competitor') key = 'competitor';
    } catch {
      // an error code or a garbled reply: counted as itself
    }
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

type LogLine = Record<string, unknown>;
const mtlsInboundFromClient =
  (server: Pod) =>
  (l: LogLine): boolean =>
    l.msg === 'connection complete' &&
    l.direction === 'inbound' &&
    l['dst.addr'] === `${server.ip}:8080` &&
    l['src.identity'] === CLIENT_ID;

const outboundToServer =
  (server: Pod) =>
  (l: LogLine): boolean =>
    l.msg === 'connection complete' && l.direction === 'outbound' && l['dst.hbone_addr'] === `${server.ip}:8080`;

/** Resolves once `count` lines match (already logged or future); rejects after 30 s with what it saw. */
async function waitForCount(logs: LogCapture, pred: (l: LogLine) => boolean, count: number): Promise<void> {
  let seen = 0;
  await logs
    .waitFor((l) => pred(l) && ++seen >= count, AbortSignal.timeout(30_000))
    .catch(() => {
      throw new Error(`expected ${count} matching log lines, saw ${seen}`);
    });
}

privilegedTest(
  'issue 9 §5: a competing SO_REUSEPORT listener in an enrolled pod never receives its connections',
  async (t) => {
    const stack = new AsyncDisposableStack();
    t.after(() => stack.disposeAsync());
    const topo = stack.use(await Topology.create('reuseport'));
    const client = await topo.addPod('client', { node: 'node-a' });
    const server = await topo.addPod('server', { node: 'node-a' });
    const marker = `MARKER-${randomUUID()}`;
    await serveGreetingApp(server, 8080, marker, stack);

    const dir = await tempDir(stack, 'reuseport');
    const caDir = join(dir, 'ca');
    await mkdir(caDir);
    await writeCaDir(caDir);
    const configPath = join(dir, 'mesh.yaml');
    await writeFile(configPath, meshYaml([client, server]));
    const pinRoot = `${topo.pinRoot}-node-a`;
    stack.defer(() => uninstallPins(pinRoot)); // after the processes are gone (LIFO)
    const opts = {
      node: 'node-a',
      configPath,
      cgroupRoot: topo.nodeCgroup('node-a'),
      pinRoot,
      statePath: join(dir, 'node-a-pods.json'),
      caDir,
    };
    const za: NodeZtunnel = await startNodeZtunnel(opts, stack);
    for (const pod of [client, server]) {
      const res = await za.admin('POST', '/pods', {
        uid: uid(pod.name),
        netnsPath: pod.netnsPath,
        cgroupPath: pod.cgroupPath,
      });
      assert.equal(res.status, 200, `enroll ${pod.name}: ${JSON.stringify(res.json)}`);
    }
    const fromMesh = { 'app from 127.0.0.6': CONNECTIONS };

    // Wherever a captured connection could land: the listener's own address, the wildcard, the pod IP.
    const outboundCompetitor = await startCompetitor(
      client,
      ['127.0.0.1:15001', '0.0.0.0:15001', `${client.ip}:15001`],
      stack,
    );
    const hboneCompetitor = await startCompetitor(server, [`${server.ip}:15008`, '0.0.0.0:15008'], stack);

    await t.test(
      `${CONNECTIONS} captured connections: all through the ztunnel with mTLS, none to the competitors`,
      async () => {
        const before = za.logs.lines.filter(mtlsInboundFromClient(server)).length;
        assert.deepEqual(tally(await burst(client, server.ip, 8080), marker), fromMesh);
        await waitForCount(za.logs, mtlsInboundFromClient(server), before + CONNECTIONS);
        assert.deepEqual(outboundCompetitor.accepted, []);
        assert.deepEqual(hboneCompetitor.accepted, []);
      },
    );

    await t.test(
      'a peer outside the pod dialing podIP:15001 is reset by the ztunnel, never answered by the competitor',
      async () => {
        assert.deepEqual(tally(await burst(server, client.ip, 15001, 8), marker), { 'error ECONNRESET': 8 });
        await za.logs.waitFor((l) => l.code === 'FERRY_INPOD_NO_ORIGINAL_DST' && l.uid === uid('client'));
        assert.deepEqual(outboundCompetitor.accepted, []);
      },
    );

    await t.test('hitless handoff: a second ztunnel takes over, the first drains; nothing fails or leaks', async () => {
      // Connections keep coming through the whole handoff: start, overlap, the old one's exit.
      const load = startLoad(client, server.ip, 8080);
      const statePath = join(dir, 'node-a-pods-2.json');
      await copyFile(opts.statePath, statePath);
      const zb = await startNodeZtunnel({ ...opts, statePath }, stack);
      const reconciled = await zb.logs.waitFor((l) => l.msg === 'in-pod enrollments reconciled');
      assert.deepEqual((reconciled.restored as string[]).sort(), [uid('client'), uid('server')]);

      // Both processes serve the pods now: new captured connections go to the newest registration only.
      // (An HBONE connection the new one pooled to the old one's 15008 before it re-registered the server
      // pod stays in use until the old one drains it: that is the old one finishing what it has.)
      const outboundAtA = za.logs.lines.filter(outboundToServer(server)).length;
      const outboundAtB = zb.logs.lines.filter(outboundToServer(server)).length;
      assert.deepEqual(tally(await burst(client, server.ip, 8080), marker), fromMesh);
      await waitForCount(zb.logs, outboundToServer(server), outboundAtB + CONNECTIONS);
      assert.equal(za.logs.lines.filter(outboundToServer(server)).length, outboundAtA);

      // The old process drains and exits while connections keep coming.
      const [replies] = await Promise.all([burst(client, server.ip, 8080), za.stop()]);
      assert.deepEqual(tally(replies, marker), fromMesh);
      assert.deepEqual(tally(await burst(client, server.ip, 8080), marker), fromMesh);
      const during = await load.stop();
      assert.ok(during.length >= CONNECTIONS, `only ${during.length} connections during the handoff`);
      assert.deepEqual(tally(during, marker), { 'app from 127.0.0.6': during.length });
      assert.deepEqual(outboundCompetitor.accepted, []);
      assert.deepEqual(hboneCompetitor.accepted, []);
      await zb.stop();
    });

    await t.test(
      'with no ztunnel serving the pod, its captured connects are refused, not handed to the competitor',
      async () => {
        const replies = await burst(client, server.ip, 8080, 8);
        assert.deepEqual(tally(replies, marker), { 'error ECONNREFUSED': 8 });
        assert.deepEqual(outboundCompetitor.accepted, []);
      },
    );
  },
  { timeout: 180_000 },
);

privilegedTest('leaves no netns, cgroup or pin behind', async () => {
  assert.deepEqual(leftoversOfThisProcess(), []);
});
