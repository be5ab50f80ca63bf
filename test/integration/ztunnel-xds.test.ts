// A ztunnel fed by the controller's delta xDS server instead of a file: it becomes ready once synced,
// serves traffic from pushed config, and applies a policy push to new and live connections.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { dialViaSocks5 } from '../../src/cli/socks5-dial.ts';
import { startXdsServer } from '../../src/controller/xds-server.ts';
import { parseLocalConfig } from '../../src/mesh/local-config/config.ts';
import type { MeshConfig } from '../../src/mesh/types.ts';
import { inProcessCertificates, startTestZtunnel, testCa } from '../helpers/ztunnel-harness.ts';

function mesh(appPort: number, denyClient: boolean): MeshConfig {
  const yaml = `
workloads:
- {uid: Kubernetes//Pod/x/client, name: client, namespace: x, serviceAccount: client, workloadIps: ["127.0.44.2"], protocol: HBONE, node: node-a}
- {uid: Kubernetes//Pod/x/server, name: server, namespace: x, serviceAccount: server, workloadIps: ["127.0.44.3"], protocol: HBONE, node: node-b}
policies:
${
  denyClient
    ? `- name: deny-client
  namespace: x
  scope: Namespace
  action: Deny
  rules: [[[{principals: [{exact: "cluster.local/ns/x/sa/client"}], destinationPorts: [${appPort}]}]]]`
    : '[]'
}
`.replace('policies:\n[]', 'policies: []');
  const parsed = parseLocalConfig(yaml, 'test');
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.message).join('\n'));
  return parsed.config;
}

test('config pushed over xDS is served; a DENY push closes the live connection and refuses new ones', async (t) => {
  const stack = new AsyncDisposableStack();
  t.after(() => stack.disposeAsync());
  const app = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  app.listen(0, '127.0.44.3');
  await once(app, 'listening');
  stack.defer(() => new Promise<void>((r) => app.close(() => r())));
  const appPort = (app.address() as net.AddressInfo).port;

  const xds = await startXdsServer({});
  stack.defer(() => xds.close());
  xds.publish(mesh(appPort, false));
  const certificates = inProcessCertificates(await testCa());
  const a = stack.use(await startTestZtunnel({ node: 'node-a', xdsAddress: xds.address, certificates }));
  const b = stack.use(await startTestZtunnel({ node: 'node-b', xdsAddress: xds.address, certificates, socks5: false }));

  const conn = await dialViaSocks5({
    proxy: a.zt.addresses.socks5!,
    target: { host: '127.0.44.3', port: appPort },
    localAddress: '127.0.44.2',
  });
  conn.resume(); // the dialer hands the socket over paused
  conn.write('ping');
  const [echoed] = (await once(conn, 'data')) as [Buffer];
  assert.equal(String(echoed), 'ping');

  const closed = once(conn, 'close');
  xds.publish(mesh(appPort, true));
  await closed;
  const late = await b.logs.waitFor(
    (l) => (l.error as { code?: string } | undefined)?.code === 'FERRY_AUTHZ_LATE_REJECTION',
  );
  assert.equal(late['src.identity'], 'spiffe://cluster.local/ns/x/sa/client');

  await assert.rejects(
    dialViaSocks5({
      proxy: a.zt.addresses.socks5!,
      target: { host: '127.0.44.3', port: appPort },
      localAddress: '127.0.44.2',
    }),
    /REP/,
  );
  const denied = await b.logs.waitFor((l) => l.policy === 'x/deny-client');
  assert.equal((denied.error as { code: string }).code, 'FERRY_AUTHZ_DENIED');
});
