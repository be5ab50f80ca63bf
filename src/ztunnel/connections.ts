// Live inbound connections, tracked so policy changes can close the ones they now deny (Istio's "late
// rejection", docs/architecture.md "Failure semantics") and so drain knows what is still running. A connection is
// tracked before its authorization result is acted on, so a policy change cannot slip between the check
// and the tracking. Owns no sockets: it calls each entry's abort().

import { ProxyError } from '../errors.ts';
import type { AuthzConnection, AuthzVerdict } from '../mesh/authz/types.ts';
import type { Authorization, Workload } from '../mesh/types.ts';

export interface TrackedConnection {
  readonly conn: AuthzConnection;
  readonly destination: Workload;
  /** Ends the connection (both directions) with the given error. Must be idempotent. */
  abort(error: ProxyError): void;
}

export interface PolicyLookup {
  policiesFor(workload: Workload): readonly Authorization[];
  workloadByUid(uid: string): Workload | undefined;
}

export type Evaluate = (policies: readonly Authorization[], conn: AuthzConnection) => AuthzVerdict;

export class ConnectionTracker {
  readonly #live = new Set<TrackedConnection>();

  get size(): number {
    return this.#live.size;
  }

  track(entry: TrackedConnection): Disposable {
    this.#live.add(entry);
    return { [Symbol.dispose]: () => this.#live.delete(entry) };
  }

  /** Re-evaluates every live connection against new state; aborts those now denied. Returns how many. */
  recheck(view: PolicyLookup, evaluate: Evaluate): number {
    let closed = 0;
    for (const entry of [...this.#live]) {
      // A workload that left this node keeps its policies as they were: its connections drain with it.
      const destination = view.workloadByUid(entry.destination.uid) ?? entry.destination;
      const verdict = evaluate(view.policiesFor(destination), entry.conn);
      if (verdict.kind === 'deny') {
        const why =
          verdict.code === 'FERRY_AUTHZ_DENIED'
            ? `explicitly denied by: ${verdict.policy}`
            : 'allow policies exist, but none allowed';
        entry.abort(new ProxyError('FERRY_AUTHZ_LATE_REJECTION', `connection closed due to policy change: ${why}`));
        this.#live.delete(entry);
        closed++;
      }
    }
    return closed;
  }

  abortAll(error: ProxyError): void {
    for (const entry of [...this.#live]) entry.abort(error);
    this.#live.clear();
  }
}
