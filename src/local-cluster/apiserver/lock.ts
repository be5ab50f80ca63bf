// One API server per data directory: two processes appending to one write-ahead log would interleave
// records and corrupt it. The lock is a file holding the owner's pid, taken with O_EXCL; a lock whose
// process is gone (a crash, kill -9) is stale and taken over.
import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiServerError } from './errors.ts';

export interface DataDirLock {
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function acquireDataDirLock(dataDir: string): Promise<DataDirLock> {
  const path = join(dataDir, 'lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const file = await open(path, 'wx', 0o600);
      await file.writeFile(`${process.pid}\n`);
      await file.close();
      let released = false;
      return {
        release: async () => {
          if (released) return;
          released = true;
          await unlink(path).catch(() => undefined);
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new ApiServerError(
          'FERRY_APISERVER_BAD_OPTION',
          `data directory ${dataDir} is in use by another API server (pid ${pid})`,
        );
      }
      if (pid === process.pid) {
        throw new ApiServerError(
          'FERRY_APISERVER_BAD_OPTION',
          `data directory ${dataDir} is already served by this process`,
        );
      }
      await unlink(path).catch(() => undefined); // stale: its owner is gone
    }
  }
  throw new ApiServerError('FERRY_APISERVER_BAD_OPTION', `could not lock data directory ${dataDir}`);
}
