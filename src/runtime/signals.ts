// OS signals → process actions (istio/ztunnel:src/signal.rs): SIGTERM and SIGINT start a graceful drain,
// a second one escalates to an immediate drain (an operator pressing Ctrl-C twice means it); SIGHUP calls
// the reload callback. Returns a Disposable that removes exactly the handlers it added.
import type { DrainController } from './drain.ts';
import type { Logger } from './logger.ts';
import { silentLogger } from './logger.ts';

export type ShutdownSignal = 'SIGTERM' | 'SIGINT';

/** The slice of `process` used; tests may pass an EventEmitter. */
export interface SignalSource {
  on(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface SignalHandlerOptions {
  readonly drain: DrainController;
  /** Deadline for the graceful drain a first SIGTERM/SIGINT starts. */
  readonly drainDeadlineMs: number;
  /** SIGHUP. Without it, SIGHUP is left to Node's default (which terminates the process). */
  readonly reload?: () => void;
  readonly logger?: Logger;
  readonly source?: SignalSource;
}

/** Installs the handlers; dispose the result to remove them. */
export function installSignalHandlers(opts: SignalHandlerOptions): Disposable {
  const source: SignalSource = opts.source ?? process;
  const logger = opts.logger ?? silentLogger;
  const onShutdown = (signal: NodeJS.Signals): void => {
    const escalate = opts.drain.phase !== 'running';
    logger.info({ signal, mode: escalate ? 'immediate' : 'graceful' }, 'shutdown signal received');
    void opts.drain.trigger({ deadlineMs: opts.drainDeadlineMs, mode: escalate ? 'immediate' : 'graceful' });
  };
  const onHangup = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'reload signal received');
    try {
      opts.reload?.();
    } catch (err) {
      // A failed reload keeps the running config (docs/architecture.md "Failure semantics": nothing half-applied); never crash on it.
      logger.error({ err }, 'reload failed');
    }
  };
  source.on('SIGTERM', onShutdown);
  source.on('SIGINT', onShutdown);
  if (opts.reload !== undefined) source.on('SIGHUP', onHangup);
  let removed = false;
  return {
    [Symbol.dispose]() {
      if (removed) return;
      removed = true;
      source.off('SIGTERM', onShutdown);
      source.off('SIGINT', onShutdown);
      if (opts.reload !== undefined) source.off('SIGHUP', onHangup);
    },
  };
}
