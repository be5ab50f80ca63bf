// The controller killed with SIGKILL: traffic between enrolled pods keeps flowing over mTLS with the last
// config the ztunnels have. `ferry up` on the running cluster restarts the dead controller (same mesh.json:
// same xDS/CA/admin addresses, CA root, VIPs and labels); the ztunnels reconnect over xDS and converge: a
// DENY applied after the restart reaches them and takes effect, and deleting it restores the traffic.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { privilegedTest } from '../../testkit/privileged.ts';
import { DEMO, FerryCli, processesOf, vipOf } from '../helpers/cluster-cli.ts';

const cli = new FerryCli('ctrl');
test.after(() => cli.remove());

/** The controller's pid: the process in the cluster's `system/controller` cgroup. */
function controllerPid(cluster: string): number | undefined {
  return processesOf(cluster).find((pid) => {
    try {
      return (
        readCgroup(pid).includes(`/ferry.slice/${cluster}/system/controller`) && cmdline(pid).includes('controller')
      );
    } catch {
      return false;
    }
  });
}

const readCgroup = (pid: number): string => readFileSync(`/proc/${pid}/cgroup`, 'utf8');
const cmdline = (pid: number): string => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');

function exited(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

privilegedTest(
  'controller kill -9: traffic continues; ferry up restarts it; ztunnels reconnect and converge',
  async (t) => {
    const { cluster } = await cli.up(t, 'ctrl', DEMO);
    const label = await cli.run([
      'label',
      '--cluster',
      cluster,
      'namespace',
      'demo',
      'istio.io/dataplane-mode=ambient',
    ]);
    assert.equal(label.code, 0, label.stdout + label.stderr);
    const vip = vipOf(await cli.status(cluster), 'demo', 'echo');

    const pid = controllerPid(cluster);
    assert.ok(pid !== undefined, 'controller process found');
    process.kill(pid, 'SIGKILL');
    // Killed: /proc shows it gone (or a zombie until its parent reaps it).
    while (!exited(pid)) await new Promise((r) => setImmediate(r));

    // Without a controller: the CLI says so, and the mesh keeps working with the last config.
    const noController = await cli.run(['status', '--cluster', cluster]);
    assert.notEqual(noController.code, 0);
    assert.match(noController.stderr, /FERRY_LOCAL_CONTROLLER_UNREACHABLE/);
    for (let i = 0; i < 5; i++) {
      const r = await cli.curl(cluster, 'demo/client-0', `http://${vip}/`);
      assert.ok(r.echo !== null, r.run.stdout + r.run.stderr);
      assert.equal(r.echo.peer.address, '127.0.0.6', 'still mTLS through the destination ztunnel');
    }

    // `ferry up` restarts it; the ztunnels reconnect.
    const up = await cli.run(['up', '-f', DEMO, '--cluster', cluster]);
    assert.equal(up.code, 0, up.stdout + up.stderr);
    assert.match(up.stdout, /controller is not running: restarting it/);
    assert.match(up.stdout, /every ztunnel reconnected/);
    const newPid = controllerPid(cluster);
    assert.ok(newPid !== undefined && newPid !== pid, 'a new controller process');
    const s = await cli.status(cluster);
    assert.ok(
      s.nodes.every((n) => n.xdsConnected && n.enrollmentConverged),
      JSON.stringify(s.nodes),
    );
    assert.ok(
      s.pods.filter((p) => p.namespace === 'demo').every((p) => p.enrolled),
      'the label survived the restart',
    );
    assert.equal(vipOf(s, 'demo', 'echo'), vip, 'the VIP survived the restart');

    // Converged: a change after the restart reaches every ztunnel and takes effect.
    const deny = join(DEMO, 'policies', 'deny-client.yaml');
    const apply = await cli.run(['apply', '--cluster', cluster, '-f', deny]);
    assert.equal(apply.code, 0, apply.stdout + apply.stderr);
    assert.match(apply.stdout, /every ztunnel has the change/);
    const denied = await cli.curl(cluster, 'demo/client-0', `http://${vip}/`);
    assert.equal(denied.echo, null, `expected a refusal, got ${denied.run.stdout}`);
    assert.match(denied.run.stderr, /ECONNRESET/);
    const del = await cli.run(['delete', '--cluster', cluster, '-f', deny]);
    assert.equal(del.code, 0, del.stdout + del.stderr);
    const back = await cli.curl(cluster, 'demo/client-0', `http://${vip}/`);
    assert.ok(back.echo !== null, back.run.stdout + back.run.stderr);

    // A second `up` with a live controller changes nothing.
    const again = await cli.run(['up', '-f', DEMO, '--cluster', cluster]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already up: nothing changed/);
  },
);
