// @kubernetes/client-node informers (list + watch) against the local API server: adds, updates and deletes
// arrive; the informer survives a server restart (same data directory: objects and resourceVersion kept),
// watches the server closes every few seconds, a 410 Gone (relist), and 1,000 changes per second, with the
// informer's cache equal to the API's list afterwards.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import {
  CoreV1Api,
  type Informer,
  KubeConfig,
  makeInformer,
  type ObjectCache,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';
import { Agent, fetch } from 'undici';
import { startTestApiServer } from '../../helpers/apiserver.ts';
import type { LoadParams, LoadResult } from '../../helpers/apiserver-load.ts';

type PodInformer = Informer<V1Pod> & ObjectCache<V1Pod>;

function clientFor(kubeconfig: string): { kc: KubeConfig; core: CoreV1Api } {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return { kc, core: kc.makeApiClient(CoreV1Api) };
}

/** An informer on all pods that restarts itself after errors (as a controller does), 100 ms later. */
async function startInformer(
  kc: KubeConfig,
  core: CoreV1Api,
): Promise<{ informer: PodInformer; errors: unknown[]; stop(): Promise<void> }> {
  const informer = makeInformer(kc, '/api/v1/pods', () => core.listPodForAllNamespaces()) as PodInformer;
  const errors: unknown[] = [];
  let stopped = false;
  informer.on('error', (err) => {
    errors.push(err);
    if (!stopped) setTimeout(() => void informer.start().catch(() => undefined), 100).unref();
  });
  await informer.start();
  return {
    informer,
    errors,
    stop: async () => {
      stopped = true;
      await informer.stop();
    },
  };
}

/** What the checks read of a reply: a watch line's type and Status, when there is one. */
interface WatchLine {
  readonly type?: string;
  readonly object?: { readonly code?: number; readonly reason?: string };
}

/** Plain HTTPS client with the server's CA and token, for bulk writes without client-node's overhead. */
function rawClient(url: string, caPem: string, token: string) {
  const dispatcher = new Agent({ connect: { ca: caPem }, connections: 16, pipelining: 1 });
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<{ status: number; json: WatchLine }> => {
    const res = await fetch(`${url}${path}`, {
      method,
      dispatcher,
      headers: { authorization: `Bearer ${token}`, 'content-type': contentType },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, json: (await res.json()) as WatchLine };
  };
  return { call, close: () => dispatcher.close() };
}

const pod = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels },
  spec: { containers: [{ name: 'app', image: 'ferry/http-echo' }] },
});

