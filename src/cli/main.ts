// `ferry`: one binary, subcommands. Each subcommand lives in its own module and is loaded on demand so
// `ferry --help` stays fast and a subcommand's dependencies load only when used.
import { persistCompileCache } from '../runtime/compile-cache.ts';
import { exitQuietlyOnBrokenPipe } from './broken-pipe.ts';

interface Subcommand {
  readonly summary: string;
  readonly load: () => Promise<{ run(argv: readonly string[]): Promise<number> }>;
}

const SUBCOMMANDS: Record<string, Subcommand> = {
  ztunnel: { summary: 'run a node proxy (L4, HBONE mTLS, authorization)', load: () => import('./ztunnel-command.ts') },
  waypoint: {
    summary: 'run an L7 waypoint (HTTPRoute, GRPCRoute, TCPRoute, L7 authorization)',
    load: () => import('./waypoint-command.ts'),
  },
  ca: { summary: 'run the SPIFFE CA (gRPC IstioCertificateService)', load: () => import('./ca-command.ts') },
  apiserver: {
    summary: 'run the local Kubernetes API server (kubectl, informers)',
    load: () => import('./apiserver-command.ts'),
  },
  demo: { summary: 'two ztunnels on loopback: mTLS, load balancing, passthrough', load: () => import('./demo.ts') },
  up: { summary: 'create the local cluster (pods as netns + cgroups)', load: () => import('./up-command.ts') },
  down: { summary: 'remove the local cluster, also after a crash', load: () => import('./down-command.ts') },
  kubeconfig: {
    summary: "print the path of a bare local cluster's kubeconfig",
    load: () => import('./kubeconfig-command.ts'),
  },
  kubelet: {
    summary: "run a bare local cluster's kubelet for one node (started by up --bare)",
    load: () => import('./kubelet-command.ts'),
  },
  'kube-controllers': {
    summary: 'run the scheduler and workload controllers of a bare local cluster (started by up --bare)',
    load: () => import('./kube-controllers-command.ts'),
  },
  exec: { summary: 'run a command inside a pod of the local cluster', load: () => import('./exec-command.ts') },
  controller: {
    summary: "run the local cluster's controller (started by up -f)",
    load: () => import('./controller-command.ts'),
  },
  rollout: {
    summary: "replace the local cluster's ztunnels without failing connections (rollout restart ztunnel)",
    load: () => import('./rollout-command.ts'),
  },
  supervise: {
    summary: 'restart dead ztunnels and waypoints of the local cluster (started by up -f)',
    load: () => import('./supervise-command.ts'),
  },
  dns: { summary: "run the local cluster's DNS server (started by up -f)", load: () => import('./dns-command.ts') },
  status: {
    summary: 'show the local mesh: nodes, pods, services, policies',
    load: async () => ({ run: (await import('./mesh-commands.ts')).status }),
  },
  apply: {
    summary: 'create or update objects from manifests (-f)',
    load: async () => ({
      run: (a: readonly string[]) => import('./mesh-commands.ts').then((m) => m.applyOrDelete('apply', a)),
    }),
  },
  delete: {
    summary: 'delete the objects named in manifests (-f)',
    load: async () => ({
      run: (a: readonly string[]) => import('./mesh-commands.ts').then((m) => m.applyOrDelete('delete', a)),
    }),
  },
  label: {
    summary: 'change namespace/pod labels live (enroll, unenroll)',
    load: async () => ({ run: (await import('./mesh-commands.ts')).label }),
  },
  logs: {
    summary: "print a local cluster process's log",
    load: async () => ({ run: (await import('./mesh-commands.ts')).logs }),
  },
  testapp: {
    summary: 'built-in test apps: http-echo, tcp-echo, grpc-echo, curl, grpc-client',
    load: () => import('./testapp-command.ts'),
  },
  observe: { summary: "live flow view from the ztunnels' access logs", load: () => import('./observe-command.ts') },
  doctor: {
    summary: 'check that this machine can run Ferry (kernel, BPF, cgroup2, capabilities)',
    load: () => import('./doctor-command.ts'),
  },
  migrate: {
    summary:
      'Istio sidecar-mode config → ambient: check (what changes/blocks), convert (HTTPRoutes, waypoint, policies)',
    load: () => import('./migrate-command.ts'),
  },
  version: { summary: 'print the version', load: async () => ({ run: printVersion }) },
};

async function printVersion(): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  process.stdout.write(`ferry ${pkg.version} (node ${process.version})\n`);
  return 0;
}

function usage(): string {
  const lines = Object.entries(SUBCOMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: ferry <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nferry <command> --help for its options\n`;
}

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const sub = SUBCOMMANDS[name];
  if (sub === undefined) {
    process.stderr.write(`ferry: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  const mod = await sub.load();
  persistCompileCache(); // every module the command imported at start, for the next start
  return mod.run(rest);
}

exitQuietlyOnBrokenPipe([process.stdout, process.stderr]);
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as { code?: string; message?: string };
    process.stderr.write(`ferry: ${e.code !== undefined ? `${e.code}: ` : ''}${e.message ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
