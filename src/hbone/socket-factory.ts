// SocketFactory implementations (STYLE.md §1, ztunnel's src/inpod/config.rs): the host one is plain
// net.connect; the pod-netns one creates the socket inside an enrolled pod's network namespace with the
// setns sandwich (docs/redirect.md) and lets Node connect it from there, so the connection leaves from the
// pod (its IP outbound, 127.0.0.6 toward its app). Only socket()+bind() run inside the namespace; connect()
// runs afterwards on the fd, which keeps the namespace it was created in.
import net, { type Socket } from 'node:net';
import type { IpPort } from '../mesh/ip-addr.ts';
import type { Workload } from '../mesh/types.ts';
import { BpfError } from '../redirect-bpf/errors.ts';
import { closeFd, createBoundSocketFd, inNetns } from '../redirect-bpf/netns.ts';

const ANY_IPV4 = '0.0.0.0';

export interface SocketConnectOptions {
  /** Local address to bind before connecting (127.0.0.6 toward a local app, the pod IP outbound). */
  readonly localAddress?: string;
}

/** Creates outgoing TCP sockets. The socket is connecting: it emits 'connect' or 'error' as net.connect's. */
export interface SocketFactory {
  /** May throw synchronously when the socket cannot even be created (e.g. the pod netns is gone). */
  connect(target: IpPort, opts?: SocketConnectOptions): Socket;
}

/** Picks the factory for connections made on behalf of `workload` (null: no workload, the host's). */
export interface SocketFactories {
  forWorkload(workload: Workload | null | undefined): SocketFactory;
}

export const hostSocketFactory: SocketFactory = {
  connect(target: IpPort, opts: SocketConnectOptions = {}): net.Socket {
    return net.connect({
      host: target.ip,
      port: target.port,
      ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
      allowHalfOpen: true,
      noDelay: true,
    });
  },
};

/** A pod-netns factory; close() releases the netns fd, after which connect() throws. */
export interface PodNetnsSockets extends SocketFactory {
  close(): void;
}

/**
 * Sockets inside the netns behind `netnsFd`; the factory owns the fd from now on. IPv4 only, like the
 * redirector (native IPv6 is not in v1).
 */
export function podNetnsSocketFactory(netnsFd: number): PodNetnsSockets {
  let fdOrClosed: number | null = netnsFd;
  return {
    connect(target: IpPort, opts: SocketConnectOptions = {}): net.Socket {
      const nsFd = fdOrClosed;
      // Never setns through a closed fd: its number may already belong to something else.
      if (nsFd === null) throw new BpfError('FERRY_BPF_CLOSED', 'the pod was unenrolled; its netns is released');
      const fd = inNetns(nsFd, () => createBoundSocketFd({ address: opts.localAddress ?? ANY_IPV4, port: 0 }));
      let socket: net.Socket;
      try {
        socket = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
      } catch (err) {
        closeFd(fd);
        throw err;
      }
      socket.setNoDelay(true);
      return socket.connect({ host: target.ip, port: target.port });
    },
    close(): void {
      if (fdOrClosed !== null) closeFd(fdOrClosed);
      fdOrClosed = null;
    },
  };
}
