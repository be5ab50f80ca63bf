// Mounting a bpf filesystem where Ferry pins its maps and links when none is there, as root tools that own
// BPF state do (Cilium's agent, bpftool): a fresh machine often has /sys/fs/bpf empty and unmounted
// (docs/operations.md, "Local cluster"). It stays mounted afterwards; nothing here unmounts.
import { execFileSync } from 'node:child_process';
import { isBpffs } from './probe.ts';

export type BpffsOutcome =
  | { readonly kind: 'present'; readonly dir: string }
  | { readonly kind: 'mounted'; readonly dir: string; readonly command: string }
  | { readonly kind: 'failed'; readonly dir: string; readonly detail: string };

/** Mounts bpffs at `dir` unless it is one already (needs CAP_SYS_ADMIN). Failures are values, never thrown. */
export function ensureBpffs(dir: string): BpffsOutcome {
  if (isBpffs(dir)) return { kind: 'present', dir };
  const args = ['-t', 'bpf', 'bpf', dir];
  const command = `mount ${args.join(' ')}`;
  try {
    execFileSync('mount', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  } catch (err) {
    const stderr = typeof err === 'object' && err !== null && 'stderr' in err ? String(err.stderr).trim() : '';
    return { kind: 'failed', dir, detail: `${command} failed: ${stderr || String(err)}` };
  }
  return isBpffs(dir)
    ? { kind: 'mounted', dir, command }
    : { kind: 'failed', dir, detail: `${command} succeeded but ${dir} is still not a bpf filesystem` };
}
