// The README demo walkthrough on the cluster's own Kubernetes API (`ferry up --api`), driven with the real
// kubectl v1.34 as a user of a mesh on Kubernetes drives it: plaintext before the mesh (the echo sees the
// client's own IP); `kubectl label namespace` enrolls the pods through the node agents and `curl
// http://echo/` crosses both ztunnels over mTLS (the echo sees 127.0.0.6; `ferry observe` shows the
// SPIFFE identity, ALLOWED); `kubectl apply` of a DENY AuthorizationPolicy resets the client and observe
// names the policy; `kubectl delete -f` brings traffic back; `kubectl apply` of STRICT PeerAuthentication
// refuses the outsider's plaintext with a reset while the meshed client still gets through. `ferry down`
// leaves nothing (FerryCli.up's t.after).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { privilegedTest } from '../../testkit/privileged.ts';
import { apiPods, podNamed, until } from '../helpers/api-cluster.ts';
import { DEMO, FerryCli, kubectl } from '../helpers/cluster-cli.ts';

const cli = new FerryCli('apidemo');
test.after(() => cli.remove());

const CLIENT_ID = 'spiffe://cluster.local/ns/demo/sa/client';
const ECHO_ID = 'spiffe://cluster.local/ns/demo/sa/echo';

privilegedTest('demo walkthrough with kubectl on ferry up --api: label → mTLS → DENY → STRICT', async (t) => {
  const { cluster } = await cli.up(t, 'apidemo', DEMO, 2, ['--api']);
  const kubeconfig = join(cli.stateRoot, cluster, 'kubeconfig');
  const ctl = async (...args: string[]) => {
    const r = await kubectl(kubeconfig, args);
    assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  const before = await apiPods(cli, cluster);
  const client = podNamed(before, 'demo', 'client-');
  const echoV1 = podNamed(before, 'demo', 'echo-v1-');
  const clientPod = `demo/${client.name}`;

  // 1. Before the mesh: plaintext pod to pod; the echo sees the client's own address.
  const plain = await cli.curl(cluster, clientPod, `http://${echoV1.ip}:8080/`);
  assert.ok(plain.echo !== null, plain.run.stdout + plain.run.stderr);
  assert.equal(plain.echo.peer.address, client.ip);

  // 2. Enroll the namespace with kubectl: the node agents see the label through their watch.
  assert.match(await ctl('label', 'namespace', 'demo', 'istio.io/dataplane-mode=ambient'), /namespace\/demo labeled/);
  await until('every demo pod enrolled, the outsider not', async () => {
    const all = await apiPods(cli, cluster);
    return all.every((p) => p.enrolled === (p.namespace === 'demo')) ? all : false;
  });

  // 3. By name through cluster DNS: mTLS, delivered by the destination ztunnel; observe shows who called.
  const meshed = await cli.curl(cluster, clientPod, 'http://echo/');
  assert.ok(meshed.echo !== null, meshed.run.stdout + meshed.run.stderr);
  assert.equal(meshed.echo.peer.address, '127.0.0.6');
  // `ferry status` lists the Service with its ClusterIP, the mesh's VIP: the same call by address works.
  const statusJson = JSON.parse((await cli.run(['status', '--json', '--cluster', cluster])).stdout) as {
    services: { namespace: string; name: string; vip: string | null }[];
  };
  const vip = statusJson.services.find((s) => s.namespace === 'demo' && s.name === 'echo')?.vip;
  assert.ok(typeof vip === 'string', JSON.stringify(statusJson.services));
  const byVip = await cli.curl(cluster, clientPod, `http://${vip}/`);
  assert.equal(byVip.echo?.peer.address, '127.0.0.6', byVip.run.stdout + byVip.run.stderr);
  const allowed = await cli.flow(
    cluster,
    (f) => f.direction === 'inbound' && f.sourceIdentity === CLIENT_ID && f.verdict === 'allowed',
    t.signal,
  );
  assert.equal(allowed.security, 'mtls');
  assert.equal(allowed.destinationIdentity, ECHO_ID);
  const text = await cli.run(['observe', '--cluster', cluster]);
  assert.match(text.stdout, /demo\/client-\S+ -> .*mTLS spiffe:\/\/cluster\.local\/ns\/demo\/sa\/client\s+ALLOWED/);

  // 4. DENY with kubectl apply: once the controller's xDS reaches the echo's ztunnel, the client is reset.
  const deny = join(DEMO, 'policies', 'deny-client.yaml');
  assert.match(await ctl('apply', '-f', deny), /authorizationpolicy.*deny-client-to-echo created/);
  const status = await cli.run(['status', '--cluster', cluster]);
  assert.match(status.stdout, /demo\/deny-client-to-echo\s+DENY \(WorkloadSelector\)/);
  const denied = await until('the client refused by the DENY policy', async () => {
    const r = await cli.curl(cluster, clientPod, 'http://echo/');
    return r.echo === null ? r.run : false;
  });
  assert.equal(denied.code, 7);
  assert.match(denied.stderr, /ECONNRESET/);
  const deniedFlow = await cli.flow(cluster, (f) => f.verdict === 'denied', t.signal);
  assert.equal(deniedFlow.sourceIdentity, CLIENT_ID);
  assert.equal(deniedFlow.reason, 'demo/deny-client-to-echo');

  // 5. kubectl delete -f: traffic is back.
  assert.match(await ctl('delete', '-f', deny), /deny-client-to-echo.* deleted/);
  await until('the client back through after the delete', async () => {
    const r = await cli.curl(cluster, clientPod, 'http://echo/');
    return r.echo !== null && r.echo.peer.address === '127.0.0.6';
  });

  // 6. STRICT mTLS: the outsider's plaintext to an echo pod is reset; the meshed client is unaffected.
  const outsiderBefore = await cli.curl(cluster, 'legacy/outsider', `http://${echoV1.ip}:8080/`);
  assert.ok(outsiderBefore.echo !== null, 'PERMISSIVE lets plaintext in before STRICT');
  assert.match(
    await ctl('apply', '-f', join(DEMO, 'policies', 'strict-mtls.yaml')),
    /peerauthentication.*strict created/,
  );
  const refused = await until('the outsider refused under STRICT', async () => {
    const r = await cli.curl(cluster, 'legacy/outsider', `http://${echoV1.ip}:8080/`);
    return r.echo === null ? r.run : false;
  });
  assert.equal(refused.code, 7);
  assert.match(refused.stderr, /ECONNRESET/);
  const strictFlow = await cli.flow(
    cluster,
    (f) => f.verdict === 'denied' && f.sourceNamespace === 'legacy' && f.security === 'plaintext',
    t.signal,
  );
  assert.equal(strictFlow.destination, echoV1.name);
  const stillMeshed = await cli.curl(cluster, clientPod, 'http://echo/');
  assert.ok(stillMeshed.echo !== null, stillMeshed.run.stdout + stillMeshed.run.stderr);
  assert.equal(stillMeshed.echo.peer.address, '127.0.0.6');
});
