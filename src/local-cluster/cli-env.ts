// Options shared by `ferry up/down/exec`: which cluster, where its state lives, and how to run Ferry itself.
// The only place these commands read the environment (FERRY_STATE_DIR, FERRY_CLUSTER, PATH).

import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compileCacheEnv } from '../runtime/compile-cache.ts';
import { DEFAULT_STATE_ROOT } from './layout.ts';

export const DEFAULT_CLUSTER = 'ferry';

export interface ClusterCliEnv {
  readonly stateRoot: string;
  readonly defaultCluster: string;
  /** [node, main.ts]: how pods and Ferry processes run this Ferry. */
  readonly ferryArgv: readonly [string, ...string[]];
  readonly baseEnv: Readonly<Record<string, string>>;
}

export function clusterCliEnv(): ClusterCliEnv {
  return {
    stateRoot: process.env.FERRY_STATE_DIR ?? DEFAULT_STATE_ROOT,
    defaultCluster: process.env.FERRY_CLUSTER ?? DEFAULT_CLUSTER,
    ferryArgv: [process.execPath, fileURLToPath(new URL('../cli/main.ts', import.meta.url))],
    baseEnv: {
      PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      ...(process.env.FERRY_STATE_DIR === undefined ? {} : { FERRY_STATE_DIR: process.env.FERRY_STATE_DIR }),
      // The cluster's processes start from the compile cache (src/runtime/compile-cache.ts).
      ...compileCacheEnv(),
    },
  };
}

export interface ClusterProcessArgs {
  readonly env: ClusterCliEnv;
  readonly cluster: string;
  readonly logLevel: string;
}

/**
 * `[--cluster <name>] [--log-level info]`, the arguments of the cluster's long-running processes
 * (`ferry controller`, `ferry supervise`); null when --help was asked for and `help` was printed.
 */
export function parseClusterProcessArgs(argv: readonly string[], help: string): ClusterProcessArgs | null {
  const env = clusterCliEnv();
  const { values } = parseArgs({
    args: [...argv],
    options: {
      help: { type: 'boolean', short: 'h' },
      cluster: { type: 'string', default: env.defaultCluster },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  if (values.help === true) {
    process.stdout.write(help);
    return null;
  }
  return { env, cluster: values.cluster, logLevel: values['log-level'] };
}
