// bare.json's sidecar injection mark: the API server's launch (first start and every supervisor restart)
// passes the values file exactly when the cluster was created with injection (`ferry up --api`).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  APISERVER_ROLE,
  bareLaunches,
  readBareConfig,
  SIDECAR_INJECTION_FILE,
  writeBareConfig,
} from '../../../src/local-cluster/bare-files.ts';
import { clusterLayout } from '../../../src/local-cluster/layout.ts';

test('the API server launch names the values file only for a cluster created with injection', async () => {
  const root = mkdtempSync(join(tmpdir(), 'ferry-bare-files-'));
  try {
    for (const [cluster, mark] of [
      ['with', true],
      ['without', undefined],
    ] as const) {
      const layout = clusterLayout(cluster, { stateRoot: root, cgroup2Root: '/sys/fs/cgroup' });
      mkdirSync(layout.stateDir, { recursive: true });
      const config = { cluster, nodes: 1, podCidr: '10.244.0.0/16', apiserverPort: 6443 };
      await writeBareConfig(layout.stateDir, mark === true ? { ...config, sidecarInjection: true } : config);
      assert.equal(readBareConfig(layout.stateDir)?.sidecarInjection, mark);
      const args = bareLaunches(layout).find((l) => l.role === APISERVER_ROLE)?.args ?? [];
      const i = args.indexOf('--sidecar-injection');
      if (mark === true) assert.equal(args[i + 1], join(layout.stateDir, SIDECAR_INJECTION_FILE));
      else assert.equal(i, -1);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
