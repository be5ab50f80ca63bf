// `npm run bench -- dns`: the cluster DNS server (src/local-cluster/dns/) on loopback. Builds a table of
// BENCH_DNS_SERVICES services (default 5,000) with one pod each and times it, then sends BENCH_DNS_QUERIES
// A queries (default 50,000) from BENCH_DNS_CONCURRENCY UDP clients (default 32), each one query in flight,
// a mix of hits and NXDOMAINs. Client and server share this process's one thread, so the throughput is a
// floor for a DNS process of its own, and cpuUsPerQuery counts both sides. Prints one JSON line.
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import dnsPacket from 'dns-packet';
import { buildDnsRecords, type DnsInput } from '../src/local-cluster/dns/records.ts';
import { DnsServer } from '../src/local-cluster/dns/server.ts';
import { silentLogger } from '../src/runtime/logger.ts';

function envInt(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : fallback;
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

export async function runDns(): Promise<number> {
  const services = envInt('BENCH_DNS_SERVICES', 5_000);
  const queries = envInt('BENCH_DNS_QUERIES', 50_000);
  const concurrency = envInt('BENCH_DNS_CONCURRENCY', 32);
  const ip = (i: number, base: number) => `10.${base}.${Math.floor(i / 250)}.${(i % 250) + 2}`;
  const input: DnsInput = {
    services: Array.from({ length: services }, (_, i) => ({
      namespace: `ns${i % 50}`,
      name: `svc${i}`,
      clusterIps: [ip(i, 96)],
      endpointIps: [ip(i, 244)],
      ports: [{ name: 'http', port: 80, protocol: 'tcp' as const }],
    })),
    pods: Array.from({ length: services }, (_, i) => ({
      namespace: `ns${i % 50}`,
      name: `pod${i}`,
      ips: [ip(i, 244)],
    })),
  };
  // CPU time next to wall time: on a shared, loaded machine the CPU cost is the comparable number.
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const records = buildDnsRecords(input);
  const buildMs = performance.now() - t0;
  const buildCpuMs = cpuMsSince(c0);
  const server = await DnsServer.start({
    udp: { host: '127.0.0.1', port: 0 },
    tcp: { host: '127.0.0.1', port: 0 },
    records,
    upstream: null,
    log: silentLogger,
  });
  const port = server.addresses.udp.port;
  const latencies: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    const s = createSocket('udp4');
    s.connect(port, '127.0.0.1');
    await once(s, 'connect');
    while (next < queries) {
      const i = next++;
      const name =
        i % 4 === 3
          ? `missing${i}.ns1.svc.cluster.local`
          : `svc${i % services}.ns${(i % services) % 50}.svc.cluster.local`;
      const q = dnsPacket.encode({
        type: 'query',
        id: i & 0xffff,
        flags: dnsPacket.RECURSION_DESIRED,
        questions: [{ name, type: 'A' }],
      });
      const started = performance.now();
      s.send(q);
      await once(s, 'message');
      latencies.push(performance.now() - started);
    }
    s.close();
  };
  const t1 = performance.now();
  const c1 = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = performance.now() - t1;
  const queryCpuMs = cpuMsSince(c1);
  await server.close();
  latencies.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 1000) / 1000;
  process.stdout.write(
    `${JSON.stringify({
      services,
      names: records.names.size,
      buildMs: Math.round(buildMs),
      buildCpuMs: Math.round(buildCpuMs),
      queries,
      concurrency,
      qps: Math.round((queries / elapsedMs) * 1000),
      cpuUsPerQuery: Math.round((queryCpuMs * 1000) / queries),
      latencyMs: {
        p50: round(percentile(latencies, 50)),
        p99: round(percentile(latencies, 99)),
        max: round(latencies.at(-1) ?? 0),
      },
      answered: server.stats.answered,
      rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
    })}\n`,
  );
  return 0;
}
