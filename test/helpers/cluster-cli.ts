// Shared by the e2e tests that drive a local cluster through the `ferry` CLI: run a command, bring a
// uniquely named cluster up (torn down and checked clean in t.after, also when the test fails), read
// `ferry status --json` and `ferry observe --json`, curl from inside a pod.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Flow } from '../../src/cli/observe/flow.ts';
import type { MeshStatus } from '../../src/local-cluster/controller/admin-api.ts';
import { cgroup2MountPoint } from '../../src/redirect-bpf/probe.ts';
import { k8sToolPath } from './k8s-tools.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
export const DEMO = fileURLToPath(new URL('../../examples/demo', import.meta.url));

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface EchoReply {
  readonly pod: string;
  readonly peer: { readonly address: string };
}

export interface FerryCliOptions {
  /** How to run ferry; default [node, src/cli/main.ts]. BIN_FERRY runs it as the README does. */
  readonly command?: readonly [string, ...string[]];
  /** Variables added to (or replacing) this process's environment, e.g. PATH. */
  readonly env?: Readonly<Record<string, string>>;
}

/** ./bin/ferry, the command the README tells users to run. */
export const BIN_FERRY = fileURLToPath(new URL('../../bin/ferry', import.meta.url));

/** A command started by FerryCli.start. */
export interface Started {
  /** Resolves at its first output (a load loop is running). */
  readonly firstOutput: Promise<void>;
  readonly done: Promise<Run>;
  /** Resolves true once its stdout so far matches, false if it exits first. */
  untilStdout(pattern: RegExp): Promise<boolean>;
  kill(signal: NodeJS.Signals): void;
}

/** One state root per test file (FERRY_STATE_DIR), removed when the file's tests end. */
export class FerryCli {
  readonly stateRoot: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #command: readonly [string, ...string[]];

  constructor(prefix: string, opts: FerryCliOptions = {}) {
    this.stateRoot = mkdtempSync(`/tmp/ferry-e2e-${prefix}-`);
    this.#env = { ...process.env, ...opts.env, FERRY_STATE_DIR: this.stateRoot };
    this.#command = opts.command ?? [process.execPath, MAIN];
  }

  remove(): void {
    rmSync(this.stateRoot, { recursive: true, force: true });
  }

