// Node's process_* and nodejs_* figures under the names prom-client's default collectors use, read only
// when scraped: CPU seconds, resident memory, start time, open file descriptors, heap and external memory,
// the Node version. No timers, no GC observer and no event-loop-delay monitor run between scrapes
// (prom-client's collectors keep those; docs/operations.md lists what is exposed).
import { readdir } from 'node:fs/promises';
import type { MetricsRegistry } from './prometheus.ts';

const START_TIME_SECONDS = Math.round(Date.now() / 1000 - process.uptime());

async function openFds(): Promise<number> {
  try {
    return (await readdir('/proc/self/fd')).length - 1; // minus the one readdir itself holds
  } catch {
    return Number.NaN; // not Linux: the series reads NaN rather than failing the scrape
  }
}

/** Registers the process and runtime families on `registry`. */
export function registerProcessMetrics(registry: MetricsRegistry): void {
  const cpu = (pick: (u: NodeJS.CpuUsage) => number) => () => [{ value: pick(process.cpuUsage()) / 1e6 }];
  registry.collected(
    'counter',
    { name: 'process_cpu_user_seconds_total', help: 'Total user CPU time spent in seconds.' },
    cpu((u) => u.user),
  );
  registry.collected(
    'counter',
    { name: 'process_cpu_system_seconds_total', help: 'Total system CPU time spent in seconds.' },
    cpu((u) => u.system),
  );
  registry.collected(
    'counter',
    { name: 'process_cpu_seconds_total', help: 'Total user and system CPU time spent in seconds.' },
    cpu((u) => u.user + u.system),
  );
  registry.collected(
    'gauge',
    { name: 'process_start_time_seconds', help: 'Start time of the process since unix epoch in seconds.' },
    () => [{ value: START_TIME_SECONDS }],
  );
  registry.collected('gauge', { name: 'process_resident_memory_bytes', help: 'Resident memory size in bytes.' }, () => [
    { value: process.memoryUsage.rss() },
  ]);
  registry.collected('gauge', { name: 'process_open_fds', help: 'Number of open file descriptors.' }, async () => [
    { value: await openFds() },
  ]);
  const memory = (pick: (m: NodeJS.MemoryUsage) => number) => () => [{ value: pick(process.memoryUsage()) }];
  registry.collected(
    'gauge',
    { name: 'nodejs_heap_size_total_bytes', help: 'Process heap size from Node.js in bytes.' },
    memory((m) => m.heapTotal),
  );
  registry.collected(
    'gauge',
    { name: 'nodejs_heap_size_used_bytes', help: 'Process heap size used from Node.js in bytes.' },
    memory((m) => m.heapUsed),
  );
  registry.collected(
    'gauge',
    { name: 'nodejs_external_memory_bytes', help: 'Node.js external memory size in bytes.' },
    memory((m) => m.external),
  );
  const [major = '', minor = '', patch = ''] = process.versions.node.split('.');
  registry.collected(
    'gauge',
    {
      name: 'nodejs_version_info',
      help: 'Node.js version info.',
      labelNames: ['version', 'major', 'minor', 'patch'],
    },
    () => [{ labels: { version: process.version, major, minor, patch }, value: 1 }],
  );
}
