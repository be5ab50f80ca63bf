// The status writer against the local API server: a write computed from a stale copy gets 409 Conflict,
// is re-read and retried once (and lands), and a status already equal is not written at all.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StatusWriter } from '../../src/controller/status/status-writer.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { startLocalApi } from '../helpers/local-api.ts';

test('409 Conflict on a stale copy: re-read, recompute, write once; equal status: no write', async (t) => {
  const api = await startLocalApi(t, { preinstallCrds: true });
  const gc = await api.create({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
    metadata: { name: 'ferry-waypoint' },
    spec: { controllerName: 'ferry.dev/waypoint-controller' },
  });
  // Someone changes the object after our informer copy was taken: that copy's resourceVersion is stale.
  await api.replace({ ...gc, metadata: { ...(gc.metadata as object), labels: { touched: 'yes' } } });
  let stale: Record<string, unknown> | undefined = gc;
  const writer = new StatusWriter({
    client: api.client,
    log: silentLogger,
    stored: () => stale,
    version: () => 'v1',
  });
  const desired = [
    {
      kind: 'GatewayClass' as const,
      namespace: '',
      name: 'ferry-waypoint',
      status: {
        conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'ok', observedGeneration: 1 }],
      },
    },
  ];
  await writer.sync(desired);
  assert.deepEqual(writer.lastSync, { written: 1, unchanged: 0, failed: 0 });
  const now = await api.get('gateway.networking.k8s.io/v1', 'GatewayClass', '', 'ferry-waypoint');
  const conds = (now.status as { conditions: { type: string; status: string; lastTransitionTime: string }[] })
    .conditions;
  assert.equal(conds[0]?.status, 'True');
  assert.equal((now.metadata as { labels: Record<string, string> }).labels.touched, 'yes', 'the other change is kept');
  // The informer now holds what was written: the same desired status makes no request.
  stale = now;
  await writer.sync(desired);
  assert.deepEqual(writer.lastSync, { written: 0, unchanged: 1, failed: 0 });
  assert.equal(writer.writes, 1);
});
