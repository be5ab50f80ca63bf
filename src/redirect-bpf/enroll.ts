// Pod enrollment (docs/redirect.md, "Enrolling pods"): in-pod listeners (via the setns sandwich), the
// pod's 15006, 15001 and 15008 listeners in their sockhashes (sk_lookup hands connections to those sockets
// only, never to another member of their reuseport groups), an sk_lookup link on the pod netns, and
// finally the `enrolled` map entry, which is what starts outbound capture. Everything is validated before the first change, and a failure part-way
// undoes what was done, so a pod is never half-enrolled. Re-enrolling is idempotent for the datapath.
import { mkdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BpfError } from './errors.ts';
import { ffi } from './ffi.ts';
import { decodePodInfo, encodePodInfo, encodeU64, POD_FLAG_STEER_LISTENERS, parseIpv4 } from './layout.ts';
import { reconcileLink, unpinLink } from './links.ts';
import type { Datapath } from './maps.ts';
import { closeFd, createListenerFd, inNetns, openNetns, socketNetnsCookie } from './netns.ts';

export const PORT_OUTBOUND = 15001;
export const PORT_INBOUND_PLAINTEXT = 15006;
export const PORT_HBONE = 15008;

export interface EnrollPodOptions {
  /** The pod's network namespace (/run/netns/<name> or /proc/<pid>/ns/net). */
  readonly netnsPath: string;
  /** The pod's cgroup2 directory; must be inside the redirector's cgroup subtree. */
  readonly cgroupPath: string;
  /** The pod's IPv4 address (never captured as a destination; key of its inbound listener). */
  readonly podIp: string;
}

/** Listening sockets inside the pod netns, owned by the caller: serve with `server.listen({ fd })`. */
export interface PodListenerFds {
  /** 127.0.0.1:15001, outbound capture (captured connects reach it as podIP:15001, through sk_lookup). */
  readonly outbound: number;
  /** 0.0.0.0:15006, plaintext inbound steered by sk_lookup (the local address is the original destination). */
  readonly inboundPlaintext: number;
  /** podIp:15008, HBONE inbound. */
  readonly hbone: number;
}

export interface PodEnrollment {
  readonly cgroupId: bigint;
  readonly podIp: string;
  readonly netnsPath: string;
  /** Pass to lookupOriginalDestination for sockets accepted on `listeners.outbound`. */
  readonly netnsCookie: bigint;
  readonly listeners: PodListenerFds;
}

export type UnenrollPodOptions = { readonly cgroupPath: string } | { readonly cgroupId: bigint };

export function enrollPod(dp: Datapath, opts: EnrollPodOptions): PodEnrollment {
  parseIpv4(opts.podIp);
  const cgroupPath = resolveCgroup(opts.cgroupPath);
  if (cgroupPath !== dp.cgroupPath && !cgroupPath.startsWith(`${dp.cgroupPath}/`)) {
    throw new BpfError(
      'FERRY_BPF_CGROUP_OUTSIDE_SUBTREE',
      `pod cgroup ${cgroupPath} is not inside ${dp.cgroupPath}, where the redirector is attached`,
    );
  }
  const cgroupId = statSync(cgroupPath, { bigint: true }).ino;
  const netnsFd = openNetns(opts.netnsPath);
  const undo: (() => void)[] = [];
  try {
    const netnsInode = statSync(opts.netnsPath, { bigint: true }).ino;
    const listeners = inNetns(netnsFd, () => createPodListeners(opts.podIp));
    undo.push(() => {
      closeFd(listeners.outbound);
      closeFd(listeners.inboundPlaintext);
      closeFd(listeners.hbone);
    });
    const netnsCookie = socketNetnsCookie(listeners.outbound);

    // Registering replaces the entry of a previous enrollment (another ztunnel process, or this pod enrolled
    // again): from here on new connections go to these sockets, the old ones only finish their queues.
    const ipKey = parseIpv4(opts.podIp);
    for (const [name, fd] of [
      ['inbound_listeners', listeners.inboundPlaintext],
      ['outbound_listeners', listeners.outbound],
      ['hbone_listeners', listeners.hbone],
    ] as const) {
      const map = dp.map(name);
      map.update(ipKey, encodeU64(BigInt(fd)));
      undo.push(() => map.delete(ipKey));
    }

    const podDir = join(dp.pinRoot, 'pods', String(cgroupId));
    mkdirSync(podDir, { recursive: true });
    const outcome = reconcileLink({
      pinPath: join(podDir, 'sk_lookup'),
      progFd: dp.skLookupFd,
      target: { kind: 'netns', inode: netnsInode },
      attach: () => ffi().bpf.attachNetns(dp.skLookupProgram, netnsFd),
      what: `sk_lookup to netns ${opts.netnsPath}`,
    });
    if (outcome === 'attached') undo.push(() => rmSync(podDir, { recursive: true, force: true }));

    // Last: from here on the pod's connects are captured (to podIP:15001, which sk_lookup hands to the
    // 15001 listener registered above), and that listener already exists.
    dp.map('enrolled').update(encodeU64(cgroupId), encodePodInfo(opts.podIp, POD_FLAG_STEER_LISTENERS));
    undo.length = 0;
    return { cgroupId, podIp: opts.podIp, netnsPath: opts.netnsPath, netnsCookie, listeners };
  } catch (err) {
    for (const step of undo.reverse()) {
      try {
        step();
      } catch {
        // best-effort rollback; the original error is what the caller needs
      }
    }
    throw err;
  } finally {
    closeFd(netnsFd);
  }
}

