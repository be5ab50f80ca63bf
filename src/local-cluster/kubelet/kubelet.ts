// The local cluster's kubelet (`ferry kubelet --cluster NAME --node NODE`, docs/architecture.md "Bare
// cluster"): makes the pods the API binds to its node exist on the host. Level-triggered: an informer on
// `pods?fieldSelector=spec.nodeName=<node>` keeps the wanted pods, and one pass at a time (after each
// event, else every 500 ms) compares them with the running ones (kubelet-state.ts): pods gone or marked
// for deletion are stopped within their grace period and then deleted for good (grace 0); new ones get a
// sandbox and containers (pod-runtime.ts); running ones get container restarts (container-sync.ts) and a
// /status write when their status changed (pod-status.ts). At start it adopts what its predecessor left
// running: no pod restarts when the kubelet is killed and started again.
import type { KubeConfig } from '@kubernetes/client-node';
import { isJson, type Json, type KubeClient } from '../../kube/client.ts';
import { KubeError } from '../../kube/errors.ts';
import { KubeInformer } from '../../kube/informer.ts';
import type { Logger } from '../../runtime/logger.ts';
import { k8sTime } from '../apiserver/objects.ts';
import { MAX_PODS_PER_NODE } from '../layout.ts';
import { type ContainerHistory, syncContainers } from './container-sync.ts';
import { KubeletStateWriter, loadKubeletState } from './kubelet-state.ts';
import { lowestFreeHost } from './naming.ts';
import { readyNodeStatus } from './node-status.ts';
import { podQosClass } from './pod-qos.ts';
import {
  createSandbox,
  destroyPod,
  planRuntimePod,
  type RuntimeContext,
  type RuntimePod,
  startPodContainer,
} from './pod-runtime.ts';
import {
  graceSecondsOf,
  isTerminating,
  type PodPlacementFacts,
  podContainers,
  podIdentity,
  restartPolicyOf,
  specOf,
  usesHostNetwork,
} from './pod-spec.ts';
import { podStatus } from './pod-status.ts';
import { writePodVolumes } from './pod-volume-files.ts';
import { podVolumes } from './pod-volumes.ts';

const PASS_INTERVAL_MS = 500;
/** Upper bound on a deletion's grace, so one stubborn pod cannot hold the node's cleanup for long. */
const MAX_GRACE_MS = 30_000;
const CREATE_RETRY_MS = 5_000;

export interface KubeletOptions {
  readonly ctx: RuntimeContext;
  readonly client: KubeClient;
  readonly config: KubeConfig;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** The node's InternalIP (hostIP of its pods). */
  readonly hostIp: string;
}

export class Kubelet {
  readonly #o: KubeletOptions;
  readonly #wanted = new Map<string, Json>();
  readonly #running = new Map<string, RuntimePod>();
  readonly #stopping = new Set<string>();
  readonly #history = new Map<string, ContainerHistory>();
  readonly #written = new Map<string, string>();
  readonly #createFailed = new Map<string, { atMs: number; message: string }>();
  /** uid → when its volumes are due to be written again (tokens rotated, ConfigMaps re-read). */
  readonly #volumesDueMs = new Map<string, number>();
  readonly #state: KubeletStateWriter;
  #wake: PromiseWithResolvers<void> = Promise.withResolvers();

  constructor(opts: KubeletOptions) {
    this.#o = opts;
    this.#state = new KubeletStateWriter(opts.ctx.layout.stateDir, opts.ctx.nodeName);
  }