  run(args: readonly string[]): Promise<Run> {
    return new Promise((resolve) => {
      execFile(
        this.#command[0],
        [...this.#command.slice(1), ...args],
        { env: this.#env, maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => {
          resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
        },
      );
    });
  }

  /**
   * Starts a long command (a load loop); `firstOutput` resolves at its first output (the loop is running),
   * `done` at its end. Killed in t.after if still running.
   */
  start(t: TestContext, args: readonly string[]): Started {
    const child = spawn(this.#command[0], [...this.#command.slice(1), ...args], {
      env: this.#env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const done = new Promise<Run>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
    const firstOutput = new Promise<void>((resolve) => {
      child.stdout.once('data', () => resolve());
      child.stderr.once('data', () => resolve());
      child.once('close', () => resolve());
    });
    const untilStdout = (pattern: RegExp): Promise<boolean> =>
      new Promise((resolve) => {
        const check = (): void => {
          if (!pattern.test(stdout)) return;
          child.stdout.off('data', check);
          resolve(true);
        };
        child.stdout.on('data', check);
        child.once('close', () => resolve(pattern.test(stdout)));
        check();
      });
    return { firstOutput, done, untilStdout, kill: (signal) => child.kill(signal) };
  }

  /** A unique cluster from `manifests`; `ferry down` and a leftover check registered before it exists. */
  async up(
    t: TestContext,
    name: string,
    manifests: string,
    nodes = 2,
    extraArgs: readonly string[] = [],
  ): Promise<{ cluster: string; up: Run }> {
    const cluster = `ferrytest-${process.pid}-${name}`;
    t.after(async () => {
      const down = await this.run(['down', '--cluster', cluster]);
      assert.equal(down.code, 0, down.stderr);
      assert.deepEqual(this.leftovers(cluster), []);
    });
    const up = await this.run(['up', '-f', manifests, '--nodes', String(nodes), '--cluster', cluster, ...extraArgs]);
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
    return { cluster, up };
  }

  async status(cluster: string): Promise<MeshStatus> {
    const r = await this.run(['status', '--json', '--cluster', cluster]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as MeshStatus;
  }

  async curl(cluster: string, pod: string, url: string): Promise<{ run: Run; echo: EchoReply | null }> {
    const run = await this.run(['exec', '--cluster', cluster, pod, '--', 'curl', '-s', url]);
    const [first, body] = run.stdout.split('\n');
    return { run, echo: first === 'HTTP 200' && body !== undefined ? (JSON.parse(body) as EchoReply) : null };
  }

  /**
   * The first `ferry observe --json` flow matching. Access logs are written asynchronously, so it asks again
   * (bounded: the test's own timeout, or the signal) until the flow shows up.
   */
  async flow(cluster: string, match: (f: Flow) => boolean, signal: AbortSignal): Promise<Flow> {
    for (let waitMs = 20; ; waitMs = Math.min(waitMs * 2, 500)) {
      const r = await this.run(['observe', '--json', '--all', '--cluster', cluster]);
      assert.equal(r.code, 0, r.stderr);
      const found = r.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Flow)
        .find(match);
      if (found !== undefined) return found;
      await delay(waitMs, undefined, { signal });
    }
  }

  /** What of the cluster is left on the machine: netns, cgroup, BPF pins, state, processes. */
  leftovers(cluster: string): string[] {
    const out: string[] = [];
    if (existsSync('/run/netns')) {
      out.push(...readdirSync('/run/netns').filter((n) => n.startsWith(`ferry-${cluster}_`)));
    }
    const root = cgroup2MountPoint();
    if (root !== null && existsSync(join(root, 'ferry.slice', cluster))) out.push(`cgroup ${cluster}`);
    if (existsSync(`/sys/fs/bpf/ferry-${cluster}`)) out.push(`pins /sys/fs/bpf/ferry-${cluster}`);
    if (existsSync(join(this.stateRoot, cluster))) out.push(`state ${cluster}`);
    if (existsSync('/etc/netns')) {
      out.push(
        ...readdirSync('/etc/netns')
          .filter((n) => n.startsWith(`ferry-${cluster}_`))
          .map((n) => `/etc/netns/${n}`),
      );
    }
    out.push(...processesOf(cluster).map((p) => `pid ${p}`));
    return out;
  }
}

/** Live (non-zombie) processes in the cluster's cgroup tree. */
export function processesOf(cluster: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cg = readFileSync(`/proc/${entry}/cgroup`, 'utf8');
      const state = readFileSync(`/proc/${entry}/status`, 'utf8');
      if (cg.includes(`/ferry.slice/${cluster}/`) && !/^State:\s+Z/m.test(state)) out.push(Number(entry));
    } catch {
      // exited
    }
  }
  return out;
}

/**
 * Kills the cluster's supervisor (the process in `system/supervisor`), so that a test can keep a ztunnel
 * or waypoint dead, or check what `ferry up` does without it. Waits until it is gone.
 */
export async function killSupervisor(cluster: string): Promise<number> {
  const pid = processesOf(cluster).find((p) => {
    try {
      return readFileSync(`/proc/${p}/cgroup`, 'utf8').includes(`/ferry.slice/${cluster}/system/supervisor`);
    } catch {
      return false;
    }
  });
  assert.ok(pid !== undefined, `no supervisor process in cluster ${cluster}`);
  process.kill(pid, 'SIGKILL');
  while (processesOf(cluster).includes(pid)) await delay(10);
  return pid;
}

/** The pod of that name in a status, asserted present. */
export function podOf(s: MeshStatus, ns: string, name: string): MeshStatus['pods'][number] {
  const p = s.pods.find((x) => x.namespace === ns && x.name === name);
  assert.ok(p !== undefined, `${ns}/${name} in status`);
  return p;
}

/** The VIP of a Service, asserted allocated. */
export function vipOf(s: MeshStatus, ns: string, name: string): string {
  const vip = s.services.find((x) => x.namespace === ns && x.name === name)?.vip;
  assert.ok(typeof vip === 'string', `${ns}/${name} has a VIP`);
  return vip;
}

/** The pinned kubectl v1.34 (k8s-tools.ts) against a cluster's kubeconfig; `input` goes to its stdin. */
export function kubectl(kubeconfig: string, args: readonly string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      k8sToolPath('kubectl'),
      ['--kubeconfig', kubeconfig, ...args],
      { maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
      },
    );
    child.stdin?.end(input ?? '');
  });
}