async function eventually(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 10; !(await cond()); delay = Math.min(delay * 2, 200)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** name → resourceVersion of the informer's cache and of a fresh list. */
async function cacheMatchesList(informer: PodInformer, core: CoreV1Api): Promise<boolean> {
  const list = await core.listPodForAllNamespaces();
  const want = new Map(
    list.items.map((p) => [`${p.metadata?.namespace}/${p.metadata?.name}`, p.metadata?.resourceVersion]),
  );
  const have = new Map(
    informer.list().map((p) => [`${p.metadata?.namespace}/${p.metadata?.name}`, p.metadata?.resourceVersion]),
  );
  return want.size === have.size && [...want].every(([k, v]) => have.get(k) === v);
}

test('informer sees adds, updates and deletes, and survives a server restart on the same data directory', async (t) => {
  let srv = await startTestApiServer();
  const dataDir = srv.dataDir;
  const port = srv.server.port;
  t.after(() => srv.remove());
  const { kc, core } = clientFor(srv.kubeconfig);
  const { informer, stop } = await startInformer(kc, core);
  t.after(stop);
  const seen: string[] = [];
  informer.on('add', (p) => seen.push(`add:${p.metadata?.name}`));
  informer.on('update', (p) => seen.push(`update:${p.metadata?.name}:${p.metadata?.labels?.v ?? ''}`));
  informer.on('delete', (p) => seen.push(`delete:${p.metadata?.name}`));

  await core.createNamespacedPod({ namespace: 'default', body: pod('a', { v: '1' }) });
  await eventually(() => seen.includes('add:a'), 'add');
  await core.patchNamespacedPod(
    { namespace: 'default', name: 'a', body: { metadata: { labels: { v: '2' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  await eventually(() => seen.includes('update:a:2'), 'update');
  await core.createNamespacedPod({ namespace: 'default', body: pod('b') });
  await core.deleteNamespacedPod({ namespace: 'default', name: 'a' });
  await eventually(() => seen.includes('delete:a') && seen.includes('add:b'), 'delete');
  const rvBefore = srv.server.resourceVersion();

  // Restart: same directory and port. The informer's watch ends, reconnects fail while the server is down
  // (its error handler restarts it), and it then resumes from its resourceVersion.
  await srv.stop();
  srv = await startTestApiServer({ dataDir, port });
  assert.equal(srv.server.resourceVersion(), rvBefore, 'resourceVersion continues after a restart');
  assert.deepEqual(
    (await core.listNamespacedPod({ namespace: 'default' })).items.map((p) => p.metadata?.name),
    ['b'],
  );
  await core.createNamespacedPod({ namespace: 'default', body: pod('c') });
  const c = await core.readNamespacedPod({ namespace: 'default', name: 'c' });
  assert.ok(Number(c.metadata?.resourceVersion) > rvBefore);
  await eventually(() => seen.includes('add:c'), 'add after restart');
  await eventually(() => cacheMatchesList(informer, core), 'cache equal to list');
});

test('informer keeps up when the server ends watches every 2 s and after a 410 Gone relists', async (t) => {
  const srv = await startTestApiServer({ maxWatchSeconds: 2, historyLimit: 20 });
  t.after(() => srv.remove());
  const { kc, core } = clientFor(srv.kubeconfig);
  const { informer, stop } = await startInformer(kc, core);
  t.after(stop);
  const raw = rawClient(srv.server.url, srv.server.caPem, srv.server.token);
  t.after(() => raw.close());
  // Changes over ~5 s: several server-side watch ends in between.
  for (let i = 0; i < 50; i++) {
    const r = await raw.call('POST', '/api/v1/namespaces/default/pods', pod(`p${i}`));
    assert.equal(r.status, 201);
    await new Promise((r) => setTimeout(r, 100));
  }
  await eventually(() => cacheMatchesList(informer, core), 'cache equal to list after watch restarts');

  // 410: stop the informer, make more changes than the history keeps (deletes included), start it again
  // from its old resourceVersion: the server answers Expired, the informer relists.
  await informer.stop();
  const staleRv = Number(srv.server.resourceVersion());
  for (let i = 0; i < 30; i++) await raw.call('DELETE', `/api/v1/namespaces/default/pods/p${i}`);
  for (let i = 0; i < 30; i++) await raw.call('POST', '/api/v1/namespaces/default/pods', pod(`q${i}`));
  const watch = await raw
    .call('GET', `/api/v1/pods?watch=true&resourceVersion=${staleRv}&timeoutSeconds=1`)
    .catch(() => null);
  // A raw watch from the stale version gets the ERROR event (the body is one JSON line).
  assert.equal(watch?.json?.type, 'ERROR');
  assert.equal(watch?.json?.object?.code, 410);
  assert.equal(watch?.json?.object?.reason, 'Expired');
  await informer.start();
  await eventually(() => cacheMatchesList(informer, core), 'cache equal to list after 410 and relist');
  assert.equal(informer.list().filter((p) => p.metadata?.name?.startsWith('p')).length, 20);
});

test('informer cache equals the API after 1,000 changes per second for 3 s', async (t) => {
  const srv = await startTestApiServer();
  t.after(() => srv.remove());
  const { kc, core } = clientFor(srv.kubeconfig);
  const { informer, stop } = await startInformer(kc, core);
  t.after(stop);
  const raw = rawClient(srv.server.url, srv.server.caPem, srv.server.token);
  t.after(() => raw.close());
  const PODS = 200;
  for (let i = 0; i < PODS; i += 20) {
    await Promise.all(
      Array.from({ length: 20 }, (_, j) => raw.call('POST', '/api/v1/namespaces/default/pods', pod(`load-${i + j}`))),
    );
  }
  // The load comes from a worker thread: its client must not share the server's event loop.
  const params: LoadParams = {
    url: srv.server.url,
    caPem: srv.server.caPem,
    token: srv.server.token,
    namespace: 'default',
    pods: PODS,
    rate: 1000,
    seconds: 3,
  };
  const worker = new Worker(new URL('../../helpers/apiserver-load.ts', import.meta.url), { workerData: params });
  const [result] = (await once(worker, 'message')) as [LoadResult];
  await worker.terminate();
  const rate = result.ok / (result.elapsedMs / 1000);
  t.diagnostic(
    `${result.ok} changes in ${result.elapsedMs} ms (${Math.round(rate)}/s), statuses ${JSON.stringify(result.statuses)}`,
  );
  assert.equal(result.failed, 0);
  assert.equal(result.ok, 3000);
  // 1,000/s is offered; what is achieved depends on the machine (docs/performance.md has measurements).
  // The bound only catches a server that stalls (as a lost group-commit wake-up once did).
  assert.ok(result.elapsedMs < 30_000, `3,000 changes took ${result.elapsedMs} ms`);
  await eventually(() => cacheMatchesList(informer, core), 'cache equal to list after the load', 30_000);
});
