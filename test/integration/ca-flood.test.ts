// Issue 9 §4 (CA): over real gRPC + TLS on loopback. A flood of unauthenticated CreateCertificate calls,
// each with a valid CSR, is refused before any CSR is parsed (UNAUTHENTICATED), and a legitimate node's
// request is signed while the flood runs. An authenticated flood beyond the signing slots and the queue is
// shed with RESOURCE_EXHAUSTED and a FERRY_CA_OVERLOADED message; the CA serves normally afterwards.
// Latency under a flood is measured in bench/ca-flood.ts, never asserted here.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { CertificateAuthority } from '../../src/identity/ca.ts';
import { nodeBoundAuthorizer } from '../../src/identity/ca-authz.ts';
import { CaClient } from '../../src/identity/ca-client.ts';
import { encodeCertificateRequest, loadCaServiceDefinition } from '../../src/identity/ca-grpc.ts';
import { type CaServer, startCaServer } from '../../src/identity/ca-server.ts';
import { createCsr } from '../../src/identity/csr.ts';
import type { IdentityLog } from '../../src/identity/log.ts';
import { type SpiffeId, spiffeId } from '../../src/identity/spiffe-id.ts';

const TD = 'cluster.local';
const WEB = spiffeId(TD, 'default', 'web');
const TOKENS = new Map([
  ['token-node-a', 'node-a'],
  ['token-node-b', 'node-b'],
]);

function countingLog(): IdentityLog & { msgs: Map<string, number> } {
  const msgs = new Map<string, number>();
  const count = (_: unknown, msg: string): void => {
    msgs.set(msg, (msgs.get(msg) ?? 0) + 1);
  };
  return { msgs, info: count, warn: count, error: count };
}

async function startCa(t: test.TestContext, admission?: { maxConcurrent: number; maxQueued: number }) {
  const ca = await CertificateAuthority.generate({ trustDomain: TD });
  const log = countingLog();
  const server = await startCaServer({
    ca,
    authorizer: nodeBoundAuthorizer({ tokens: TOKENS, mayHold: () => true }),
    log,
    ...(admission === undefined ? {} : { admission }),
  });
  t.after(() => server.close());
  return { ca, server, log };
}

/** Raw CreateCertificate calls over `channels` gRPC channels (separate TLS connections). */
async function rawCaller(t: test.TestContext, server: CaServer, ca: CertificateAuthority, channels: number) {
  const def = await loadCaServiceDefinition();
  const method = def.CreateCertificate as grpc.MethodDefinition<Record<string, unknown>, unknown>;
  const creds = grpc.credentials.createSsl(Buffer.from(ca.trustBundlePem().join('\n')));
  const clients = Array.from(
    { length: channels },
    // Distinct channel options: grpc-js would otherwise share one subchannel (one connection) among them.
    (_, i) => new grpc.Client(server.address, creds, { 'grpc.ferry_test_channel': i }),
  );
  t.after(() => {
    for (const c of clients) c.close();
  });
  return (i: number, req: Record<string, unknown>, token?: string): Promise<grpc.ServiceError | null> => {
    const md = new grpc.Metadata();
    if (token !== undefined) md.set('authorization', `Bearer ${token}`);
    const client = clients[i % clients.length] as grpc.Client;
    return new Promise((resolve) => {
      client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        req,
        md,
        { deadline: Date.now() + 60_000 },
        (err) => resolve(err),
      );
    });
  };
}

async function csrRequest(id: SpiffeId): Promise<Record<string, unknown>> {
  return encodeCertificateRequest({
    csrPem: (await createCsr(id)).csrPem,
    validitySeconds: 0,
    impersonatedIdentity: undefined,
  });
}

