// The HBONE listeners of this node's workloads: one server per local workload address on the HBONE port,
// presenting that workload's certificate (the loopback stand-in for ztunnel's in-pod listeners; with the BPF
// redirector the same servers listen inside each pod's netns). Reconciled from the mesh view: new local
// workloads get a listener, departed ones are drained, identity changes restart it. Reconciles run one at a
// time so two config updates can never race on one address.

import { formatAuthority } from '../hbone/authority.ts';
import { HboneServer, logHbonePeerError } from '../hbone/server.ts';
import { formatSpiffeId, type SpiffeId, sameSpiffeId } from '../identity/spiffe-id.ts';
import type { WorkloadCertificate } from '../identity/workload-certificate.ts';
import { type MeshView, workloadIdentity } from '../mesh/mesh-view.ts';
import type { Workload } from '../mesh/types.ts';
import type { Logger } from '../runtime/logger.ts';
import { serveHboneConnect } from './inbound.ts';
import type { ProxyContext } from './proxy-context.ts';

interface Listener {
  readonly server: HboneServer;
  readonly identity: SpiffeId;
  readonly uid: string;
}

export interface ListenerStatus {
  readonly address: string;
  readonly workload: string;
  readonly identity: string;
}

export class WorkloadListeners {
  readonly #ctx: ProxyContext;
  readonly #logger: Logger;
  readonly #byIp = new Map<string, Listener>();
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  readonly #hostListeners: boolean;

  /** hostListeners false (in-pod mode): bind nothing; enrolled pods get their listeners in their netns. */
  constructor(ctx: ProxyContext, opts: { hostListeners?: boolean } = {}) {
    this.#ctx = ctx;
    this.#hostListeners = opts.hostListeners ?? true;
    this.#logger = ctx.logger.child({ scope: 'listeners' });
  }

  /** Local workloads that terminate HBONE here. */
  static localWorkloads(view: MeshView, node: string): Workload[] {
    return view.workloadsOnNode(node).filter((w) => w.protocol === 'HBONE' && w.addresses.length > 0);
  }

  /** Brings listeners in line with `view`; resolves when done. Failures are logged per address. */
  reconcile(view: MeshView): Promise<void> {
    const run = this.#queue.then(() => this.#reconcile(view));
    this.#queue = run.catch(() => {});
    return run;
  }

  /** A rotated certificate: listeners presenting that identity switch to it for new handshakes. */
  updateCertificate(cert: WorkloadCertificate): void {
    for (const l of this.#byIp.values()) {
      if (sameSpiffeId(l.identity, cert.identity)) l.server.setCertificate(cert);
    }
  }

  status(): ListenerStatus[] {
    return [...this.#byIp.entries()].map(([ip, l]) => ({
      address: formatAuthority(ip, l.server.address.port),
      workload: l.uid,
      identity: formatSpiffeId(l.identity),
    }));
  }

  async close(graceful: boolean, deadlineMs: number): Promise<void> {
    this.#closed = true;
    await this.#queue;
    const all = [...this.#byIp.values()];
    this.#byIp.clear();
    await Promise.all(all.map((l) => l.server.close({ graceful, deadlineMs })));
  }

  async #reconcile(view: MeshView): Promise<void> {
    if (this.#closed) return;
    const desired = new Map<string, Workload>();
    const local = this.#hostListeners ? WorkloadListeners.localWorkloads(view, this.#ctx.node) : [];
    for (const w of local) {
      for (const ip of w.addresses) desired.set(ip, w);
    }
    const stops: Promise<void>[] = [];
    for (const [ip, l] of this.#byIp) {
      const w = desired.get(ip);
      if (w === undefined || !sameSpiffeId(workloadIdentity(w), l.identity)) {
        this.#byIp.delete(ip);
        this.#logger.info({ address: ip, workload: l.uid }, 'stopping HBONE listener');
        stops.push(l.server.close({ graceful: true, deadlineMs: this.#ctx.drainDeadlineMs }));
      }
    }
    await Promise.all(stops);
    const starts: Promise<void>[] = [];
    for (const [ip, w] of desired) {
      if (!this.#byIp.has(ip)) starts.push(this.#start(ip, w));
    }
    await Promise.all(starts);
  }

  async #start(ip: string, w: Workload): Promise<void> {
    const identity = workloadIdentity(w);
    try {
      const certificate = await this.#ctx.certificates.getCertificate(identity);
      const ctx = this.#ctx;
      const server = await HboneServer.listen({
        host: ip,
        port: ctx.hbonePort,
        certificate,
        onConnect: (req, tunnel) => serveHboneConnect(ctx, req, tunnel),
        onPeerError: (e) => logHbonePeerError(this.#logger, e, 'warn', { address: ip }),
        ...ctx.hboneAdmission,
      });
      if (this.#closed) {
        await server.close({ graceful: false });
        return;
      }
      this.#byIp.set(ip, { server, identity, uid: w.uid });
      this.#logger.info(
        { address: formatAuthority(ip, server.address.port), workload: w.uid, identity: formatSpiffeId(identity) },
        'HBONE listener started',
      );
    } catch (err) {
      const e = err as { code?: string; message?: string };
      this.#logger.error(
        { address: ip, workload: w.uid, code: e.code, error: e.message },
        'cannot start HBONE listener',
      );
    }
  }
}
