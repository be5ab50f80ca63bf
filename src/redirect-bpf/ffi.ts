// Typed koffi bindings to libbpf.so.1 and libc: the only module that touches FFI. Loaded lazily, once, so
// importing the redirector on a machine without libbpf costs nothing until it is used.
// Conventions: libbpf 1.x returns -errno from int functions and NULL (+ errno) from pointer functions;
// libc returns -1 and sets errno. Callers read `errno()` right after a failing call.
import { createRequire } from 'node:module';
import type { LibraryHandle } from 'koffi';
import { BpfError } from './errors.ts';

type Koffi = typeof import('koffi');

/** Opaque libbpf handles (koffi external pointers); the brand keeps them from being mixed up. */
export type BpfObjectPtr = { readonly __brand: 'bpf_object' };
export type BpfProgramPtr = { readonly __brand: 'bpf_program' };
export type BpfMapPtr = { readonly __brand: 'bpf_map' };
export type BpfLinkPtr = { readonly __brand: 'bpf_link' };

export interface Libbpf {
  objectOpenFile(path: string, opts: null): BpfObjectPtr | null;
  objectLoad(obj: BpfObjectPtr): number;
  objectClose(obj: BpfObjectPtr): void;
  findProgramByName(obj: BpfObjectPtr, name: string): BpfProgramPtr | null;
  findMapByName(obj: BpfObjectPtr, name: string): BpfMapPtr | null;
  programFd(prog: BpfProgramPtr): number;
  mapFd(map: BpfMapPtr): number;
  mapSetPinPath(map: BpfMapPtr, path: string): number;
  attachCgroup(prog: BpfProgramPtr, cgroupFd: number): BpfLinkPtr | null;
  attachNetns(prog: BpfProgramPtr, netnsFd: number): BpfLinkPtr | null;
  linkPin(link: BpfLinkPtr, path: string): number;
  linkDestroy(link: BpfLinkPtr): number;
  linkUpdate(linkFd: number, progFd: number, opts: null): number;
  linkDetach(linkFd: number): number;
  objGet(path: string): number;
  objGetInfoByFd(fd: number, info: Buffer, infoLen: Uint32Array): number;
  mapUpdateElem(fd: number, key: Buffer, value: Buffer, flags: bigint): number;
  mapLookupElem(fd: number, key: Buffer, value: Buffer): number;
  mapDeleteElem(fd: number, key: Buffer): number;
  mapGetNextKey(fd: number, key: Buffer | null, nextKey: Buffer): number;
  probeProgType(progType: number, opts: null): number;
  probeHelper(progType: number, helperId: number, opts: null): number;
  probeMapType(mapType: number, opts: null): number;
  majorVersion(): number;
  minorVersion(): number;
  versionString(): string;
  numPossibleCpus(): number;
}

export interface Libc {
  setns(fd: number, nstype: number): number;
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  getsockopt(fd: number, level: number, name: number, value: Buffer, len: Uint32Array): number;
  bind(fd: number, addr: Buffer, len: number): number;
  listen(fd: number, backlog: number): number;
  close(fd: number): number;
}

export interface Ffi {
  readonly bpf: Libbpf;
  readonly libc: Libc;
  errno(): number;
}

let loaded: Ffi | undefined;

/** The process-wide bindings; throws FERRY_BPF_LIBBPF_UNAVAILABLE with the install hint when missing. */
export function ffi(): Ffi {
  loaded ??= loadFfi();
  return loaded;
}

type AnyFn = (...args: never[]) => unknown;

