// The waypoint command line exactly as the chart's template renders it, run as the real `ferry waypoint`
// process: TLS xDS verified with the mounted root (`--xds-root`), its certificate from the CA with the
// projected token read from the mounted file (`--ca-token-file`), ready on the readiness port. What a kubelet
// would provide is mapped onto this machine: the mounted files become temp files, the controller Service's
// addresses become the loopback xDS and CA servers started here, listen ports become free loopback ports
// (other tests run beside this one), and $(NODE_NAME) is expanded from the pod's env as the kubelet does.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { startXdsServer } from '../../src/controller/xds-server.ts';
import { CertificateAuthority } from '../../src/identity/ca.ts';
import { nodeBoundAuthorizer } from '../../src/identity/ca-authz.ts';
import { startCaServer } from '../../src/identity/ca-server.ts';
import { CHART_DIR, container, find, flag, render, waypointObjects } from '../helpers/helm-render.ts';

const MAIN = join(CHART_DIR, '..', '..', 'src', 'cli', 'main.ts');

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

test("the chart's waypoint command line runs: TLS xDS, projected-token CA, ready", async (t) => {
  const objects = render();
  const deployment = find(waypointObjects(objects).filled, 'Deployment', 'waypoint');
  const args = container(deployment, 'waypoint').args;
  const tokenPath = flag(args, '--ca-token-file') as string;
  const rootPath = flag(args, '--ca-root') as string;
  assert.equal(flag(args, '--xds-root'), rootPath, 'one trust bundle verifies both xDS and the CA');

  const ca = await CertificateAuthority.generate({ trustDomain: 'cluster.local' });
  const caServer = await startCaServer({
    ca,
    authorizer: nodeBoundAuthorizer({ tokens: new Map([['projected-sa-token', 'node-a']]), mayHold: () => true }),
    host: '127.0.0.1',
    port: 0,
  });
  t.after(() => caServer.close());
  const serving = await ca.issueServingCertificate({ ipAddresses: ['127.0.0.1'] });
  const xds = await startXdsServer({
    tls: { certChainPem: serving.certChainPem.join('\n'), keyPem: serving.privateKeyPem },
  });
  t.after(() => xds.close());
  xds.publish({ workloads: [], services: [], policies: [] });
  xds.publishL7([]);

  const dir = await mkdtemp(join(tmpdir(), 'ferry-chart-wp-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const root = join(dir, 'root-cert.pem');
  const token = join(dir, 'token');
  await writeFile(root, ca.trustBundlePem().join(''));
  await writeFile(token, 'projected-sa-token');
  const readiness = await freePort();
  const env: Record<string, string> = { NODE_NAME: 'node-a' }; // the pod's env (fieldRef spec.nodeName)
  const mapped = args.slice(1).map((a) => {
    const name = a.split('=')[0];
    const value = a
      .replaceAll(rootPath, root)
      .replaceAll(tokenPath, token)
      .replace(/\$\(([A-Z_]+)\)/g, (_, v: string) => env[v] ?? '');
    if (name === '--xds-address') return `--xds-address=${xds.address}`;
    if (name === '--ca-address') return `--ca-address=${caServer.address}`;
    if (name === '--listen' || name === '--admin' || name === '--metrics') return `${name}=127.0.0.1:0`;
    if (name === '--readiness') return `--readiness=127.0.0.1:${readiness}`;
    return value;
  });
  assert.ok(mapped.includes('--node=node-a'));

  const child = spawn(process.execPath, [MAIN, 'waypoint', ...mapped], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const lines: Record<string, unknown>[] = [];
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`ferry waypoint exited ${code}: ${stderr}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const o = JSON.parse(line) as Record<string, unknown>;
      lines.push(o);
      if (o.msg === 'waypoint ready') resolve(o);
    });
  });
  const readyLine = await ready;
  const live = await fetch(`http://127.0.0.1:${readiness}/healthz/live`);
  assert.equal(live.status, 200);
  // Ready once xDS synced over TLS and its certificate came from the CA with the file's token.
  let status = 0;
  for (let i = 0; i < 100 && status !== 200; i++) {
    status = (await fetch(`http://127.0.0.1:${readiness}/healthz/ready`)).status;
    if (status !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(status, 200, JSON.stringify(lines.slice(-5)));
  const admin = readyLine.admin as { host: string; port: number };
  const dump = (await (await fetch(`http://${admin.host}:${admin.port}/config_dump`)).json()) as {
    certificates?: { identity: string; state: string }[];
  };
  assert.deepEqual(
    dump.certificates?.map((c) => [c.identity, c.state]),
    [['spiffe://cluster.local/ns/shop/sa/waypoint', 'available']],
  );
  assert.ok(!JSON.stringify(lines).includes('projected-sa-token'), 'the token is never logged');
  child.kill('SIGTERM');
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, stderr);
});
