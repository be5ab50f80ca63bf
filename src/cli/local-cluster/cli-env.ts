// Options shared by `ferry up/down/exec`: which cluster, where its state lives, and how to run Ferry itself.
// The only place these commands read the environment (FERRY_STATE_DIR, FERRY_CLUSTER, PATH).
import { fileURLToPath } from 'node:url';
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
    ferryArgv: [process.execPath, fileURLToPath(new URL('../main.ts', import.meta.url))],
    baseEnv: {
      PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      ...(process.env.FERRY_STATE_DIR === undefined ? {} : { FERRY_STATE_DIR: process.env.FERRY_STATE_DIR }),
    },
  };
}
