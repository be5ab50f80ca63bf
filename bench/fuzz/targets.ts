// Every fuzz target, with its share of a long run's inputs (`npm run fuzz`): pure parsers are cheap and get
// most inputs; network targets open real connections (TLS for HBONE) and get fewer. Loaded lazily so a
// child process imports only the target it runs.
import type { FuzzKind, FuzzTarget } from './engine.ts';

export interface TargetEntry {
  readonly name: string;
  readonly kind: FuzzKind;
  /** Relative share of `--inputs` in a run of every target. */
  readonly weight: number;
  /** Inputs per seeded batch: a failure ends its batch, and progress is reported per batch. */
  readonly batchSize: number;
  readonly load: () => Promise<FuzzTarget>;
}

export const FUZZ_TARGETS: readonly TargetEntry[] = [
  {
    name: 'hbone-connect',
    kind: 'pure',
    weight: 200,
    batchSize: 20_000,
    load: async () => (await import('./targets/hbone-connect.ts')).hboneConnectTarget,
  },
  {
    name: 'socks5-parse',
    kind: 'pure',
    weight: 200,
    batchSize: 20_000,
    load: async () => (await import('./targets/socks5.ts')).socks5ParseTarget,
  },
  {
    name: 'socks5-server',
    kind: 'network',
    weight: 3,
    batchSize: 500,
    load: async () => (await import('./targets/socks5.ts')).socks5ServerTarget,
  },
  {
    name: 'hbone-server',
    kind: 'network',
    weight: 3,
    batchSize: 500,
    load: async () => (await import('./targets/hbone-server.ts')).hboneServerTarget,
  },
  {
    name: 'waypoint-http1',
    kind: 'network',
    weight: 3,
    batchSize: 500,
    load: async () => (await import('./targets/waypoint.ts')).waypointHttp1Target,
  },
  {
    name: 'waypoint-h2c',
    kind: 'network',
    weight: 3,
    batchSize: 500,
    load: async () => (await import('./targets/waypoint.ts')).waypointH2cTarget,
  },
  {
    name: 'manifests',
    kind: 'pure',
    weight: 20,
    batchSize: 2_000,
    load: async () => (await import('./targets/manifests.ts')).manifestsTarget,
  },
  {
    name: 'xds',
    kind: 'pure',
    weight: 150,
    batchSize: 10_000,
    load: async () => (await import('./targets/xds.ts')).xdsTarget,
  },
  {
    name: 'httproute',
    kind: 'pure',
    weight: 100,
    batchSize: 10_000,
    load: async () => (await import('./targets/httproute.ts')).httprouteTarget,
  },
  {
    name: 'csr',
    kind: 'pure',
    weight: 20,
    batchSize: 2_000,
    load: async () => (await import('./targets/csr.ts')).csrTarget,
  },
  {
    name: 'ca-server',
    kind: 'network',
    weight: 3,
    batchSize: 500,
    load: async () => (await import('./targets/csr.ts')).caServerTarget,
  },
];

export function findTarget(name: string): TargetEntry | undefined {
  return FUZZ_TARGETS.find((t) => t.name === name);
}
