// The BPF object Ferry loads: bpf/redirect.bpf.o, compiled from bpf/redirect.bpf.c by bpf/build.sh (pinned
// flags, reproducible) and checked in, so running Ferry never needs a compiler (docs/redirect.md, "The
// shipped object"). buildBpfObject() runs that same script, for developers and for the test that fails
// when the shipped object is stale; nothing on the run-time path calls it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { BpfError } from './errors.ts';

const run = promisify(execFile);

export const BPF_SOURCE_DIR = resolve(import.meta.dirname, '../../bpf');
export const SHIPPED_BPF_OBJECT = join(BPF_SOURCE_DIR, 'redirect.bpf.o');
const BUILD_SCRIPT = join(BPF_SOURCE_DIR, 'build.sh');

/** The checked-in object's path; FERRY_BPF_LOAD_FAILED when a broken checkout lacks it. */
export function shippedBpfObject(): string {
  if (!existsSync(SHIPPED_BPF_OBJECT)) {
    throw new BpfError(
      'FERRY_BPF_LOAD_FAILED',
      `the shipped BPF object ${SHIPPED_BPF_OBJECT} is missing (it is checked in: restore it with git, or rebuild it with npm run build:bpf)`,
    );
  }
  return SHIPPED_BPF_OBJECT;
}

/**
 * Compiles bpf/*.bpf.c with bpf/build.sh into `outDir` (needs clang and libbpf-dev) and returns the path of
 * redirect.bpf.o there. Concurrent builds into one directory are safe: the script renames into place.
 */
export async function buildBpfObject(opts: { readonly outDir: string }): Promise<string> {
  await mkdir(opts.outDir, { recursive: true });
  try {
    await run('sh', [BUILD_SCRIPT, opts.outDir], { maxBuffer: 16 * 1024 * 1024 });
  } catch (cause) {
    const stderr = typeof cause === 'object' && cause !== null && 'stderr' in cause ? String(cause.stderr) : '';
    throw new BpfError(
      'FERRY_BPF_BUILD_FAILED',
      `bpf/build.sh failed (needs Debian clang and libbpf-dev)${stderr ? `:\n${stderr}` : ''}`,
      { cause },
    );
  }
  return join(opts.outDir, 'redirect.bpf.o');
}

/** The compiler named in an object's debug info ("Debian clang version 14.0.6"), or null. */
export function compilerOfObject(object: Buffer): string | null {
  const m = /(?:[A-Za-z]+ )?clang version [0-9][0-9A-Za-z.+~-]*/.exec(object.toString('latin1'));
  return m === null ? null : m[0];
}
