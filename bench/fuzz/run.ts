// `npm run fuzz -- [--inputs N] [--target name] [--seed S] [--json file]`: the long fuzzing run (issue 9, item
// 7; docs/fuzzing.md). Each target runs in its own child process (with --expose-gc, so RSS before/after
// compare live memory) that reports progress after every batch; a child that stops reporting for
// WATCHDOG_MS is a hang (killed), one that dies without a report is a crash. Prints one line per target:
// inputs tried, crashes, hangs, RSS before → after, time. Exit status 1 when anything crashed or hung.
import { fork } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { describeFailures, type FuzzFailure, type FuzzReport, runFuzzTarget } from './engine.ts';
import { DEFAULT_TOTAL_INPUTS, FUZZ_TARGETS, findTarget, type TargetEntry } from './targets.ts';

const DEFAULT_SEED = 20_261_202;
// A batch of a network target can take a minute on a busy machine; a silent child for this long is stuck.
const WATCHDOG_MS = 180_000;
const MiB = 1024 * 1024;

type ChildMessage =
  | { readonly type: 'progress'; readonly inputs: number; readonly failures: readonly FuzzFailure[] }
  | { readonly type: 'report'; readonly report: FuzzReport };

function usage(): string {
  const names = FUZZ_TARGETS.map((t) => t.name).join(', ');
  return `usage: npm run fuzz -- [--inputs N] [--target name] [--seed S] [--json file]\n\ntargets: ${names}\n`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      inputs: { type: 'string' },
      target: { type: 'string', multiple: true },
      seed: { type: 'string' },
      json: { type: 'string' },
      child: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true) {
    process.stdout.write(usage());
    return 0;
  }
  const inputs = Number(values.inputs ?? DEFAULT_TOTAL_INPUTS);
  const seed = Number(values.seed ?? DEFAULT_SEED);
  if (!Number.isInteger(inputs) || inputs < 1 || !Number.isInteger(seed)) {
    process.stderr.write(`fuzz: --inputs must be a positive integer and --seed an integer\n\n${usage()}`);
    return 2;
  }
  const selected: TargetEntry[] = [];
  for (const name of values.target ?? FUZZ_TARGETS.map((t) => t.name)) {
    const entry = findTarget(name);
    if (entry === undefined) {
      process.stderr.write(`fuzz: unknown target ${JSON.stringify(name)}\n\n${usage()}`);
      return 2;
    }
    selected.push(entry);
  }
  if (values.child === true) return runChild(selected[0] as TargetEntry, inputs, seed);

  const totalWeight = selected.reduce((n, t) => n + t.weight, 0);
  const reports: FuzzReport[] = [];
  process.stdout.write(`fuzz: ${inputs} inputs over ${selected.length} target(s), seed ${seed}\n`);
  for (const entry of selected) {
    const share = Math.max(1, Math.round((inputs * entry.weight) / totalWeight));
    const report = await runInChild(entry, share, seed);
    reports.push(report);
    process.stdout.write(`${formatLine(report)}\n`);
    if (report.failures.length > 0) process.stdout.write(`${describeFailures(report)}\n`);
  }
  const total = reports.reduce(
    (t, r) => ({ inputs: t.inputs + r.inputs, crashes: t.crashes + r.crashes, hangs: t.hangs + r.hangs }),
    { inputs: 0, crashes: 0, hangs: 0 },
  );
  process.stdout.write(`total: ${total.inputs} inputs, ${total.crashes} crashes, ${total.hangs} hangs\n`);
  if (values.json !== undefined) {
    await writeFile(values.json, `${JSON.stringify({ seed, total, targets: reports }, null, 2)}\n`);
  }
  return total.crashes + total.hangs === 0 ? 0 : 1;
}

function formatLine(r: FuzzReport): string {
  const rss = `${(r.rssBeforeBytes / MiB).toFixed(0)} → ${(r.rssAfterBytes / MiB).toFixed(0)} MiB`;
  const heap = `${(r.heapUsedBeforeBytes / MiB).toFixed(0)} → ${(r.heapUsedAfterBytes / MiB).toFixed(0)} MiB`;
  const rate = r.elapsedMs > 0 ? Math.round((r.inputs * 1000) / r.elapsedMs) : 0;
  return (
    `${r.target.padEnd(16)} ${r.kind.padEnd(8)} inputs ${String(r.inputs).padStart(8)}  crashes ${r.crashes}  ` +
    `hangs ${r.hangs}  rss ${rss.padEnd(16)} heap used ${heap.padEnd(14)} ${(r.elapsedMs / 1000).toFixed(1)} s (${rate}/s)`
  );
}

async function runChild(entry: TargetEntry, inputs: number, seed: number): Promise<number> {
  const target = await entry.load();
  const send = (m: ChildMessage) => process.send?.(m);
  const report = await runFuzzTarget(target, {
    inputs,
    seed,
    batchSize: entry.batchSize,
    onProgress: (n, failures) => send({ type: 'progress', inputs: n, failures }),
  });
  if (process.send === undefined) {
    process.stdout.write(`${formatLine(report)}\n${describeFailures(report)}\n`);
    return report.crashes + report.hangs === 0 ? 0 : 1;
  }
  // Servers of network targets may leave handles behind: exit once the report is on its way.
  await new Promise<void>((resolve) =>
    process.send?.({ type: 'report', report } satisfies ChildMessage, () => resolve()),
  );
  process.exit(0);
}

/** Runs one target in a child process; a dead or silent child becomes a crash or hang in the report. */
function runInChild(entry: TargetEntry, inputs: number, seed: number): Promise<FuzzReport> {
  const args = ['--child', '--target', entry.name, '--inputs', String(inputs), '--seed', String(seed)];
  const child = fork(new URL(import.meta.url).pathname, args, {
    execArgv: [...process.execArgv, '--expose-gc'],
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000);
  });
  let progress = 0;
  // Failures the child reported before it died or was killed: kept, so a later hang cannot hide them.
  let earlier: readonly FuzzFailure[] = [];
  let report: FuzzReport | null = null;
  let hung = false;
  let watchdog = setTimeout(onSilent, WATCHDOG_MS);
  function onSilent(): void {
    hung = true;
    child.kill('SIGKILL');
  }
  child.on('message', (m: ChildMessage) => {
    clearTimeout(watchdog);
    watchdog = setTimeout(onSilent, WATCHDOG_MS);
    if (m.type === 'progress') {
      progress = m.inputs;
      earlier = m.failures;
    } else {
      report = m.report;
    }
  });
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      clearTimeout(watchdog);
      if (report !== null && code === 0) {
        resolve(report);
        return;
      }
      const message = hung
        ? `no progress for ${WATCHDOG_MS / 1000} s after ${progress} inputs (killed)`
        : `child exited (code ${code}, signal ${signal}) after ${progress} inputs\n${stderr}`;
      const failures = [...earlier, { kind: hung ? ('hang' as const) : ('crash' as const), seed, message }];
      resolve({
        target: entry.name,
        kind: entry.kind,
        inputs: progress,
        crashes: failures.filter((f) => f.kind === 'crash').length,
        hangs: failures.filter((f) => f.kind === 'hang').length,
        failures,
        rssBeforeBytes: 0,
        rssAfterBytes: 0,
        heapUsedBeforeBytes: 0,
        heapUsedAfterBytes: 0,
        elapsedMs: 0,
      });
    });
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`fuzz: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
