// Issue 9 §2: what a user applied survives a kill -9 of the controller. A stream of `ferry apply/delete`
// (STRICT PeerAuthentication, a DENY, and a few inert DENY policies) runs while the controller is killed at
// a random moment, or right after it published a committed change before the CLI heard back; `ferry up`
// restarts it as docs/operations.md says, and the served state must equal the acknowledged changes (the
// one change in flight at the kill may or may not have landed): `ferry status` policies, and traffic (a
// DENY still denies, STRICT still refuses plaintext). A last round keeps request loops running and samples
// every ztunnel's config through the kill and the restart: not one denied request may get through, and no
// ztunnel may hold fewer policies or see an enrolled pod as TCP at any moment (no empty or partial
// snapshot). FERRY_TEST_SEED replays a run.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { privilegedTest } from '../../testkit/privileged.ts';
import { DEMO, FerryCli, podOf, processesOf, vipOf } from '../helpers/cluster-cli.ts';

const cli = new FerryCli('durable');
test.after(() => cli.remove());

const ROUNDS = 3;
const STRICT = 'istio-system/istio_converted_static_strict';
const DENY = 'demo/deny-client-to-echo';
const INERT = ['demo/inert-0', 'demo/inert-1', 'demo/inert-2'];

/** mulberry32: a small seeded generator, so a failing run can be replayed with FERRY_TEST_SEED. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function controllerPid(cluster: string): number | undefined {
  return processesOf(cluster).find((pid) => {
    try {
      const cgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return cgroup.includes(`/ferry.slice/${cluster}/system/controller`) && argv.includes('controller');
    } catch {
      return false;
    }
  });
}

function gone(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

/** Resolves at the next `mesh state published` line the controller logs from now on. */
async function nextPublish(logFile: string): Promise<void> {
  const from = statSync(logFile).size;
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await delay(2)) {
    const text = readFileSync(logFile).subarray(from).toString('utf8');
    if (text.includes('"msg":"mesh state published"')) return;
  }
  throw new Error(`no change published within 30 s (${logFile})`);
}

async function killController(cluster: string): Promise<void> {
  const pid = controllerPid(cluster);
  assert.ok(pid !== undefined, 'controller process found');
  process.kill(pid, 'SIGKILL');
  while (!gone(pid)) await delay(5);
}

const sorted = (s: Iterable<string>): string[] => [...s].sort();

interface ZtunnelSample {
  readonly node: string;
  readonly version: number;
  readonly policies: readonly string[];
  /** demo workloads the ztunnel would reach in plaintext (announced TCP): a partial snapshot. */
  readonly tcp: readonly string[];
}

/**
 * Samples every ztunnel's /config_dump (admin address from mesh.json) back to back until stopped: what
 * each one held while the controller was dead and restarting.
 */
function watchZtunnels(stateDir: string): { stop: () => Promise<ZtunnelSample[]> } {
  const mesh = JSON.parse(readFileSync(join(stateDir, 'mesh.json'), 'utf8')) as {
    nodes: { name: string; admin: string }[];
  };
  const samples: ZtunnelSample[] = [];
  let running = true;
  const poll = async (node: { name: string; admin: string }) => {
    while (running) {
      const res = await fetch(`http://${node.admin}/config_dump`, { signal: AbortSignal.timeout(5_000) });
      const dump = (await res.json()) as {
        version: number;
        policies: { namespace: string; name: string }[];
        workloads: { namespace: string; name: string; protocol: string }[];
      };
      samples.push({
        node: node.name,
        version: dump.version,
        policies: dump.policies.map((p) => `${p.namespace}/${p.name}`),
        tcp: dump.workloads.filter((w) => w.namespace === 'demo' && w.protocol !== 'HBONE').map((w) => w.name),
      });
      await delay(10);
    }
  };
  const loops = mesh.nodes.map(poll);
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return samples;
    },
  };
}

