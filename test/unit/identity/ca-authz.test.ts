// firstAuthenticating: the local API cluster's CA accepts node agents' static tokens and, for any other
// token, the next way (TokenReview); the way that accepted a caller is the one that authorizes it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { firstAuthenticating, nodeBoundAuthorizer } from '../../../src/identity/ca-authz.ts';
import { spiffeId } from '../../../src/identity/spiffe-id.ts';

const ECHO = spiffeId('cluster.local', 'demo', 'echo');

function call(token: string | null) {
  const metadata = new grpc.Metadata();
  if (token !== null) metadata.set('authorization', `Bearer ${token}`);
  return { metadata, peer: 'ipv4:10.0.0.1:5000' };
}

test('the first way that accepts a caller authorizes it; a caller none accepts hears every reason', async () => {
  // node-a runs echo, node-b does not: which way authorizes shows in the decision.
  const either = firstAuthenticating([
    nodeBoundAuthorizer({ tokens: new Map([['token-a', 'node-a']]), mayHold: (node) => node === 'node-a' }),
    nodeBoundAuthorizer({ tokens: new Map([['token-b', 'node-b']]), mayHold: (node) => node === 'node-a' }),
  ]);
  const rows: [string | null, boolean, string][] = [
    ['token-a', true, 'node-a'],
    ['token-b', false, 'FERRY_CA_IDENTITY_NOT_ON_NODE'],
    ['token-c', false, 'FERRY_CA_UNAUTHENTICATED'],
    [null, false, 'FERRY_CA_UNAUTHENTICATED'],
  ];
  for (const [token, allowed, detail] of rows) {
    const req = call(token);
    const authn = await either.authenticate(req);
    const authz = await either.authorize({ ...req, requested: ECHO, ...(authn.ok ? { caller: authn.caller } : {}) });
    assert.equal(authz.ok, allowed, String(token));
    assert.equal(authz.ok ? authz.node : authz.code, detail, String(token));
  }
  const refused = await either.authenticate(call('token-c'));
  assert.equal(refused.ok ? '' : refused.reason, 'unknown bearer token; unknown bearer token');
  // authorize alone (no authenticate before it on that call) authenticates first.
  assert.equal((await either.authorize({ ...call('token-b'), requested: ECHO })).ok, false);
  assert.equal((await either.authorize({ ...call('token-a'), requested: ECHO })).ok, true);
});
