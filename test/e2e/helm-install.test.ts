// End to end, issue 14 "Done when", way (b): the Helm chart installed into a `ferry up --bare` cluster (API
// server + 2 kubelets, no mesh). `helm template` renders charts/ferry; `kubectl apply` sends every object of
// a kind the local API server serves (the rest are listed in the diagnostics); then the SAME `ferry` build
// runs the rendered controller Deployment container once and the ztunnel DaemonSet container once per node,
// as host processes with the rendered args and env. Then the demo: `kubectl apply -f examples/demo`, label
// the namespace ambient, the node agents enroll the pods from the API, the client reaches echo by pod IP
// and by VIP through HBONE (echo sees 127.0.0.6), and the CA refuses a caller without a valid token.
//
// Mapped, and only this (what a real node provides differently; docs/install.md "How the chart is checked"):
//  - fieldRefs (POD_NAME, POD_NAMESPACE, POD_UID, NODE_NAME) and $(VAR) in args → the fields of the pod
//    object the API's Deployment/DaemonSet controllers created for it. The kubelet runs those pods too:
//    the controller replicas run with in-cluster config and share the Lease with this suite's host
//    controller (way (a) for the controller is test/e2e/helm-controller-pods.test.ts), the
//    ztunnel pods crash-loop (the default cgroup host path does not exist here; docs/install.md).
//  - in-cluster config (KUBERNETES_SERVICE_HOST + /var/run/secrets/kubernetes.io/serviceaccount) →
//    KUBECONFIG = the cluster's admin kubeconfig: the ztunnel's node agent does not read the kubelet's
//    FERRY_SERVICEACCOUNT_DIR yet. The local API server serves no RBAC, so the chart's RBAC is not
//    exercised here (checked by schema only, test/integration/helm-chart.test.ts).
//  - ztunnel --ca-token-file (projected token, audience ferry-ca) → a file holding a TokenRequest token of
//    ferry-ztunnel for that audience, bound to the node's DaemonSet pod (so the CA sees the right node).
//  - ztunnel --ca-root / --xds-root (ConfigMap ferry-ca-root-cert) → that ConfigMap's root-cert.pem,
//    fetched from the API into a file.
//  - ztunnel --xds-address / --ca-address ferry-controller.ferry-system.svc:PORT → localhost:<the
//    controller's port> (localhost is always a SAN of the controller's certificate; no cluster DNS here).
//  - listen addresses (--xds-address/--ca-address of the controller, --admin, --metrics, --readiness) →
//    127.0.0.1:<free port>: every node shares this host's network namespace.
//  - ztunnel --host-proc=/host/proc → /proc; --cgroup-root=/host/sys/fs/cgroup/kubepods.slice → that node's
//    kubepods.slice of the bare cluster; --pin-root=/sys/fs/bpf/ferry → a per-test, per-node bpffs dir;
//    --admin-socket (emptyDir) → a file in the test's directory.
//  - controller --waypoint-template (ConfigMap ferry-waypoint-template) → the rendered ConfigMap's file.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { stringify } from 'yaml';
import { CaClient } from '../../src/identity/ca-client.ts';
import { IdentityError } from '../../src/identity/errors.ts';
import { spiffeId } from '../../src/identity/spiffe-id.ts';
import { cgroup2MountPoint } from '../../src/redirect-bpf/probe.ts';
import { adminSocketRequest } from '../../src/runtime/admin-socket.ts';
import { privilegedTest } from '../../testkit/privileged.ts';
import {
  containerEnv,
  expandArgs,
  type HostProcess,
  loopbackListenFlags,
  mapFlags,
  type PodFields,
  type RenderedContainer,
  startFerry,
} from '../helpers/chart-host-processes.ts';
import { DEMO, FerryCli, kubectl } from '../helpers/cluster-cli.ts';
import { container, find, NAMESPACE, podSpec, RELEASE, render } from '../helpers/helm-render.ts';
import type { KubeObject } from '../helpers/k8s-schema.ts';

interface Pod {
  metadata: { name: string; namespace: string; uid: string };
  spec: { nodeName?: string };
  status: { podIP?: string };
}

