// The seam through which an L7 handler takes captured outbound connections (sidecar mode, docs/architecture.md
// "Sidecar mode", "L7 in the sidecar"). The ztunnel itself stays L4: it only asks the handler whether a
// connection's destination is one it applies HTTP routes to, and if so hands the socket over instead of
// splicing it. The handler is composed by the CLI (src/cli/sidecar-l7.ts) from the Gateway API pieces the
// waypoint uses, which this layer may not import. Types only.
import type net from 'node:net';
import type { SocketFactory } from '../hbone/socket-factory.ts';
import type { IpPort } from '../mesh/ip-addr.ts';
import type { Workload } from '../mesh/types.ts';
import type { Logger } from '../runtime/logger.ts';
import type { XdsHeldState } from '../xds/client-state.ts';

/** One captured outbound connection the handler claimed. */
export interface OutboundL7Connection {
  readonly source: Workload;
  /** The app's address (pod IP, ephemeral port). */
  readonly src: IpPort;
  /** The original destination the app dialed (a Service VIP:port). */
  readonly dst: IpPort;
  /** Where upstream sockets are made for `source` (its netns in in-pod mode). */
  readonly sockets: SocketFactory;
  /** Aborted when the ztunnel starts draining: stop keeping the connection alive (Connection: close, GOAWAY). */
  readonly drain: AbortSignal;
  /** Aborted when the ztunnel's drain deadline passed: close the connection. */
  readonly signal: AbortSignal;
}

export interface OutboundL7Handler {
  /**
   * Every config the ztunnel accepted over xDS, with the L7 type (routes, L7 policies) subscribed as well.
   * Called before the first `claims`; must not throw.
   */
  onConfig(held: XdsHeldState): void;
  /** True when HTTP routes apply to `dst` for a client `source`: the socket is then given to `serve`. */
  claims(source: Workload, dst: IpPort): boolean;
  /** Serves the socket as HTTP/1.1 or h2c until it closes. Never throws. */
  serve(socket: net.Socket, conn: OutboundL7Connection): Promise<void>;
  /** Closes upstream connections (the ztunnel is stopping). */
  close(): Promise<void>;
}

/** What the ztunnel gives the handler when it builds it (startZtunnel, before the config source starts). */
export interface OutboundL7Env {
  /** The ztunnel's logger: the handler's request lines go to the sidecar's log. */
  readonly logger: Logger;
  /** HBONE port of peers (15008). */
  readonly hbonePort: number;
  readonly network: string;
}

export type OutboundL7Factory = (env: OutboundL7Env) => OutboundL7Handler;
