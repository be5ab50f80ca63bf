// The cluster DNS server (docs/architecture.md, "Cluster DNS"): UDP and TCP on one address (port 53 in the
// local cluster), answering from a DnsRecords table that `update()` swaps whole (the server does not know
// where records come from), forwarding names outside the cluster domain to an Upstream. Hostile input is
// bounded: answer.ts drops or FORMERRs what does not decode; TCP (RFC 7766: two-byte length prefix) has a
// connection cap, an idle timeout and a per-connection cap on queries in flight; forwards are capped
// process-wide (beyond the cap: SERVFAIL at once, never an unbounded queue).
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { Packet } from 'dns-packet';
import type { Logger } from '../../runtime/logger.ts';
import { encodeResponse, planQuery, type QueryPlan, RCODE } from './answer.ts';
import { DnsError } from './errors.ts';
import type { DnsRecords } from './records.ts';
import type { Upstream } from './upstream.ts';

const TCP_MAX_MESSAGE_BYTES = 65_535;

/** Where to listen: an address, or a socket fd already bound (e.g. inside another netns). */
export type ListenTarget = { readonly host: string; readonly port: number } | { readonly fd: number };

export interface DnsServerLimits {
  /** Open TCP connections at once; more are closed on accept (net.Server maxConnections). */
  readonly maxTcpConnections: number;
  /** A TCP connection without a complete query for this long is closed. */
  readonly tcpIdleTimeoutMs: number;
  /** Queries of one TCP connection being answered at once; reading pauses beyond. */
  readonly maxTcpPipelined: number;
  /** Forwarded queries in flight for the whole server. */
  readonly maxForwardsInFlight: number;
  /** Overall budget of one forward (all upstream attempts); glibc clients wait 5 s before retrying. */
  readonly forwardTimeoutMs: number;
}

export const DEFAULT_DNS_LIMITS: DnsServerLimits = {
  maxTcpConnections: 128,
  tcpIdleTimeoutMs: 10_000,
  maxTcpPipelined: 16,
  maxForwardsInFlight: 512,
  forwardTimeoutMs: 4_000,
};

export interface DnsServerOptions {
  readonly udp: ListenTarget;
  readonly tcp: ListenTarget;
  readonly records: DnsRecords;
  /** null: names outside the cluster domain get SERVFAIL. */
  readonly upstream: Upstream | null;
  readonly log: Logger;
  readonly limits?: Partial<DnsServerLimits>;
}

export interface DnsServerStats {
  queries: number;
  /** Answers we built, by rcode name. */
  answered: Record<string, number>;
  forwarded: number;
  forwardFailures: number;
  dropped: number;
  tcpRejected: number;
}

const RCODE_NAMES = new Map<number, string>(Object.entries(RCODE).map(([name, code]) => [code, name]));

export class DnsServer {
  readonly #udp: UdpSocket;
  readonly #tcp: Server;
  readonly #log: Logger;
  readonly #limits: DnsServerLimits;
  readonly #upstream: Upstream | null;
  readonly #connections = new Set<Socket>();
  readonly #closing = new AbortController();
  #records: DnsRecords;
  #forwardsInFlight = 0;
  readonly stats: DnsServerStats = {
    queries: 0,
    answered: {},
    forwarded: 0,
    forwardFailures: 0,
    dropped: 0,
    tcpRejected: 0,
  };

  private constructor(opts: DnsServerOptions, udp: UdpSocket, tcp: Server) {
    this.#udp = udp;
    this.#tcp = tcp;
    this.#log = opts.log;
    this.#limits = { ...DEFAULT_DNS_LIMITS, ...opts.limits };
    this.#upstream = opts.upstream;
    this.#records = opts.records;
  }

