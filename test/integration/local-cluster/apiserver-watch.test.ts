// biome-ignore-all lint/suspicious/noExplicitAny: replies are JSON documents read by path in assertions
// Watch semantics over real HTTPS: selector transitions (an object entering or leaving a label selection is
// ADDED / DELETED for that watch), field selectors (pods of one node), bookmarks, sendInitialEvents, and
// ServiceAccount tokens (TokenRequest bound to a pod, checked by TokenReview, invalid once the pod is gone).
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { Pool } from 'undici';
import { startTestApiServer } from '../../helpers/apiserver.ts';

interface WatchEvent {
  readonly type: string;
  readonly object: { metadata?: { name?: string; resourceVersion?: string; annotations?: Record<string, string> } };
}

describe('watch and tokens', () => {
  let srv: Awaited<ReturnType<typeof startTestApiServer>>;
  let pool: Pool;
  const headers = () => ({ authorization: `Bearer ${srv.server.token}`, 'content-type': 'application/json' });
  const call = async (method: string, path: string, body?: unknown, contentType = 'application/json') => {
    const res = await pool.request({
      path,
      method: method as 'GET',
      headers: { ...headers(), 'content-type': contentType },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, any> };
  };
  /** Opens a watch and collects its events until close(). */
  const watch = async (path: string) => {
    const res = await pool.request({ path, method: 'GET', headers: headers() });
    assert.equal(res.statusCode, 200);
    const events: WatchEvent[] = [];
    const lines = createInterface({ input: res.body });
    lines.on('line', (l) => events.push(JSON.parse(l) as WatchEvent));
    const until = async (cond: () => boolean) => {
      const deadline = Date.now() + 10_000;
      while (!cond()) {
        if (Date.now() > deadline)
          throw new Error(
            `watch ${path}: saw ${JSON.stringify(events.map((e) => `${e.type}:${e.object.metadata?.name}`))}`,
          );
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    res.body.on('error', () => undefined); // destroy() below aborts the body: expected
    return {
      events,
      until,
      close: () => {
        lines.close();
        res.body.destroy();
      },
    };
  };
  const pod = (name: string, labels: Record<string, string>, nodeName?: string) => ({
    metadata: { name, labels },
    spec: {
      containers: [{ name: 'a', image: 'x' }],
      ...(nodeName === undefined ? {} : { nodeName }),
      serviceAccountName: 'robot',
    },
  });

  before(async () => {
    srv = await startTestApiServer({ bookmarkIntervalMs: 200 });
    pool = new Pool(srv.server.url, { connect: { ca: srv.server.caPem } });
  });
  after(async () => {
    await pool.destroy();
    await srv.remove();
  });

  test('a label-selector watch sees objects enter (ADDED) and leave (DELETED) the selection', async () => {
    const list = await call('GET', '/api/v1/namespaces/default/pods');
    const w = await watch(
      `/api/v1/namespaces/default/pods?watch=true&labelSelector=app%3Dweb&resourceVersion=${list.body.metadata.resourceVersion}`,
    );
    await call('POST', '/api/v1/namespaces/default/pods', pod('p1', { app: 'db' }));
    await call(
      'PATCH',
      '/api/v1/namespaces/default/pods/p1',
      { metadata: { labels: { app: 'web' } } },
      'application/merge-patch+json',
    );
    await call(
      'PATCH',
      '/api/v1/namespaces/default/pods/p1',
      { metadata: { labels: { tier: 'x' } } },
      'application/merge-patch+json',
    );
    await call(
      'PATCH',
      '/api/v1/namespaces/default/pods/p1',
      { metadata: { labels: { app: 'db' } } },
      'application/merge-patch+json',
    );
    await w.until(() => w.events.length >= 3);
    assert.deepEqual(
      w.events.map((e) => e.type),
      ['ADDED', 'MODIFIED', 'DELETED'],
    );
    w.close();
  });

  test('a field-selector watch on spec.nodeName sees only the pods of that node', async () => {
    const w = await watch('/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dnode-a');
    await call('POST', '/api/v1/namespaces/default/pods', pod('on-b', {}, 'node-b'));
    await call('POST', '/api/v1/namespaces/default/pods', pod('on-a', {}, 'node-a'));
    await w.until(() => w.events.some((e) => e.object.metadata?.name === 'on-a'));
    assert.deepEqual(
      w.events.map((e) => `${e.type}:${e.object.metadata?.name}`),
      ['ADDED:on-a'],
    );
    w.close();
  });

  test('bookmarks carry the current resourceVersion; sendInitialEvents ends with the initial-events-end bookmark', async () => {
    const w = await watch(
      '/api/v1/namespaces/default/pods?watch=true&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan',
    );
    await w.until(() => w.events.filter((e) => e.type === 'BOOKMARK').length >= 2);
    const firstBookmark = w.events.findIndex((e) => e.type === 'BOOKMARK');
    assert.ok(w.events.slice(0, firstBookmark).every((e) => e.type === 'ADDED'));
    assert.equal(w.events[firstBookmark]?.object.metadata?.annotations?.['k8s.io/initial-events-end'], 'true');
    assert.equal(w.events.at(-1)?.object.metadata?.resourceVersion, String(srv.server.resourceVersion()));
    w.close();
  });

  test('TokenRequest issues a pod-bound token that TokenReview accepts until the pod is deleted', async () => {
    await call('POST', '/api/v1/namespaces/default/serviceaccounts', { metadata: { name: 'robot' } });
    const p = await call('GET', '/api/v1/namespaces/default/pods/on-a');
    const tr = await call('POST', '/api/v1/namespaces/default/serviceaccounts/robot/token', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: ['istio-ca'],
        expirationSeconds: 3600,
        boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'on-a', uid: p.body.metadata.uid },
      },
    });
    assert.equal(tr.status, 201);
    const token = tr.body.status.token as string;
    const review = (audiences: string[]) =>
      call('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences },
      });
    const ok = await review(['istio-ca']);
    assert.equal(ok.status, 201);
    assert.equal(ok.body.status.authenticated, true);
    assert.equal(ok.body.status.user.username, 'system:serviceaccount:default:robot');
    assert.deepEqual(ok.body.status.user.extra['authentication.kubernetes.io/pod-name'], ['on-a']);
    assert.deepEqual(ok.body.status.user.extra['authentication.kubernetes.io/node-name'], ['node-a']);
    assert.equal((await review(['other'])).body.status.authenticated, false);
    await call('DELETE', '/api/v1/namespaces/default/pods/on-a');
    const gone = await review(['istio-ca']);
    assert.equal(gone.body.status.authenticated, false);
    assert.match(gone.body.status.error, /bound pod no longer exists/);
  });
});
