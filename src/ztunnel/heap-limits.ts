// V8 heap limits a ztunnel process runs with (docs/performance.md, "Soak"; docs/operations.md, "Limits").
// Under steady traffic a ztunnel's live heap stays at about 20 MiB, but V8 sizes the young generation from
// the machine's memory (here up to two 64 MiB semi-spaces) and grows it to the maximum under a steady
// allocation rate; it shrinks it again only when the process is idle, which a busy node proxy never is.
// Measured: RSS 118 → 382 MiB within three minutes of 1,000 requests/s + 50 new connections/s, then flat,
// with the live heap unchanged and all of the growth given back by one memory-reducing GC. So this is heap
// reservation, not a leak, and capping the semi-space bounds it (+42 instead of +147 MiB) for about 12 % more
// CPU (more frequent scavenges). The old-space cap is a ceiling, not a working size (> 40 × the measured live heap): a real
// leak then ends in a crash and a restart by the supervisor instead of taking the node's memory.
export const ZTUNNEL_HEAP_FLAGS: readonly string[] = ['--max-semi-space-size=16', '--max-old-space-size=1024'];

/**
 * NODE_OPTIONS for a ztunnel process: the heap limits first, then the operator's own options, which win
 * (V8 takes the last value of a repeated flag), e.g. FERRY_ZTUNNEL_NODE_OPTIONS=--max-semi-space-size=64.
 */
export function ztunnelNodeOptions(operator: string | undefined): string {
  return [...ZTUNNEL_HEAP_FLAGS, ...(operator === undefined || operator === '' ? [] : [operator])].join(' ');
}
