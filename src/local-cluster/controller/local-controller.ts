// The local cluster's controller process (`ferry controller --cluster <name>`, docs/architecture.md "Processes and ports", "Local cluster"): manifest
// source (+ `ferry label` overrides) → placement from the runtime's journal and persistent VIPs → translate
// → delta xDS to every node ztunnel, the node-bound CA, and enrollment reconciliation after every publish.
// Everything listens on 127.0.0.1 only: xDS is PLAINTEXT in local mode (loopback, one machine, root-only
// state dir); the CA is TLS as always (tokens travel over it); the admin API (admin-api.ts) is plain HTTP.
// Addresses and tokens come from mesh.json, written by `ferry up`, so a restarted controller comes back on
// the same ports with the same CA root, VIPs and labels, and ztunnels reconnect to it. What users changed
// (apply/delete/label) and the enrollments are in controller-state.json (state-store.ts), committed before
// a change takes effect; a restart loads it first (a bad file stops the start with an error naming it) and
// answers xDS only from its first publish of that state, never with an empty or partial snapshot.
import { join } from 'node:path';
import { MeshController } from '../../controller/controller.ts';
import { ManifestSource } from '../../controller/sources/manifest-source.ts';
import { type Diagnostic, formatDiagnostic } from '../../controller/sources/types.ts';
import { startXdsServer, type XdsServer } from '../../controller/xds-server.ts';
import { nodeBoundAuthorizer } from '../../identity/ca-authz.ts';
import { type CaServer, startCaServer } from '../../identity/ca-server.ts';
import type { Logger } from '../../runtime/logger.ts';
import { parseHostPort } from '../../runtime/process-config.ts';
import { ADDRESS_TYPE_URL, L7_TYPE_URL, ZTUNNEL_TYPE_URLS } from '../../xds/proto.ts';
import { podPhase, readMigrationPhases } from '../migration-state.ts';
import { loadState, podsOf } from '../state.ts';
import { keepLatestDiagnostics } from './diagnostic-history.ts';
import { desiredEnrollments, EnrollmentReconciler, enrollmentPaths, gateHbone, withEnrolled } from './enrollment.ts';
import { isChangeRecord, LabeledSource } from './labeled-source.ts';
import {
  adminSocketPath,
  LABELS_FILE,
  type LocalMeshConfig,
  loadOrCreateCa,
  readJsonMap,
  readMeshConfig,
} from './mesh-files.ts';
import { LocalPlacement } from './placement.ts';
import { ControllerStateStore } from './state-store.ts';

export interface LocalController extends AsyncDisposable {
  readonly config: LocalMeshConfig;
  readonly stateDir: string;
  readonly mesh: MeshController;
  readonly source: LabeledSource;
  /** The durable state: changes are committed here before they take effect. */
  readonly store: ControllerStateStore;
  readonly placement: LocalPlacement;
  readonly xds: XdsServer;
  readonly ca: CaServer;
  readonly enrollment: EnrollmentReconciler;
  readonly log: Logger;
  /** Diagnostics of the initial load and of applies/deletes since: latest per (file, object), bounded. */
  readonly diagnostics: readonly Diagnostic[];
  /** Resolves once every connected ztunnel ACKed the current generation of every type (and all nodes are connected). */
  whenXdsConverged(signal: AbortSignal): Promise<void>;
  /** Whether every node's ztunnel is connected and ACKed the current config. */
  xdsConverged(): boolean;
  close(): Promise<void>;
}

/** How long an unenrollment waits for every ztunnel to ACK first (a dead ztunnel must not block it). */
const UNENROLL_ACK_WAIT_MS = 5_000;