interface Change {
  readonly verb: 'apply' | 'delete';
  readonly policy: string;
  readonly file: string;
}

privilegedTest(
  'controller kill -9 during applies/deletes: the restarted controller serves the acknowledged state',
  async (t: TestContext) => {
    const seed = Number(process.env.FERRY_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
    t.diagnostic(`seed ${seed} (FERRY_TEST_SEED=${seed} replays it)`);
    const rand = random(seed);
    const dir = mkdtempSync('/tmp/ferry-durable-policies-');
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const files = new Map<string, string>([
      [STRICT, join(DEMO, 'policies', 'strict-mtls.yaml')],
      [DENY, join(DEMO, 'policies', 'deny-client.yaml')],
    ]);
    for (const [i, ref] of INERT.entries()) {
      // A DENY that selects no workload: it shows in `ferry status` and changes no traffic.
      const file = join(dir, `inert-${i}.yaml`);
      writeFileSync(
        file,
        `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: inert-${i}, namespace: demo}\nspec:\n  selector: {matchLabels: {app: nothing-${i}}}\n  action: DENY\n  rules: [{from: [{source: {namespaces: [nowhere]}}]}]\n`,
      );
      files.set(ref, file);
    }

    const { cluster } = await cli.up(t, 'durable', DEMO);
    const label = await cli.run([
      'label',
      '--cluster',
      cluster,
      'namespace',
      'demo',
      'istio.io/dataplane-mode=ambient',
    ]);
    assert.equal(label.code, 0, label.stdout + label.stderr);
    const first = await cli.status(cluster);
    const vip = vipOf(first, 'demo', 'echo');
    const echoIp = podOf(first, 'demo', 'echo-v1-0').ip;

    const served = async (): Promise<string[]> => {
      const s = await cli.status(cluster);
      assert.ok(
        s.pods.filter((p) => p.namespace === 'demo').every((p) => p.enrolled),
        'the label (enrollment) survived',
      );
      assert.equal(vipOf(s, 'demo', 'echo'), vip, 'the VIP survived');
      return sorted(s.policies.map((p) => `${p.namespace}/${p.name}`));
    };
    const change = async (c: Change): Promise<boolean> => {
      const r = await cli.run([c.verb, '--cluster', cluster, '-f', c.file]);
      return r.code === 0;
    };
    const restart = async (): Promise<void> => {
      const up = await cli.run(['up', '-f', DEMO, '--cluster', cluster]);
      assert.equal(up.code, 0, up.stdout + up.stderr);
      assert.match(up.stdout, /controller is not running: restarting it/);
    };
    /** Traffic agrees with the served policies: DENY → the client is refused; STRICT → plaintext is refused. */
    const checkTraffic = async (policies: readonly string[]): Promise<void> => {
      const meshed = await cli.curl(cluster, 'demo/client-0', `http://${vip}/`);
      if (policies.includes(DENY)) assert.equal(meshed.echo, null, `DENY served but got ${meshed.run.stdout}`);
      else assert.ok(meshed.echo !== null, `no DENY served but refused: ${meshed.run.stdout}${meshed.run.stderr}`);
      const plain = await cli.curl(cluster, 'legacy/outsider', `http://${echoIp}:8080/`);
      if (policies.includes(STRICT))
        assert.equal(plain.echo, null, `STRICT served but plaintext got ${plain.run.stdout}`);
      else
        assert.ok(
          plain.echo !== null,
          `no STRICT served but plaintext refused: ${plain.run.stdout}${plain.run.stderr}`,
        );
    };

    const acked = new Set<string>();
    for (let round = 0; round < ROUNDS; round++) {
      // A stream of changes; the controller is killed at a random moment in it.
      let inFlight: Change | null = null;
      let stop = false;
      const stream = (async () => {
        while (!stop) {
          const policy = [...files.keys()][Math.floor(rand() * files.size)] ?? DENY;
          const c: Change = { verb: acked.has(policy) ? 'delete' : 'apply', policy, file: files.get(policy) ?? '' };
          inFlight = c;
          if (!(await change(c))) return; // the controller is gone: this change is in doubt
          if (c.verb === 'apply') acked.add(policy);
          else acked.delete(policy);
          inFlight = null;
        }
      })();
      // Odd rounds kill at a random time; even ones right after the controller published a change it had
      // committed, before the CLI could get its answer (committed, never acknowledged: must survive too).
      await delay(300 + rand() * (round % 2 === 0 ? 1_500 : 3_000));
      if (round % 2 === 0) await nextPublish(join(cli.stateRoot, cluster, 'logs', 'controller.log'));
      await killController(cluster);
      stop = true;
      await stream;
      const doubt = inFlight as Change | null;
      t.diagnostic(
        `round ${round}: acknowledged ${sorted(acked).join(', ') || '(none)'}; in doubt: ${doubt === null ? 'none' : `${doubt.verb} ${doubt.policy}`}`,
      );
      await restart();
      const now = await served();
      const before = sorted(acked);
      const after = new Set(acked);
      if (doubt !== null) {
        if (doubt.verb === 'apply') after.add(doubt.policy);
        else after.delete(doubt.policy);
      }
      assert.ok(
        [before.join(), sorted(after).join()].includes(now.join()),
        `served after restart: ${now.join(', ') || '(none)'}; acknowledged: ${before.join(', ') || '(none)'}${doubt === null ? '' : ` (in doubt: ${doubt.verb} ${doubt.policy})`}`,
      );
      t.diagnostic(`round ${round}: served after restart ${now.join(', ') || '(none)'}`);
      // From here on the served state is the truth (the change in doubt either happened or not).
      acked.clear();
      for (const p of now) acked.add(p);
      await checkTraffic(now);
    }

    // Through a kill and a restart, the DENY keeps denying and STRICT keeps refusing plaintext: request loops
    // see no 200 at any moment (no empty or partial snapshot reached a ztunnel in between).
    for (const policy of [DENY, STRICT]) {
      if (!acked.has(policy)) assert.ok(await change({ verb: 'apply', policy, file: files.get(policy) ?? '' }));
    }
    const loop = (pod: string, url: string) =>
      cli.start(t, ['exec', '--cluster', cluster, pod, '--', 'curl', '-s', '--count', '300', '--interval', '50', url]);
    const probes = {
      deny: loop('demo/client-0', `http://${vip}/`),
      strict: loop('legacy/outsider', `http://${echoIp}:8080/`),
    };
    await Promise.all([probes.deny.firstOutput, probes.strict.firstOutput]);
    const watcher = watchZtunnels(join(cli.stateRoot, cluster));
    await killController(cluster);
    await restart();
    for (const [name, probe] of Object.entries(probes)) {
      const run = await probe.done;
      const leaked = run.stdout.split('\n').filter((l) => l === 'HTTP 200').length;
      assert.equal(leaked, 0, `${name}: ${leaked} requests got through across the controller restart`);
    }
    // What the ztunnels held at every moment: never fewer policies, never an enrolled pod announced as TCP.
    const samples = await watcher.stop();
    t.diagnostic(
      `${samples.length} config samples; ztunnel config versions seen: ${[...new Set(samples.map((x) => `${x.node}@${x.version}`))].join(' ')}`,
    );
    for (const x of samples) {
      assert.ok(
        x.policies.includes(DENY) && x.policies.includes(STRICT),
        `${x.node} v${x.version} held ${x.policies.join(', ') || 'no policies'}`,
      );
      assert.deepEqual(x.tcp, [], `${x.node} v${x.version}: enrolled pods announced as TCP`);
    }
    const final = await served();
    assert.ok(final.includes(DENY) && final.includes(STRICT), final.join(', '));
    await checkTraffic(final);
  },
  // Four cluster restarts: on a loaded 2-core machine this has taken over 5 minutes.
  { timeout: 900_000 },
);
