// `npm run bench -- <name>`: benchmark dispatcher. Each benchmark lives in its own module and is loaded on
// demand (l4 now; redirect and waypoint can be added here). SIGINT/SIGTERM end the run; children are
// killed on exit by the spawning helpers (bench/children.ts, src/cli/child-process.ts).

interface Bench {
  readonly summary: string;
  readonly run: () => Promise<number>;
}

const BENCHES: Record<string, Bench> = {
  l4: {
    summary: 'direct vs two ztunnels over HBONE: added latency, CPU, RSS, throughput',
    run: async () => (await import('./l4.ts')).runL4(),
  },
  'l4-ab': {
    summary: 'two ztunnel pairs from two trees (BENCH_TREE_A/_B) or flag sets, alternated: CPU per request, bulk',
    run: async () => (await import('./l4-ab.ts')).runL4Ab(),
  },
  redirect: {
    summary: 'BPF in-pod capture vs direct pod to pod (root): added latency, CPU, RSS, enrollment time',
    run: async () => (await import('./redirect.ts')).runRedirect(),
  },
  sidecar: {
    summary: 'ztunnel pair vs sidecar pair (ferry ztunnel --sidecar), same pods, same run (root): latency, CPU, RSS',
    run: async () => (await import('./sidecar.ts')).runSidecarBench(),
  },
  waypoint: {
    summary: 'client → ztunnel → waypoint → ztunnel → server vs no mesh (root): added latency, waypoint CPU, RSS',
    run: async () => (await import('./waypoint.ts')).runWaypoint(),
  },
  startup: {
    summary: 'ztunnel start-up: type stripping vs the compile cache (and V8 flags): time to ready, CPU, idle RSS',
    run: async () => (await import('./startup.ts')).runStartup(),
  },
  'policy-scale': {
    summary: 'authz decision, new connection and controller heap/RSS with 0 vs BENCH_POLICIES (5,000) policies',
    run: async () => (await import('./policy-scale.ts')).runPolicyScale(),
  },
  'ztunnel-soak': {
    summary: 'steady load through two ztunnels for BENCH_SOAK_DURATION_MS: RSS vs heap, heap snapshots compared',
    run: async () => (await import('./ztunnel-soak.ts')).runZtunnelSoak(),
  },
  'ca-flood': {
    summary: "a legitimate node's certificate request while the CA is flooded (unauthenticated, authenticated)",
    run: async () => (await import('./ca-flood.ts')).runCaFlood(),
  },
  'slow-clients': {
    summary: 'fds and RSS of a ztunnel while N clients from one IP never finish their TLS handshake on 15008',
    run: async () => (await import('./slow-clients.ts')).runSlowClients(),
  },
  'kube-latency': {
    summary: 'Kubernetes path: API status write → controller publish → workload applied at a ztunnel (BENCH_PODS)',
    run: async () => (await import('./kube-latency.ts')).runKubeLatency(),
  },
  dns: {
    summary: 'cluster DNS on loopback: table build time for BENCH_DNS_SERVICES, UDP queries/s and latency',
    run: async () => (await import('./dns.ts')).runDns(),
  },
  'ztunnel-replacement': {
    summary: 'ferry rollout restart ztunnel under load (root): failed new connections and keep-alive requests',
    run: async () => (await import('./ztunnel-replacement.ts')).runZtunnelReplacement(),
  },
};

function usage(): string {
  const lines = Object.entries(BENCHES).map(([name, b]) => `  ${name.padEnd(10)} ${b.summary}`);
  return `usage: npm run bench -- <name>\n\nbenchmarks:\n${lines.join('\n')}\n`;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}, stopping\n`);
    // The 'exit' hooks of the spawning helpers kill every child.
    process.exit(130);
  });
}

const [name] = process.argv.slice(2);
const bench = name === undefined ? undefined : BENCHES[name];
if (bench === undefined) {
  process.stderr.write(name === undefined ? usage() : `bench: unknown benchmark ${JSON.stringify(name)}\n\n${usage()}`);
  process.exitCode = 2;
} else {
  bench.run().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`bench ${name}: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
