// Every fuzz target, with its share of a long run's inputs (`npm run fuzz`): pure parsers are cheap and get
// most inputs; network targets open real connections (TLS for HBONE) and get fewer. The default shares take
// about 15 minutes on one core (docs/fuzzing.md). Loaded lazily so a
// child process imports only the target it runs.
import type { FuzzKind, FuzzTarget } from './engine.ts';

export interface TargetEntry {
  readonly name: string;
  readonly kind: FuzzKind;
  /** Inputs in the default long run (their sum); `--inputs N` scales every share. */
  readonly weight: number;
  /** Inputs per seeded batch: a failure ends its batch, and progress is reported per batch. */
  readonly batchSize: number;
  readonly load: () => Promise<FuzzTarget>;
}

export const FUZZ_TARGETS: readonly TargetEntry[] = [
  {
    name: 'hbone-connect',
    kind: 'pure',
    weight: 400_000,
    batchSize: 20_000,
    load: async () => (await import('./targets/hbone-connect.ts')).hboneConnectTarget,
  },
  {
    name: 'socks5-parse',
    kind: 'pure',
    weight: 400_000,
    batchSize: 20_000,
    load: async () => (await import('./targets/socks5.ts')).socks5ParseTarget,
  },
  {
    name: 'dns-query',
    kind: 'pure',
    weight: 200_000,
    batchSize: 20_000,
    load: async () => (await import('./targets/dns-query.ts')).dnsQueryTarget,
  },
  {
    name: 'socks5-server',
    kind: 'network',
    weight: 6_000,
    batchSize: 500,
    load: async () => (await import('./targets/socks5.ts')).socks5ServerTarget,
  },
  {
    name: 'hbone-server',
    kind: 'network',
    weight: 8_000,
    batchSize: 500,
    load: async () => (await import('./targets/hbone-server.ts')).hboneServerTarget,
  },
  {
    name: 'waypoint-http1',
    kind: 'network',
    weight: 6_000,
    batchSize: 500,
    load: async () => (await import('./targets/waypoint.ts')).waypointHttp1Target,
  },
  {
    name: 'waypoint-h2c',
    kind: 'network',
    weight: 4_000,
    batchSize: 500,
    load: async () => (await import('./targets/waypoint.ts')).waypointH2cTarget,
  },
  {
    name: 'manifests',
    kind: 'pure',
    weight: 6_000,
    batchSize: 2_000,
    load: async () => (await import('./targets/manifests.ts')).manifestsTarget,
  },
  {
    name: 'xds',
    kind: 'pure',
    weight: 150_000,
    batchSize: 10_000,
    load: async () => (await import('./targets/xds.ts')).xdsTarget,
  },
  {
    name: 'httproute',
    kind: 'pure',
    weight: 100_000,
    batchSize: 10_000,
    load: async () => (await import('./targets/httproute.ts')).httprouteTarget,
  },
  {
    name: 'csr',
    kind: 'pure',
    weight: 20_000,
    batchSize: 2_000,
    load: async () => (await import('./targets/csr.ts')).csrTarget,
  },
  {
    name: 'ca-server',
    kind: 'network',
    weight: 1_000,
    batchSize: 200,
    load: async () => (await import('./targets/csr.ts')).caServerTarget,
  },
];

export function findTarget(name: string): TargetEntry | undefined {
  return FUZZ_TARGETS.find((t) => t.name === name);
}

/** Inputs of the default long run: every target's weight. */
export const DEFAULT_TOTAL_INPUTS = FUZZ_TARGETS.reduce((n, t) => n + t.weight, 0);
