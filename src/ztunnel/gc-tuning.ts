// V8 garbage-collector settings a ztunnel sets on itself at start (docs/performance.md, "L4 CPU and bulk").
// Every chunk a proxy copies arrives in a fresh ArrayBuffer (a socket read, an HTTP/2 DATA chunk); V8
// counts those bytes as external memory and by default starts a full mark-compact of the whole heap every
// ~64 MiB of them, although nearly all die young and a scavenge frees them. Measured on a bulk transfer:
// one mark-compact per second per ztunnel, and half the receiving ztunnel's CPU. Accounting external
// memory in the global heap limit instead leaves those buffers to scavenges. The flag is not accepted in
// NODE_OPTIONS, so the process sets it before it allocates anything on the data path.
import { setFlagsFromString } from 'node:v8';

export const ZTUNNEL_V8_FLAGS: readonly string[] = ['--external-memory-accounted-in-global-limit'];

/** Applies ZTUNNEL_V8_FLAGS to this process. Call once, before the proxy starts. */
export function applyZtunnelGcTuning(): void {
  for (const flag of ZTUNNEL_V8_FLAGS) setFlagsFromString(flag);
}
