// The local API server's HTTP edge with hostile or careless clients: no token, wrong token, a body over the
// cap, malformed JSON, unsupported media types and methods, server-side apply, and watch limits. Every
// refusal is a Kubernetes Status with the real server's reason and code.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Pool } from 'undici';
import { startTestApiServer } from '../../helpers/apiserver.ts';

interface StatusBody {
  readonly kind?: string;
  readonly reason?: string;
  readonly code?: number;
  readonly message?: string;
}

describe('API server HTTP edge', () => {
  let srv: Awaited<ReturnType<typeof startTestApiServer>>;
  let pool: Pool;
  const call = async (
    method: string,
    path: string,
    body?: string | Buffer,
    headers: Record<string, string> = {},
    auth = true,
  ) => {
    const res = await pool.request({
      path,
      method: method as 'GET',
      headers: {
        ...(auth ? { authorization: `Bearer ${srv.server.token}` } : {}),
        'content-type': 'application/json',
        ...headers,
      },
      ...(body === undefined ? {} : { body }),
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: (text.startsWith('{') ? JSON.parse(text) : {}) as StatusBody };
  };

  before(async () => {
    srv = await startTestApiServer({ maxWatchers: 2 });
    pool = new Pool(srv.server.url, { connect: { ca: srv.server.caPem } });
  });
  after(async () => {
    await pool.close();
    await srv.remove();
  });

  test('no token or a wrong token: 401 Unauthorized Status', async () => {
    const none = await call('GET', '/api/v1/namespaces', undefined, {}, false);
    assert.equal(none.status, 401);
    assert.deepEqual([none.body.kind, none.body.reason, none.body.code], ['Status', 'Unauthorized', 401]);
    const wrong = await call('GET', '/version', undefined, { authorization: 'Bearer nope' }, false);
    assert.equal(wrong.status, 401);
  });

  test('a body over 3 MiB: 413', async () => {
    const big = JSON.stringify({ metadata: { name: 'big', annotations: { a: 'x'.repeat(3 * 1024 * 1024) } } });
    const r = await call('POST', '/api/v1/namespaces/default/serviceaccounts', big);
    assert.equal(r.status, 413);
    assert.equal(r.body.reason, 'RequestEntityTooLarge');
  });

  test('malformed JSON: 400 BadRequest', async () => {
    const r = await call('POST', '/api/v1/namespaces/default/serviceaccounts', '{"metadata": ');
    assert.equal(r.status, 400);
    assert.equal(r.body.reason, 'BadRequest');
  });

  test('a body nested 100,000 levels deep: 400, and the server keeps serving', async () => {
    const deep = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
    const r = await call('POST', '/api/v1/namespaces/default/serviceaccounts', deep);
    assert.equal(r.status, 400);
    assert.match(r.body.message ?? '', /nested deeper than 64 levels/);
    assert.equal((await call('GET', '/version')).status, 200);
  });

  test('YAML bodies are accepted as application/yaml', async () => {
    const r = await call('POST', '/api/v1/namespaces/default/serviceaccounts', 'metadata:\n  name: from-yaml\n', {
      'content-type': 'application/yaml',
    });
    assert.equal(r.status, 201);
  });

  test('protobuf bodies and unknown patch types: 415; server-side apply: 415 with a clear message', async () => {
    const pb = await call('POST', '/api/v1/namespaces/default/serviceaccounts', 'k8s\0', {
      'content-type': 'application/vnd.kubernetes.protobuf',
    });
    assert.equal(pb.status, 415);
    const ssa = await call(
      'PATCH',
      '/api/v1/namespaces/default/serviceaccounts/from-yaml?fieldManager=x',
      'metadata: {}',
      { 'content-type': 'application/apply-patch+yaml' },
    );
    assert.equal(ssa.status, 415);
    assert.match(ssa.body.message ?? '', /server-side apply/);
    const crSmp = await call('PATCH', '/api/v1/namespaces/default/serviceaccounts/from-yaml', '{}', {
      'content-type': 'text/plain',
    });
    assert.equal(crSmp.status, 415);
  });

  test('unknown paths 404, wrong methods 405, PUT with a different name 400', async () => {
    assert.equal((await call('GET', '/apis/example.com/v1/widgets')).status, 404);
    assert.equal((await call('POST', '/version', '{}')).status, 405);
    const put = await call(
      'PUT',
      '/api/v1/namespaces/default/serviceaccounts/from-yaml',
      JSON.stringify({ metadata: { name: 'other' } }),
    );
    assert.equal(put.status, 400);
  });

  test('JSON patch and merge patch on the status subresource change only status', async () => {
    const created = await call(
      'POST',
      '/api/v1/namespaces/default/pods',
      JSON.stringify({ metadata: { name: 'p' }, spec: { containers: [{ name: 'a', image: 'x' }] } }),
    );
    assert.equal(created.status, 201);
    const s = await call(
      'PATCH',
      '/api/v1/namespaces/default/pods/p/status',
      JSON.stringify({ status: { phase: 'Running', podIP: '10.0.0.5' }, spec: { nodeName: 'ignored' } }),
      { 'content-type': 'application/merge-patch+json' },
    );
    assert.equal(s.status, 200);
    const pod = (await call('GET', '/api/v1/namespaces/default/pods/p')).body as unknown as {
      status: { phase: string };
      spec: { nodeName?: string };
      metadata: { generation: number };
    };
    assert.equal(pod.status.phase, 'Running');
    assert.equal(pod.spec.nodeName, undefined);
    // A main-resource write cannot change status; a spec change bumps generation.
    const j = await call(
      'PATCH',
      '/api/v1/namespaces/default/pods/p',
      JSON.stringify([
        { op: 'replace', path: '/status/phase', value: 'Failed' },
        { op: 'add', path: '/spec/nodeName', value: 'node-a' },
      ]),
      { 'content-type': 'application/json-patch+json' },
    );
    assert.equal(j.status, 200);
    const after = (await call('GET', '/api/v1/namespaces/default/pods/p')).body as unknown as typeof pod;
    assert.equal(after.status.phase, 'Running');
    assert.equal(after.spec.nodeName, 'node-a');
    assert.equal(after.metadata.generation, 2);
  });

  test('more watches than allowed: 429 TooManyRequests', async () => {
    const open = await Promise.all(
      [0, 1].map(() =>
        pool.request({
          path: '/api/v1/pods?watch=true',
          method: 'GET',
          headers: { authorization: `Bearer ${srv.server.token}` },
        }),
      ),
    );
    const third = await call('GET', '/api/v1/pods?watch=true');
    assert.equal(third.status, 429);
    for (const w of open) {
      w.body.on('error', () => undefined); // aborting the body is the point
      w.body.destroy();
    }
  });
});
