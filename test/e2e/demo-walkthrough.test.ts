// The README demo walkthrough over examples/demo, end to end through the CLI as a user runs it: plaintext
// before the mesh (the echo sees the client's own IP); `ferry label` enrolls the namespace live and the
// client reaches `http://echo/` (cluster DNS: the echo VIP) over mTLS (the echo sees the destination
// ztunnel, 127.0.0.6; `ferry observe` shows the SPIFFE identity, ALLOWED); a DENY policy resets the
// client and observe shows DENIED with the policy; deleted, traffic is back; STRICT mTLS refuses the
// outsider's plaintext to an echo pod IP with a reset while the meshed client still gets through. The cluster is torn down and checked clean after.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { privilegedTest } from '../../testkit/privileged.ts';
import { DEMO, FerryCli, podOf, vipOf } from '../helpers/cluster-cli.ts';

const cli = new FerryCli('demo');
test.after(() => cli.remove());

const CLIENT_ID = 'spiffe://cluster.local/ns/demo/sa/client';
const ECHO_ID = 'spiffe://cluster.local/ns/demo/sa/echo';

privilegedTest('demo walkthrough: plaintext → label → mTLS → DENY → STRICT', async (t) => {
  const { cluster, up } = await cli.up(t, 'demo', DEMO);
  assert.match(up.stdout, /demo\/client-0\s+node-\d\s+10\.244\.\d+\.\d+\s+not in mesh/);

  const before = await cli.status(cluster);
  assert.equal(before.pods.length, 4);
  assert.ok(
    before.pods.every((p) => !p.enrolled),
    'nothing is enrolled before the label',
  );
  const client = podOf(before, 'demo', 'client-0');
  const echoV1 = podOf(before, 'demo', 'echo-v1-0');
  const vip = vipOf(before, 'demo', 'echo');

  // 1. Before the mesh: plaintext pod to pod; the echo sees the client's own address.
  const plain = await cli.curl(cluster, 'demo/client-0', `http://${echoV1.ip}:8080/`);
  assert.ok(plain.echo !== null, plain.run.stdout + plain.run.stderr);
  assert.equal(plain.echo.peer.address, client.ip);

  // 2. Enroll the namespace live.
  const label = await cli.run(['label', '--cluster', cluster, 'namespace', 'demo', 'istio.io/dataplane-mode=ambient']);
  assert.equal(label.code, 0, label.stdout + label.stderr);
  assert.match(label.stdout, /every ztunnel has the change/);
  const enrolled = await cli.status(cluster);
  for (const p of enrolled.pods) {
    assert.equal(p.enrolled, p.namespace === 'demo', `${p.namespace}/${p.name} enrolled iff in demo`);
  }
  assert.equal(podOf(enrolled, 'demo', 'client-0').identity, CLIENT_ID);
  assert.equal(podOf(enrolled, 'demo', 'echo-v2-0').identity, ECHO_ID);

  // 3. Through the Service, by name as the README writes it (cluster DNS gives the VIP): mTLS, delivered by
  // the destination ztunnel. The VIP itself works the same (step 4 on).
  const meshed = await cli.curl(cluster, 'demo/client-0', 'http://echo/');
  assert.ok(meshed.echo !== null, meshed.run.stdout + meshed.run.stderr);
  assert.equal(meshed.echo.peer.address, '127.0.0.6');
  assert.match(meshed.echo.pod, /^echo-v[12]-0$/);
  const allowed = await cli.flow(
    cluster,
    (f) => f.direction === 'inbound' && f.sourceIdentity === CLIENT_ID && f.verdict === 'allowed',
    t.signal,
  );
  assert.equal(allowed.security, 'mtls');
  assert.equal(allowed.destinationIdentity, ECHO_ID);
  assert.equal(allowed.source, 'client-0');
  const text = await cli.run(['observe', '--cluster', cluster]);
  assert.match(text.stdout, /demo\/client-0 -> .*mTLS spiffe:\/\/cluster\.local\/ns\/demo\/sa\/client\s+ALLOWED/);

  // 4. DENY the client: the connection is reset; observe names the policy.
  const deny = join(DEMO, 'policies', 'deny-client.yaml');
  const apply = await cli.run(['apply', '--cluster', cluster, '-f', deny]);
  assert.equal(apply.code, 0, apply.stdout + apply.stderr);
  assert.match(apply.stdout, /AuthorizationPolicy\/demo\/deny-client-to-echo configured/);
  const denied = await cli.curl(cluster, 'demo/client-0', `http://${vip}/`);
  assert.equal(denied.echo, null, `expected a refusal, got ${denied.run.stdout}`);
  assert.equal(denied.run.code, 7);
  assert.match(denied.run.stderr, /ECONNRESET/);
  const deniedFlow = await cli.flow(cluster, (f) => f.verdict === 'denied', t.signal);
  assert.equal(deniedFlow.sourceIdentity, CLIENT_ID);
  assert.equal(deniedFlow.reason, 'demo/deny-client-to-echo');

  // 5. Delete it: the client gets through again.
  const del = await cli.run(['delete', '--cluster', cluster, '-f', deny]);
  assert.equal(del.code, 0, del.stdout + del.stderr);
  const back = await cli.curl(cluster, 'demo/client-0', `http://${vip}/`);
  assert.ok(back.echo !== null, back.run.stdout + back.run.stderr);

  // 6. STRICT mTLS: the outsider's plaintext to an echo pod is reset; the meshed client is unaffected.
  const outsiderBefore = await cli.curl(cluster, 'legacy/outsider', `http://${echoV1.ip}:8080/`);
  assert.ok(outsiderBefore.echo !== null, 'PERMISSIVE lets plaintext in before STRICT');
  const strict = await cli.run(['apply', '--cluster', cluster, '-f', join(DEMO, 'policies', 'strict-mtls.yaml')]);
  assert.equal(strict.code, 0, strict.stdout + strict.stderr);
  const refused = await cli.curl(cluster, 'legacy/outsider', `http://${echoV1.ip}:8080/`);
  assert.equal(refused.echo, null, `expected a refusal, got ${refused.run.stdout}`);
  assert.equal(refused.run.code, 7);
  assert.match(refused.run.stderr, /ECONNRESET/);
  const strictFlow = await cli.flow(
    cluster,
    (f) => f.verdict === 'denied' && f.sourceNamespace === 'legacy' && f.security === 'plaintext',
    t.signal,
  );
  assert.equal(strictFlow.destination, 'echo-v1-0');
  const stillMeshed = await cli.curl(cluster, 'demo/client-0', `http://${vip}/`);
  assert.ok(stillMeshed.echo !== null, stillMeshed.run.stdout + stillMeshed.run.stderr);
  assert.equal(stillMeshed.echo.peer.address, '127.0.0.6');
});
