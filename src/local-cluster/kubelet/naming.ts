// Names of a kubelet's objects on the host, as the real kubelet with the systemd cgroup driver and
// containerd names them, below the node's cgroup dir (layout.ts nodeCgroupDir, where the node's ztunnel
// attaches its redirector):
//   kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid, - → _>.slice/cri-containerd-<id>.scope
// with Guaranteed pods directly under kubepods.slice (`kubepods-pod<uid_>.slice`). The pod's netns is
// `ferry-<cluster>_<ns>_<pod>` (so `down` sweeps it by prefix) and its bridge port `v<node>-<last octet>`.
// Pure.
import { join } from 'node:path';
import type { QosClass } from './pod-qos.ts';

export const KUBEPODS_SLICE = 'kubepods.slice';

/** The systemd escaping of a pod uid in a slice name: `-` separates slice levels, so it becomes `_`. */
export function escapedUid(uid: string): string {
  return uid.replaceAll('-', '_');
}

/** The pod's slice relative to the node's cgroup dir. */
export function podSlicePath(qos: QosClass, uid: string): string {
  if (qos === 'Guaranteed') return join(KUBEPODS_SLICE, `kubepods-pod${escapedUid(uid)}.slice`);
  const q = qos.toLowerCase();
  return join(KUBEPODS_SLICE, `kubepods-${q}.slice`, `kubepods-${q}-pod${escapedUid(uid)}.slice`);
}

/** The scope of one container (or of the pod's sandbox) inside the pod's slice. */
export function containerScopeName(containerId: string): string {
  return `cri-containerd-${containerId}.scope`;
}

export function podNetnsName(netnsPrefix: string, namespace: string, name: string): string {
  return `${netnsPrefix}${namespace}_${name}`;
}

/** The host side of the pod's veth in the bridge netns (IFNAMSIZ: at most 15 bytes). */
export function bridgePortName(node: number, lastOctet: number): string {
  return `v${node}-${lastOctet}`;
}

/** Index of `node-<n>`, or null for another name. */
export function nodeIndexOf(nodeName: string): number | null {
  const m = /^node-(0|[1-9][0-9]{0,2})$/.exec(nodeName);
  return m === null ? null : Number(m[1]);
}

/** The lowest host number in 2..maxHost not in `used` (the /24's .1 is reserved), or null when full. */
export function lowestFreeHost(used: ReadonlySet<number>, maxHost: number): number | null {
  for (let h = 2; h <= maxHost; h++) if (!used.has(h)) return h;
  return null;
}