export async function startLocalController(stateDir: string, log: Logger): Promise<LocalController> {
  const config = await readMeshConfig(stateDir);
  // First: a damaged state file must stop the start before anything listens (FERRY_LOCAL_BAD_STATE).
  const store = await ControllerStateStore.open(stateDir, {
    labels: await readJsonMap(join(stateDir, LABELS_FILE), isChangeRecord), // a cluster from before the store
  });
  log.info(
    store.restored === null
      ? { file: store.file }
      : { file: store.file, objects: store.restored.objects.length, labels: store.restored.labels.size },
    store.restored === null ? 'no controller state yet: starting from the manifests' : 'controller state restored',
  );
  const ca = await loadOrCreateCa(stateDir, config.trustDomain);
  const diagnostics: Diagnostic[] = [];
  const manifests = new ManifestSource({
    paths: config.manifests,
    store: store.objectStore(),
    onDiagnostics: (list) => {
      for (const d of list) {
        const line = formatDiagnostic(d);
        if (d.severity === 'error') log.error({ code: d.code, object: d.object, file: d.file }, line);
        else log.warn({ code: d.code, object: d.object, file: d.file }, line);
      }
      // In place: the controller object hands out this array. Latest per (file, object), capped.
      diagnostics.splice(0, diagnostics.length, ...keepLatestDiagnostics(diagnostics, list));
    },
  });
  const source = new LabeledSource(manifests, store);
  const placement = await LocalPlacement.open(stateDir, log);
  // The ztunnels get the translated config gated by enrollment (gateHbone): republished as pods enroll.
  let translated: Parameters<XdsServer['publish']>[0] | null = null;
  let native: ReadonlySet<string> = new Set();
  let xds: XdsServer | null = null;
  const publishGated = (): void => {
    if (translated === null || xds === null) return;
    xds.publish(gateHbone(translated, enrollment.enrolled(), native));
    xds.startServing(); // from the first complete publish of the loaded state on (idempotent)
  };
  const onEnrolledChange = (): void => {
    publishGated();
    // Kept so that a restart announces the same pods as HBONE at once (not TCP until each ztunnel answers).
    store
      .update((s) => ({ ...s, enrolled: enrollment.enrolledByNode() }))
      .catch((err: unknown) => {
        log.error({ error: String(err) }, 'could not persist the enrolled pods');
      });
  };
  const enrollment = new EnrollmentReconciler(
    config.nodes.map((n) => ({ name: n.name, adminSocket: adminSocketPath(stateDir, `ztunnel-${n.name}`) })),
    log,
    onEnrolledChange,
    store.current.enrolled,
  );
  const ackWaiters = new Set<() => void>();
  const wakeAckWaiters = () => {
    for (const w of [...ackWaiters]) {
      ackWaiters.delete(w);
      w();
    }
  };
  const xdsAddr = parseHostPort(config.controller.xds, 'controller xds address');
  const xdsServer = await startXdsServer({
    host: xdsAddr.host,
    port: xdsAddr.port,
    tls: null,
    log,
    onAck: wakeAckWaiters,
    deferServing: true,
  });
  xds = xdsServer;
  const cleanup: (() => Promise<void>)[] = [() => xdsServer.close()];
  try {
    const nodes = config.nodes.map((n) => n.name);
    /** Every connected ztunnel ACKed the current config (a disconnected one gets it when it reconnects). */
    const connectedAcked = (): boolean =>
      xdsServer
        .clients()
        .every((c) => subscriptionsOf(c).every((t) => c.types.some((s) => s.typeUrl === t && s.upToDate)));
    const xdsConverged = (): boolean => {
      const clients = xdsServer.clients();
      return nodes.every((n) => clients.some((c) => c.nodeId.endsWith(`~${n}`))) && connectedAcked();
    };
    const whenXdsConverged = (signal: AbortSignal): Promise<void> => waitForAcks(xdsConverged, signal);
    const waitForAcks = async (done: () => boolean, signal: AbortSignal): Promise<void> => {
      while (!done()) {
        signal.throwIfAborted();
        await new Promise<void>((resolve, reject) => {
          const onAbort = () => {
            ackWaiters.delete(done);
            reject(signal.reason);
          };
          const done = () => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          };
          signal.addEventListener('abort', onAbort, { once: true });
          ackWaiters.add(done);
        });
      }
    };
    const mesh: MeshController = new MeshController({
      source,
      placement,
      publisher: {
        publish: (config, result) => {
          translated = config;
          native = nativeHbone(result);
          if (result !== undefined) xds?.publishL7(result.l7);
          publishGated();
        },
      },
      settings: {
        trustDomain: config.trustDomain,
        // The pods created with Ferry's sidecar, re-read from the runtime's journal at every translation
        // (a getter: the settings object is spread per run). Injection was decided at creation, so a later
        // label change neither adds nor removes a sidecar the runtime does (not) run.
        // `ferry migrate namespace` moves a pod off its sidecar live: from its `ambient` phase on
        // (migration-state.ts) it is translated as a plain pod.
        get sidecarPods(): ReadonlySet<string> {
          const phases = readMigrationPhases(stateDir);
          return new Set(
            podsOf(loadState(stateDir))
              .filter((p) => p.sidecar === true && podPhase(phases, p) !== 'ambient')
              .map((p) => `${p.namespace}/${p.name}`),
          );
        },
      },
      log,
      onTranslated: async (result) => {
        const pods = new Map(podsOf(loadState(stateDir)).map((p) => [`${p.namespace}/${p.name}`, p]));
        const phases = readMigrationPhases(stateDir);
        const phaseOf = (ns: string, name: string) => {
          const pod = pods.get(`${ns}/${name}`);
          return pod === undefined ? 'ambient' : podPhase(phases, pod);
        };
        // A pod in handover is still its sidecar's (native HBONE) and enrolled in its node as well.
        const handover = new Set(
          result.config.workloads.filter((w) => phaseOf(w.namespace, w.name) === 'handover').map((w) => w.uid),
        );
        const desired = desiredEnrollments(
          result.config.workloads,
          (ns, name) => enrollmentPaths(pods.get(`${ns}/${name}`), phaseOf(ns, name)),
          nodes,
          new Set([...nativeHbone(result)].filter((uid) => !handover.has(uid))),
        );
        wakeAckWaiters(); // a new generation may already be ACKed by nobody: waiters re-check
        const enrolledNow = enrollment.enrolledByNode();
        const leaving = [...enrolledNow].some(([node, uids]) =>
          [...uids.keys()].some((u) => !desired.get(node)?.has(u)),
        );
        if (leaving) {
          // Unenroll only once every ztunnel has the config where those pods are TCP again: a ztunnel still
          // tunnelling to an unenrolled pod would be refused (its 15008 is gone). Enrollments start at once.
          enrollment.setDesired(withEnrolled(desired, enrolledNow));
          await waitForAcks(connectedAcked, AbortSignal.timeout(UNENROLL_ACK_WAIT_MS)).catch(() => {
            log.warn({}, 'not every ztunnel ACKed before unenrolling; unenrolling anyway');
          });
        }
        enrollment.setDesired(desired);
      },
    });
    const caAddr = parseHostPort(config.controller.ca, 'controller CA address');
    const caServer = await startCaServer({
      ca,
      authorizer: nodeBoundAuthorizer({
        tokens: new Map(config.nodes.map((n) => [n.token, n.name])),
        mayHold: (node, identity) => mesh.identityOnNode(node, identity),
      }),
      host: caAddr.host,
      port: caAddr.port,
      log: log.child({ scope: 'ca' }),
    });
    cleanup.push(() => caServer.close());
    await mesh.start();

    let closing: Promise<void> | null = null;
    const close = (): Promise<void> => {
      closing ??= (async () => {
        enrollment.close();
        await mesh.close();
        await store.settled();
        for (const c of cleanup.reverse()) await c().catch(() => undefined);
        wakeAckWaiters();
      })();
      return closing;
    };
    log.info(
      { xds: xds.address, ca: caServer.address, caRoot: join(stateDir, 'ca', 'root-cert.pem'), nodes },
      'controller ready',
    );
    return {
      config,
      stateDir,
      mesh,
      source,
      store,
      placement,
      xds: xdsServer,
      ca: caServer,
      xdsConverged,
      enrollment,
      log,
      diagnostics,
      whenXdsConverged,
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (err) {
    enrollment.close();
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    throw err;
  }
}

/** The types a client must have ACKed: a ztunnel's two, plus the L7 type for a waypoint. */
function subscriptionsOf(c: { readonly nodeId: string }): readonly string[] {
  return c.nodeId.startsWith('waypoint~') ? [ADDRESS_TYPE_URL, L7_TYPE_URL] : ZTUNNEL_TYPE_URLS;
}

/** Workloads that terminate HBONE themselves (waypoints, sidecars): announced as HBONE, never enrolled. */
function nativeHbone(
  result: { readonly waypointWorkloads: readonly string[]; readonly sidecarWorkloads: readonly string[] } | undefined,
): ReadonlySet<string> {
  return new Set([...(result?.waypointWorkloads ?? []), ...(result?.sidecarWorkloads ?? [])]);
}