  /** Opens both sockets; FERRY_DNS_LISTEN_FAILED when either cannot be bound. */
  static async start(opts: DnsServerOptions): Promise<DnsServer> {
    const udp = createSocket({ type: 'udp4' });
    const tcp = createServer({ pauseOnConnect: false });
    const server = new DnsServer(opts, udp, tcp);
    try {
      udp.on('error', (err) => opts.log.warn({ error: err.message }, 'DNS UDP socket error'));
      const udpBound = once(udp, 'listening');
      udp.bind('fd' in opts.udp ? { fd: opts.udp.fd } : { address: opts.udp.host, port: opts.udp.port });
      await udpBound;
      udp.on('message', (msg, rinfo) => server.#onUdp(msg, rinfo));
      tcp.maxConnections = server.#limits.maxTcpConnections;
      tcp.on('drop', () => {
        server.stats.tcpRejected++;
      });
      tcp.on('connection', (socket) => server.#onTcp(socket));
      const tcpBound = once(tcp, 'listening');
      tcp.listen('fd' in opts.tcp ? { fd: opts.tcp.fd } : { host: opts.tcp.host, port: opts.tcp.port });
      await tcpBound;
      tcp.on('error', (err) => opts.log.warn({ error: err.message }, 'DNS TCP server error'));
    } catch (cause) {
      try {
        udp.close();
      } catch {
        // never bound, or closed by the failed bind
      }
      tcp.close();
      throw new DnsError('FERRY_DNS_LISTEN_FAILED', `DNS server could not listen: ${String(cause)}`, { cause });
    }
    return server;
  }

  /** The bound UDP and TCP addresses (ports differ when both were asked for port 0). */
  get addresses(): {
    readonly udp: { address: string; port: number };
    readonly tcp: { address: string; port: number };
  } {
    const tcp = this.#tcp.address();
    if (tcp === null || typeof tcp === 'string') throw new Error('DNS TCP server is not listening');
    return { udp: this.#udp.address(), tcp: { address: tcp.address, port: tcp.port } };
  }

  /** Swaps the table; queries after this call see only the new one. */
  update(records: DnsRecords): void {
    this.#records = records;
  }

  get records(): DnsRecords {
    return this.#records;
  }

  /** Stops listening, closes TCP connections and abandons forwards in flight. Idempotent. */
  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort(new Error('DNS server closing'));
    for (const socket of this.#connections) socket.destroy();
    const tcpClosed = new Promise<void>((resolve) => this.#tcp.close(() => resolve()));
    await new Promise<void>((resolve) => this.#udp.close(() => resolve()));
    await tcpClosed;
  }

  #onUdp(msg: Buffer, rinfo: RemoteInfo): void {
    const send = (reply: Buffer): void => {
      if (this.#closing.signal.aborted) return;
      this.#udp.send(reply, rinfo.port, rinfo.address, (err) => {
        if (err) this.#log.debug({ error: err.message, client: rinfo.address }, 'DNS UDP send failed');
      });
    };
    this.#handle(msg, 'udp', send, () => undefined);
  }

  #onTcp(socket: Socket): void {
    this.#connections.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(this.#limits.tcpIdleTimeoutMs, () => socket.destroy());
    socket.on('error', () => undefined); // resets from clients are routine; the close below cleans up
    socket.on('close', () => this.#connections.delete(socket));
    let buffered: Buffer = Buffer.alloc(0);
    let pending = 0;
    const send = (reply: Buffer): void => {
      if (socket.destroyed) return;
      const framed = Buffer.allocUnsafe(2 + reply.length);
      framed.writeUInt16BE(reply.length, 0);
      reply.copy(framed, 2);
      socket.write(framed);
    };
    const done = (): void => {
      pending--;
      if (pending < this.#limits.maxTcpPipelined && socket.isPaused()) socket.resume();
    };
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const len = buffered.readUInt16BE(0);
        if (len === 0) {
          socket.destroy(); // a zero-length message is no DNS message: the stream is out of sync
          return;
        }
        if (buffered.length < 2 + len) break; // at most 64 KiB + one chunk is ever held
        const msg = buffered.subarray(2, 2 + len);
        buffered = buffered.subarray(2 + len);
        pending++;
        this.#handle(msg, 'tcp', send, done);
        if (pending >= this.#limits.maxTcpPipelined) socket.pause();
      }
    });
  }

  /** Plans one message and carries the plan out; `send` gets the encoded reply, `done` runs once at the end. */
  #handle(msg: Buffer, transport: 'udp' | 'tcp', send: (reply: Buffer) => void, done: () => void): void {
    this.stats.queries++;
    const plan: QueryPlan = planQuery(msg, this.#records);
    const limit = (p: { udpLimitBytes: number }): number =>
      transport === 'udp' ? p.udpLimitBytes : TCP_MAX_MESSAGE_BYTES;
    switch (plan.kind) {
      case 'drop':
        this.stats.dropped++;
        this.#log.debug({ transport, reason: plan.reason }, 'DNS message dropped');
        done();
        return;
      case 'answer':
        this.#count(plan.rcode);
        send(encodeResponse(plan.response, limit(plan)));
        done();
        return;
      case 'forward':
        this.#forward(msg, transport, plan.servfail, limit(plan), send).finally(done);
        return;
      default:
        plan satisfies never;
    }
  }

  async #forward(
    msg: Buffer,
    transport: 'udp' | 'tcp',
    servfail: Packet,
    limitBytes: number,
    send: (reply: Buffer) => void,
  ): Promise<void> {
    if (this.#upstream === null || this.#forwardsInFlight >= this.#limits.maxForwardsInFlight) {
      this.stats.forwardFailures++;
      this.#count(RCODE.SERVFAIL);
      send(encodeResponse(servfail, limitBytes));
      return;
    }
    this.#forwardsInFlight++;
    this.stats.forwarded++;
    try {
      const signal = AbortSignal.any([this.#closing.signal, AbortSignal.timeout(this.#limits.forwardTimeoutMs)]);
      send(await this.#upstream.forward(msg, transport, signal));
    } catch (err) {
      this.stats.forwardFailures++;
      this.#count(RCODE.SERVFAIL);
      this.#log.debug({ error: err instanceof Error ? err.message : String(err) }, 'DNS forward failed: SERVFAIL');
      send(encodeResponse(servfail, limitBytes));
    } finally {
      this.#forwardsInFlight--;
    }
  }

  #count(rcode: number): void {
    const name = RCODE_NAMES.get(rcode) ?? String(rcode);
    this.stats.answered[name] = (this.stats.answered[name] ?? 0) + 1;
  }
}
