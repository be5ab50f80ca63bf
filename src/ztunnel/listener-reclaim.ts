// Takes back the pods whose listener registrations vanished (docs/redirect.md, "Failure behaviour"). In a
// handover two ztunnels run side by side; a pod the old one enrolled after the new one (created or
// relabelled meanwhile) points at the old one's sockets, and those entries go when it exits. Checking the
// pinned maps on a short period bounds that pod's refused window (fail closed, never plaintext) to one
// period; the rare case does not justify an event path. A draining process stops checking.
import type { Logger } from '../runtime/logger.ts';

/** Each check is 4 map lookups per served pod: cheap next to the window it closes. */
export const RECLAIM_INTERVAL_MS = 250;

export function startListenerReclaim(
  pods: { reclaimListeners(): Promise<string[]> },
  signal: AbortSignal,
  log: Logger,
): { stop(): void } {
  let running = false;
  /** The last failure logged at warn: a failure that repeats every period goes to debug. */
  let lastError: string | null = null;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    pods
      .reclaimListeners()
      .then(() => {
        lastError = null;
      })
      .catch((err: unknown) => {
        if (signal.aborted) return;
        const error = (err as Error).message;
        log[error === lastError ? 'debug' : 'warn']({ error }, 'listener registrations not checked');
        lastError = error;
      })
      .finally(() => {
        running = false;
      });
  }, RECLAIM_INTERVAL_MS);
  timer.unref();
  const stop = () => clearInterval(timer);
  if (signal.aborted) stop();
  else signal.addEventListener('abort', stop, { once: true });
  return { stop };
}