  /** Adopts, registers the node's status, watches, and runs passes until the signal aborts. */
  async run(): Promise<void> {
    const { ctx, log, signal } = this.#o;
    for (const pod of loadKubeletState(ctx.layout.stateDir, ctx.nodeName)) {
      if (pod.phase === 'running') this.#running.set(pod.uid, pod);
      else await destroyPod(ctx, pod, 0, signal); // half-made by a killed kubelet: made again below
    }
    await this.#state.save(this.#running.values());
    log.info({ node: ctx.nodeName, adopted: this.#running.size }, 'kubelet starting');
    await this.#reportNodeReady();
    const selector = encodeURIComponent(`spec.nodeName=${ctx.nodeName}`);
    const informer = new KubeInformer({
      config: this.#o.config,
      client: this.#o.client,
      path: `/api/v1/pods?fieldSelector=${selector}`,
      log,
      handlers: {
        upsert: (o) => this.#upsert(o),
        remove: (o) => this.#remove(o),
      },
    });
    await informer.start(signal);
    try {
      while (!signal.aborted) {
        await this.#pass().catch((err: unknown) =>
          log.error({ error: String((err as Error)?.stack ?? err) }, 'pass failed'),
        );
        this.#wake = Promise.withResolvers();
        const timer = setTimeout(() => this.#wake.resolve(), PASS_INTERVAL_MS);
        const onAbort = () => this.#wake.resolve();
        signal.addEventListener('abort', onAbort, { once: true });
        await this.#wake.promise;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      }
    } finally {
      informer.stop();
    }
  }

  #upsert(o: Json): void {
    const id = podIdentity(o);
    if (id === null) return;
    this.#wanted.set(id.uid, o);
    this.#wake.resolve();
  }

  #remove(o: Json): void {
    const id = podIdentity(o);
    if (id === null) return;
    this.#wanted.delete(id.uid);
    this.#wake.resolve();
  }

  async #pass(): Promise<void> {
    for (const [uid, pod] of this.#running) {
      const wanted = this.#wanted.get(uid);
      if (wanted === undefined || isTerminating(wanted)) this.#stop(pod, wanted);
    }
    for (const [uid, pod] of this.#wanted) {
      if (this.#running.has(uid) || this.#stopping.has(uid)) continue;
      if (isTerminating(pod)) {
        // Marked for deletion and nothing of it runs here (stopped already, or never started): finish it.
        const id = podIdentity(pod);
        if (id !== null) await this.#finishDeletion(id);
        continue;
      }
      const phase = isJson(pod.status) ? pod.status.phase : undefined;
      if (phase === 'Succeeded' || phase === 'Failed') continue;
      const failed = this.#createFailed.get(uid);
      if (failed !== undefined && Date.now() - failed.atMs < CREATE_RETRY_MS) continue;
      await this.#create(pod);
    }
    for (const [uid, pod] of this.#running) {
      const wanted = this.#wanted.get(uid);
      if (wanted === undefined || this.#stopping.has(uid) || isTerminating(wanted)) continue;
      await this.#sync(pod, wanted);
    }
  }

  async #create(wanted: Json): Promise<void> {
    const { ctx, log, signal } = this.#o;
    const id = podIdentity(wanted);
    if (id === null) return;
    const hostNetwork = usesHostNetwork(wanted);
    const used = new Set([...this.#running.values()].map((p) => p.hostNumber).filter((n): n is number => n !== null));
    const hostNumber = hostNetwork ? null : lowestFreeHost(used, MAX_PODS_PER_NODE + 1);
    if (!hostNetwork && hostNumber === null) {
      this.#createFailed.set(id.uid, { atMs: Date.now(), message: 'no pod IP left on the node' });
      return;
    }
    const now = k8sTime(new Date());
    let pod = planRuntimePod(ctx, { ...id, qos: podQosClass(specOf(wanted)), hostNetwork, hostNumber }, now);
    const containers = podContainers(wanted, ctx.ferryArgv, this.#facts(pod));
    if (!containers.ok) {
      this.#createFailed.set(id.uid, { atMs: Date.now(), message: containers.message });
      await this.#writeStatus(wanted, pendingStatus(wanted, 'CreateContainerConfigError', containers.message));
      return;
    }
    // Volumes before anything runs: a container must find its token and ConfigMap files at start.
    const volumes = await this.#writeVolumes(wanted);
    if (volumes !== null) {
      this.#createFailed.set(id.uid, { atMs: Date.now(), message: volumes });
      await this.#writeStatus(wanted, pendingStatus(wanted, 'ContainerCreating', volumes));
      return;
    }
    this.#running.set(id.uid, pod);
    await this.#state.save(this.#running.values()); // before anything exists (journal-first, like state.ts)
    try {
      pod = await createSandbox(ctx, pod);
      const started = [];
      for (const c of containers.containers) {
        const s = await startPodContainer(ctx, pod, c);
        started.push({ name: c.name, image: c.image, ...s, startedAt: now, restartCount: 0, lastTermination: null });
      }
      pod = { ...pod, phase: 'running', containers: started };
      this.#running.set(id.uid, pod);
      await this.#state.save(this.#running.values());
      this.#createFailed.delete(id.uid);
      log.info({ pod: `${id.namespace}/${id.name}`, ip: pod.ip, slice: pod.sliceDir }, 'pod started');
    } catch (err) {
      log.error({ pod: `${id.namespace}/${id.name}`, error: String(err) }, 'pod creation failed; retrying');
      this.#createFailed.set(id.uid, { atMs: Date.now(), message: String((err as Error).message ?? err) });
      await destroyPod(ctx, pod, 0, signal).catch(() => undefined);
      this.#running.delete(id.uid);
      await this.#state.save(this.#running.values());
    }
  }

  /** The downward-API facts of a pod of this node, and where its volumes live. */
  #facts(pod: RuntimePod): PodPlacementFacts {
    const { ctx, hostIp } = this.#o;
    return { podIp: pod.ip ?? hostIp, hostIp, nodeName: ctx.nodeName, stateDir: ctx.layout.stateDir };
  }

  /** Writes the pod's volumes when they are due (always for a new pod); null, or why they could not be. */
  async #writeVolumes(wanted: Json): Promise<string | null> {
    const id = podIdentity(wanted);
    const volumes = podVolumes(wanted);
    if (id === null || !volumes.ok || volumes.volumes.length === 0) return volumes.ok ? null : volumes.message;
    const nowMs = Date.now();
    if ((this.#volumesDueMs.get(id.uid) ?? 0) > nowMs) return null;
    const sa = specOf(wanted).serviceAccountName;
    const owner = { ...id, serviceAccount: typeof sa === 'string' && sa !== '' ? sa : 'default' };
    const { client, ctx, signal } = this.#o;
    const written = await writePodVolumes(client, ctx.layout.stateDir, owner, volumes.volumes, nowMs, signal).catch(
      (err: unknown) => ({ ok: false, message: String((err as Error).message ?? err) }) as const,
    );
    this.#volumesDueMs.set(id.uid, written.ok ? written.refreshAtMs : nowMs + CREATE_RETRY_MS);
    if (!written.ok) return written.message;
    return null;
  }

  async #sync(pod: RuntimePod, wanted: Json): Promise<void> {
    const { ctx, log, signal } = this.#o;
    const containers = podContainers(wanted, ctx.ferryArgv, this.#facts(pod));
    const specs = containers.ok ? containers.containers : [];
    // Rotate tokens, follow ConfigMap changes; a failure keeps the files the containers already have.
    const volumes = await this.#writeVolumes(wanted);
    if (volumes !== null) log.warn({ pod: `${pod.namespace}/${pod.name}`, error: volumes }, 'volumes not refreshed');
    const nowMs = Date.now();
    const result = await syncContainers(
      ctx,
      pod,
      specs,
      restartPolicyOf(wanted),
      this.#history,
      { ms: nowMs, iso: k8sTime(new Date(nowMs)) },
      signal,
    );
    if (result.changed) {
      this.#running.set(pod.uid, result.pod);
      await this.#state.save(this.#running.values());
    }
    const previous = isJson(wanted.status) ? wanted.status : {};
    const status = podStatus(
      {
        podIp: pod.ip ?? this.#o.hostIp,
        hostIp: this.#o.hostIp,
        qosClass: pod.qos,
        startTime: pod.startTime,
        sandboxReady: pod.sandbox !== null,
        containers: result.views,
      },
      previous,
      k8sTime(new Date(nowMs)),
    );
    await this.#writeStatus(wanted, status);
  }

  /** Stops a pod in the background (grace period), then deletes its API object for good. */
  #stop(pod: RuntimePod, wanted: Json | undefined): void {
    if (this.#stopping.has(pod.uid)) return;
    this.#stopping.add(pod.uid);
    const { ctx, log, signal } = this.#o;
    const graceMs = wanted === undefined ? 0 : Math.min(graceSecondsOf(wanted) * 1000, MAX_GRACE_MS);
    void (async () => {
      try {
        await destroyPod(ctx, pod, graceMs, signal);
        this.#running.delete(pod.uid);
        for (const c of pod.containers) this.#history.delete(`${pod.uid}/${c.name}`);
        this.#written.delete(pod.uid);
        this.#volumesDueMs.delete(pod.uid);
        await this.#state.save(this.#running.values());
        log.info({ pod: `${pod.namespace}/${pod.name}` }, 'pod stopped and removed');
        if (wanted !== undefined) await this.#finishDeletion(pod).catch(() => undefined); // retried by a pass
      } catch (err) {
        log.error({ pod: `${pod.namespace}/${pod.name}`, error: String(err) }, 'pod removal failed; retrying');
      } finally {
        this.#stopping.delete(pod.uid);
        this.#wake.resolve();
      }
    })();
  }

  async #finishDeletion(pod: { namespace: string; name: string; uid: string }): Promise<void> {
    const path = `/api/v1/namespaces/${pod.namespace}/pods/${pod.name}`;
    const body = { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid: pod.uid } };
    await this.#o.client.request('DELETE', path, { json: body }, this.#o.signal).catch(ignoreGone);
  }

  async #writeStatus(wanted: Json, status: Json): Promise<void> {
    const id = podIdentity(wanted);
    if (id === null) return;
    const text = JSON.stringify(status);
    if (this.#written.get(id.uid) === text) return;
    const current = isJson(wanted.status) ? JSON.stringify(wanted.status) : '';
    if (current === text) {
      this.#written.set(id.uid, text);
      return;
    }
    const body = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: id.name, namespace: id.namespace, uid: id.uid },
      status,
    };
    const path = `/api/v1/namespaces/${id.namespace}/pods/${id.name}/status`;
    await this.#o.client
      .request('PUT', path, { json: body }, this.#o.signal)
      .then(() => this.#written.set(id.uid, text), ignoreGone);
  }

  async #reportNodeReady(): Promise<void> {
    const { ctx, client, signal } = this.#o;
    const path = `/api/v1/nodes/${ctx.nodeName}`;
    const node = await client.get(path, signal);
    const status = readyNodeStatus(ctx.nodeName, this.#o.hostIp, k8sTime(new Date()));
    await client.request('PUT', `${path}/status`, { json: { ...node, status } }, signal);
  }
}

function pendingStatus(pod: Json, reason: string, message: string): Json {
  const previous = isJson(pod.status) ? pod.status : {};
  return {
    ...previous,
    phase: 'Pending',
    qosClass: podQosClass(specOf(pod)),
    containerStatuses: (Array.isArray(specOf(pod).containers) ? (specOf(pod).containers as unknown[]) : [])
      .filter(isJson)
      .map((c) => ({
        name: c.name,
        image: c.image ?? '',
        imageID: '',
        ready: false,
        started: false,
        restartCount: 0,
        state: { waiting: { reason, message } },
        lastState: {},
      })),
  };
}

// The pod went away meanwhile (404), or is another pod of that name by now (409 on the uid precondition).
function ignoreGone(err: unknown): void {
  if (err instanceof KubeError && (err.status === 404 || err.status === 409)) return;
  throw err;
}