test('a flood of unauthenticated requests is refused before any CSR is parsed; a node is signed meanwhile', async (t) => {
  const { ca, server, log } = await startCa(t);
  let parsed = 0;
  const prepare = ca.prepare.bind(ca);
  ca.prepare = (req) => {
    parsed++;
    return prepare(req);
  };
  const legit = await CaClient.create({
    address: server.address,
    roots: { pem: ca.trustBundlePem() },
    timeoutMs: 10_000, // the ztunnel's own deadline
    token: 'token-node-a',
  });
  t.after(() => legit.close());
  const call = await rawCaller(t, server, ca, 8);
  const req = await csrRequest(WEB); // a valid CSR: the old CA verified it before asking who called
  // 2,000 at once, then kept at 500 in flight until the legitimate request is answered.
  const results: Promise<grpc.ServiceError | null>[] = [];
  let inFlight = 0;
  let stop = false;
  const fire = (): void => {
    const i = results.length;
    inFlight++;
    results.push(
      call(i, req, i % 2 === 0 ? undefined : 'not-a-token').then((err) => {
        inFlight--;
        if (!stop && inFlight < 500) fire();
        return err;
      }),
    );
  };
  for (let i = 0; i < 2_000; i++) fire();
  const cert = await legit.fetch(WEB);
  const inFlightWhenSigned = inFlight;
  stop = true;
  assert.deepEqual(cert.identity, WEB);
  assert.ok(inFlightWhenSigned > 0, 'the flood was still running when the legitimate request was signed');
  t.diagnostic(`signed with ${inFlightWhenSigned} flood requests in flight, ${results.length} sent`);
  const errors = await Promise.all(results);
  const codes = new Set(errors.map((e) => (e === null ? 'OK' : grpc.status[e.code])));
  assert.deepEqual([...codes], ['UNAUTHENTICATED']);
  assert.match(errors[0]?.details ?? '', /^FERRY_CA_UNAUTHENTICATED: no "authorization: Bearer/);
  assert.match(errors[1]?.details ?? '', /^FERRY_CA_UNAUTHENTICATED: unknown bearer token/);
  assert.equal(parsed, 1, 'only the legitimate CSR was parsed and verified');
  assert.equal(log.msgs.get('certificate issued'), 1);
});

test('an authenticated flood beyond its share is shed with RESOURCE_EXHAUSTED; another node is signed', async (t) => {
  const { ca, server, log } = await startCa(t, { maxConcurrent: 2, maxQueued: 6 }); // share: 2 per node
  const call = await rawCaller(t, server, ca, 4);
  const req = await csrRequest(WEB);
  const flood = Promise.all(Array.from({ length: 200 }, (_, i) => call(i, req, 'token-node-a')));
  const other = await call(0, req, 'token-node-b'); // while node-a floods
  assert.equal(other, null, `node-b refused: ${other?.details}`);
  const results = await flood;
  const ok = results.filter((e) => e === null).length;
  const shed = results.filter((e) => e?.code === grpc.status.RESOURCE_EXHAUSTED);
  assert.equal(
    ok + shed.length,
    200,
    `other outcomes: ${results.filter((e) => e !== null && e.code !== grpc.status.RESOURCE_EXHAUSTED).map((e) => e?.details)}`,
  );
  assert.ok(ok >= 2, `at least node-a's share is signed (${ok})`);
  assert.ok(shed.length > 0, 'some requests are shed');
  assert.match(shed[0]?.details ?? '', /^FERRY_CA_OVERLOADED: .*; retry with backoff$/);
  assert.equal(log.msgs.get('certificate issued'), ok + 1);
  // Every slot was given back: requests one after another are all signed.
  for (const token of ['token-node-a', 'token-node-a', 'token-node-b']) assert.equal(await call(0, req, token), null);
});

test('the CA port caps concurrent connections per source IP; other sources are served', async (t) => {
  const ca = await CertificateAuthority.generate({ trustDomain: TD });
  const server = await startCaServer({
    ca,
    authorizer: nodeBoundAuthorizer({ tokens: TOKENS, mayHold: () => true }),
    connectionLimits: { maxPerSource: 3, maxTotal: 100 },
  });
  t.after(() => server.close());
  const closed: boolean[] = [];
  const sockets = Array.from({ length: 5 }, (_, i) => {
    const s = net.connect({ host: '127.0.0.1', port: server.port, localAddress: '127.0.0.77' });
    closed[i] = false;
    s.on('error', () => {});
    s.once('close', () => {
      closed[i] = true;
    });
    return s;
  });
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  const deadline = Date.now() + 3_000;
  while (closed.filter(Boolean).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(closed.filter(Boolean).length, 2, 'two of five from one source are reset');
  const legit = await CaClient.create({
    address: server.address,
    roots: { pem: ca.trustBundlePem() },
    timeoutMs: 10_000,
    token: 'token-node-a',
  });
  t.after(() => legit.close());
  assert.deepEqual((await legit.fetch(WEB)).identity, WEB);
  assert.equal(closed.filter(Boolean).length, 2, 'the three admitted stay open');
});
