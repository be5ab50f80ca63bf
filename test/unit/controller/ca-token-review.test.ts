// The TokenReview authorizer's own logic, with the API answered in process (the real API path is tested in
// test/integration/ca-token-review.test.ts): node from the bound pod's spec.nodeName when the review names no
// node (checked by uid), one review shared by concurrent requests of one token, the cache bounded in size,
// reviews in flight bounded, and an API answer that is not for our audience refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { tokenReviewAuthorizer } from '../../../src/controller/ca-token-review.ts';
import {
  parseTokenReview,
  type TokenReviewAnswer,
  type TokenReviewApi,
} from '../../../src/controller/kube-token-review.ts';
import type { CaAuthorizer } from '../../../src/identity/ca-authz.ts';
import { spiffeId } from '../../../src/identity/spiffe-id.ts';

const TD = 'cluster.local';
const FUTURE = Math.floor(Date.now() / 1000) + 3600;
const jwt = (id: string) =>
  `${Buffer.from('{}').toString('base64url')}.${Buffer.from(JSON.stringify({ exp: FUTURE, id })).toString('base64url')}.sig`;

function ztunnelAnswer(extra: Record<string, string[]>): TokenReviewAnswer {
  return {
    authenticated: true,
    username: 'system:serviceaccount:ferry-system:ferry-ztunnel',
    extra: new Map(Object.entries(extra)),
    audiences: ['ferry-ca'],
  };
}

function authorizer(api: TokenReviewApi, extra: Partial<Parameters<typeof tokenReviewAuthorizer>[0]> = {}) {
  return tokenReviewAuthorizer({
    api,
    audience: 'ferry-ca',
    ztunnelServiceAccount: { namespace: 'ferry-system', name: 'ferry-ztunnel' },
    trustDomain: TD,
    mayHold: (node) => node === 'node-a',
    ...extra,
  });
}

async function decide(a: CaAuthorizer, token: string) {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  const authn = await a.authenticate({ metadata, peer: 'p' });
  if (!authn.ok) return authn;
  return a.authorize({ metadata, peer: 'p', requested: spiffeId(TD, 'demo', 'web'), caller: authn.caller as string });
}

test('no node in the review: the bound pod is looked up, and must be the same pod (uid)', async () => {
  const api: TokenReviewApi = {
    review: async () =>
      ztunnelAnswer({
        'authentication.kubernetes.io/pod-name': ['zt-1'],
        'authentication.kubernetes.io/pod-uid': ['uid-1'],
      }),
    podNode: async (ns, name) => (ns === 'ferry-system' && name === 'zt-1' ? { node: 'node-a', uid: uid } : null),
  };
  let uid = 'uid-1';
  assert.deepEqual(await decide(authorizer(api), jwt('a')), { ok: true, node: 'node-a' });
  uid = 'uid-2'; // a new pod of that name: not the token's
  const refused = await decide(authorizer(api), jwt('a'));
  assert.equal(!refused.ok && refused.code, 'FERRY_CA_PERMISSION_DENIED');
});

test('concurrent requests of one token share one review; the cache is bounded; reviews in flight are bounded', async () => {
  let reviews = 0;
  let release = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const api: TokenReviewApi = {
    review: async () => {
      reviews++;
      await gate;
      return ztunnelAnswer({ 'authentication.kubernetes.io/node-name': ['node-a'] });
    },
    podNode: async () => null,
  };
  const a = authorizer(api, { cacheSize: 2, maxInFlight: 2 });
  const same = [decide(a, jwt('x')), decide(a, jwt('x'))];
  const other = decide(a, jwt('y'));
  const shed = await decide(a, jwt('z'));
  assert.equal(!shed.ok && shed.code, 'FERRY_CA_UNAUTHENTICATED');
  assert.match(!shed.ok ? shed.reason : '', /2 token reviews in progress; retry/);
  release();
  for (const d of await Promise.all([...same, other])) assert.deepEqual(d, { ok: true, node: 'node-a' });
  assert.equal(reviews, 2);
  await decide(a, jwt('z'));
  assert.equal(a.cached, 2, 'at most cacheSize positive reviews kept');
});

test('a review not for our audience, a non-ServiceAccount user, and an API error are refusals', async () => {
  assert.deepEqual(
    parseTokenReview(
      { kind: 'TokenReview', status: { authenticated: true, user: { username: 'u' }, audiences: ['other'] } },
      'ferry-ca',
    ),
    { authenticated: false, error: 'token is not for audience "ferry-ca"' },
  );
  assert.throws(() => parseTokenReview({ kind: 'Status' }, 'ferry-ca'), /no status/);
  const user = await decide(
    authorizer({
      review: async () => ({ authenticated: true, username: 'alice', extra: new Map(), audiences: ['ferry-ca'] }),
      podNode: async () => null,
    }),
    jwt('u'),
  );
  assert.match(!user.ok ? user.reason : '', /not a ServiceAccount token/);
  const down = await decide(
    authorizer({
      review: async () => {
        throw new Error('connect ECONNREFUSED 127.0.0.1:6443');
      },
      podNode: async () => null,
    }),
    jwt('d'),
  );
  assert.equal(!down.ok && down.code, 'FERRY_CA_UNAUTHENTICATED');
  assert.match(!down.ok ? down.reason : '', /fail closed.*ECONNREFUSED/);
});
