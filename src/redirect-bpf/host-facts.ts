// Reads the facts `ferry doctor` judges (host-checks.ts decides): /proc files, statfs, libbpf's feature
// probes through the FFI, and a trial load of the shipped object, whose maps and programs are created and
// freed at once (nothing is pinned or attached). Synchronous: a CLI command, never a request path.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { delimiter, join } from 'node:path';
import { compilerOfObject, SHIPPED_BPF_OBJECT } from './build.ts';
import { describeErrno } from './errors.ts';
import { type Ffi, ffi } from './ffi.ts';
import {
  BPF_HELPER_IDS,
  canProbeBpf,
  type HostFacts,
  type LibbpfFacts,
  type ObjectFacts,
  type ProbeResults,
  parseCapEff,
  REQUIRED_MAP_TYPES,
  REQUIRED_PROGRAM_TYPES,
  REQUIRED_TOOLS,
} from './host-checks.ts';
import { isBpffs } from './probe.ts';

export interface HostFactsOptions {
  /** Where pins go: the local cluster's and the ztunnel's default parent, /sys/fs/bpf. */
  readonly bpffsDir?: string;
  /** Default: the shipped bpf/redirect.bpf.o. */
  readonly objectPath?: string;
  /** The PATH searched for host tools. */
  readonly path: string;
}

export function gatherHostFacts(opts: HostFactsOptions): HostFacts {
  const bpffsDir = opts.bpffsDir ?? '/sys/fs/bpf';
  const procStatus = readText('/proc/self/status');
  const lib = loadLibbpf();
  const probe = lib.ffi !== null && canProbeBpf(parseCapEff(procStatus)) ? lib.ffi : null;
  return {
    kernelRelease: release(),
    vmlinuxBtf: existsSync('/sys/kernel/btf/vmlinux'),
    bpffs: { dir: bpffsDir, dirExists: existsSync(bpffsDir), mounted: isBpffs(bpffsDir) },
    mounts: readText('/proc/self/mounts'),
    procStatus,
    procLimits: readText('/proc/self/limits'),
    libbpf: lib.facts,
    probes: probe === null ? null : probeAll(probe.bpf),
    object: probe === null ? null : tryLoadObject(probe, opts.objectPath ?? SHIPPED_BPF_OBJECT),
    toolsFound: Object.fromEntries(REQUIRED_TOOLS.map((t) => [t.tool, onPath(t.tool, opts.path)])),
  };
}

function loadLibbpf(): { facts: LibbpfFacts; ffi: Ffi | null } {
  try {
    const f = ffi();
    const facts = {
      available: true,
      version: f.bpf.versionString(),
      major: f.bpf.majorVersion(),
      minor: f.bpf.minorVersion(),
    } as const;
    return { facts, ffi: f };
  } catch (err) {
    return { facts: { available: false, error: err instanceof Error ? err.message : String(err) }, ffi: null };
  }
}

function probeAll(bpf: Ffi['bpf']): ProbeResults {
  const programTypes: Record<string, number> = {};
  const helpers: Record<string, number> = {};
  const mapTypes: Record<string, number> = {};
  for (const prog of REQUIRED_PROGRAM_TYPES) {
    programTypes[prog.name] = bpf.probeProgType(prog.type, null);
    for (const helper of prog.helpers) {
      helpers[`${prog.name}/${helper}`] = bpf.probeHelper(prog.type, BPF_HELPER_IDS[helper], null);
    }
  }
  for (const map of REQUIRED_MAP_TYPES) mapTypes[map.name] = bpf.probeMapType(map.type, null);
  return { programTypes, helpers, mapTypes };
}

function tryLoadObject({ bpf, errno }: Ffi, path: string): ObjectFacts {
  if (!existsSync(path)) return { path, loaded: false, missing: true, error: 'missing' };
  const compiler = compilerOfObject(readFileSync(path));
  const obj = bpf.objectOpenFile(path, null);
  if (obj === null) return { path, loaded: false, missing: false, error: `cannot open: ${describeErrno(errno())}` };
  try {
    const rc = bpf.objectLoad(obj);
    return rc === 0
      ? { path, loaded: true, compiler }
      : { path, loaded: false, missing: false, error: `load failed: ${describeErrno(rc)}` };
  } finally {
    bpf.objectClose(obj); // frees the maps and programs just created
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function onPath(tool: string, path: string): boolean {
  return path.split(delimiter).some((dir) => {
    if (dir === '') return false;
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