/**
 * Stops capture for new connections (map entries, sk_lookup link); established connections are untouched.
 * The caller closes the pod's listener servers. Idempotent: unknown pods are a no-op.
 */
export function unenrollPod(dp: Datapath, opts: UnenrollPodOptions): void {
  const cgroupId = 'cgroupId' in opts ? opts.cgroupId : statSync(resolveCgroup(opts.cgroupPath), { bigint: true }).ino;
  const enrolled = dp.map('enrolled');
  const key = encodeU64(cgroupId);
  const value = enrolled.lookup(key);
  enrolled.delete(key);
  // The sk_lookup program goes before its listener entry (detached synchronously, see unpinLink): while
  // attached, a missing entry fails closed (SK_DROP, ECONNREFUSED), which would refuse connections to the
  // pod in between.
  const podDir = join(dp.pinRoot, 'pods', String(cgroupId));
  unpinLink(join(podDir, 'sk_lookup'));
  if (value !== null) {
    const ipKey = parseIpv4(decodePodInfo(value).podIp);
    for (const name of ['inbound_listeners', 'outbound_listeners', 'hbone_listeners'] as const) {
      dp.map(name).delete(ipKey);
    }
  }
  rmSync(podDir, { recursive: true, force: true });
}

/**
 * Registers an enrollment's listeners again in each sockhash that has no entry for the pod, while the pod
 * is still enrolled. During a handover two ztunnels run: a pod that the old one enrolled after the new one
 * points at the old one's sockets, and their entries vanish when it exits; without this the new one would
 * serve the pod nowhere (refused) until it enrolled the pod again. An existing entry is never replaced (its
 * process is alive and serving), so two processes doing this never take a pod from each other. Returns the
 * maps written.
 */
export function registerMissingListeners(dp: Datapath, enrollment: PodEnrollment): string[] {
  if (dp.map('enrolled').lookup(encodeU64(enrollment.cgroupId)) === null) return []; // let go meanwhile
  const ipKey = parseIpv4(enrollment.podIp);
  const written: string[] = [];
  for (const [name, fd] of [
    ['inbound_listeners', enrollment.listeners.inboundPlaintext],
    ['outbound_listeners', enrollment.listeners.outbound],
    ['hbone_listeners', enrollment.listeners.hbone],
  ] as const) {
    const map = dp.map(name);
    if (map.lookup(ipKey) !== null) continue;
    map.update(ipKey, encodeU64(BigInt(fd)));
    written.push(name);
  }
  return written;
}

/** Real path of an existing cgroup directory, or FERRY_BPF_CGROUP_NOT_FOUND. */
export function resolveCgroup(path: string): string {
  let real: string;
  try {
    real = realpathSync(path);
  } catch (cause) {
    throw new BpfError('FERRY_BPF_CGROUP_NOT_FOUND', `cgroup ${path} not found`, { cause });
  }
  if (!statSync(real).isDirectory())
    throw new BpfError('FERRY_BPF_CGROUP_NOT_FOUND', `cgroup ${path} is not a directory`);
  return real;
}

function createPodListeners(podIp: string): PodListenerFds {
  const created: number[] = [];
  try {
    const outbound = createListenerFd({ address: '127.0.0.1', port: PORT_OUTBOUND, reusePort: true });
    created.push(outbound);
    const inboundPlaintext = createListenerFd({ address: '0.0.0.0', port: PORT_INBOUND_PLAINTEXT, reusePort: true });
    created.push(inboundPlaintext);
    const hbone = createListenerFd({ address: podIp, port: PORT_HBONE, reusePort: true });
    return { outbound, inboundPlaintext, hbone };
  } catch (err) {
    for (const fd of created) closeFd(fd);
    throw err;
  }
}
