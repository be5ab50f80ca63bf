// When the local cluster's supervisor starts a dead ztunnel or waypoint again (docs/operations.md,
// "Supervision"): Kubernetes' CrashLoopBackOff with a short scale, since a node agent that is down drops
// every new connection of its node. The first restart is immediate, then 0.5 s, 1 s, 2 s, 4 s, capped at
// 5 s; a process that ran 10 s without exiting is considered healthy again and its next restart is
// immediate (the kubelet uses 10 s doubling to 5 min, reset after 10 min). Pure: time is passed in.

export interface RestartPolicySettings {
  /** Delay before the second restart of a crash loop (the first one is immediate). */
  readonly firstBackoffMs: number;
  readonly maxBackoffMs: number;
  /** A process that ran this long before exiting is not in a crash loop: its backoff starts over. */
  readonly healthyAfterMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicySettings = {
  firstBackoffMs: 500,
  maxBackoffMs: 5_000,
  healthyAfterMs: 10_000,
};

/** One supervised process's restart history (what `ferry status` shows). */
export interface RestartState {
  /** Restarts since the supervisor started watching it. */
  readonly restarts: number;
  /** Consecutive exits, each after less than `healthyAfterMs` of running: the crash loop's length. */
  readonly crashLoop: number;
  /** When the running process was started (ms), or null when it is not known to run. */
  readonly startedAtMs: number | null;
  /** When it was last seen exiting, or null. */
  readonly lastExitAtMs: number | null;
}

export const NEW_RESTART_STATE: RestartState = { restarts: 0, crashLoop: 0, startedAtMs: null, lastExitAtMs: null };

/** Backoff before the next start, given the exits in a row so far (1 = the first exit: immediate). */
export function backoffMs(crashLoop: number, settings: RestartPolicySettings = DEFAULT_RESTART_POLICY): number {
  if (crashLoop <= 1) return 0;
  return Math.min(settings.firstBackoffMs * 2 ** (crashLoop - 2), settings.maxBackoffMs);
}

/** The process was seen gone at `nowMs`: the state with the exit counted, and when to start it again. */
export function onExit(
  state: RestartState,
  nowMs: number,
  settings: RestartPolicySettings = DEFAULT_RESTART_POLICY,
): { readonly state: RestartState; readonly restartAtMs: number } {
  const ranMs = state.startedAtMs === null ? 0 : nowMs - state.startedAtMs;
  const crashLoop = state.startedAtMs !== null && ranMs >= settings.healthyAfterMs ? 1 : state.crashLoop + 1;
  return {
    state: { ...state, crashLoop, startedAtMs: null, lastExitAtMs: nowMs },
    restartAtMs: nowMs + backoffMs(crashLoop, settings),
  };
}

/** The process was started again at `nowMs`. */
export function onRestart(state: RestartState, nowMs: number): RestartState {
  return { ...state, restarts: state.restarts + 1, startedAtMs: nowMs };
}

/** The process was found running (adopted at the supervisor's start, or after a restart). */
export function onRunning(state: RestartState, startedAtMs: number): RestartState {
  return state.startedAtMs === null ? { ...state, startedAtMs } : state;
}
