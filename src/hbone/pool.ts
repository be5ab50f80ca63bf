// Outbound HBONE connection pool (docs/architecture.md "HBONE (wire contract)", docs/architecture.md "HBONE (wire contract)"). Invariants: a pooled
// connection is keyed by {source identity, sorted expected identities, source IP, destination ip:port}; it
// carries at most min(100, peer max concurrent streams) tunnels, more open another connection; at most one
// dial per key is in flight (concurrent callers wait for it, then compete for its slots synchronously); a
// connection that got GOAWAY, closed or sat idle is never handed out again. TLS material is built once per
// certificate object (one per identity and rotation).
import type { Duplex } from 'node:stream';
import { ProxyError } from '../errors.ts';
import { formatSpiffeId, type SpiffeId } from '../identity/spiffe-id.ts';
import { buildTlsContexts, type HboneTlsContexts } from '../identity/tls-context.ts';
import type { WorkloadCertificate } from '../identity/workload-certificate.ts';
import type { IpPort } from '../mesh/ip-addr.ts';
import { formatIpPort } from './authority.ts';
import { HboneConnection, HboneRefusedError } from './client.ts';
import { buildConnectHeaders, type HboneRequestHeaders } from './headers.ts';
import type { KeepaliveOptions } from './keepalive.ts';
import type { SocketFactory } from './socket-factory.ts';

const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000; // Istio's POOL_UNUSED_RELEASE_TIMEOUT
const DEFAULT_CLOSE_DEADLINE_MS = 5_000;
/** Tries of a CONNECT the peer refused unprocessed (a draining ztunnel's GOAWAY): then the error stands. */
const MAX_REFUSED_RETRIES = 3;

export interface HboneConnectOptions {
  readonly source: WorkloadCertificate;
  /** Local IP to dial from (the source pod's address); part of the pool key. */
  readonly sourceIp?: string;
  /** Next hop, normally podIP:15008 or a waypoint's. */
  readonly dst: IpPort;
  /** The server's URI SAN must equal one of these. */
  readonly expectedIdentities: readonly SpiffeId[];
  readonly authority: string;
  readonly headers?: HboneRequestHeaders;
  readonly signal?: AbortSignal;
  /**
   * Creates the TCP socket of a new connection (the source pod's netns in in-pod mode). Not part of the
   * key: the source IP already pins a connection to one pod.
   */
  readonly socketFactory?: SocketFactory;
}

export interface HboneClientPoolOptions {
  readonly idleTimeoutMs?: number;
  readonly keepalive?: KeepaliveOptions;
  readonly connectTimeoutMs?: number;
}

export interface PoolKeyStats {
  readonly key: string;
  readonly connections: number;
  readonly streams: number;
}

/** The pool key (ztunnel's WorkloadKey) as a string; expected identities are order-insensitive. */
export function poolKey(o: Pick<HboneConnectOptions, 'source' | 'sourceIp' | 'dst' | 'expectedIdentities'>): string {
  const expected = o.expectedIdentities.map(formatSpiffeId).sort().join(',');
  return `${formatSpiffeId(o.source.identity)}|${expected}|${o.sourceIp ?? ''}|${formatIpPort(o.dst)}`;
}

export class HboneClientPool {
  readonly #conns = new Map<string, Set<HboneConnection>>();
  readonly #dials = new Map<string, Promise<HboneConnection>>();
  /** Every connection ever handed out and not yet closed, including retired ones (for close()). */
  readonly #all = new Set<HboneConnection>();
  readonly #tls = new WeakMap<WorkloadCertificate, HboneTlsContexts>();
  readonly #opts: HboneClientPoolOptions;
  #closed = false;

  constructor(opts: HboneClientPoolOptions = {}) {
    this.#opts = opts;
  }

