// Crash-safe replacement of a whole file (docs/operations.md, "What survives which crash"): the new content
// goes to a fresh temp file in the same directory, is fsynced, renamed over the target (rename(2) is atomic
// within a filesystem: a reader sees the old file or the new one, never a mix), and the directory is fsynced
// so the rename itself survives a power cut. When writeFileDurable resolves, the content is on disk. A
// crash before the rename leaves the old file plus a torn `<name>.*.tmp`, which readers never look at and
// removeTornTemps deletes. Must not be used on a file two processes write.
import { randomBytes } from 'node:crypto';
import { open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const TEMP_SUFFIX = '.tmp';

/** The temp file name for `path`: unique per write, recognisable by removeTornTemps. */
function tempPathFor(path: string): string {
  return join(dirname(path), `${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`);
}

/** Whether `name` is a temp file of `target` (its base name) left by writeFileDurable. */
export function isTempOf(name: string, target: string): boolean {
  return name.startsWith(`${target}.`) && name.endsWith(TEMP_SUFFIX) && name !== target;
}

/** Replaces `path` with `data` atomically and durably (temp + fsync + rename + fsync of the directory). */
export async function writeFileDurable(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = tempPathFor(path);
  const file = await open(tmp, 'wx', mode);
  try {
    await file.writeFile(data);
    await file.sync();
  } catch (err) {
    await file.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await file.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDirectory(dirname(path));
}

/** fsync of a directory: makes a rename or a new entry in it durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Deletes the temp files a crashed writeFileDurable left next to `path`; returns their names. */
export async function removeTornTemps(path: string): Promise<string[]> {
  const target = basename(path);
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const torn = names.filter((n) => isTempOf(n, target));
  for (const n of torn) await unlink(join(dirname(path), n)).catch(() => undefined);
  return torn;
}
