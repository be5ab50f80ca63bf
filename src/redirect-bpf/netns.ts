// Network-namespace plumbing for in-pod sockets: the "setns sandwich" of docs/redirect.md. The main thread
// enters a pod netns, creates sockets, and returns to the host netns, all synchronously, so no other
// JavaScript (and no libuv callback on this thread) runs in the wrong namespace. Sockets keep the netns
// they were created in, so Node can serve or connect them afterwards from anywhere.
import { closeSync, openSync } from 'node:fs';
import { BpfError, describeErrno } from './errors.ts';
import { ffi } from './ffi.ts';
import { parseIpv4 } from './layout.ts';

const CLONE_NEWNET = 0x40000000;
const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_REUSEPORT = 15;
const SO_NETNS_COOKIE = 71;
const LISTEN_BACKLOG = 511;

let hostNetnsFd: number | undefined;

/** fd of the netns this process started in (opened once, on first use, while still in it). */
function hostNetns(): number {
  hostNetnsFd ??= openSync('/proc/self/ns/net', 'r');
  return hostNetnsFd;
}

/** Opens a netns file (/run/netns/<name>, /proc/<pid>/ns/net); the caller closes the fd. */
export function openNetns(netnsPath: string): number {
  try {
    return openSync(netnsPath, 'r');
  } catch (cause) {
    throw new BpfError('FERRY_BPF_NETNS_NOT_FOUND', `network namespace ${netnsPath} not found`, { cause });
  }
}

/**
 * Runs `fn` with the main thread inside the netns `netnsFd` and always returns to the host netns.
 * `fn` must be synchronous: a thenable result is rejected (after restoring), since its continuation
 * would run in whatever netns the thread is in by then.
 */
export function inNetns<T>(netnsFd: number, fn: () => T): T {
  const { libc, errno } = ffi();
  const host = hostNetns();
  if (libc.setns(netnsFd, CLONE_NEWNET) !== 0) {
    const e = errno();
    throw new BpfError('FERRY_BPF_SETNS_FAILED', `setns into fd ${netnsFd} failed: ${describeErrno(e)}`, { errno: e });
  }
  let result: T;
  try {
    result = fn();
  } finally {
    if (libc.setns(host, CLONE_NEWNET) !== 0) {
      // Continuing in a pod's netns would put every later socket of this process in the wrong place.
      const e = errno();
      process.emitWarning(`ferry: cannot return to the host netns (${describeErrno(e)}); aborting`);
      process.abort();
    }
  }
  if (isThenable(result)) {
    throw new BpfError('FERRY_BPF_INVALID_ARGUMENT', 'inNetns callback must be synchronous (it returned a thenable)');
  }
  return result;
}

function isThenable(value: unknown): boolean {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    'then' in value &&
    typeof value.then === 'function'
  );
}

export interface SocketOptions {
  /** IPv4 address to bind; '0.0.0.0' for any. */
  readonly address: string;
  /** 0 for an ephemeral port. */
  readonly port: number;
  /** Share the address with other listeners (a restarting ztunnel, docs/architecture.md "Failure semantics"). */
  readonly reusePort?: boolean;
}

/** In the current netns: a TCP socket bound to address:port and listening. Returns the fd. */
export function createListenerFd(opts: SocketOptions): number {
  const fd = createBoundSocketFd(opts);
  if (ffi().libc.listen(fd, LISTEN_BACKLOG) !== 0) {
    const e = ffi().errno();
    ffi().libc.close(fd);
    throw new BpfError('FERRY_BPF_SOCKET_FAILED', `listen on ${opts.address}:${opts.port}: ${describeErrno(e)}`, {
      errno: e,
    });
  }
  return fd;
}

/** In the current netns: a TCP socket bound to address:port (e.g. 127.0.0.6:0 for the inbound app hop). */
export function createBoundSocketFd(opts: SocketOptions): number {
  const { libc, errno } = ffi();
  const addr = sockaddrIn(opts.address, opts.port);
  const fd = libc.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const e = errno();
    throw new BpfError('FERRY_BPF_SOCKET_FAILED', `socket(): ${describeErrno(e)}`, { errno: e });
  }
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  const fail = (what: string): never => {
    const e = errno();
    libc.close(fd);
    throw new BpfError('FERRY_BPF_SOCKET_FAILED', `${what} ${opts.address}:${opts.port}: ${describeErrno(e)}`, {
      errno: e,
    });
  };
  if (libc.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) !== 0) fail('SO_REUSEADDR on');
  if (opts.reusePort === true && libc.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, one, 4) !== 0) fail('SO_REUSEPORT on');
  if (libc.bind(fd, addr, addr.length) !== 0) fail('bind');
  return fd;
}

/** The netns cookie of a socket fd (SO_NETNS_COOKIE, Linux 5.14+): the netns half of a tuple key. */
export function socketNetnsCookie(fd: number): bigint {
  const { libc, errno } = ffi();
  const value = Buffer.alloc(8);
  const len = new Uint32Array([8]);
  if (libc.getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, value, len) !== 0) {
    const e = errno();
    throw new BpfError('FERRY_BPF_SOCKET_FAILED', `SO_NETNS_COOKIE on fd ${fd}: ${describeErrno(e)}`, { errno: e });
  }
  return value.readBigUInt64LE(0);
}

/** Closes an fd we created and never handed to Node; ignores errors (it is cleanup). */
export function closeFd(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed: nothing to undo
  }
}

function sockaddrIn(address: string, port: number): Buffer {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new BpfError('FERRY_BPF_INVALID_ARGUMENT', `bad port ${port}`);
  }
  const buf = Buffer.alloc(16);
  buf.writeUInt16LE(AF_INET, 0);
  buf.writeUInt16BE(port, 2);
  parseIpv4(address).copy(buf, 4);
  return buf;
}
