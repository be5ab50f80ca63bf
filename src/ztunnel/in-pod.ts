// In-pod mode (docs/architecture.md "How a connection flows through the code"; docs/redirect.md; Istio's src/inpod/{statemanager,workloadmanager}.rs): pods enrolled into
// this ztunnel through the BPF redirector. Per pod: the datapath entry (BpfRedirector.enrollPod), the
// listener fds it creates inside the pod netns, served here (15001 captured outbound, 15006 plaintext
// inbound, 15008 HBONE with the pod's certificate), and a SocketFactory that creates the ztunnel's sockets
// for that pod inside its netns. Enrollments are persisted to a small state file so a restarted ztunnel
// re-opens the listeners and reconciles the pinned datapath against it. Operations run one at a time; an
// enrollment either completes or leaves nothing behind.
import { statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { HboneServer, logHbonePeerError } from '../hbone/server.ts';
import type { SocketFactory } from '../hbone/socket-factory.ts';
import { type PodNetnsSockets, podNetnsSocketFactory } from '../hbone/socket-factory.ts';
import { formatSpiffeId, type SpiffeId, sameSpiffeId } from '../identity/spiffe-id.ts';
import type { WorkloadCertificate } from '../identity/workload-certificate.ts';
import { unmapIpv4 } from '../mesh/ip-addr.ts';
import { workloadIdentity } from '../mesh/mesh-view.ts';
import type { Workload } from '../mesh/types.ts';
import type {
  AcceptedSocket,
  EnrollPodOptions,
  OriginalDestination,
  PodClass,
  PodEnrollment,
  RedirectCounters,
  UnenrollPodOptions,
} from '../redirect-bpf/index.ts';
import { closeFd, openNetns } from '../redirect-bpf/netns.ts';
import { writeFileDurable } from '../runtime/durable-file.ts';
import type { Logger } from '../runtime/logger.ts';
import { InPodError } from './in-pod-errors.ts';
import { serveHboneConnect } from './inbound.ts';
import { servePlaintextInbound } from './inbound-passthrough.ts';
import { serveOutboundSocket } from './outbound-entry.ts';
import type { ProxyContext } from './proxy-context.ts';

/** How long an unenrolled pod's listeners keep accepting what was already redirected to them. */
const UNENROLL_ACCEPT_GRACE_MS = 250;

/** What the in-pod mode needs from the BPF redirector (BpfRedirector implements it). */
export interface PodRedirector {
  enrollPod(opts: EnrollPodOptions): PodEnrollment;
  unenrollPod(opts: UnenrollPodOptions): void;
  lookupOriginalDestination(
    socket: AcceptedSocket,
    opts?: { netnsCookie?: bigint; consume?: boolean },
  ): OriginalDestination | null;
  readCounters(): RedirectCounters;
  reconcileEnrollments(keep: ReadonlySet<bigint>): bigint[];
  registerMissingListeners(enrollment: PodEnrollment): string[];
  /** The fail-closed guard's maps (node agent mode; src/ztunnel/node-agent/classify.ts). */
  setGuardRoot(cgroupId: bigint | null): void;
  guardRoot(): bigint | null;
  classifyCgroup(cgroupId: bigint, cls: PodClass): void;
  unclassifyCgroup(cgroupId: bigint): boolean;
  listClassified(): ReadonlyMap<bigint, PodClass | null>;
  close(): void;
}

/** An enrollment request (the role of istio-cni's ZDS "add workload" message). */
export interface PodEnrollRequest {
  /** The workload's uid in the mesh config (e.g. Kubernetes//Pod/<ns>/<name>). */
  readonly uid: string;
  readonly netnsPath: string;
  readonly cgroupPath: string;
}

export interface EnrolledPod extends PodEnrollRequest {
  readonly podIp: string;
  readonly identity: string;
  /** Decimal string: JSON has no 64-bit integers. */
  readonly cgroupId: string;
}

interface PodState {
  readonly request: PodEnrollRequest;
  readonly podIp: string;
  readonly identity: SpiffeId;
  readonly enrollment: PodEnrollment;
  readonly sockets: PodNetnsSockets;
  readonly outbound: net.Server;
  readonly inbound: net.Server;
  readonly hbone: HboneServer;
}

export interface InPodManagerOptions {
  readonly redirector: PodRedirector;
  /** JSON file of enrollment requests (survives restarts); null: not persisted. */
  readonly statePath: string | null;
}

export class InPodManager {
  readonly #ctx: ProxyContext;
  readonly #redirector: PodRedirector;
  readonly #statePath: string | null;
  readonly #logger: Logger;
  readonly #pods = new Map<string, PodState>();
  /** HBONE servers of unenrolled pods still finishing their tunnels. */
  readonly #retiring = new Set<Promise<void>>();
  /** Netns socket factories of unenrolled pods until their listeners are closed (see #unenroll). */
  readonly #retiringSockets = new Map<string, SocketFactory>();
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(ctx: ProxyContext, opts: InPodManagerOptions) {
    this.#ctx = ctx;
    this.#redirector = opts.redirector;
    this.#statePath = opts.statePath;
    this.#logger = ctx.logger.child({ scope: 'inpod' });
  }

  get redirector(): PodRedirector {
    return this.#redirector;
  }

  /** The pod-netns socket factory of an enrolled workload, else undefined. */
  socketsFor(workload: Workload | null | undefined): SocketFactory | undefined {
    if (workload === null || workload === undefined) return undefined;
    return this.#pods.get(workload.uid)?.sockets ?? this.#retiringSockets.get(workload.uid);
  }

  list(): EnrolledPod[] {
    return [...this.#pods.values()].map(describe);
  }

  /** Enrolls a pod (idempotent for the same paths). Throws InPodError; on failure nothing is left behind. */
  enroll(input: unknown): Promise<EnrolledPod> {
    return this.#serialized(async () => describe(await this.#enroll(parseRequest(input))));
  }

  /** Stops capture for new connections and closes the pod's listeners; live connections continue. */
  unenroll(uid: string): Promise<boolean> {
    return this.#serialized(async () => {
      const removed = this.#unenroll(uid);
      if (removed) await this.#persist();
      return removed;
    });
  }

  /**
   * After a restart: re-enrolls the persisted pods, drops the ones that fail, unpins everything else. With
   * `unpin: false` (the node agent decides from the API) other pinned pods stay captured until unpinStale.
   */
  restore(opts: { unpin?: boolean } = {}): Promise<{ restored: string[]; dropped: string[]; unpinned: string[] }> {
    return this.#serialized(async () => {
      const restored: string[] = [];
      const dropped: string[] = [];
      for (const request of await this.#readState()) {
        try {
          await this.#enroll(request);
          restored.push(request.uid);
        } catch (err) {
          dropped.push(request.uid);
          const e = err as { code?: string; message?: string };
          this.#logger.warn({ uid: request.uid, code: e.code, error: e.message }, 'dropping persisted enrollment');
        }
      }
      const keep = new Set([...this.#pods.values()].map((p) => p.enrollment.cgroupId));
      const unpinned = opts.unpin === false ? [] : this.#redirector.reconcileEnrollments(keep).map(String);
      if (dropped.length > 0) await this.#persist();
      this.#logger.info({ restored, dropped, unpinned }, 'in-pod enrollments reconciled');
      return { restored, dropped, unpinned };
    });
  }

  /** Unpins every pinned pod that is neither enrolled here nor one of `keepCgroupPaths` (missing paths skipped). */
  unpinStale(keepCgroupPaths: readonly string[]): Promise<string[]> {
    return this.#serialized(async () => {
      const keep = new Set([...this.#pods.values()].map((p) => p.enrollment.cgroupId));
      for (const path of keepCgroupPaths) {
        const ino = statSync(path, { bigint: true, throwIfNoEntry: false })?.ino;
        if (ino !== undefined) keep.add(ino);
      }
      const unpinned = this.#redirector.reconcileEnrollments(keep).map(String);
      if (unpinned.length > 0) this.#logger.info({ unpinned }, 'unpinned pods no longer enrolled');
      return unpinned;
    });
  }

  /**
   * Registers the listeners of every pod served here again where their entries vanished (a handover:
   * redirect-bpf/enroll.ts `registerMissingListeners`); logs and returns the pods it took back.
   */
  reclaimListeners(): Promise<string[]> {
    return this.#serialized(async () => {
      const reclaimed: string[] = [];
      for (const [uid, pod] of this.#pods) {
        const maps = this.#redirector.registerMissingListeners(pod.enrollment);
        if (maps.length === 0) continue;
        reclaimed.push(uid);
        this.#logger.info({ uid, podIp: pod.podIp, maps }, 'pod listeners registered again (their entries vanished)');
      }
      return reclaimed;
    });
  }

  /** A rotated certificate: HBONE listeners presenting that identity use it for new handshakes. */
  updateCertificate(cert: WorkloadCertificate): void {
    for (const pod of this.#pods.values()) {
      if (sameSpiffeId(pod.identity, cert.identity)) pod.hbone.setCertificate(cert);
    }
  }

  /**
   * Stops serving every pod (drain) but keeps the datapath pinned: until a ztunnel serves the pods again,
   * their new connections are refused at once (docs/architecture.md "Failure semantics").
   */
  async close(graceful: boolean, deadlineMs: number): Promise<void> {
    this.#closed = true;
    await this.#queue.catch(() => undefined);
    const pods = [...this.#pods.values()];
    this.#pods.clear();
    await Promise.all(pods.map((p) => stopServing(p, { graceful, deadlineMs })));
    await Promise.all(this.#retiring);
  }

  #serialized<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => {
      if (this.#closed) throw new InPodError('FERRY_INPOD_DISABLED', 'ztunnel is shutting down');
      return op();
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #enroll(req: PodEnrollRequest): Promise<PodState> {
    const existing = this.#pods.get(req.uid);
    if (existing !== undefined) {
      if (existing.request.netnsPath === req.netnsPath && existing.request.cgroupPath === req.cgroupPath) {
        return existing;
      }
      throw new InPodError('FERRY_INPOD_CONFLICT', `pod ${req.uid} is already enrolled with other paths`);
    }
    const workload = this.#ctx.store.view.workloadByUid(req.uid);
    if (workload === undefined) {
      throw new InPodError('FERRY_INPOD_UNKNOWN_WORKLOAD', `no workload with uid ${req.uid} in the mesh config`);
    }
    if (workload.node !== this.#ctx.node) {
      throw new InPodError(
        'FERRY_INPOD_NOT_LOCAL',
        `workload ${req.uid} runs on node ${JSON.stringify(workload.node)}, not ${JSON.stringify(this.#ctx.node)}`,
      );
    }
    const podIp = workload.addresses.find((a) => !a.includes(':'));
    if (podIp === undefined) throw new InPodError('FERRY_INPOD_NOT_LOCAL', `workload ${req.uid} has no IPv4 address`);
    for (const other of this.#pods.values()) {
      if (other.podIp === podIp) {
        throw new InPodError('FERRY_INPOD_CONFLICT', `pod IP ${podIp} is already enrolled as ${other.request.uid}`);
      }
    }
    const identity = workloadIdentity(workload);
    const certificate = await this.#ctx.certificates.getCertificate(identity).catch((cause: unknown) => {
      throw new InPodError('FERRY_INPOD_ENROLL_FAILED', `no certificate for ${formatSpiffeId(identity)}`, { cause });
    });
    const state = await this.#attach(req, podIp, identity, certificate);
    this.#pods.set(req.uid, state);
    await this.#persist();
    this.#logger.info(
      { uid: req.uid, podIp, identity: formatSpiffeId(identity), cgroupId: String(state.enrollment.cgroupId) },
      'pod enrolled',
    );
    return state;
  }

  /** Datapath + listeners; undoes everything it did when a step fails. */
  async #attach(
    req: PodEnrollRequest,
    podIp: string,
    identity: SpiffeId,
    certificate: WorkloadCertificate,
  ): Promise<PodState> {
    const fail = (step: string, cause: unknown): InPodError => {
      const e = cause as { code?: string; message?: string };
      return new InPodError(
        'FERRY_INPOD_ENROLL_FAILED',
        `enrolling ${req.uid}: ${step}: ${e.code === undefined ? '' : `${e.code}: `}${e.message ?? String(cause)}`,
        { cause },
      );
    };
    let netnsFd: number;
    try {
      netnsFd = openNetns(req.netnsPath);
    } catch (cause) {
      throw fail('network namespace', cause);
    }
    const sockets = podNetnsSocketFactory(netnsFd);
    let enrollment: PodEnrollment;
    try {
      enrollment = this.#redirector.enrollPod({ netnsPath: req.netnsPath, cgroupPath: req.cgroupPath, podIp });
    } catch (cause) {
      sockets.close();
      throw fail('datapath', cause);
    }
    const fds = enrollment.listeners;
    const started: Array<net.Server | HboneServer> = [];
    try {
      const outbound = await listenFd(fds.outbound, (socket) => this.#onOutbound(req.uid, podIp, enrollment, socket));
      started.push(outbound);
      const inbound = await listenFd(fds.inboundPlaintext, (socket) => {
        const dst = { ip: unmapIpv4(socket.localAddress ?? ''), port: socket.localPort ?? 0 };
        void servePlaintextInbound(this.#ctx, socket, dst);
      });
      started.push(inbound);
      const ctx = this.#ctx;
      const hbone = await HboneServer.listen({
        fd: fds.hbone,
        certificate,
        onConnect: (r, tunnel) => serveHboneConnect(ctx, r, tunnel),
        onPeerError: (e) => logHbonePeerError(this.#logger, e, 'warn', { uid: req.uid }),
        ...ctx.hboneAdmission,
      });
      return { request: req, podIp, identity, enrollment, sockets, outbound, inbound, hbone };
    } catch (cause) {
      // Servers own their fds once listening; close the rest by hand.
      for (const s of started) await closeAny(s);
      for (const fd of [fds.outbound, fds.inboundPlaintext, fds.hbone].slice(started.length)) closeFd(fd);
      try {
        this.#redirector.unenrollPod({ cgroupId: enrollment.cgroupId });
      } catch {
        // best effort: the original error is what the caller needs
      }
      sockets.close();
      throw fail('in-pod listeners', cause);
    }
  }

  #onOutbound(uid: string, podIp: string, enrollment: PodEnrollment, socket: net.Socket): void {
    socket.on('error', ignore);
    let orig: OriginalDestination | null;
    try {
      orig = this.#redirector.lookupOriginalDestination(socket, {
        netnsCookie: enrollment.netnsCookie,
        consume: true,
      });
    } catch (err) {
      orig = null;
      this.#logger.error({ uid, error: (err as Error).message }, 'original destination lookup failed');
    }
    const source = this.#ctx.store.view.workloadByUid(uid);
    if (orig === null || source === undefined) {
      // Refuse at once: a reset, never a hang.
      socket.resetAndDestroy();
      this.#logger.warn(
        {
          code: orig === null ? 'FERRY_INPOD_NO_ORIGINAL_DST' : 'FERRY_UNKNOWN_SOURCE',
          uid,
          src: `${socket.remoteAddress}:${socket.remotePort}`,
        },
        'captured connection refused',
      );
      return;
    }
    void serveOutboundSocket(this.#ctx, source, socket, {
      src: { ip: podIp, port: socket.remotePort ?? 0 },
      dst: { ip: orig.address, port: orig.port },
    });
  }

  #unenroll(uid: string): boolean {
    const pod = this.#pods.get(uid);
    if (pod === undefined) return false;
    this.#pods.delete(uid);
    try {
      this.#redirector.unenrollPod({ cgroupId: pod.enrollment.cgroupId });
    } catch (err) {
      this.#logger.error({ uid, error: (err as Error).message }, 'datapath unenroll failed');
    }
    // New connections go direct from now on; tunnels already open finish on their own. The listeners stay
    // open a moment: connections redirected just before the capture stopped may still sit in their accept
    // queues, and closing a listening socket resets those (a client would see ECONNRESET at connect).
    // Until then their upstream sockets must still be made in the pod's netns: the caller's fallback (the
    // host netns) would send the pod's traffic out of the host's own network.
    this.#retiringSockets.set(uid, pod.sockets);
    const done = delay(UNENROLL_ACCEPT_GRACE_MS)
      .then(() => stopServing(pod, { graceful: true, deadlineMs: this.#ctx.drainDeadlineMs }))
      .finally(() => {
        if (this.#retiringSockets.get(uid) === pod.sockets) this.#retiringSockets.delete(uid);
      });
    this.#retiring.add(done);
    void done.finally(() => this.#retiring.delete(done));
    this.#logger.info({ uid, podIp: pod.podIp }, 'pod unenrolled');
    return true;
  }

  async #readState(): Promise<PodEnrollRequest[]> {
    if (this.#statePath === null) return [];
    let text: string;
    try {
      text = await readFile(this.#statePath, 'utf8');
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return [];
      throw err;
    }
    const parsed: unknown = JSON.parse(text);
    const pods = typeof parsed === 'object' && parsed !== null && 'pods' in parsed ? parsed.pods : [];
    const out: PodEnrollRequest[] = [];
    for (const entry of Array.isArray(pods) ? pods : []) {
      try {
        out.push(parseRequest(entry));
      } catch (err) {
        this.#logger.warn({ error: (err as Error).message }, 'ignoring a malformed persisted enrollment');
      }
    }
    return out;
  }

  async #persist(): Promise<void> {
    if (this.#statePath === null) return;
    const pods = [...this.#pods.values()].map((p) => p.request);
    await mkdir(dirname(this.#statePath), { recursive: true });
    // Durable before the enrollment is acknowledged: a crash never leaves half a file or loses the rename.
    await writeFileDurable(this.#statePath, `${JSON.stringify({ pods }, null, 2)}\n`, 0o644);
  }
}

/** Validates untrusted input (the admin API's JSON body, the state file). */
export function parseRequest(input: unknown): PodEnrollRequest {
  if (typeof input !== 'object' || input === null) {
    throw new InPodError('FERRY_INPOD_BAD_REQUEST', 'expected a JSON object {uid, netnsPath, cgroupPath}');
  }
  const fields: Record<string, string> = {};
  for (const key of ['uid', 'netnsPath', 'cgroupPath'] as const) {
    const value: unknown = Reflect.get(input, key);
    if (typeof value !== 'string' || value === '' || value.length > 4096 || value.includes('\0')) {
      throw new InPodError('FERRY_INPOD_BAD_REQUEST', `${key}: expected a non-empty string`);
    }
    if (key !== 'uid' && !value.startsWith('/')) {
      throw new InPodError(
        'FERRY_INPOD_BAD_REQUEST',
        `${key}: expected an absolute path, got ${JSON.stringify(value)}`,
      );
    }
    fields[key] = value;
  }
  return { uid: fields.uid ?? '', netnsPath: fields.netnsPath ?? '', cgroupPath: fields.cgroupPath ?? '' };
}

function describe(p: PodState): EnrolledPod {
  return {
    ...p.request,
    podIp: p.podIp,
    identity: formatSpiffeId(p.identity),
    cgroupId: String(p.enrollment.cgroupId),
  };
}

async function stopServing(pod: PodState, opts: { graceful: boolean; deadlineMs: number }): Promise<void> {
  await Promise.all([closeAny(pod.outbound), closeAny(pod.inbound), pod.hbone.close(opts)]);
  pod.sockets.close();
}

function listenFd(fd: number, onSocket: (socket: net.Socket) => void): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, onSocket);
    server.once('error', reject);
    server.listen({ fd }, () => {
      server.off('error', reject);
      server.on('error', ignore);
      resolve(server);
    });
  });
}

function closeAny(server: net.Server | HboneServer): Promise<void> {
  if (server instanceof HboneServer) return server.close({ graceful: false });
  return new Promise((resolve) => server.close(() => resolve()));
}

function ignore(): void {}
