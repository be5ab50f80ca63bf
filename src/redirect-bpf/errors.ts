// Errors of the BPF redirector (loader, enrollment, feature probing). One code union, one class; callers
// branch on `code`. Messages name the bad value and, where an operator can act, say what to do.
import { FerryError } from '../errors.ts';

export const BPF_ERROR_CODES = [
  'FERRY_BPF_KERNEL_TOO_OLD', // running kernel lacks a feature the redirector needs
  'FERRY_BPF_NOT_PERMITTED', // bpf() refused: not root / no CAP_BPF+CAP_NET_ADMIN
  'FERRY_BPF_PROG_TYPE_UNSUPPORTED', // kernel cannot load one of our program types
  'FERRY_BPF_CGROUP2_MISSING', // no cgroup2 mount found
  'FERRY_BPF_BPFFS_MISSING', // no bpf filesystem under the pin root
  'FERRY_BPF_LIBBPF_UNAVAILABLE', // libbpf.so.1 or libc could not be loaded through koffi
  'FERRY_BPF_BUILD_FAILED', // bpf/build.sh (clang) failed to compile bpf/*.c: developers only
  'FERRY_BPF_LOAD_FAILED', // libbpf could not open or load the object (verifier log on stderr)
  'FERRY_BPF_PIN_INCOMPATIBLE', // a pinned map does not match the object (layout change: uninstall first)
  'FERRY_BPF_ATTACH_FAILED', // attaching or pinning a link failed
  'FERRY_BPF_MAP_UPDATE_FAILED', // a map update, lookup or delete failed
  'FERRY_BPF_CGROUP_NOT_FOUND', // cgroup path missing or not a directory
  'FERRY_BPF_CGROUP_OUTSIDE_SUBTREE', // pod cgroup is not below the cgroup the programs are attached to
  'FERRY_BPF_NETNS_NOT_FOUND', // network namespace path missing or not a netns
  'FERRY_BPF_SETNS_FAILED', // entering or leaving a network namespace failed
  'FERRY_BPF_SOCKET_FAILED', // creating an in-pod socket (socket/bind/listen) failed
  'FERRY_BPF_INVALID_ARGUMENT', // bad option at API entry (address, path, callback)
  'FERRY_BPF_CLOSED', // the redirector handle was closed
] as const;

export type BpfErrorCode = (typeof BPF_ERROR_CODES)[number];

export class BpfError extends FerryError<BpfErrorCode> {
  /** errno of the failing system call or libbpf function, when there was one. */
  readonly errno: number | undefined;
  constructor(code: BpfErrorCode, message: string, options?: { cause?: unknown; errno?: number }) {
    super(code, message, options);
    this.errno = options?.errno;
  }
}

const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: 'EPERM',
  2: 'ENOENT',
  9: 'EBADF',
  13: 'EACCES',
  16: 'EBUSY',
  17: 'EEXIST',
  22: 'EINVAL',
  95: 'EOPNOTSUPP',
  98: 'EADDRINUSE',
  99: 'EADDRNOTAVAIL',
  524: 'ENOTSUPP',
};

/** "EPERM (1)" style rendering for messages. */
export function describeErrno(errno: number): string {
  const n = Math.abs(errno);
  return `${ERRNO_NAMES[n] ?? 'errno'} (${n})`;
}
