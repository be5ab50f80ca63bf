// A bound UDP socket fd in the current netns, for DnsServer to serve through `dgram` `bind({ fd })`.
// Called inside `inNetns` (src/redirect-bpf/netns.ts), which has only a TCP variant; the FFI bindings are
// the redirector's (src/redirect-bpf/ffi.ts), the one module that touches libc.
import { describeErrno } from '../../redirect-bpf/errors.ts';
import { ffi } from '../../redirect-bpf/ffi.ts';
import { parseIpv4 } from '../../redirect-bpf/layout.ts';
import { DnsError } from './errors.ts';

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;

/** In the current netns: a UDP socket bound to address:port. Returns the fd (the caller owns it). */
export function createUdpSocketFd(address: string, port: number): number {
  const { libc, errno } = ffi();
  const addr = Buffer.alloc(16);
  addr.writeUInt16LE(AF_INET, 0);
  addr.writeUInt16BE(port, 2);
  parseIpv4(address).copy(addr, 4);
  const fd = libc.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new DnsError('FERRY_DNS_LISTEN_FAILED', `UDP socket(): ${describeErrno(errno())}`);
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  if (libc.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) !== 0 || libc.bind(fd, addr, addr.length) !== 0) {
    const e = errno();
    libc.close(fd);
    throw new DnsError('FERRY_DNS_LISTEN_FAILED', `bind UDP ${address}:${port}: ${describeErrno(e)}`);
  }
  return fd;
}
