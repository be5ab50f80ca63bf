// Programs nobody here wrote, through the whole mesh path (client pod → ztunnel → waypoint → ztunnel →
// backend pod): Debian's nginx serves files behind an HTTPRoute and Debian's curl (and h2load) fetch them
// from a pod. nginx answers with Content-Length (static files), chunked (gzip), 204, 304 and HEAD, the
// shapes the waypoint once corrupted (docs/architecture.md, "HBONE tunnels as byte streams").
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { privilegedTest } from '../../testkit/privileged.ts';
import { FerryCli } from '../helpers/cluster-cli.ts';
import { until, WaypointCluster } from '../helpers/waypoint-e2e.ts';

const cli = new FerryCli('wp-thirdparty');
test.after(() => cli.remove());

const MiB = 1024 * 1024;

function onPath(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function nginxConf(dir: string): string {
  return `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 10000;
  types { text/plain txt; application/octet-stream bin; }
  default_type application/octet-stream;
  server {
    listen 8080;
    root ${dir}/www;
    gzip on;
    gzip_min_length 1;
    gzip_types text/plain;
    location = /204 { return 204; }
  }
}
`;
}

function manifests(dir: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: nginx, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: nginx}}
  template:
    metadata: {labels: {app: nginx}}
    spec:
      serviceAccountName: echo
      nodeName: node-1
      containers:
      - name: nginx
        image: nginx
        command: [nginx, -c, ${dir}/nginx.conf, -g, "daemon off; master_process off;"]
        ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: static, namespace: shop}
spec:
  selector: {app: nginx}
  ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: static, namespace: shop}
spec:
  parentRefs:
  - {group: "", kind: Service, name: static, port: 80}
  rules:
  - backendRefs:
    - {name: static, port: 80}
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        add: [{name: x-through, value: waypoint}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: debian, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: debian}}
  template:
    metadata: {labels: {app: debian}}
    spec:
      serviceAccountName: client
      nodeName: node-0
      containers:
      - {name: debian, image: debian, command: [sleep, infinity]}
