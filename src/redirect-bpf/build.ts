// Builds bpf/*.bpf.c into bpf/build/*.bpf.o with clang (DESIGN.md §4: built from source by our own build,
// nothing prebuilt). Cached by mtime; concurrent builders (parallel test files) are safe because each writes
// a temporary file and renames it into place.
import { execFile } from 'node:child_process';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { arch } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { BpfError } from './errors.ts';

const run = promisify(execFile);

export const BPF_SOURCE_DIR = resolve(import.meta.dirname, '../../bpf');

const MULTIARCH: Readonly<Record<string, string>> = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };

export interface BuildOptions {
  readonly sourceDir?: string;
  readonly outDir?: string;
  /** Program name without extension; default 'redirect'. */
  readonly name?: string;
}

/** Compiles if the object is missing or older than the source; returns the object's path. */
export async function buildBpfObject(opts: BuildOptions = {}): Promise<string> {
  const sourceDir = opts.sourceDir ?? BPF_SOURCE_DIR;
  const outDir = opts.outDir ?? join(sourceDir, 'build');
  const name = opts.name ?? 'redirect';
  const source = join(sourceDir, `${name}.bpf.c`);
  const object = join(outDir, `${name}.bpf.o`);
  const srcStat = await stat(source).catch((cause: unknown) => {
    throw new BpfError('FERRY_BPF_BUILD_FAILED', `BPF source ${source} not found`, { cause });
  });
  const objStat = await stat(object).catch(() => null);
  if (objStat !== null && objStat.mtimeMs >= srcStat.mtimeMs) return object;

  await mkdir(outDir, { recursive: true });
  const tmp = `${object}.${process.pid}.tmp`;
  const multiarch = MULTIARCH[arch()] ?? `${arch()}-linux-gnu`;
  const args = [
    '-O2',
    '-g',
    '-target',
    'bpf',
    '-Wall',
    '-Werror',
    `-I/usr/include/${multiarch}`,
    '-c',
    source,
    '-o',
    tmp,
  ];
  try {
    await run('clang', args, { maxBuffer: 16 * 1024 * 1024 });
    await rename(tmp, object);
  } catch (cause) {
    await rm(tmp, { force: true });
    const stderr = typeof cause === 'object' && cause !== null && 'stderr' in cause ? String(cause.stderr) : '';
    throw new BpfError(
      'FERRY_BPF_BUILD_FAILED',
      `clang failed on ${source} (needs Debian clang, llvm, libbpf-dev)${stderr ? `:\n${stderr}` : ''}`,
      { cause },
    );
  }
  return object;
}
