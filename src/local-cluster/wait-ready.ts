// Waiting for a process of the cluster to become ready (`ferry up`, `ferry up --bare`, `ferry up --api`):
// poll a check with backoff until it yields a value; fail at once when the process died, with the end of
// its log (usually the reason), or at the deadline with the last error the check saw. Either way the
// cluster stays for inspection; `ferry down` removes it.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { LocalControllerError } from './controller/errors.ts';
import { isRunningPid } from './host.ts';

export interface WaitReady<T> {
  /** What is awaited, for messages: `controller ready`, `node-0 Ready`. */
  readonly what: string;
  /** The process whose death ends the wait. */
  readonly pid: number;
  readonly logDir: string;
  /** The process's log name (`<logDir>/<log>.log`, `ferry logs <log>`). */
  readonly log: string;
  /** Epoch ms. */
  readonly deadline: number;
  readonly check: () => Promise<T | false>;
  readonly maxPollMs?: number;
}

export async function waitReady<T>(w: WaitReady<T>): Promise<T> {
  let waitMs = 50;
  let last = '';
  const logFile = join(w.logDir, `${w.log}.log`);
  while (Date.now() < w.deadline) {
    if (!isRunningPid(w.pid)) {
      const tail = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-5);
      throw new LocalControllerError(
        'FERRY_LOCAL_NOT_READY',
        `${w.log} exited before ${w.what}; last log lines:\n  ${tail.join('\n  ')}\nthe cluster stays for inspection: ferry down removes it`,
      );
    }
    try {
      const v = await w.check();
      if (v !== false) return v;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await delay(waitMs);
    waitMs = Math.min(waitMs * 2, w.maxPollMs ?? 1_000);
  }
  throw new LocalControllerError(
    'FERRY_LOCAL_NOT_READY',
    `timed out waiting for ${w.what}${last === '' ? '' : ` (${last})`}; see ${logFile} or ferry logs ${w.log}; the cluster stays for inspection: ferry down removes it`,
  );
}