`;
}

privilegedTest('waypoint with third-party programs: nginx behind an HTTPRoute, curl and h2load in a pod', async (t) => {
  const missing = ['nginx', 'curl', 'h2load', 'sha256sum'].filter((cmd) => !onPath(cmd));
  if (missing.length > 0) {
    // .ci/run installs them (nginx-light, curl, nghttp2-client); elsewhere say what to install.
    if (process.env.FERRY_REQUIRE_PRIVILEGED === '1') assert.fail(`not installed: ${missing.join(', ')}`);
    t.skip(`not installed: ${missing.join(', ')}`);
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'ferry-nginx-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const www = join(dir, 'www');
  const small = randomBytes(3000);
  const big = randomBytes(64 * MiB);
  const text = 'line of text for gzip\n'.repeat(5000);
  await mkdir(www);
  await writeFile(join(www, 'small.bin'), small);
  await writeFile(join(www, 'big.bin'), big);
  await writeFile(join(www, 'empty.txt'), '');
  await writeFile(join(www, 'text.txt'), text);
  await writeFile(join(dir, 'nginx.conf'), nginxConf(dir));
  const extras = join(dir, 'manifests');
  await mkdir(extras);
  await writeFile(join(extras, 'nginx.yaml'), manifests(dir));

  const c = await WaypointCluster.up(cli, t, 'nginx', [extras]);
  const base = c.url('static');
  /** Debian's curl in shop/debian-0, through a shell so that its output can be piped into sha256sum. */
  const sh = async (script: string): Promise<string> => {
    const r = await c.cli.run(['exec', '--cluster', c.name, 'shop/debian-0', '--', 'sh', '-c', script]);
    assert.equal(r.code, 0, `${script}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
  // nginx starts with the pod; wait until it answers through the mesh.
  await until(
    async () => {
      const r = await c.cli.run([
        'exec',
        '--cluster',
        c.name,
        'shop/debian-0',
        '--',
        '/usr/bin/curl',
        '-sf',
        `${base}/empty.txt`,
      ]);
      return r.code === 0 ? true : undefined;
    },
    { limitMs: 15_000, what: 'nginx through the waypoint' },
  );

  await t.test('HTTP/1.1 Content-Length bodies, byte for byte, through the HTTPRoute', async () => {
    const headers = await sh(`/usr/bin/curl -sS -D - -o /dev/null ${base}/small.bin`);
    assert.match(headers, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(headers, /\r\ncontent-length: 3000\r\n/i);
    assert.match(headers, /\r\nx-through: waypoint\r\n/i, 'the HTTPRoute applied');
    assert.equal((await sh(`/usr/bin/curl -sS ${base}/small.bin | sha256sum`)).split(' ')[0], sha(small));
  });

  await t.test('HTTP/1.0 client', async () => {
    const out = await sh(
      `/usr/bin/curl -sS --http1.0 -D /dev/stderr ${base}/small.bin 2>/tmp/.h-$$ | sha256sum; head -1 /tmp/.h-$$; rm -f /tmp/.h-$$`,
    );
    const [hash, status] = out.split('\n');
    assert.equal(hash?.split(' ')[0], sha(small));
    assert.match(status ?? '', /^HTTP\/1\.[01] 200 OK/);
  });

  await t.test('empty body, 204, 304, HEAD', async () => {
    assert.equal(
      await sh(`/usr/bin/curl -sS -w '%{http_code} %{size_download}' -o /dev/null ${base}/empty.txt`),
      '200 0',
    );
    assert.equal(await sh(`/usr/bin/curl -sS -w '%{http_code} %{size_download}' -o /dev/null ${base}/204`), '204 0');
    const etag = /etag: ("[^"]+")/i.exec(await sh(`/usr/bin/curl -sS -I ${base}/small.bin`))?.[1];
    assert.ok(etag !== undefined, 'nginx sends an ETag');
    assert.equal(
      await sh(
        `/usr/bin/curl -sS -w '%{http_code} %{size_download}' -o /dev/null -H 'If-None-Match: ${etag}' ${base}/small.bin`,
      ),
      '304 0',
    );
    const head = await sh(`/usr/bin/curl -sS -I ${base}/big.bin`);
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(head, new RegExp(`\\r\\ncontent-length: ${64 * MiB}\\r\\n`, 'i'));
  });

  await t.test('chunked (gzip) from nginx, decoded by curl', async () => {
    const out = await sh(
      `/usr/bin/curl -sS --compressed -D /dev/stderr ${base}/text.txt 2>/tmp/.h-$$ | sha256sum; cat /tmp/.h-$$; rm -f /tmp/.h-$$`,
    );
    assert.equal(out.split(' ')[0], sha(text));
    assert.match(out, /transfer-encoding: chunked/i);
    assert.match(out, /content-encoding: gzip/i);
  });

  await t.test('64 MiB over HTTP/1.1 and over h2c, hash compared', async () => {
    assert.equal((await sh(`/usr/bin/curl -sS ${base}/big.bin | sha256sum`)).split(' ')[0], sha(big));
    assert.equal(
      (await sh(`/usr/bin/curl -sS --http2-prior-knowledge ${base}/big.bin | sha256sum`)).split(' ')[0],
      sha(big),
    );
  });

  await t.test('keep-alive: 50 requests on one connection', async () => {
    const urls = Array.from({ length: 50 }, () => `-o /dev/null ${base}/small.bin`).join(' ');
    const lines = (await sh(`/usr/bin/curl -sS -w '%{http_code} %{num_connects} %{size_download}\\n' ${urls}`))
      .trim()
      .split('\n');
    assert.equal(lines.length, 50);
    assert.equal(lines[0], '200 1 3000');
    for (const l of lines.slice(1)) assert.equal(l, '200 0 3000', 'reused the first connection');
  });

  await t.test('h2load over h2c: 2,000 requests, all 2xx', async () => {
    const out = await sh(`h2load -n 2000 -c 4 -m 8 ${base}/small.bin`);
    assert.match(out, /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored/);
    assert.match(out, /status codes: 2000 2xx/);
  });
});
