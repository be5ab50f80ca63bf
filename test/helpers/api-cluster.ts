// Reading a cluster started with `ferry up --api` in e2e tests: its pods as `ferry status --json` reports
// them (the API's pods and what each node agent has enrolled), and a bounded wait for a condition that
// the API's watchers reach asynchronously.
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import type { ApiPodView } from '../../src/local-cluster/api-mesh-up.ts';
import type { FerryCli } from './cluster-cli.ts';

/** A pod as `ferry status --json` reports it on an API cluster (the CLI's own view type). */
export type ApiPodRow = ApiPodView;

export async function apiPods(cli: FerryCli, cluster: string): Promise<ApiPodRow[]> {
  const r = await cli.run(['status', '--json', '--cluster', cluster]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { pods: ApiPodRow[] }).pods;
}

/** The pod of a namespace whose name starts with `prefix` (a Deployment's pods carry generated suffixes). */
export function podNamed(pods: readonly ApiPodRow[], namespace: string, prefix: string): ApiPodRow {
  const p = pods.find((x) => x.namespace === namespace && x.name.startsWith(prefix));
  assert.ok(p !== undefined, `a pod ${namespace}/${prefix}* in ${pods.map((x) => `${x.namespace}/${x.name}`)}`);
  return p;
}

/** Polls `f` until it returns something other than false; throws naming `what` after `ms`. */
export async function until<T>(what: string, f: () => Promise<T | false>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(200);
  }
}

/**
 * The demo's client and an echo on another node and on its own (the scheduler spreads the echo versions):
 * the cross-node and same-node pairs of the load tests.
 */
export async function demoClientAndEchoes(
  cli: FerryCli,
  cluster: string,
): Promise<{ client: ApiPodRow; remote: ApiPodRow; local: ApiPodRow }> {
  const pods = (await apiPods(cli, cluster)).filter((p) => p.namespace === 'demo');
  const client = podNamed(pods, 'demo', 'client-');
  const echoes = pods.filter((p) => p.name.startsWith('echo-'));
  const remote = echoes.find((e) => e.node !== client.node);
  const local = echoes.find((e) => e.node === client.node);
  assert.ok(
    remote !== undefined && local !== undefined,
    `one echo on each node: ${pods.map((p) => `${p.name}@${p.node}`).join(', ')}`,
  );
  return { client, remote, local };
}
