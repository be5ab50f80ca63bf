// The kubelet's own record of the pods it runs: `<stateDir>/kubelet-<node>.json`, rewritten durably
// (temp file, fsync, rename) after every change. A restarted kubelet reads it to adopt its running pods
// without restarting them; an entry still `creating` is a sandbox half-made by a killed kubelet, which the
// new one tears down and makes again. The cluster journal (state.ts) stays what `ferry down` reads.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../controller/mesh-files.ts';
import type { RuntimePod } from './pod-runtime.ts';

export function kubeletStatePath(stateDir: string, nodeName: string): string {
  return join(stateDir, `kubelet-${nodeName}.json`);
}

export function loadKubeletState(stateDir: string, nodeName: string): RuntimePod[] {
  let text: string;
  try {
    text = readFileSync(kubeletStatePath(stateDir, nodeName), 'utf8');
  } catch {
    return [];
  }
  try {
    const v = JSON.parse(text) as { pods?: unknown };
    return Array.isArray(v.pods) ? v.pods.filter(isRuntimePod) : [];
  } catch {
    return []; // never torn (atomic rename); unreadable means foreign: start empty, `down` still cleans
  }
}

/** Serializes writes: the last call's pods win, and no two renames race. */
export class KubeletStateWriter {
  readonly #path: string;
  #chain: Promise<void> = Promise.resolve();

  constructor(stateDir: string, nodeName: string) {
    this.#path = kubeletStatePath(stateDir, nodeName);
  }

  save(pods: Iterable<RuntimePod>): Promise<void> {
    const snapshot = { pods: [...pods] };
    this.#chain = this.#chain.then(() => writeJsonAtomic(this.#path, snapshot));
    return this.#chain;
  }
}

function isRuntimePod(v: unknown): v is RuntimePod {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.uid === 'string' &&
    typeof o.namespace === 'string' &&
    typeof o.name === 'string' &&
    typeof o.sliceDir === 'string' &&
    typeof o.netnsPath === 'string' &&
    Array.isArray(o.containers)
  );
}