/** Polls until `check` returns a value (bounded by the test's timeout; no timing assertion). */
async function eventually<T>(what: string, check: () => Promise<T | undefined>, signal: AbortSignal): Promise<T> {
  for (let waitMs = 50; ; waitMs = Math.min(waitMs * 2, 500)) {
    const v = await check();
    if (v !== undefined) return v;
    if (signal.aborted) throw new Error(`gave up waiting: ${what}`);
    await delay(waitMs);
  }
}

/** The chart's terminationGracePeriodSeconds of both workloads, as the kubelet would enforce it. */
const TERMINATION_GRACE_MS = 30_000;

const manifest = (objects: readonly KubeObject[]): string => objects.map((o) => `---\n${stringify(o)}`).join('');

privilegedTest(
  'helm chart on a bare cluster: rendered objects applied, rendered command lines run, demo meshed',
  async (t: TestContext) => {
    const cli = new FerryCli('helm');
    const cluster = `ferrytest-${process.pid}-helm`;
    const dir = mkdtempSync('/tmp/ferry-e2e-helm-files-');
    const pinRoot = `/sys/fs/bpf/ferrytest-${process.pid}-helm`;
    const processes: HostProcess[] = [];
    // One hook, in order: the host processes first (they watch the API), then `ferry down`, then the check.
    t.after(async () => {
      for (const p of processes.reverse()) await p.stop(TERMINATION_GRACE_MS);
      rmSync(pinRoot, { recursive: true, force: true });
      const down = await cli.run(['down', '--cluster', cluster]);
      // Kept when FERRY_KEEP_LOGS is set, to read the host processes' logs after a failure.
      if (process.env.FERRY_KEEP_LOGS !== undefined) t.diagnostic(`host process logs kept in ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
      assert.equal(down.code, 0, down.stderr);
      assert.deepEqual(cli.leftovers(cluster), []);
      cli.remove();
    });
    const up = await cli.run(['up', '--bare', '--nodes', '2', '--cluster', cluster]);
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
    const kubeconfig = (await cli.run(['kubeconfig', '--cluster', cluster])).stdout.trim();
    const k = async (...args: string[]): Promise<string> => {
      const r = await kubectl(kubeconfig, args);
      assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
      return r.stdout;
    };
    const apply = async (objects: readonly KubeObject[]): Promise<void> => {
      const r = await kubectl(kubeconfig, ['apply', '-f', '-'], manifest(objects));
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    };
    const podsOf = async (ns: string, selector: string): Promise<Pod[]> =>
      (JSON.parse(await k('get', 'pods', '-n', ns, '-l', selector, '-o', 'json')) as { items: Pod[] }).items;

    // 1. The chart, rendered and applied: every object of a kind the API serves.
    const objects = render();
    const served = new Set(
      (await k('api-resources', '--no-headers', '-o', 'wide'))
        .trim()
        .split('\n')
        .map((line) => {
          const cols = line.trim().split(/\s+/);
          const apiVersion = cols.find((c) => c === 'v1' || /^[a-z0-9.-]+\/v[0-9a-z]+$/.test(c));
          const kind = cols[cols.indexOf(apiVersion ?? '') + 2];
          return `${apiVersion}/${kind}`;
        }),
    );
    const notServed = objects.filter((o) => !served.has(`${o.apiVersion}/${o.kind}`));
    t.diagnostic(
      `not served by the local API server: ${notServed.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`,
    );
    await apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } }]);
    const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition');
    await apply(crds);
    const rest = objects.filter((o) => o.kind !== 'CustomResourceDefinition' && !notServed.includes(o));
    await apply(rest);

    const controllerDeployment = find(objects, 'Deployment', `${RELEASE}-controller`);
    const ztunnelDaemonSet = find(objects, 'DaemonSet', `${RELEASE}-ztunnel`);
    await t.test('the rendered Deployment and DaemonSet were accepted by the API as rendered', async () => {
      for (const [kind, o] of [
        ['deployment', controllerDeployment],
        ['daemonset', ztunnelDaemonSet],
      ] as const) {
        const stored = JSON.parse(await k('get', kind, o.metadata.name, '-n', NAMESPACE, '-o', 'json')) as KubeObject;
        assert.deepEqual(podSpec(stored).containers[0]?.args, podSpec(o).containers[0]?.args);
      }
    });

    // The pods the API's controllers made for them: what the fieldRefs and bound tokens point at.
    const ztunnelPods = await eventually(
      'a ztunnel DaemonSet pod per node',
      async () => {
        const pods = await podsOf(NAMESPACE, 'app.kubernetes.io/component=ztunnel');
        return pods.length === 2 && pods.every((p) => p.spec.nodeName !== undefined) ? pods : undefined;
      },
      t.signal,
    );
    const [controllerPod] = await eventually(
      'controller pods',
      async () => {
        const pods = await podsOf(NAMESPACE, 'app.kubernetes.io/component=controller');
        return pods.length > 0 && pods.every((p) => p.spec.nodeName !== undefined) ? pods : undefined;
      },
      t.signal,
    );
    assert.ok(controllerPod !== undefined);
    const fields = (p: Pod): PodFields => ({
      name: p.metadata.name,
      namespace: p.metadata.namespace,
      uid: p.metadata.uid,
      nodeName: p.spec.nodeName ?? '',
    });

    /** A TokenRequest (what the kubelet asks for a projected token): the pod's SA, bound to the pod. */
    const token = async (sa: string, pod: Pod, audience?: string): Promise<string> => {
      const request = {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          ...(audience === undefined ? {} : { audiences: [audience] }),
          boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: pod.metadata.name, uid: pod.metadata.uid },
        },
      };
      const path = `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/${sa}/token`;
      const r = await kubectl(kubeconfig, ['create', '--raw', path, '-f', '-'], JSON.stringify(request));
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { status: { token: string } }).status.token;
    };
    // 2. The controller: the Deployment's container, once.
    const cc = container(controllerDeployment, 'controller') as RenderedContainer;
    const ccEnv = containerEnv(cc, fields(controllerPod));
    const listen = await loopbackListenFlags(cc.args, [
      '--xds-address',
      '--ca-address',
      '--admin',
      '--metrics',
      '--readiness',
    ]);
    const templateFile = join(dir, 'waypoint.yaml');
    const templateCm = find(objects, 'ConfigMap', `${RELEASE}-waypoint-template`);
    writeFileSync(templateFile, (templateCm.data as Record<string, string>)['waypoint.yaml'] ?? '');
    const controllerArgs = mapFlags(expandArgs(cc.args, ccEnv), { ...listen, '--waypoint-template': templateFile });
    processes.push(startFerry(controllerArgs, { ...ccEnv, KUBECONFIG: kubeconfig }, join(dir, 'controller.log')));
    const readiness = `http://${listen['--readiness']}/healthz/ready`;
    await eventually(
      'the controller ready',
      async () => ((await fetch(readiness).catch(() => null))?.status === 200 ? true : undefined),
      t.signal,
    );
    const rootPem = await eventually(
      'the root ConfigMap written by the controller',
      async () => {
        const r = await kubectl(kubeconfig, [
          'get',
          'configmap',
          `${RELEASE}-ca-root-cert`,
          '-n',
          NAMESPACE,
          '-o',
          'jsonpath={.data.root-cert\\.pem}',
        ]);
        return r.code === 0 && r.stdout.includes('BEGIN CERTIFICATE') ? r.stdout : undefined;
      },
      t.signal,
    );
    const rootFile = join(dir, 'root-cert.pem');
    writeFileSync(rootFile, rootPem);
    const caPort = (listen['--ca-address'] ?? '').split(':')[1];
    const xdsPort = (listen['--xds-address'] ?? '').split(':')[1];

    // 3. The ztunnel: the DaemonSet's container, once per node.
    const cgroupRoot = cgroup2MountPoint();
    assert.ok(cgroupRoot !== null);
    const zc = container(ztunnelDaemonSet, 'ztunnel') as RenderedContainer;
    const adminSockets = new Map<string, string>();
    for (const pod of ztunnelPods) {
      const node = pod.spec.nodeName ?? '';
      const env = containerEnv(zc, fields(pod));
      const caToken = join(dir, `ca-token-${node}`);
      writeFileSync(caToken, await token(`${RELEASE}-ztunnel`, pod, 'ferry-ca'), { mode: 0o600 });
      const socket = join(dir, `admin-${node}.sock`);
      adminSockets.set(node, socket);
      const pins = join(pinRoot, node);
      mkdirSync(pins, { recursive: true });
      const args = mapFlags(expandArgs(zc.args, env), {
        ...(await loopbackListenFlags(zc.args, ['--admin', '--metrics', '--readiness'])),
        '--xds-address': `localhost:${xdsPort}`,
        '--ca-address': `localhost:${caPort}`,
        '--xds-root': rootFile,
        '--ca-root': rootFile,
        '--ca-token-file': caToken,
        '--host-proc': '/proc',
        '--cgroup-root': join(cgroupRoot, 'ferry.slice', cluster, 'pods', node, 'kubepods.slice'),
        '--pin-root': pins,
        '--admin-socket': socket,
      });
      processes.push(startFerry(args, { ...env, KUBECONFIG: kubeconfig }, join(dir, `ztunnel-${node}.log`)));
    }

    // 4. The demo walkthrough on it.
    // Namespaces first: kubectl applies a directory's files in name order (apps.yaml before namespaces.yaml).
    await k('apply', '-f', join(DEMO, 'namespaces.yaml'));
    await k('apply', '-f', DEMO);
    await k('rollout', 'status', 'deployment/client', '-n', 'demo', '--timeout=120s');
    await k('rollout', 'status', 'deployment/echo-v1', '-n', 'demo', '--timeout=120s');
    await k('rollout', 'status', 'deployment/echo-v2', '-n', 'demo', '--timeout=120s');
    await k('label', 'namespace', 'demo', 'istio.io/dataplane-mode=ambient');
    const demoPods = [...(await podsOf('demo', 'app=client')), ...(await podsOf('demo', 'app=echo'))];
    assert.equal(demoPods.length, 3);

    await t.test('the node agents enroll every demo pod of their node from the API', async () => {
      for (const p of demoPods) {
        const socket = adminSockets.get(p.spec.nodeName ?? '');
        assert.ok(socket !== undefined, `a ztunnel on ${p.spec.nodeName}`);
        await eventually(
          `${p.metadata.name} enrolled`,
          async () => {
            const reply = await adminSocketRequest(socket, 'GET', '/pods').catch(() => null);
            if (reply?.status !== 200) return undefined;
            const pods = (JSON.parse(reply.text) as { pods?: { uid?: string }[] }).pods ?? [];
            return pods.some((x) => x.uid?.endsWith(`/demo/${p.metadata.name}`)) ? true : undefined;
          },
          t.signal,
        );
      }
    });

    const [client] = await podsOf('demo', 'app=client');
    const [echo] = await podsOf('demo', 'app=echo');
    assert.ok(client !== undefined && echo !== undefined);
    await t.test('the client reaches echo by pod IP and by VIP through HBONE: echo sees 127.0.0.6', async () => {
      const vip = JSON.parse(await k('get', 'service', 'echo', '-n', 'demo', '-o', 'json')) as {
        spec: { clusterIP: string };
      };
      for (const url of [`http://${echo.status.podIP}:8080/`, `http://${vip.spec.clusterIP}/`]) {
        const r = await cli.curl(cluster, `demo/${client.metadata.name}`, url);
        assert.ok(r.echo !== null, `${url}: ${r.run.stdout}\n${r.run.stderr}`);
        assert.equal(r.echo.peer.address, '127.0.0.6', url);
      }
    });

    await t.test('the CA refuses a caller without a valid token (TokenReview)', async () => {
      for (const bad of [undefined, 'not-a-token', await token(`${RELEASE}-ztunnel`, ztunnelPods[0] as Pod)]) {
        // The last one is a real ztunnel token, but for the API's default audience, not ferry-ca.
        const ca = await CaClient.create({
          address: `localhost:${caPort}`,
          roots: { file: rootFile },
          ...(bad === undefined ? {} : { token: bad }),
        });
        try {
          const err = await ca.fetch(spiffeId('cluster.local', 'demo', 'echo')).then(
            () => assert.fail('the CA issued a certificate'),
            (e: unknown) => e,
          );
          assert.ok(err instanceof IdentityError, String(err));
          assert.match(err.message, /unauthenticated|token|denied|refused/i);
        } finally {
          ca.close();
        }
      }
    });
  },
  { timeout: 600_000 },
);
