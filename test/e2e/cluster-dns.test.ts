// Cluster DNS in a `ferry up` cluster (issue 11 §3), through the CLI as a user types it: the demo's client,
// once enrolled, reaches `http://echo/` by name with the built-in curl and with Debian's /usr/bin/curl;
// names resolve from another namespace and as pod records; a Service added with `ferry apply` resolves as
// soon as the command returns; a killed DNS process is restarted by the supervisor; and `ferry down` removes
// the /etc/netns entries (FerryCli.leftovers checks them).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { cgroup2MountPoint } from '../../src/redirect-bpf/probe.ts';
import { privilegedTest } from '../../testkit/privileged.ts';
import { DEMO, FerryCli, podOf, vipOf } from '../helpers/cluster-cli.ts';

const cli = new FerryCli('dns');
test.after(() => cli.remove());

function dnsPids(cluster: string): number[] {
  const root = cgroup2MountPoint();
  assert.ok(root !== null);
  try {
    return readFileSync(join(root, 'ferry.slice', cluster, 'system', 'dns', 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

privilegedTest('pods resolve Service and pod names through the cluster DNS', async (t) => {
  const { cluster, up } = await cli.up(t, 'dns', DEMO);
  assert.match(up.stdout, /cluster DNS ready/);
  const exec = (pod: string, ...cmd: string[]) => cli.run(['exec', '--cluster', cluster, pod, '--', ...cmd]);

  const label = await cli.run(['label', '--cluster', cluster, 'namespace', 'demo', 'istio.io/dataplane-mode=ambient']);
  assert.equal(label.code, 0, label.stderr);
  const status = await cli.status(cluster);
  const vip = vipOf(status, 'demo', 'echo');
  const client = podOf(status, 'demo', 'client-0');

  // The built-in test app (Node's dns.lookup): `echo` through the search list, as the README writes it.
  const builtin = await cli.curl(cluster, 'demo/client-0', 'http://echo/');
  assert.ok(builtin.echo !== null, builtin.run.stdout + builtin.run.stderr);
  assert.equal(builtin.echo.peer.address, '127.0.0.6', 'mTLS through the ztunnels');

  // Debian's curl (glibc getaddrinfo, the mounted /etc/resolv.conf).
  const debian = await exec('demo/client-0', '/usr/bin/curl', '-sS', '--max-time', '10', 'http://echo.demo/');
  assert.equal(debian.code, 0, debian.stderr);
  assert.match(JSON.parse(debian.stdout).pod as string, /^echo-v[12]-0$/);

  // getent: the VIP by every form; from another namespace; a pod record; an unknown name fails.
  for (const name of ['echo', 'echo.demo', 'echo.demo.svc.cluster.local', 'ECHO.Demo']) {
    const r = await exec('demo/client-0', 'getent', 'hosts', name);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.equal(r.stdout.split(/\s+/)[0], vip, name);
  }
  const cross = await exec('legacy/outsider', 'getent', 'hosts', 'echo.demo');
  assert.equal(cross.stdout.split(/\s+/)[0], vip);
  const podName = `${client.ip.replaceAll('.', '-')}.demo.pod.cluster.local`;
  const podRecord = await exec('legacy/outsider', 'getent', 'hosts', podName);
  assert.equal(podRecord.stdout.split(/\s+/)[0], client.ip);
  assert.notEqual((await exec('demo/client-0', 'getent', 'hosts', 'nope')).code, 0);

  // A Service applied now resolves as soon as `ferry apply` returns (it waits for the DNS's xDS ACK too).
  const manifest = join(cli.stateRoot, 'echo-v1-svc.yaml');
  writeFileSync(
    manifest,
    'apiVersion: v1\nkind: Service\nmetadata: {name: echo-v1, namespace: demo}\n' +
      'spec: {selector: {app: echo, version: v1}, ports: [{name: http, port: 80, targetPort: http}]}\n',
  );
  const applied = await cli.run(['apply', '--cluster', cluster, '-f', manifest]);
  assert.equal(applied.code, 0, applied.stderr);
  const v1 = await cli.curl(cluster, 'demo/client-0', 'http://echo-v1/');
  assert.equal(v1.echo?.pod, 'echo-v1-0', v1.run.stdout + v1.run.stderr);

  // kill -9 of the DNS process: the supervisor starts it again and names resolve again.
  const [old] = dnsPids(cluster);
  assert.ok(old !== undefined, 'a DNS process runs');
  process.kill(old, 'SIGKILL');
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await exec('demo/client-0', 'getent', 'hosts', 'echo-v1');
    const pids = dnsPids(cluster);
    if (r.code === 0 && pids.length > 0 && !pids.includes(old)) break;
    assert.ok(Date.now() < deadline, `DNS not back: ${r.stderr}`);
    await delay(200);
  }
});
