// The CA in Kubernetes mode authenticates callers by TokenReview (src/controller/ca-token-review.ts), tested
// against the local cluster's API server with REAL ServiceAccount tokens it issues (TokenRequest bound to a
// pod, audience, expiry): the ztunnel's token gets identities of pods on its bound pod's node only; a
// waypoint's token only its own identity; wrong audience, expired, garbage tokens and an unreachable API are
// refused. End to end over the real CA gRPC path (CaClient → the controller's CA server) and, for the cases
// that need a clock or a dead API, through the authorizer with the real API client.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { tokenReviewAuthorizer } from '../../src/controller/ca-token-review.ts';
import { kubeTokenReviewApi } from '../../src/controller/kube-token-review.ts';
import { startKubernetesController } from '../../src/controller/kubernetes-controller.ts';
import type { CaAuthorizer } from '../../src/identity/ca-authz.ts';
import { CaClient } from '../../src/identity/ca-client.ts';
import { IdentityError } from '../../src/identity/errors.ts';
import { formatSpiffeId, type SpiffeId, spiffeId } from '../../src/identity/spiffe-id.ts';
import { KubeClient, loadKubeConfig } from '../../src/kube/client.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { type LocalApi, startLocalApi } from '../helpers/local-api.ts';

const TD = 'cluster.local';
const AUDIENCE = 'ferry-ca';
const ZTUNNEL = { namespace: 'ferry-system', name: 'ferry-ztunnel' };
const WEB = spiffeId(TD, 'demo', 'web');
const DB = spiffeId(TD, 'demo', 'db');
const WAYPOINT = spiffeId(TD, 'demo', 'waypoint');

async function pod(api: LocalApi, ns: string, name: string, sa: string, node: string, ip: string): Promise<void> {
  const created = await api.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: { app: name } },
    spec: { nodeName: node, serviceAccountName: sa, containers: [{ name: 'c', image: 'echo' }] },
  });
  await api.writeStatus({ ...created, status: { phase: 'Running', podIP: ip } });
}

/** A cluster: two nodes, a ztunnel pod on each, web on node-a, db on node-b, a waypoint on node-b. */
async function cluster(t: import('node:test').TestContext): Promise<LocalApi> {
  const api = await startLocalApi(t, { preinstallCrds: true });
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ferry-system' } });
  await api.create({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'demo', labels: { 'istio.io/dataplane-mode': 'ambient' } },
  });
  for (const [ns, sa] of [
    ['ferry-system', 'ferry-ztunnel'],
    ['demo', 'web'],
    ['demo', 'db'],
    ['demo', 'waypoint'],
  ] as const) {
    await api.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: ns } });
  }
  await pod(api, 'ferry-system', 'ztunnel-a', 'ferry-ztunnel', 'node-a', '10.0.0.2');
  await pod(api, 'ferry-system', 'ztunnel-b', 'ferry-ztunnel', 'node-b', '10.0.1.2');
  await pod(api, 'demo', 'web-1', 'web', 'node-a', '10.1.0.5');
  await pod(api, 'demo', 'db-1', 'db', 'node-b', '10.1.1.5');
  await pod(api, 'demo', 'waypoint-1', 'waypoint', 'node-b', '10.1.1.9');
  return api;
}

/** A real projected-style token from the API's TokenRequest (serviceaccounts/NAME/token). */
async function token(api: LocalApi, ns: string, sa: string, opts: { pod?: string; audience?: string } = {}) {
  const answer = await api.client.request('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
    json: {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: [opts.audience ?? AUDIENCE],
        expirationSeconds: 600,
        ...(opts.pod === undefined ? {} : { boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: opts.pod } }),
      },
    },
  });
  const value = (answer.status as { token?: unknown } | undefined)?.token;
  assert.equal(typeof value, 'string');
  return value as string;
}

function metadataWith(bearer: string): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set('authorization', `Bearer ${bearer}`);
  return m;
}

/** authenticate + authorize as the CA server runs them, for one token and identity. */
async function decide(authorizer: CaAuthorizer, bearer: string, requested: SpiffeId) {
  const metadata = metadataWith(bearer);
  const authn = await authorizer.authenticate({ metadata, peer: 'ipv4:127.0.0.1:1' });
  if (!authn.ok) return authn;
  return authorizer.authorize({
    metadata,
    peer: 'ipv4:127.0.0.1:1',
    requested,
    ...(authn.caller === undefined ? {} : { caller: authn.caller }),
  });
}

