// Forwarding names outside the cluster domain to the host's resolver (docs/architecture.md, "Cluster DNS"),
// as CoreDNS's `forward . /etc/resolv.conf` does. The DNS process lives in the host netns, so the host's
// nameservers (even 127.0.0.53) are reachable from its sockets. Each forwarded query gets its own
// connected UDP socket on a random port (the kernel drops datagrams from anyone but the upstream), and the
// reply must carry the query's id and question; a truncated UDP reply is retried over TCP when the client
// came over TCP. Nameservers are tried in order within one overall deadline.
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { isIP, Socket } from 'node:net';
import dnsPacket from 'dns-packet';
import { DnsError } from './errors.ts';

export const DNS_PORT = 53;
const MAX_NAMESERVERS = 3; // glibc's MAXNS
const MAX_TCP_MESSAGE_BYTES = 65_535;

export interface UpstreamServer {
  readonly host: string;
  readonly port: number;
}

/**
 * The `nameserver` lines of a resolv.conf (first three, IP literals only, as glibc reads them). None:
 * glibc's default, the local host. Pure.
 */
export function parseResolvConf(text: string): UpstreamServer[] {
  const out: UpstreamServer[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [keyword, value] = line.split(/\s+/);
    if (keyword !== 'nameserver' || value === undefined) continue;
    const host = value.replace(/%.*$/, ''); // IPv6 zone ids are not ours to route
    if (isIP(host) !== 0 && out.length < MAX_NAMESERVERS) out.push({ host, port: DNS_PORT });
  }
  return out.length > 0 ? out : [{ host: '127.0.0.1', port: DNS_PORT }];
}

/** Reads the nameservers from a resolv.conf file (the host's /etc/resolv.conf by default). */
export function readUpstreamServers(path = '/etc/resolv.conf'): UpstreamServer[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new DnsError('FERRY_DNS_BAD_UPSTREAM', `cannot read upstream resolvers from ${path}`, { cause });
  }
  return parseResolvConf(text);
}

export interface Upstream {
  /** The upstream's response to `query` (bytes as received), or a rejection after the deadline. */
  forward(query: Buffer, transport: 'udp' | 'tcp', signal: AbortSignal): Promise<Buffer>;
}

export interface UpstreamOptions {
  readonly servers: readonly UpstreamServer[];
  /** Per nameserver attempt; the whole forward is bounded by the caller's signal. */
  readonly attemptTimeoutMs?: number;
}

/** Forwards to the servers in order until one answers. */
export function createUpstream(opts: UpstreamOptions): Upstream {
  const attemptMs = opts.attemptTimeoutMs ?? 1_500;
  if (opts.servers.length === 0) throw new DnsError('FERRY_DNS_BAD_UPSTREAM', 'no upstream nameservers');
  return {
    async forward(query, transport, signal) {
      const errors: unknown[] = [];
      for (const server of opts.servers) {
        signal.throwIfAborted();
        const attempt = AbortSignal.any([signal, AbortSignal.timeout(attemptMs)]);
        try {
          const reply = await exchangeUdp(server, query, attempt);
          if (transport === 'tcp' && isTruncated(reply)) return await exchangeTcp(server, query, attempt);
          return reply;
        } catch (err) {
          errors.push(err);
        }
      }
      throw new DnsError('FERRY_DNS_UPSTREAM_FAILED', `no upstream answered (${opts.servers.length} tried)`, {
        cause: new AggregateError(errors),
      });
    },
  };
}

function isTruncated(reply: Buffer): boolean {
  return reply.length >= 4 && (reply.readUInt16BE(2) & dnsPacket.TRUNCATED_RESPONSE) !== 0;
}

/** True when `reply` answers `query`: a response with the same id and the same question bytes. */
export function isReplyTo(query: Buffer, reply: Buffer): boolean {
  if (reply.length < 12 || query.length < 12) return false;
  if (reply.readUInt16BE(0) !== query.readUInt16BE(0) || (reply.readUInt16BE(2) & 0x8000) === 0) return false;
  const end = questionEnd(query);
  // DNS 0x20 and case: the upstream echoes the question as sent, so a byte comparison is right.
  return end !== null && end <= reply.length && reply.subarray(12, end).equals(query.subarray(12, end));
}

/** Offset just past the first question (uncompressed name + type + class), or null if it is malformed. */
function questionEnd(msg: Buffer): number | null {
  let off = 12;
  while (off < msg.length) {
    const len = msg[off] ?? 0;
    if (len === 0) return off + 5 <= msg.length ? off + 5 : null;
    if ((len & 0xc0) !== 0) return null; // a query's first name is never compressed
    off += len + 1;
  }
  return null;
}

function exchangeUdp(server: UpstreamServer, query: Buffer, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIP(server.host) === 6 ? 'udp6' : 'udp4');
    const finish = (err: unknown, reply?: Buffer): void => {
      signal.removeEventListener('abort', onAbort);
      socket.close();
      if (reply !== undefined) resolve(reply);
      else reject(err);
    };
    const onAbort = (): void => finish(signal.reason);
    if (signal.aborted) {
      socket.close();
      reject(signal.reason);
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (err) => finish(err));
    socket.on('message', (msg) => {
      if (isReplyTo(query, msg)) finish(null, msg); // anything else: a stray datagram, keep waiting
    });
    socket.connect(server.port, server.host, () => socket.send(query));
  });
}

function exchangeTcp(server: UpstreamServer, query: Buffer, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let buffered = Buffer.alloc(0);
    const finish = (err: unknown, reply?: Buffer): void => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (reply !== undefined) resolve(reply);
      else reject(err);
    };
    const onAbort = (): void => finish(signal.reason);
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (err) => finish(err));
    socket.on('end', () => finish(new Error('upstream closed the TCP connection before answering')));
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length > MAX_TCP_MESSAGE_BYTES + 2) return finish(new Error('upstream reply too large'));
      if (buffered.length < 2) return;
      const len = buffered.readUInt16BE(0);
      if (buffered.length < 2 + len) return;
      const reply = buffered.subarray(2, 2 + len);
      if (isReplyTo(query, reply)) finish(null, reply);
      else finish(new Error('upstream TCP reply does not match the query'));
    });
    const framed = Buffer.alloc(2 + query.length);
    framed.writeUInt16BE(query.length, 0);
    query.copy(framed, 2);
    socket.connect(server.port, server.host, () => socket.write(framed));
  });
}
