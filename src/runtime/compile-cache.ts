// Node's on-disk compile cache for Ferry's processes (docs/performance.md, "Memory"). Ferry runs its
// TypeScript through Node's type stripping, which loads a WebAssembly transformer (amaro) into every
// process: +17 MiB of RSS and most of the start-up CPU. With NODE_COMPILE_CACHE set, Node keeps the
// stripped and compiled code of every module on disk, keyed by the file's content, and a later start
// loads it from there without instantiating the transformer: a process then starts like one running
// plain JavaScript (measured: 62 → 45 MiB for an empty .ts entry). No build step: the first start of a
// changed file fills the cache again. An unwritable directory only disables the cache (Node ignores it).
import { flushCompileCache } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The cache directory: NODE_COMPILE_CACHE when set (empty: off), else node_modules/.cache/ferry-compile. */
export function compileCacheDir(env: NodeJS.ProcessEnv = process.env): string | null {
  const set = env.NODE_COMPILE_CACHE;
  if (set !== undefined) return set === '' ? null : set;
  return fileURLToPath(new URL('../../node_modules/.cache/ferry-compile', import.meta.url));
}

/** NODE_COMPILE_CACHE for the environment of a Ferry child process ({} when turned off). */
export function compileCacheEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const dir = compileCacheDir(env);
  return dir === null ? {} : { NODE_COMPILE_CACHE: dir };
}

/**
 * Writes what this process compiled so far to the cache now rather than at exit: a long-running process
 * that is killed never exits normally, and its next start would strip every module again.
 */
export function persistCompileCache(): void {
  try {
    flushCompileCache();
  } catch {} // no cache enabled, or the directory is not writable: nothing to keep
}
