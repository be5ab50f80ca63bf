// The fuzzing engine shared by the bounded suites (test/fuzz/*.test.ts) and the long run (bench/fuzz/run.ts,
// `npm run fuzz`): a target yields a fast-check arbitrary and a function that feeds one input to the code
// under test; the engine runs it in seeded batches and counts crashes (anything thrown that the target's
// contract does not allow) and hangs (one input over the target's deadline). A failing batch is reported
// with the seed that reproduces it (pure targets' counterexamples shrunk first); the next batch goes on.
import fc from 'fast-check';

export type FuzzKind = 'pure' | 'network';

/** One running instance of a target: its inputs and how to feed one. */
export interface FuzzSession<I> {
  readonly arbitrary: fc.Arbitrary<I>;
  /** true: run() never returns a promise (pure parsers), so the engine can skip the async machinery. */
  readonly sync: boolean;
  /** Feeds one input; throws (a FuzzViolation or anything else) when the code under test misbehaved. */
  run(input: I): void | Promise<void>;
  close(): Promise<void>;
}

export interface FuzzTarget {
  readonly name: string;
  readonly kind: FuzzKind;
  /** What is fuzzed, for the report. */
  readonly what: string;
  /** One input taking longer than this is a hang. */
  readonly hangMs: number;
  start(): Promise<FuzzSession<unknown>>;
}

/** The code under test broke its contract (threw an untyped error, returned an impossible value). */
export class FuzzViolation extends Error {
  override readonly name = 'FuzzViolation';
}

/** One input ran past the target's deadline. */
export class FuzzHang extends Error {
  override readonly name = 'FuzzHang';
}

export interface FuzzFailure {
  readonly kind: 'crash' | 'hang';
  /** Seed of the batch: `--seed <seed> --inputs <batch size>` replays it. */
  readonly seed: number;
  readonly message: string;
}

export interface FuzzReport {
  readonly target: string;
  readonly kind: FuzzKind;
  readonly inputs: number;
  readonly crashes: number;
  readonly hangs: number;
  readonly failures: readonly FuzzFailure[];
  readonly rssBeforeBytes: number;
  readonly rssAfterBytes: number;
  /** V8 heap in use after a full GC (with --expose-gc): growth here is live memory, unlike RSS. */
  readonly heapUsedBeforeBytes: number;
  readonly heapUsedAfterBytes: number;
  readonly elapsedMs: number;
}

export interface FuzzRunOptions {
  readonly inputs: number;
  readonly seed: number;
  /** Inputs per fast-check run; a failure ends its batch only. */
  readonly batchSize?: number;
  /** Called after each batch (progress for the long run's watchdog, failures so far included). */
  readonly onProgress?: (inputsSoFar: number, failures: readonly FuzzFailure[]) => void;
}

const DEFAULT_BATCH = 5_000;
const MAX_REPORTED_FAILURES = 10;

/** Runs `opts.inputs` inputs against a fresh session of `target`. */
export async function runFuzzTarget(target: FuzzTarget, opts: FuzzRunOptions): Promise<FuzzReport> {
  const started = performance.now();
  const session = await target.start();
  const failures: FuzzFailure[] = [];
  let crashes = 0;
  let hangs = 0;
  let tried = 0;
  collectGarbage();
  const before = process.memoryUsage();
  try {
    for (let batch = 0; tried < opts.inputs; batch++) {
      const numRuns = Math.min(opts.batchSize ?? DEFAULT_BATCH, opts.inputs - tried);
      // Distinct, reproducible seeds per batch; batch 0 uses the given seed as is.
      const seed = (opts.seed + batch * 0x9e3779b1) >>> 0;
      // A network counterexample depends on the server's state and replays slowly (a hang costs the whole
      // limit per replay): report it as found. Pure ones are shrunk.
      const details = await checkBatch(session, target.hangMs, seed, numRuns, target.kind === 'network');
      if (details.failed) {
        tried += details.numRuns;
        const hang = details.errorInstance instanceof FuzzHang;
        if (hang) hangs++;
        else crashes++;
        if (failures.length < MAX_REPORTED_FAILURES) {
          const error = details.errorInstance;
          const why = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
          failures.push({
            kind: hang ? 'hang' : 'crash',
            seed,
            message: `${why}\n${fc.defaultReportMessage(details) ?? ''}`,
          });
        }
      } else {
        tried += numRuns;
      }
      opts.onProgress?.(tried, failures);
    }
  } finally {
    await session.close();
  }
  collectGarbage();
  const after = process.memoryUsage();
  return {
    target: target.name,
    kind: target.kind,
    inputs: tried,
    crashes,
    hangs,
    failures,
    rssBeforeBytes: before.rss,
    rssAfterBytes: after.rss,
    heapUsedBeforeBytes: before.heapUsed,
    heapUsedAfterBytes: after.heapUsed,
    elapsedMs: performance.now() - started,
  };
}

async function checkBatch(
  session: FuzzSession<unknown>,
  hangMs: number,
  seed: number,
  numRuns: number,
  endOnFailure: boolean,
): Promise<fc.RunDetails<[unknown]>> {
  const params = { seed, numRuns, endOnFailure };
  if (session.sync) {
    return fc.check(
      fc.property(session.arbitrary, (input) => {
        const t0 = performance.now();
        session.run(input);
        const ms = performance.now() - t0;
        if (ms > hangMs) throw new FuzzHang(`one input took ${ms.toFixed(0)} ms (limit ${hangMs} ms)`);
      }),
      params,
    );
  }
  return fc.check(
    fc.asyncProperty(session.arbitrary, (input) => withDeadline(session.run(input), hangMs)),
    params,
  );
}

async function withDeadline(work: void | Promise<void>, ms: number): Promise<void> {
  if (work === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FuzzHang(`one input did not finish within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** A full GC when the process runs with --expose-gc, so RSS before/after compare live memory. */
function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc === 'function') gc();
}

/** The report as one line per failure, for assertion messages (seed included). */
export function describeFailures(report: FuzzReport): string {
  if (report.failures.length === 0) return `${report.target}: ${report.inputs} inputs, no failures`;
  const lines = report.failures.map(
    (f) =>
      `${report.target}: ${f.kind} (seed ${f.seed}; replay: npm run fuzz -- --target ${report.target} ` +
      `--seed=${f.seed} --inputs=N)\n${f.message}`,
  );
  return lines.join('\n\n');
}

/** Asserts a value is one of the target's typed error codes. */
export function expectCode(code: unknown, allowed: readonly string[], where: string): void {
  if (typeof code !== 'string' || !allowed.includes(code)) {
    throw new FuzzViolation(`${where}: error code ${JSON.stringify(code)} is not one of ${allowed.join(', ')}`);
  }
}

/** Calls fn; anything it throws is a violation (the function promises never to throw). */
export function mustNotThrow<T>(where: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new FuzzViolation(`${where} threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`, {
      cause: err,
    });
  }
}

/** Async mustNotThrow. */
export async function mustNotReject<T>(where: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new FuzzViolation(`${where} threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`, {
      cause: err,
    });
  }
}
