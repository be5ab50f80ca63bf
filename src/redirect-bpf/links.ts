// Pinned BPF links, reconciled idempotently: a pin that already targets the right cgroup/netns gets the new
// program swapped in atomically (bpf_link_update), so a restarted or upgraded ztunnel never leaves a window
// without redirection and never attaches twice. Unpinning a link (after our fd is closed) detaches it.
import { existsSync, rmSync } from 'node:fs';
import { BpfError, describeErrno } from './errors.ts';
import { type BpfLinkPtr, ffi } from './ffi.ts';
import { closeFd } from './netns.ts';

const LINK_INFO_SIZE = 64;

/** What the link is attached to, as the kernel reports it in bpf_link_info. */
export type LinkTarget =
  | { readonly kind: 'cgroup'; readonly cgroupId: bigint }
  | { readonly kind: 'netns'; readonly inode: bigint };

export type LinkOutcome = 'attached' | 'updated';

export function reconcileLink(opts: {
  readonly pinPath: string;
  readonly progFd: number;
  readonly target: LinkTarget;
  readonly attach: () => BpfLinkPtr | null;
  readonly what: string;
}): LinkOutcome {
  const { bpf, errno } = ffi();
  if (existsSync(opts.pinPath)) {
    const fd = bpf.objGet(opts.pinPath);
    if (fd >= 0) {
      try {
        if (linkTargetMatches(fd, opts.target)) {
          const rc = bpf.linkUpdate(fd, opts.progFd, null);
          if (rc !== 0) {
            throw new BpfError(
              'FERRY_BPF_ATTACH_FAILED',
              `updating pinned link ${opts.pinPath}: ${describeErrno(rc)}`,
              {
                errno: Math.abs(rc),
              },
            );
          }
          return 'updated';
        }
      } finally {
        closeFd(fd);
      }
    }
    // Stale pin (target gone or different): drop it, which detaches it, then attach afresh.
    rmSync(opts.pinPath, { force: true });
  }
  const link = opts.attach();
  if (link === null) {
    const e = errno();
    throw new BpfError('FERRY_BPF_ATTACH_FAILED', `attaching ${opts.what}: ${describeErrno(e)}`, { errno: e });
  }
  try {
    const rc = bpf.linkPin(link, opts.pinPath);
    if (rc !== 0) {
      throw new BpfError('FERRY_BPF_ATTACH_FAILED', `pinning ${opts.what} at ${opts.pinPath}: ${describeErrno(rc)}`, {
        errno: Math.abs(rc),
      });
    }
  } finally {
    // Drops our fd only: a pinned link stays attached; an unpinned one (pin failed) detaches here.
    bpf.linkDestroy(link);
  }
  return 'attached';
}

/**
 * Detaches a pinned link at once, then removes the pin. Returns whether a pin was there. Unpinning alone
 * detaches only when the kernel frees the link, after an RCU grace period and a work item: until then the
 * program still runs, which is not what a caller that changes maps next expects.
 */
export function unpinLink(pinPath: string): boolean {
  if (!existsSync(pinPath)) return false;
  const { bpf } = ffi();
  const fd = bpf.objGet(pinPath);
  if (fd >= 0) {
    try {
      // Best effort: a link the kernel cannot detach (EOPNOTSUPP) still detaches once unpinned below.
      bpf.linkDetach(fd);
    } finally {
      closeFd(fd);
    }
  }
  rmSync(pinPath, { force: true });
  return true;
}

function linkTargetMatches(fd: number, target: LinkTarget): boolean {
  const info = Buffer.alloc(LINK_INFO_SIZE);
  const len = new Uint32Array([LINK_INFO_SIZE]);
  if (ffi().bpf.objGetInfoByFd(fd, info, len) !== 0) return false;
  // struct bpf_link_info: type, id, prog_id (u32 each), then an 8-aligned union at offset 16.
  switch (target.kind) {
    case 'cgroup':
      return info.readBigUInt64LE(16) === target.cgroupId;
    case 'netns':
      return BigInt(info.readUInt32LE(16)) === target.inode;
    default:
      return assertNever(target);
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected link target ${JSON.stringify(value)}`);
}
