// Per-process resource readings from /proc (Linux): CPU seconds (utime + stime, in clock ticks from
// `getconf CLK_TCK`) and resident memory (VmRSS), plus a sampler that keeps the maximum RSS seen every
// 100 ms. Readings of a process that has already exited are NaN rather than errors.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticks: number | undefined;

/** Clock ticks per second for /proc/<pid>/stat times (usually 100). */
export function clockTicks(): number {
  ticks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticks;
}

/** User + system CPU seconds consumed so far by pid (its threads included, children excluded). */
export function cpuSeconds(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return Number.NaN;
  }
  // The command name (field 2) may contain spaces and parentheses: fields are counted after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After ')': fields[0] is field 3 (state), so utime (14) is fields[11] and stime (15) fields[12].
  return (Number(fields[11]) + Number(fields[12])) / clockTicks();
}

/** Resident set size of pid in MiB (VmRSS). */
export function rssMb(pid: number): number {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return Number.NaN;
  }
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  return kb === undefined ? Number.NaN : Number(kb) / 1024;
}

/** Samples VmRSS of several processes every intervalMs while running; keeps the maximum per pid. */
export class RssSampler implements Disposable {
  readonly #pids: readonly number[];
  readonly #max = new Map<number, number>();
  #timer: NodeJS.Timeout | null = null;

  constructor(pids: readonly number[]) {
    this.#pids = pids;
  }

  start(intervalMs = 100): this {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
    return this;
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#sample();
  }

  /** Maximum RSS (MiB) seen for pid since construction (across start/stop cycles). */
  max(pid: number): number {
    return this.#max.get(pid) ?? Number.NaN;
  }

  [Symbol.dispose](): void {
    this.stop();
  }

  #sample(): void {
    for (const pid of this.#pids) {
      const v = rssMb(pid);
      if (!Number.isNaN(v) && v > (this.#max.get(pid) ?? 0)) this.#max.set(pid, v);
    }
  }
}
