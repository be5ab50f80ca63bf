// The local Kubernetes API server for tests: in-process on a random loopback port, state in a fresh temp
// directory, a kubeconfig beside it; plus a runner for the pinned real kubectl against it.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type ApiServer, type ApiServerOptions, startApiServer } from '../../src/local-cluster/apiserver/server.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { k8sToolPath } from './k8s-tools.ts';

export interface TestApiServer {
  readonly server: ApiServer;
  readonly dataDir: string;
  readonly kubeconfig: string;
}

/** Starts a server in a new temp dir (or `dataDir`); `stop()` closes it, `remove()` deletes the dir too. */
export async function startTestApiServer(
  opts: Partial<ApiServerOptions> & { dataDir?: string } = {},
): Promise<TestApiServer & { stop(): Promise<void>; remove(): Promise<void> }> {
  const dataDir = opts.dataDir ?? join(await mkdtemp(join(tmpdir(), 'ferry-apiserver-')), 'data');
  const kubeconfig = join(dataDir, '..', 'kubeconfig');
  const server = await startApiServer({ log: silentLogger, ...opts, dataDir, kubeconfigPath: kubeconfig });
  return {
    server,
    dataDir,
    kubeconfig,
    stop: () => server.close(),
    remove: async () => {
      await server.close();
      await rm(join(dataDir, '..'), { recursive: true, force: true });
    },
  };
}

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the pinned kubectl v1.34 with `--kubeconfig`; never throws on a non-zero exit. Its discovery cache
 * lives next to the kubeconfig, so tests never share one.
 */
export function kubectl(kubeconfig: string, args: readonly string[], stdin?: string): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      k8sToolPath('kubectl'),
      ['--kubeconfig', kubeconfig, '--cache-dir', join(dirname(kubeconfig), 'kube-cache'), ...args],
      { timeout: 30_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dirname(kubeconfig) } },
      (err, stdout, stderr) => {
        if (err !== null && typeof err.code !== 'number') return reject(err);
        resolve({ code: err === null ? 0 : Number(err.code), stdout, stderr });
      },
    );
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}
