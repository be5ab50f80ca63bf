// `ferry migrate check --kubeconfig`: the objects are listed from a Kubernetes API through
// @kubernetes/client-node. The kube-apiserver is the one boundary we cannot run here, so a stand-in
// answers discovery and list requests over HTTP with the Bookinfo fixtures (Istio networking served only
// at v1beta1, as an older Istio does: the reader falls back from v1), and checks the bearer token.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const F = new URL('../fixtures/migrate/bookinfo/', import.meta.url).pathname;
const TOKEN = 'ferrytest-token';

interface Served {
  readonly group: string; // '' = core
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  readonly namespaced: boolean;
}

const SERVED: readonly Served[] = [
  { group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false },
  { group: '', version: 'v1', kind: 'Service', plural: 'services', namespaced: true },
  { group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true },
  { group: 'apps', version: 'v1', kind: 'Deployment', plural: 'deployments', namespaced: true },
  {
    group: 'security.istio.io',
    version: 'v1',
    kind: 'AuthorizationPolicy',
    plural: 'authorizationpolicies',
    namespaced: true,
  },
  {
    group: 'security.istio.io',
    version: 'v1',
    kind: 'PeerAuthentication',
    plural: 'peerauthentications',
    namespaced: true,
  },
  {
    group: 'networking.istio.io',
    version: 'v1beta1',
    kind: 'VirtualService',
    plural: 'virtualservices',
    namespaced: true,
  },
  {
    group: 'networking.istio.io',
    version: 'v1beta1',
    kind: 'DestinationRule',
    plural: 'destinationrules',
    namespaced: true,
  },
  { group: 'networking.istio.io', version: 'v1alpha3', kind: 'EnvoyFilter', plural: 'envoyfilters', namespaced: true },
];

function fixtureObjects(): Record<string, unknown>[] {
  const files = [
    'platform.yaml',
    'destination-rules.yaml',
    'scenario-reviews-jason.yaml',
    'policies.yaml',
    'blockers.yaml',
  ];
  return files.flatMap((f) =>
    parseAllDocuments(readFileSync(`${F}${f}`, 'utf8')).map((d) => d.toJS() as Record<string, unknown>),
  );
}

function standIn(objects: Record<string, unknown>[], seen: string[]) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '';
    seen.push(url);
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      send(401, { kind: 'Status', code: 401 });
      return;
    }
    for (const s of SERVED) {
      const gv = s.group === '' ? s.version : `${s.group}/${s.version}`;
      const base = s.group === '' ? `/api/${s.version}` : `/apis/${s.group}/${s.version}`;
      if (url === base) {
        const resources = SERVED.filter((x) => x.group === s.group && x.version === s.version).map((x) => ({
          name: x.plural,
          singularName: x.kind.toLowerCase(),
          namespaced: x.namespaced,
          kind: x.kind,
          verbs: ['get', 'list'],
        }));
        send(200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv, resources });
        return;
      }
      if (url.split('?')[0] === `${base}/${s.plural}`) {
        // A real API server returns items without apiVersion/kind in some clients' view; strip them.
        const items = objects.filter((o) => o.kind === s.kind).map(({ apiVersion: _a, kind: _k, ...rest }) => rest);
        send(200, { kind: `${s.kind}List`, apiVersion: gv, metadata: { resourceVersion: '1' }, items });
        return;
      }
    }
    send(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404, reason: 'NotFound' });
  };
}

async function ferry(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, 'migrate', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

async function kubeconfig(dir: string, port: number, token: string): Promise<string> {
  const path = join(dir, 'kubeconfig');
  await writeFile(
    path,
    `apiVersion: v1
kind: Config
clusters: [{name: standin, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: ${token}}}]
contexts: [{name: ctx, context: {cluster: standin, user: u}}]
current-context: ctx
`,
  );
  return path;
}

test('migrate check --kubeconfig lists every kind (falling back to v1beta1) and reports like -f does', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ferrytest-migrate-kube-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const seen: string[] = [];
  const server = createServer(standIn(fixtureObjects(), seen));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;

  const r = await ferry('check', '--kubeconfig', await kubeconfig(dir, port, TOKEN), '--json');
  assert.equal(r.stderr, '');
  assert.equal(r.code, 1); // the EnvoyFilter
  const report = JSON.parse(r.stdout) as {
    namespaces: { namespace: string; findings: { severity: string; object: string; category: string }[] }[];
  };
  const findings = report.namespaces.flatMap((n) => n.findings);
  assert.deepEqual(
    findings.filter((f) => f.severity === 'blocker').map((f) => f.object),
    ['EnvoyFilter/bookinfo/reviews-lua'],
  );
  const converted = findings.filter((f) => f.category === 'route' || f.category === 'l7-policy').map((f) => f.object);
  for (const o of ['VirtualService/bookinfo/reviews', 'AuthorizationPolicy/bookinfo/get-productpage'])
    assert.ok(converted.includes(o), o);
  // v1 was asked for first and was not there; v1beta1 answered the list.
  assert.ok(seen.includes('/apis/networking.istio.io/v1'));
  assert.ok(seen.some((u) => u.startsWith('/apis/networking.istio.io/v1beta1/virtualservices')));

  // And convert from the cluster gives the same HTTPRoute as from the files.
  const fromCluster = await ferry('convert', '--kubeconfig', await kubeconfig(dir, port, TOKEN));
  const fromFiles = await ferry(
    'convert',
    ...[
      'platform.yaml',
      'destination-rules.yaml',
      'scenario-reviews-jason.yaml',
      'policies.yaml',
      'blockers.yaml',
    ].flatMap((f) => ['-f', `${F}${f}`]),
  );
  const routes = (s: string) =>
    parseAllDocuments(s)
      .map((d) => d.toJS() as { kind: string; spec: unknown })
      .filter((d) => d.kind === 'HTTPRoute' || d.kind === 'AuthorizationPolicy')
      .map((d) => d.spec);
  assert.deepEqual(routes(fromCluster.stdout), routes(fromFiles.stdout));
});

test('migrate check --kubeconfig with a rejected token: FERRY_MIGRATE_KUBE_FAILED, exit 2', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ferrytest-migrate-kube-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const server = createServer(standIn([], []));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const r = await ferry('check', '--kubeconfig', await kubeconfig(dir, port, 'wrong-token'));
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /^ferry migrate: FERRY_MIGRATE_KUBE_FAILED: listing Namespace \(v1\) from http:\/\/127\.0\.0\.1:\d+: /,
  );
  const missing = await ferry('check', '--kubeconfig', join(dir, 'nope'));
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /FERRY_MIGRATE_KUBE_FAILED: cannot load kubeconfig/);
});
