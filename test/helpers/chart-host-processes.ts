// The chart's rendered controller and ztunnel containers run as host processes of this Ferry build, with
// only what a real node provides differently mapped (test/e2e/helm-install.test.ts lists every mapping):
// `$(VAR)` expanded from the pod's fieldRefs as the kubelet does, in-pod paths → files fetched from the
// API, the Service DNS name → localhost (a SAN the controller always puts in its certificate), and fixed
// container ports → free loopback ports (all nodes share this host's network namespace).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../../src/local-cluster/ports.ts';
import type { ContainerView } from './helm-render.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** A rendered container with its `env` (the chart's values and fieldRefs). */
export interface RenderedContainer extends ContainerView {
  readonly env?: readonly {
    readonly name: string;
    readonly value?: string;
    readonly valueFrom?: { readonly fieldRef?: { readonly fieldPath: string } };
  }[];
}

/** What the kubelet would resolve a fieldRef to, for one pod object of the API. */
export interface PodFields {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly nodeName: string;
}

/** The container's environment as the kubelet builds it (plain values and the fieldRefs the chart uses). */
export function containerEnv(c: RenderedContainer, pod: PodFields): Record<string, string> {
  const fields: Record<string, string> = {
    'metadata.name': pod.name,
    'metadata.namespace': pod.namespace,
    'metadata.uid': pod.uid,
    'spec.nodeName': pod.nodeName,
  };
  const out: Record<string, string> = {};
  for (const e of c.env ?? []) {
    const path = e.valueFrom?.fieldRef?.fieldPath;
    const value = path === undefined ? e.value : fields[path];
    if (value === undefined) throw new Error(`env ${e.name}: cannot resolve ${JSON.stringify(e.valueFrom ?? e)}`);
    out[e.name] = value;
  }
  return out;
}

/** `$(VAR)` in args, expanded from the container env before the process starts (as the kubelet does). */
export function expandArgs(args: readonly string[], env: Readonly<Record<string, string>>): string[] {
  return args.map((a) => a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string) => env[name] ?? m));
}

/**
 * Replaces the value of `--name=value` flags. Every key must be a flag the chart passes: a mapping for a
 * flag the chart dropped fails loudly instead of silently mapping nothing.
 */
export function mapFlags(args: readonly string[], mapped: Readonly<Record<string, string>>): string[] {
  const seen = new Set<string>();
  const out = args.map((a) => {
    const name = a.split('=')[0] as string;
    if (!(name in mapped)) return a;
    seen.add(name);
    return `${name}=${mapped[name]}`;
  });
  const missing = Object.keys(mapped).filter((k) => !seen.has(k));
  if (missing.length > 0) throw new Error(`the chart no longer passes ${missing.join(', ')}`);
  return out;
}

/** `--flag=<host>:<port>` listen flags of the args → 127.0.0.1:<free port>. */
export async function loopbackListenFlags(
  args: readonly string[],
  flags: readonly string[],
): Promise<Record<string, string>> {
  const ports = await freePorts(flags.length);
  const out: Record<string, string> = {};
  flags.forEach((f, i) => {
    if (!args.some((a) => a.startsWith(`${f}=`))) throw new Error(`the chart does not pass ${f}`);
    out[f] = `127.0.0.1:${ports[i]}`;
  });
  return out;
}

export interface HostProcess {
  readonly child: ChildProcess;
  readonly logFile: string;
  /** SIGTERM, then SIGKILL after `graceMs` (as the kubelet does with terminationGracePeriodSeconds). */
  stop(graceMs: number): Promise<void>;
}

/** `ferry <args>` as a host process with exactly `env` (plus PATH), its output to `logFile`. */
export function startFerry(args: readonly string[], env: Readonly<Record<string, string>>, logFile: string) {
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = once(child, 'exit');
  const proc: HostProcess = {
    child,
    logFile,
    async stop(graceMs) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      log.end();
    },
  };
  return proc;
}
