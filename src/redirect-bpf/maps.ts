// Thin synchronous wrappers over map fds (bounded FFI calls: the only sync work allowed on hot paths,
// STYLE.md §6). Failures become FERRY_BPF_MAP_UPDATE_FAILED naming the map; a missing key is a value (null).
import { BpfError, describeErrno } from './errors.ts';
import { type BpfProgramPtr, ffi } from './ffi.ts';
import type { MapName } from './layout.ts';

const ENOENT = 2;

export class BpfMapHandle {
  readonly name: string;
  readonly fd: number;
  readonly keySize: number;
  readonly valueSize: number;

  constructor(name: string, fd: number, keySize: number, valueSize: number) {
    this.name = name;
    this.fd = fd;
    this.keySize = keySize;
    this.valueSize = valueSize;
  }

  update(key: Buffer, value: Buffer): void {
    const rc = ffi().bpf.mapUpdateElem(this.fd, key, value, 0n);
    if (rc !== 0) this.#fail('update', rc);
  }

  lookup(key: Buffer): Buffer | null {
    const value = Buffer.alloc(this.valueSize);
    const rc = ffi().bpf.mapLookupElem(this.fd, key, value);
    if (rc === -ENOENT) return null;
    if (rc !== 0) this.#fail('lookup', rc);
    return value;
  }

  /** Returns whether the key was present. */
  delete(key: Buffer): boolean {
    const rc = ffi().bpf.mapDeleteElem(this.fd, key);
    if (rc === -ENOENT) return false;
    if (rc !== 0) this.#fail('delete', rc);
    return true;
  }

  keys(): Buffer[] {
    const out: Buffer[] = [];
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keySize);
      const rc = ffi().bpf.mapGetNextKey(this.fd, prev, next);
      if (rc === -ENOENT) return out;
      if (rc !== 0) this.#fail('iterate', rc);
      out.push(next);
      prev = next;
    }
  }

  #fail(op: string, rc: number): never {
    throw new BpfError('FERRY_BPF_MAP_UPDATE_FAILED', `${op} on map ${this.name} failed: ${describeErrno(rc)}`, {
      errno: Math.abs(rc),
    });
  }
}

/** What enrollment needs from an open redirector (BpfRedirector in loader.ts implements it). */
export interface Datapath {
  readonly pinRoot: string;
  readonly cgroupPath: string;
  readonly skLookupProgram: BpfProgramPtr;
  readonly skLookupFd: number;
  map(name: MapName): BpfMapHandle;
}
