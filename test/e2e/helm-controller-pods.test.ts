// End to end, issue 14 "Done when", way (a) for the controller: the chart's controller Deployment, rendered
// by the real helm and applied with kubectl into a `ferry up --bare` cluster, runs as pods of the local
// kubelet (image ferry/ferry = this Ferry build) with nothing mapped by the test: the pods get the
// automounted in-cluster files (ServiceAccount token, ca.crt, namespace) and KUBERNETES_SERVICE_HOST/PORT,
// reach the API from their own network namespace through the gateway relay of `ferry apiserver
// --pod-gateway`, authenticate with their ServiceAccount token, become Ready (readiness port listening),
// and one of the two replicas holds the Lease. `ferry down` leaves nothing behind.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { stringify } from 'yaml';
import { privilegedTest } from '../../testkit/privileged.ts';
import { FerryCli, kubectl } from '../helpers/cluster-cli.ts';
import { NAMESPACE, RELEASE, render } from '../helpers/helm-render.ts';

interface Pod {
  metadata: { name: string };
  status: { podIP?: string; conditions?: { type: string; status: string }[] };
}

/** The kinds the controller Deployment needs (RBAC and the rest are not served or not needed here). */
const KINDS = new Set(['ServiceAccount', 'ConfigMap', 'Service', 'Deployment']);

privilegedTest(
  "the chart's controller Deployment runs as kubelet pods with in-cluster config",
  async (t: TestContext) => {
    const cli = new FerryCli('helm-pods');
    const cluster = `ferrytest-${process.pid}-hpods`;
    t.after(async () => {
      const down = await cli.run(['down', '--cluster', cluster]);
      assert.equal(down.code, 0, down.stderr);
      assert.deepEqual(cli.leftovers(cluster), []);
      cli.remove();
    });
    const up = await cli.run(['up', '--bare', '--nodes', '1', '--cluster', cluster]);
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
    const kubeconfig = (await cli.run(['kubeconfig', '--cluster', cluster])).stdout.trim();
    const objects = [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } },
      ...render().filter((o) => KINDS.has(o.kind)),
    ];
    const applied = await kubectl(
      kubeconfig,
      ['apply', '-f', '-'],
      objects.map((o) => `---\n${stringify(o)}`).join(''),
    );
    assert.equal(applied.code, 0, `${applied.stdout}\n${applied.stderr}`);

    const get = async (...args: string[]): Promise<string> => {
      const r = await kubectl(kubeconfig, args);
      assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    // Both replicas Ready in their own netns (a pod IP), and one of them the Lease holder.
    for (;;) {
      const pods = (
        JSON.parse(
          await get('get', 'pods', '-n', NAMESPACE, '-l', 'app.kubernetes.io/component=controller', '-o', 'json'),
        ) as { items: Pod[] }
      ).items;
      const ready = pods.filter((p) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
      const holder = (
        await kubectl(kubeconfig, [
          'get',
          'lease',
          `${RELEASE}-controller`,
          '-n',
          NAMESPACE,
          '-o',
          'jsonpath={.spec.holderIdentity}',
        ])
      ).stdout.trim();
      if (ready.length === 2 && pods.some((p) => p.metadata.name === holder)) {
        assert.ok(
          ready.every((p) => p.status.podIP?.startsWith('10.') === true),
          'pods in their own netns',
        );
        break;
      }
      if (t.signal.aborted) throw new Error(`controller pods not Ready/leading: ${JSON.stringify(pods)}`);
      await delay(500);
    }
  },
);