function loadFfi(): Ffi {
  // koffi (a native addon, ≈ 9 MiB of RSS) is required here, not imported at the top: a ztunnel without
  // BPF redirection imports this module through the redirector but never calls it.
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  let bpfLib: LibraryHandle;
  let cLib: LibraryHandle;
  try {
    bpfLib = koffi.load('libbpf.so.1');
    cLib = koffi.load('libc.so.6');
  } catch (cause) {
    throw new BpfError(
      'FERRY_BPF_LIBBPF_UNAVAILABLE',
      'cannot load libbpf.so.1 / libc.so.6 (install the Debian package libbpf1)',
      { cause },
    );
  }
  koffi.opaque('bpf_object');
  koffi.opaque('bpf_program');
  koffi.opaque('bpf_map');
  koffi.opaque('bpf_link');
  // Keys, values and out-parameters are Buffers passed as `void *`: koffi hands their memory to C directly.
  const b = <T extends AnyFn>(proto: string): T => bpfLib.func(proto) as unknown as T;
  const c = <T extends AnyFn>(proto: string): T => cLib.func(proto) as unknown as T;
  const bpf: Libbpf = {
    objectOpenFile: b('bpf_object *bpf_object__open_file(const char *path, const void *opts)'),
    objectLoad: b('int bpf_object__load(bpf_object *obj)'),
    objectClose: b('void bpf_object__close(bpf_object *obj)'),
    findProgramByName: b('bpf_program *bpf_object__find_program_by_name(const bpf_object *obj, const char *name)'),
    findMapByName: b('bpf_map *bpf_object__find_map_by_name(const bpf_object *obj, const char *name)'),
    programFd: b('int bpf_program__fd(const bpf_program *prog)'),
    mapFd: b('int bpf_map__fd(const bpf_map *map)'),
    mapSetPinPath: b('int bpf_map__set_pin_path(bpf_map *map, const char *path)'),
    attachCgroup: b('bpf_link *bpf_program__attach_cgroup(const bpf_program *prog, int cgroup_fd)'),
    attachNetns: b('bpf_link *bpf_program__attach_netns(const bpf_program *prog, int netns_fd)'),
    linkPin: b('int bpf_link__pin(bpf_link *link, const char *path)'),
    linkDestroy: b('int bpf_link__destroy(bpf_link *link)'),
    linkUpdate: b('int bpf_link_update(int link_fd, int new_prog_fd, const void *opts)'),
    linkDetach: b('int bpf_link_detach(int link_fd)'),
    objGet: b('int bpf_obj_get(const char *pathname)'),
    objGetInfoByFd: b('int bpf_obj_get_info_by_fd(int bpf_fd, void *info, _Inout_ uint32_t *info_len)'),
    mapUpdateElem: b('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    mapLookupElem: b('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
    mapDeleteElem: b('int bpf_map_delete_elem(int fd, const void *key)'),
    mapGetNextKey: b('int bpf_map_get_next_key(int fd, const void *key, void *next_key)'),
    probeProgType: b('int libbpf_probe_bpf_prog_type(int prog_type, const void *opts)'),
    probeHelper: b('int libbpf_probe_bpf_helper(int prog_type, int helper_id, const void *opts)'),
    probeMapType: b('int libbpf_probe_bpf_map_type(int map_type, const void *opts)'),
    majorVersion: b('uint32_t libbpf_major_version(void)'),
    minorVersion: b('uint32_t libbpf_minor_version(void)'),
    versionString: b('const char *libbpf_version_string(void)'),
    numPossibleCpus: b('int libbpf_num_possible_cpus(void)'),
  };
  const libc: Libc = {
    setns: c('int setns(int fd, int nstype)'),
    socket: c('int socket(int domain, int type, int protocol)'),
    setsockopt: c('int setsockopt(int fd, int level, int optname, const void *optval, uint32_t optlen)'),
    getsockopt: c('int getsockopt(int fd, int level, int optname, void *optval, _Inout_ uint32_t *optlen)'),
    bind: c('int bind(int fd, const void *addr, uint32_t addrlen)'),
    listen: c('int listen(int fd, int backlog)'),
    close: c('int close(int fd)'),
  };
  return { bpf, libc, errno: () => koffi.errno() };
}
