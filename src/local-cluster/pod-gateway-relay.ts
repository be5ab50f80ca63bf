// The controller as pods reach it (docs/architecture.md "Waypoints on the local API"): pods live behind the
// bridge netns and cannot reach the host's loopback, where the controller's xDS and CA listen. This relay
// listens on the pods' gateway address inside the bridge netns (sockets made there by the setns sandwich of
// src/redirect-bpf/netns.ts, as the cluster DNS does) and splices each connection to the controller's
// loopback port in the host netns. Bytes only: TLS stays end to end between the pod and the controller,
// whose certificates carry the gateway address as an IP SAN. It runs inside the controller's process, so
// pods see the controller's port closed exactly while the controller is down.
import { createServer, connect as dial, type Server, type Socket } from 'node:net';
import { closeFd, createListenerFd, inNetns, openNetns } from '../redirect-bpf/netns.ts';
import type { Logger } from '../runtime/logger.ts';

export interface RelayRoute {
  /** Port on the gateway address, inside the bridge netns. */
  readonly port: number;
  /** Where it goes, in this process's netns. */
  readonly target: { readonly host: string; readonly port: number };
}

export interface PodGatewayRelayOptions {
  readonly netnsPath: string;
  readonly address: string;
  readonly routes: readonly RelayRoute[];
  readonly log: Logger;
}

export interface PodGatewayRelay {
  close(): Promise<void>;
}

export async function startPodGatewayRelay(opts: PodGatewayRelayOptions): Promise<PodGatewayRelay> {
  const fds = listenInNetns(opts);
  const servers: Server[] = [];
  const open = new Set<Socket>();
  for (const [i, route] of opts.routes.entries()) {
    const server = createServer({ allowHalfOpen: true }, (down) => relay(down, route, open));
    server.on('error', (err) => opts.log.warn({ port: route.port, err }, 'pod gateway relay listener failed'));
    await new Promise<void>((resolve) => server.listen({ fd: fds[i] as number }, resolve));
    servers.push(server);
  }
  opts.log.info(
    {
      netns: opts.netnsPath,
      routes: opts.routes.map((r) => `${opts.address}:${r.port} → ${r.target.host}:${r.target.port}`),
    },
    'controller reachable from pods on the gateway address',
  );
  return {
    async close() {
      for (const s of open) s.destroy();
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    },
  };
}

/** One listening socket per route, all made inside the netns; none left open when one fails. */
function listenInNetns(opts: PodGatewayRelayOptions): number[] {
  const nsFd = openNetns(opts.netnsPath);
  const fds: number[] = [];
  try {
    inNetns(nsFd, () => {
      for (const r of opts.routes) fds.push(createListenerFd({ address: opts.address, port: r.port }));
    });
    return fds;
  } catch (err) {
    for (const fd of fds) closeFd(fd);
    throw err;
  } finally {
    closeFd(nsFd);
  }
}

/** Both directions to completion (half-close kept); an error on either side ends both. */
function relay(down: Socket, route: RelayRoute, open: Set<Socket>): void {
  const up = dial({ host: route.target.host, port: route.target.port, allowHalfOpen: true });
  for (const s of [down, up]) {
    open.add(s);
    s.setNoDelay(true);
    s.once('close', () => open.delete(s));
  }
  const end = () => {
    down.destroy();
    up.destroy();
  };
  down.on('error', end);
  up.on('error', end);
  down.pipe(up);
  up.pipe(down);
}