async function fetchError(c: CaClient, id: SpiffeId): Promise<IdentityError> {
  const err = await c.fetch(id).then(
    () => assert.fail(`fetch of ${formatSpiffeId(id)} succeeded`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof IdentityError, String(err));
  return err;
}

test('over the CA gRPC path: ztunnel tokens are bound to their node, a waypoint gets only itself', async (t) => {
  const api = await cluster(t);
  const controller = await startKubernetesController({
    kube: { kubeconfigPath: api.kubeconfigPath },
    log: silentLogger,
    writeStatus: false,
    ca: { tokenReview: { audience: AUDIENCE, ztunnelServiceAccount: ZTUNNEL } },
  });
  t.after(() => controller.close());
  await controller.statusSettled();
  const ca = controller.ca;
  const roots = { pem: controller.trustBundlePem() };
  const clients: CaClient[] = [];
  t.after(() => {
    for (const c of clients) c.close();
  });
  const client = async (bearer: string, impersonate = true) => {
    const c = await CaClient.create({
      address: ca.address,
      roots,
      token: bearer,
      timeoutMs: 10_000,
      impersonate,
    });
    clients.push(c);
    return c;
  };

  const ztA = await client(await token(api, 'ferry-system', 'ferry-ztunnel', { pod: 'ztunnel-a' }));
  assert.deepEqual((await ztA.fetch(WEB)).identity, WEB, 'web runs on node-a: the node-a ztunnel gets it');
  const notOnNode = await fetchError(ztA, DB);
  assert.match(notOnNode.message, /PERMISSION_DENIED/);
  assert.match(notOnNode.message, /FERRY_CA_IDENTITY_NOT_ON_NODE/);
  assert.match(
    notOnNode.message,
    /node "node-a" runs no workload with identity spiffe:\/\/cluster\.local\/ns\/demo\/sa\/db/,
  );

  const ztB = await client(await token(api, 'ferry-system', 'ferry-ztunnel', { pod: 'ztunnel-b' }));
  assert.deepEqual((await ztB.fetch(DB)).identity, DB, 'db runs on node-b');
  assert.match((await fetchError(ztB, WEB)).message, /FERRY_CA_IDENTITY_NOT_ON_NODE/);

  const wpToken = await token(api, 'demo', 'waypoint', { pod: 'waypoint-1' });
  const wp = await client(wpToken, false);
  assert.deepEqual((await wp.fetch(WAYPOINT)).identity, WAYPOINT, 'a waypoint gets its own identity');
  const wpOther = await fetchError(await client(wpToken), WEB);
  assert.match(wpOther.message, /PERMISSION_DENIED.*FERRY_CA_PERMISSION_DENIED/);
  assert.match(wpOther.message, /service account demo\/waypoint may only obtain its own identity/);
  // Not even for a pod on its own node: only the ztunnel's ServiceAccount impersonates.
  assert.match((await fetchError(await client(wpToken), DB)).message, /FERRY_CA_PERMISSION_DENIED/);

  const wrongAudience = await client(
    await token(api, 'ferry-system', 'ferry-ztunnel', { pod: 'ztunnel-a', audience: 'other' }),
  );
  const refused = await fetchError(wrongAudience, WEB);
  assert.match(refused.message, /UNAUTHENTICATED.*FERRY_CA_UNAUTHENTICATED.*token rejected by TokenReview/);

  const garbage = await fetchError(await client('not.a-token.at-all'), WEB);
  assert.match(garbage.message, /UNAUTHENTICATED.*token rejected by TokenReview/);
  // The API's own admin credential is not a ServiceAccount: no identity for it either.
  const admin = await fetchError(await client(api.server.token), WEB);
  assert.match(admin.message, /UNAUTHENTICATED.*not a ServiceAccount token/);
});

test('ztunnel token: node from the bound pod; a deleted bound pod, expired token and unbound token refused', async (t) => {
  const api = await cluster(t);
  const onNode = new Map([
    ['node-a', [formatSpiffeId(WEB)]],
    ['node-b', [formatSpiffeId(DB), formatSpiffeId(WAYPOINT)]],
  ]);
  let reviews = 0;
  let clock = Date.now();
  const real = kubeTokenReviewApi(api.client);
  const authorizer = tokenReviewAuthorizer({
    api: {
      review: (...a) => {
        reviews++;
        return real.review(...a);
      },
      podNode: real.podNode,
    },
    now: () => clock,
    audience: AUDIENCE,
    ztunnelServiceAccount: ZTUNNEL,
    trustDomain: TD,
    mayHold: (node, id) => onNode.get(node)?.includes(formatSpiffeId(id)) === true,
  });
  const ztA = await token(api, 'ferry-system', 'ferry-ztunnel', { pod: 'ztunnel-a' });
  assert.deepEqual(await decide(authorizer, ztA, WEB), { ok: true, node: 'node-a' });
  const denied = await decide(authorizer, ztA, DB);
  assert.equal(denied.ok, false);
  assert.equal(!denied.ok && denied.code, 'FERRY_CA_IDENTITY_NOT_ON_NODE');
  assert.equal(reviews, 1, 'the positive review is reused for the next request of that token');
  assert.equal(authorizer.cached, 1);

  // A ztunnel token bound to no pod names no node: it may not impersonate.
  const unbound = await decide(authorizer, await token(api, 'ferry-system', 'ferry-ztunnel'), WEB);
  assert.equal(!unbound.ok && unbound.code, 'FERRY_CA_PERMISSION_DENIED');
  assert.match(!unbound.ok ? unbound.reason : '', /not bound to a pod/);

  // Its bound pod deleted: the API no longer accepts the token (fresh authorizer: nothing cached).
  const ztB = await token(api, 'ferry-system', 'ferry-ztunnel', { pod: 'ztunnel-b' });
  await api.remove('v1', 'Pod', 'ferry-system', 'ztunnel-b');
  const fresh = tokenReviewAuthorizer({
    api: real,
    audience: AUDIENCE,
    ztunnelServiceAccount: ZTUNNEL,
    trustDomain: TD,
    mayHold: () => true,
  });
  const gone = await decide(fresh, ztB, DB);
  assert.equal(!gone.ok && gone.code, 'FERRY_CA_UNAUTHENTICATED');
  assert.match(!gone.ok ? gone.reason : '', /bound pod no longer exists/);

  // Expired: the local API server cannot issue an already-expired token (expirationSeconds ≥ 600) and reads
  // its clock through a Date.now captured at start, so an expired token is made by rewriting a real token's
  // exp: its signature no longer matches and the API refuses it, as it refuses every token past its exp.
  const wp = await token(api, 'demo', 'waypoint', { pod: 'waypoint-1' });
  const [h, p, sig] = wp.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as { exp: number };
  claims.exp = Math.floor(Date.now() / 1000) - 60;
  const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
  const expired = await decide(fresh, forged, WAYPOINT);
  assert.equal(!expired.ok && expired.code, 'FERRY_CA_UNAUTHENTICATED');
  assert.match(!expired.ok ? expired.reason : '', /token rejected by TokenReview: invalid signature/);
  assert.deepEqual(await decide(fresh, wp, WAYPOINT), { ok: true }, 'the real token is good');
  // A cached positive review is never used past the token's own exp: the next request asks the API again.
  const before = reviews;
  assert.deepEqual(await decide(authorizer, ztA, WEB), { ok: true, node: 'node-a' });
  assert.equal(reviews, before, 'in time: from the cache');
  clock = Date.now() + 3600_000; // past the ztunnel token's exp (600 s), as the authorizer sees it
  await decide(authorizer, ztA, WEB);
  assert.equal(reviews, before + 1, 'past its exp: reviewed again');
});

test('fail closed: the API unreachable is a refusal that says so, never an identity', async (t) => {
  const api = await cluster(t);
  const ztA = await token(api, 'ferry-system', 'ferry-ztunnel', { pod: 'ztunnel-a' });
  const client = new KubeClient(loadKubeConfig({ kubeconfigPath: api.kubeconfigPath }));
  t.after(() => client.close());
  const authorizer = tokenReviewAuthorizer({
    api: kubeTokenReviewApi(client),
    audience: AUDIENCE,
    ztunnelServiceAccount: ZTUNNEL,
    trustDomain: TD,
    mayHold: () => true,
  });
  await api.server.close();
  const refused = await decide(authorizer, ztA, WEB);
  assert.equal(refused.ok, false);
  assert.equal(!refused.ok && refused.code, 'FERRY_CA_UNAUTHENTICATED');
  assert.match(!refused.ok ? refused.reason : '', /TokenReview failed, refusing \(fail closed\)/);
  assert.ok(!JSON.stringify(refused).includes(ztA), 'the token is not echoed');
});
