// The fail-closed guard's maps (docs/redirect.md, "Fail-closed capture for new pods"): `guard_root` holds
// the cgroup id of the node's pod root (0 = off), `classified` the node agent's verdict per pod cgroup.
// While the root is set, a connect from under it that is neither enrolled nor classified `exempt` is
// refused by connect4/connect6. Only the node agent writes these; the admin-enrolled mode never sets a
// root, so its datapath behaves as before. Both maps are pinned: the guard outlives a ztunnel restart.
import { decodePodClass, encodePodClass, encodeU32, encodeU64, type PodClass } from './layout.ts';
import type { Datapath } from './maps.ts';

const ROOT_SLOT = encodeU32(0);

/** Turns the guard on for the subtree of `cgroupId`, or off with null. */
export function setGuardRoot(dp: Datapath, cgroupId: bigint | null): void {
  dp.map('guard_root').update(ROOT_SLOT, encodeU64(cgroupId ?? 0n));
}

/** The guarded root's cgroup id, or null when the guard is off. */
export function guardRoot(dp: Datapath): bigint | null {
  const value = dp.map('guard_root').lookup(ROOT_SLOT);
  const id = value === null ? 0n : value.readBigUInt64LE(0);
  return id === 0n ? null : id;
}

export function classifyCgroup(dp: Datapath, cgroupId: bigint, cls: PodClass): void {
  dp.map('classified').update(encodeU64(cgroupId), encodePodClass(cls));
}

/** Returns whether the cgroup had a classification. */
export function unclassifyCgroup(dp: Datapath, cgroupId: bigint): boolean {
  return dp.map('classified').delete(encodeU64(cgroupId));
}

/** Every classified cgroup (unknown values as null), read from the pinned map. */
export function listClassified(dp: Datapath): Map<bigint, PodClass | null> {
  const map = dp.map('classified');
  const out = new Map<bigint, PodClass | null>();
  for (const key of map.keys()) {
    const value = map.lookup(key);
    if (value !== null) out.set(key.readBigUInt64LE(0), decodePodClass(value));
  }
  return out;
}
