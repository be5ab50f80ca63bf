// `ferry rollout restart ztunnel [--node node-N] [--cluster <name>]`: replaces each node's ztunnel (or one)
// with a new process without failing connections (local-cluster/ztunnel-replacement.ts), as
// `kubectl rollout restart daemonset/ztunnel` would. The supervisor carries it out; this command hands it
// the request and prints each node's result.
import { randomUUID } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { clusterCliEnv } from '../local-cluster/cli-env.ts';
import { readMeshConfig } from '../local-cluster/controller/mesh-files.ts';
import { ClusterError } from '../local-cluster/errors.ts';
import { runningPid } from '../local-cluster/restart.ts';
import {
  ROLLOUT_REQUEST_FILE,
  type RolloutRequest,
  readSupervisorReport,
  SUPERVISOR_ROLE,
} from '../local-cluster/supervisor.ts';

const HELP = `usage: ferry rollout restart ztunnel [--node node-N] [--cluster <name>]

Replaces each node's ztunnel (or only --node's) with a new process, one node at a time: the new one
takes over the node's pods before the old one drains its live connections and exits.
`;

const LIMIT_MS = 300_000;

export async function run(argv: readonly string[]): Promise<number> {
  const env = clusterCliEnv();
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      cluster: { type: 'string', default: env.defaultCluster },
      node: { type: 'string' },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals[0] !== 'restart' || positionals[1] !== 'ztunnel' || positionals.length !== 2) {
    process.stderr.write(HELP);
    return 2;
  }
  const stateDir = join(env.stateRoot, values.cluster);
  const config = await readMeshConfig(stateDir);
  const nodes = values.node === undefined ? config.nodes.map((n) => n.name) : [values.node];
  for (const n of nodes) {
    if (!config.nodes.some((x) => x.name === n)) {
      throw new ClusterError('FERRY_CLUSTER_INVALID_SPEC', `--node ${n}: not a node of cluster ${values.cluster}`);
    }
  }
  if (runningPid({ stateDir }, SUPERVISOR_ROLE) === null) {
    throw new ClusterError(
      'FERRY_CLUSTER_INVALID_SPEC',
      `the supervisor of cluster ${values.cluster} is not running: ferry up -f <manifests> --cluster ${values.cluster} starts it`,
    );
  }
  const request: RolloutRequest = { id: randomUUID(), nodes };
  const path = join(stateDir, ROLLOUT_REQUEST_FILE);
  await writeFile(`${path}.tmp`, JSON.stringify(request), { mode: 0o600 });
  await rename(`${path}.tmp`, path);
  const started = Date.now();
  let printed = 0;
  for (;;) {
    const r = readSupervisorReport(stateDir)?.rollout;
    if (r?.id === request.id) {
      for (const x of r.results.slice(printed)) {
        process.stdout.write(
          x.error === null
            ? `ztunnel-${x.node}: replaced (pid ${x.oldPid} → ${x.pid}; new one ready in ${x.readyMs} ms, old one drained and exited in ${x.oldExitMs} ms)\n`
            : `ztunnel-${x.node}: NOT replaced: ${x.error} (the old one keeps serving)\n`,
        );
      }
      printed = r.results.length;
      if (r.phase !== 'running') return r.phase === 'done' ? 0 : 1;
    }
    if (Date.now() - started > LIMIT_MS) {
      process.stderr.write(`no result from the supervisor within ${LIMIT_MS / 1000} s (ferry logs supervisor)\n`);
      return 1;
    }
    await delay(100);
  }
}
