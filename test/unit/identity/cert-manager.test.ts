// Certificate manager behaviour with a manual clock and an in-process CA: fetch on first use, single-flight,
// rotation at half-life, serving through a CA outage with backoff, expiry, recovery, forget, close.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CertificateManager, INITIAL_BACKOFF_MS, MAX_BACKOFF_MS } from '../../../src/identity/cert-manager.ts';
import { IdentityError } from '../../../src/identity/errors.ts';
import { spiffeId } from '../../../src/identity/spiffe-id.ts';
import type { WorkloadCertificate } from '../../../src/identity/workload-certificate.ts';
import { collectEvents, InProcessCaSource, ManualClock, nextEvent } from '../../helpers/fake-ca.ts';

const WEB = spiffeId('cluster.local', 'default', 'web');
const DB = spiffeId('cluster.local', 'default', 'db');

async function setup(t: { after: (fn: () => void) => void }) {
  const clock = new ManualClock();
  const source = await InProcessCaSource.create({ clock });
  const manager = new CertificateManager({ source, clock });
  t.after(() => manager.close());
  return { clock, source, manager };
}

function halfLife(cert: WorkloadCertificate): number {
  const nb = cert.notBefore.getTime();
  return nb + (cert.notAfter.getTime() - nb) / 2;
}

function leafOf(cert: WorkloadCertificate): string {
  return cert.certChainPem[0] ?? '';
}

async function rejection(p: Promise<unknown>): Promise<IdentityError> {
  const err = await p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof IdentityError, String(err));
  return err;
}

test('first use fetches; later uses get the cached certificate', async (t) => {
  const { source, manager } = await setup(t);
  const cert = await manager.getCertificate(WEB);
  assert.deepEqual(cert.identity, WEB);
  assert.equal(await manager.getCertificate(WEB), cert);
  assert.equal(source.fetches, 1);
  const [snap] = manager.snapshot();
  assert.equal(snap?.identity, 'spiffe://cluster.local/ns/default/sa/web');
  assert.equal(snap?.state, 'available');
  assert.match(snap?.serialNumber ?? '', /^[0-9A-F]+$/);
  assert.equal(snap?.notAfter, cert.notAfter.toISOString());
});

test('10 concurrent requests for one identity share one fetch', async (t) => {
  const { source, manager } = await setup(t);
  const certs = await Promise.all(Array.from({ length: 10 }, () => manager.getCertificate(WEB)));
  assert.equal(source.fetches, 1);
  assert.ok(certs.every((c) => c === certs[0]));
});

test('rotates at half-life and tells listeners', async (t) => {
  const { clock, source, manager } = await setup(t);
  const first = await manager.getCertificate(WEB);
  assert.deepEqual(clock.pending(), [halfLife(first)]);

  clock.advance(halfLife(first) - clock.now() - 1);
  assert.equal(source.fetches, 1, 'no renewal before half-life');

  const rotated = nextEvent(manager, 'rotated');
  clock.advance(1);
  const event = await rotated;
  assert.equal(source.fetches, 2);
  assert.equal(event.previous, first);
  assert.notEqual(leafOf(event.certificate), leafOf(first));
  assert.equal(await manager.getCertificate(WEB), event.certificate);
  assert.deepEqual(clock.pending(), [halfLife(event.certificate)]);
});

test('CA down while the certificate is valid: keeps serving, retries with backoff, recovers', async (t) => {
  const { clock, source, manager } = await setup(t);
  const first = await manager.getCertificate(WEB);
  source.down = true;

  let failed = nextEvent(manager, 'fetch-failed');
  clock.advance(halfLife(first) - clock.now());
  let failure = await failed;
  assert.equal(failure.error.code, 'FERRY_CA_UNREACHABLE');
  assert.equal(await manager.getCertificate(WEB), first, 'still-valid certificate keeps being served');

  // Backoff doubles from 200 ms.
  const delays: number[] = [failure.retryAt - clock.now()];
  for (let i = 0; i < 4; i++) {
    failed = nextEvent(manager, 'fetch-failed');
    clock.advanceToNextTimer();
    failure = await failed;
    delays.push(failure.retryAt - clock.now());
  }
  assert.deepEqual(delays, [200, 400, 800, 1600, 3200]);
  const snap = manager.snapshot()[0];
  assert.equal(snap?.state, 'available');
  assert.equal(snap?.error?.code, 'FERRY_CA_UNREACHABLE');

  source.down = false;
  const rotated = nextEvent(manager, 'rotated');
  clock.advanceToNextTimer();
  const event = await rotated;
  assert.equal(event.previous, first);
  assert.equal(await manager.getCertificate(WEB), event.certificate);
  assert.equal(manager.snapshot()[0]?.error, undefined);
  // Backoff resets after success: the next timer is the new half-life.
  assert.deepEqual(clock.pending(), [halfLife(event.certificate)]);
});

