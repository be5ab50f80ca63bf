// Structured JSON logging for every Ferry process (docs/architecture.md "Processes and ports": JSON logs on stdout). Owns the pino
// instance; the rest of the code sees only the small `Logger` interface, so no module depends on pino.
// Invariant: one level per process, shared by the root and every child, changeable at runtime (admin
// `/logging`). pino fixes a child's level when the child is created, so the level check happens here,
// against one shared threshold, and pino itself runs at `trace`.
import pino from 'pino';
import { RuntimeError } from './errors.ts';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Structured fields of one line. Keys with dots (`src.addr`) are kept as flat keys, as ztunnel logs them. */
export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  error(fields: LogFields, msg: string): void;
  warn(fields: LogFields, msg: string): void;
  info(fields: LogFields, msg: string): void;
  debug(fields: LogFields, msg: string): void;
  /** Cheap check, so hot paths skip building fields for lines that would be dropped. */
  isLevelEnabled(level: LogLevel): boolean;
  /** A logger whose lines all carry `bindings` (e.g. `{ scope: 'access' }`). Shares the level. */
  child(bindings: LogFields): Logger;
}

/** The process-wide root: a Logger whose level can be read and changed (admin `/logging`). */
export interface RootLogger extends Logger {
  readonly level: LogLevel;
  setLevel(level: LogLevel): void;
  /** Writes buffered lines out (before exit). */
  flush(): void;
}

/** Where lines go: anything with a `write(line)`; a stream in tests, stdout by default. */
export interface LogDestination {
  write(line: string): unknown;
}

export interface LoggerOptions {
  /** Value of the `component` field on every line: `ztunnel`, `controller`, `waypoint`, ... */
  readonly component: string;
  readonly level?: LogLevel;
  /** Defaults to stdout (asynchronous, flushed on exit). */
  readonly destination?: LogDestination;
  /**
   * stdout only: gather lines and write them at least every `batchMs` (or per 8 KiB) instead of one write
   * per line. For per-request access logs: one write(2) per line was 8 % of the waypoint's busy time
   * (docs/performance.md). Lines still reach the file within `batchMs`; buffered lines are written on exit.
   */
  readonly batchMs?: number;
}

const LEVEL_VALUES: Readonly<Record<LogLevel, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  silent: Number.POSITIVE_INFINITY,
};

export function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text);
}

/** Parses a level name (`info`, `DEBUG`); throws FERRY_RUNTIME_INVALID_LOG_LEVEL otherwise. */
export function parseLogLevel(text: string): LogLevel {
  const lower = text.trim().toLowerCase();
  if (!isLogLevel(lower)) {
    throw new RuntimeError(
      'FERRY_RUNTIME_INVALID_LOG_LEVEL',
      `unknown log level ${JSON.stringify(text)} (expected one of ${LOG_LEVELS.join(', ')})`,
    );
  }
  return lower;
}

interface LevelState {
  level: LogLevel;
  threshold: number;
}

class PinoLogger implements Logger {
  readonly #pino: pino.Logger;
  readonly #state: LevelState;

  constructor(instance: pino.Logger, state: LevelState) {
    this.#pino = instance;
    this.#state = state;
  }

  error(fields: LogFields, msg: string): void {
    if (this.#state.threshold <= 50) this.#pino.error(fields, msg);
  }
  warn(fields: LogFields, msg: string): void {
    if (this.#state.threshold <= 40) this.#pino.warn(fields, msg);
  }
  info(fields: LogFields, msg: string): void {
    if (this.#state.threshold <= 30) this.#pino.info(fields, msg);
  }
  debug(fields: LogFields, msg: string): void {
    if (this.#state.threshold <= 20) this.#pino.debug(fields, msg);
  }
  isLevelEnabled(level: LogLevel): boolean {
    return level !== 'silent' && this.#state.threshold <= LEVEL_VALUES[level];
  }
  child(bindings: LogFields): Logger {
    return new PinoLogger(this.#pino.child(bindings), this.#state);
  }
}

class PinoRootLogger extends PinoLogger implements RootLogger {
  readonly #state: LevelState;
  readonly #pino: pino.Logger;

  constructor(instance: pino.Logger, state: LevelState) {
    super(instance, state);
    this.#pino = instance;
    this.#state = state;
  }

  get level(): LogLevel {
    return this.#state.level;
  }
  setLevel(level: LogLevel): void {
    // Validate even typed input: the value may come from a flag or an HTTP query.
    const parsed = parseLogLevel(level);
    this.#state.level = parsed;
    this.#state.threshold = LEVEL_VALUES[parsed];
  }
  flush(): void {
    this.#pino.flush();
  }
}

/** Creates the process's root logger. Lines: `{"level":"info","time":"…","pid":1,"component":"ztunnel","msg":"…"}`. */
export function createLogger(opts: LoggerOptions): RootLogger {
  const level = parseLogLevel(opts.level ?? 'info');
  const options: pino.LoggerOptions = {
    level: 'trace',
    base: { pid: process.pid, component: opts.component },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  let instance: pino.Logger;
  if (opts.destination !== undefined) instance = pino(options, opts.destination);
  else if (opts.batchMs !== undefined && opts.batchMs > 0) {
    const dest = pino.destination({ dest: 1, sync: false, minLength: 8192, periodicFlush: opts.batchMs });
    process.once('exit', () => {
      try {
        dest.flushSync();
      } catch {} // a write still in flight: those lines are the kernel's already
    });
    instance = pino(options, dest);
  } else instance = pino(options);
  return new PinoRootLogger(instance, { level, threshold: LEVEL_VALUES[level] });
}

/** A logger that drops everything: default for libraries and tests that do not look at logs. */
export const silentLogger: Logger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
  isLevelEnabled: () => false,
  child: () => silentLogger,
};