  /** Opens a tunnel; resolves with its byte stream only after the peer answered 200. */
  async connect(o: HboneConnectOptions): Promise<Duplex> {
    const key = poolKey(o);
    const headers = buildConnectHeaders(o.authority, o.headers ?? {}) as Record<string, string>;
    for (let refused = 0; ; ) {
      if (this.#closed) throw new ProxyError('FERRY_DRAINING', 'HBONE pool is closed');
      o.signal?.throwIfAborted();
      const conn = this.#checkout(key);
      if (conn !== null) {
        try {
          return await conn.openTunnel(o.authority, headers, o.signal);
        } catch (err) {
          // Never processed by the peer (its GOAWAY crossed our CONNECT): safe to send again elsewhere.
          if (err instanceof HboneRefusedError && ++refused < MAX_REFUSED_RETRIES) continue;
          throw err;
        }
      }
      let dial = this.#dials.get(key);
      if (dial === undefined) {
        dial = this.#dial(key, o);
        this.#dials.set(key, dial);
      }
      await raceAbort(dial, o.signal);
    }
  }

  /** Live connections and open tunnels, per key and in total. */
  stats(): { connections: number; streams: number; keys: PoolKeyStats[] } {
    const keys: PoolKeyStats[] = [];
    for (const [key, set] of this.#conns) {
      let streams = 0;
      for (const c of set) streams += c.openStreams;
      keys.push({ key, connections: set.size, streams });
    }
    let streams = 0;
    for (const c of this.#all) streams += c.openStreams;
    return { connections: this.#all.size, streams, keys };
  }

  /** GOAWAY on every connection; tunnels may finish until the deadline, then everything is destroyed. */
  async close(deadlineMs = DEFAULT_CLOSE_DEADLINE_MS): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#dials.values()]);
    const conns = [...this.#all];
    const deadline = setTimeout(destroyAll, deadlineMs, conns);
    deadline.unref();
    await Promise.all(conns.map((c) => c.close()));
    clearTimeout(deadline);
  }

  /** Destroys every connection and its tunnels now. */
  destroy(): void {
    this.#closed = true;
    destroyAll([...this.#all]);
  }

  #checkout(key: string): HboneConnection | null {
    const set = this.#conns.get(key);
    if (set === undefined) return null;
    for (const c of set) if (c.hasCapacity) return c;
    return null;
  }

  async #dial(key: string, o: HboneConnectOptions): Promise<HboneConnection> {
    try {
      const conn = await HboneConnection.dial({
        tls: this.#tlsFor(o.source),
        expectedIdentities: o.expectedIdentities,
        dst: o.dst,
        ...(o.sourceIp === undefined ? {} : { sourceIp: o.sourceIp }),
        ...(o.socketFactory === undefined ? {} : { socketFactory: o.socketFactory }),
        ...(this.#opts.keepalive === undefined ? {} : { keepalive: this.#opts.keepalive }),
        ...(this.#opts.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: this.#opts.connectTimeoutMs }),
      });
      this.#add(key, conn);
      if (this.#closed) conn.destroy();
      return conn;
    } finally {
      // Removed before waiters resume, so they either find the new connection or start the next dial.
      this.#dials.delete(key);
    }
  }

  #add(key: string, conn: HboneConnection): void {
    let set = this.#conns.get(key);
    if (set === undefined) {
      set = new Set();
      this.#conns.set(key, set);
    }
    set.add(conn);
    this.#all.add(conn);
    conn.onRetire = (c) => {
      const s = this.#conns.get(key);
      s?.delete(c);
      if (s?.size === 0) this.#conns.delete(key);
    };
    conn.onClosed = (c) => this.#all.delete(c);
    conn.setIdleTimeout(this.#opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
  }

  #tlsFor(cert: WorkloadCertificate): HboneTlsContexts {
    let ctx = this.#tls.get(cert);
    if (ctx === undefined) {
      ctx = buildTlsContexts(cert);
      this.#tls.set(cert, ctx);
    }
    return ctx;
  }
}

function destroyAll(conns: readonly HboneConnection[]): void {
  for (const c of conns) c.destroy();
}

/** Waits for p, or rejects with the signal's reason; never cancels p (other callers share it). */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
