// Feeds the MeshStore from the controller over delta xDS (docs/architecture.md "Configuration distribution (delta xDS)"): the `--xds-address` alternative
// to ConfigFileSource, with the same shape (`load()` for the initial sync, `loads`), so app.ts can pick
// either by flag. The first load() resolves once both types are synced (readiness waits on it); later
// loads report the current state, since xDS config arrives by push, not by re-reading.
import { readFile } from 'node:fs/promises';
import { parseIpAddr } from '../mesh/ip-addr.ts';
import type { MeshStore } from '../mesh/mesh-store.ts';
import type { Logger } from '../runtime/logger.ts';
import { XdsClient, type XdsClientStatus } from '../xds/client.ts';
import type { XdsHeldState } from '../xds/client-state.ts';
import { L7_TYPE_URL, ZTUNNEL_TYPE_URLS } from '../xds/proto.ts';
import type { LoadOutcome } from './config-file-source.ts';

export interface ConfigXdsSourceOptions {
  /** `--xds-address host:port` (IPv6 as `[::1]:15012`). */
  readonly address: string;
  /** `--xds-root`: PEM file of the root(s) that sign the controller's certificate; null = plaintext. */
  readonly rootPath: string | null;
  /** This ztunnel's IP, for Node.id `ztunnel~<ip>~<node>`. */
  readonly ip: string;
  /** Node name, sent as Node.metadata NODE_NAME. */
  readonly node: string;
  /** Node.id other than the node proxy's `ztunnel~<ip>~<node>` (a sidecar names its pod). */
  readonly nodeId?: string;
  readonly clusterId?: string;
  /** Name the controller's certificate must carry when it differs from the address host. */
  readonly serverName?: string;
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /**
   * Sidecar L7 (outbound-l7.ts): also subscribe to the L7 type (routes, L7 policies) and hand everything
   * held to this listener after each accepted response.
   */
  readonly onHeld?: (held: XdsHeldState) => void;
}

export type XdsAddressResult =
  | { readonly ok: true; readonly host: string; readonly port: number }
  | { readonly ok: false; readonly error: string };

/** Parses `host:port` / `[v6]:port`; host is a DNS name or an IP. For the `--xds-address` flag. */
export function parseXdsAddress(text: string): XdsAddressResult {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(text);
  const port = m === null ? Number.NaN : Number(m[3]);
  if (m === null || !(port >= 1 && port <= 65535)) {
    return { ok: false, error: `expected host:port (IPv6 as [addr]:port), got ${JSON.stringify(text)}` };
  }
  if (m[1] !== undefined) {
    const ip = parseIpAddr(m[1]);
    return ip.ok ? { ok: true, host: ip.value, port } : { ok: false, error: ip.error };
  }
  return { ok: true, host: m[2] ?? '', port };
}

/** Istio's Node.id shape, shortened: `ztunnel~<ip>~<node>`. */
export function xdsNodeId(ip: string, node: string): string {
  return `ztunnel~${ip}~${node}`;
}

export class ConfigXdsSource {
  readonly #opts: ConfigXdsSourceOptions;
  readonly #store: MeshStore;
  readonly #logger: Logger;
  #client: XdsClient | null = null;
  #loads = 0;

  constructor(opts: ConfigXdsSourceOptions, store: MeshStore, logger: Logger) {
    this.#opts = opts;
    this.#store = store;
    this.#logger = logger.child({ scope: 'config' });
  }

  get address(): string {
    return this.#opts.address;
  }

  /** Accepted xDS responses so far. */
  get loads(): number {
    return this.#loads;
  }

  /** First call: connect and wait for the first ACKed response of each type (or `signal`). */
  async load(signal?: AbortSignal): Promise<LoadOutcome> {
    if (this.#client === null) {
      const parsed = parseXdsAddress(this.#opts.address);
      if (!parsed.ok) return this.#fail(`--xds-address: ${parsed.error}`);
      let rootCertPem: string | null = null;
      if (this.#opts.rootPath !== null) {
        try {
          rootCertPem = await readFile(this.#opts.rootPath, 'utf8');
        } catch (err) {
          return this.#fail(`${this.#opts.rootPath}: cannot read the xDS root: ${(err as Error).message}`);
        }
      }
      const client = new XdsClient({
        address: this.#opts.address,
        tls:
          rootCertPem === null
            ? null
            : { rootCertPem, ...(this.#opts.serverName ? { serverName: this.#opts.serverName } : {}) },
        nodeId: this.#opts.nodeId ?? xdsNodeId(this.#opts.ip, this.#opts.node),
        nodeName: this.#opts.node,
        ...(this.#opts.clusterId === undefined ? {} : { clusterId: this.#opts.clusterId }),
        ...(this.#opts.backoff === undefined ? {} : { backoff: this.#opts.backoff }),
        store: this.#store,
        log: this.#logger,
        ...(this.#opts.onHeld === undefined
          ? {}
          : { types: [...ZTUNNEL_TYPE_URLS, L7_TYPE_URL], onHeld: this.#opts.onHeld }),
        onResponse: (e) => {
          if (e.accepted) this.#loads++;
        },
      });
      this.#client = client;
      await client.start();
      this.#logger.info({ xds: this.#opts.address, tls: rootCertPem !== null }, 'waiting for config from xDS');
    }
    try {
      await this.#client.whenSynced(signal);
    } catch (err) {
      return { ok: false, errors: [`xDS ${this.#opts.address}: not synced: ${String(err)}`] };
    }
    return { ok: true, version: this.#store.view.version };
  }

  /** For /config_dump; null before the first load. */
  status(): XdsClientStatus | null {
    return this.#client?.status() ?? null;
  }

  async close(): Promise<void> {
    await this.#client?.close();
  }

  #fail(message: string): LoadOutcome {
    this.#logger.error({ code: 'FERRY_CONFIG_UNREADABLE', xds: this.#opts.address }, message);
    return { ok: false, errors: [message] };
  }
}
