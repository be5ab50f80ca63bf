// `npm run bench -- kube-latency`: config latency on the Kubernetes path. The local API server (HTTPS),
// `startKubernetesController` in this process and one ztunnel xDS client; BENCH_PODS pods (default 100)
// are created one at a time and given an IP the way a kubelet does (PUT …/status). Reported: from the API
// server's answer to that status write until (a) the controller's source emits the new ClusterState and
// (b) the ztunnel's xDS client has applied the workload (and ACKs). Results: docs/performance.md.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKubernetesController } from '../src/controller/kubernetes-controller.ts';
import { KubeClient, loadKubeConfig } from '../src/kube/client.ts';
import { startApiServer } from '../src/local-cluster/apiserver/server.ts';
import { MeshStore } from '../src/mesh/mesh-store.ts';
import { silentLogger } from '../src/runtime/logger.ts';
import { XdsClient } from '../src/xds/client.ts';

const pct = (xs: readonly number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? Number.NaN;

export async function runKubeLatency(): Promise<number> {
  const pods = Number(process.env.BENCH_PODS ?? '100');
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-kube-'));
  const kubeconfigPath = join(dir, 'kubeconfig');
  const api = await startApiServer({
    dataDir: join(dir, 'api'),
    log: silentLogger,
    kubeconfigPath,
    preinstallCrds: true,
  });
  const client = new KubeClient(loadKubeConfig({ kubeconfigPath }));
  const controller = await startKubernetesController({ client, log: silentLogger, writeStatus: false });
  const revisions = () => controller.mesh.revision;
  const store = new MeshStore();
  let onApplied = () => {};
  const xds = new XdsClient({
    address: controller.xds.address,
    tls: { rootCertPem: controller.trustBundlePem().join('') }, // xDS is TLS in Kubernetes mode
    nodeId: 'ztunnel~127.0.0.1~node-a',
    nodeName: 'node-a',
    store,
    onResponse: () => onApplied(),
  });
  await xds.start();
  const ns = {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'bench', labels: { 'istio.io/dataplane-mode': 'ambient' } },
  };
  await client.request('POST', '/api/v1/namespaces', { json: ns });
  const toState: number[] = [];
  const toZtunnel: number[] = [];
  try {
    for (let i = 0; i < pods; i++) {
      const name = `p${i}`;
      const beforeCreate = revisions();
      const created = await client.request('POST', '/api/v1/namespaces/bench/pods', {
        json: {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name, namespace: 'bench' },
          spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'x' }] },
        },
      });
      // The pod without an IP is published too (no workload yet): wait for that before timing the status write.
      while (revisions() === beforeCreate) await new Promise((r) => setImmediate(r));
      await controller.mesh.settled();
      const before = revisions();
      const state = new Promise<number>((resolve) => {
        const poll = () => (revisions() > before ? resolve(performance.now()) : setImmediate(poll));
        poll();
      });
      const applied = new Promise<number>((resolve) => {
        onApplied = () => {
          if (store.view.workloads.some((w) => w.name === name)) resolve(performance.now());
        };
      });
      await client.request('PUT', `/api/v1/namespaces/bench/pods/${name}/status`, {
        json: { ...created, status: { phase: 'Running', podIP: `10.9.${i >> 8}.${i & 255}` } },
      });
      const t0 = performance.now();
      toState.push((await state) - t0);
      toZtunnel.push((await applied) - t0);
    }
  } finally {
    await xds.close();
    await controller.close();
    await api.close();
    await rm(dir, { recursive: true, force: true });
  }
  toState.sort((a, b) => a - b);
  toZtunnel.sort((a, b) => a - b);
  const fmt = (xs: number[]) =>
    `p50 ${pct(xs, 0.5).toFixed(1)} ms, p95 ${pct(xs, 0.95).toFixed(1)} ms, max ${xs.at(-1)?.toFixed(1)} ms`;
  process.stdout.write(`kube-latency: ${pods} pods, one at a time\n`);
  process.stdout.write(`  API answer → MeshController published : ${fmt(toState)}\n`);
  process.stdout.write(`  API answer → workload applied at ztunnel: ${fmt(toZtunnel)}\n`);
  return 0;
}