test('an expired certificate is never served; backoff is capped and recovery follows', async (t) => {
  const { clock, source, manager } = await setup(t);
  const first = await manager.getCertificate(WEB);
  source.down = true;
  const expired = nextEvent(manager, 'expired');
  let sawExpiry = false;
  void expired.then(() => {
    sawExpiry = true;
  });
  const firstFailure = nextEvent(manager, 'fetch-failed');
  clock.advance(halfLife(first) - clock.now());
  await firstFailure;
  let maxDelay = 0;
  while (!sawExpiry) {
    const failed = nextEvent(manager, 'fetch-failed');
    const before = clock.now();
    clock.advanceToNextTimer();
    maxDelay = Math.max(maxDelay, clock.now() - before);
    await failed;
  }
  assert.equal(maxDelay, MAX_BACKOFF_MS, 'backoff capped at 150 s');
  assert.equal(clock.now(), first.notAfter.getTime(), 'the last retry before expiry happens at expiry');
  const err = await rejection(manager.getCertificate(WEB));
  assert.equal(err.code, 'FERRY_CERT_EXPIRED');
  assert.match(err.message, /expired at/);
  assert.equal(manager.snapshot()[0]?.state, 'unavailable');

  source.down = false;
  const rotated = nextEvent(manager, 'rotated');
  clock.advanceToNextTimer();
  assert.equal((await rotated).previous, null, 'nothing valid was held before');
  const fresh = await manager.getCertificate(WEB);
  assert.ok(fresh.notAfter.getTime() > clock.now());
});

test('first fetch failing: callers get FERRY_CERT_FETCH_FAILED until a retry succeeds', async (t) => {
  const { clock, source, manager } = await setup(t);
  source.down = true;
  const err = await rejection(manager.getCertificate(WEB));
  assert.equal(err.code, 'FERRY_CERT_FETCH_FAILED');
  assert.match(err.message, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/web.*in-process CA is down/);
  assert.equal((await rejection(manager.getCertificate(WEB))).code, 'FERRY_CERT_FETCH_FAILED');
  assert.equal(source.fetches, 1, 'callers do not bypass the backoff');
  assert.deepEqual(clock.pending(), [clock.now() + INITIAL_BACKOFF_MS]);

  source.down = false;
  const rotated = nextEvent(manager, 'rotated');
  clock.advanceToNextTimer();
  await rotated;
  assert.deepEqual((await manager.getCertificate(WEB)).identity, WEB);
});

test('setLocalIdentities prefetches new identities and forgets the rest', async (t) => {
  const { clock, source, manager } = await setup(t);
  const issued = new Set<string>();
  using _sub = manager.onEvent((e) => {
    if (e.kind === 'rotated') issued.add(e.identity.serviceAccount);
  });
  const both = collectEvents(manager, 'rotated', 2);
  manager.setLocalIdentities([WEB, DB]);
  await both;
  assert.deepEqual([...issued].sort(), ['db', 'web']);
  assert.equal(source.fetches, 2);
  assert.equal(clock.pending().length, 2);

  const forgotten = nextEvent(manager, 'forgotten');
  manager.setLocalIdentities([DB]);
  assert.deepEqual((await forgotten).identity, WEB);
  assert.deepEqual(
    manager.snapshot().map((s) => s.identity),
    ['spiffe://cluster.local/ns/default/sa/db'],
  );
  assert.equal(clock.pending().length, 1, 'no renewal timer left for the forgotten identity');
});

test('a fetch finishing after its identity was forgotten is dropped', async (t) => {
  const { clock, source, manager } = await setup(t);
  let rotations = 0;
  using _sub = manager.onEvent((e) => {
    if (e.kind === 'rotated') rotations++;
  });
  manager.setLocalIdentities([WEB]);
  manager.setLocalIdentities([]);
  await source.settled();
  await new Promise<void>((resolve) => setImmediate(resolve)); // one macrotask turn: the manager's handlers ran
  assert.equal(source.fetches, 1);
  assert.equal(rotations, 0);
  assert.deepEqual(manager.snapshot(), []);
  assert.deepEqual(clock.pending(), []);
});

test('close stops timers and refuses further requests', async (t) => {
  const { clock, manager } = await setup(t);
  await manager.getCertificate(WEB);
  manager.close();
  assert.deepEqual(clock.pending(), []);
  assert.equal((await rejection(manager.getCertificate(WEB))).code, 'FERRY_CERT_MANAGER_CLOSED');
});
