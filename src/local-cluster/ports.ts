// Free loopback ports for the local cluster's processes (`ferry up`, and the supervisor when it replaces
// a ztunnel, whose new process needs its own admin, metrics and readiness ports while the old one drains).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * n distinct free loopback ports for the cluster's processes, chosen below the kernel's ephemeral range:
 * a port from that range, released after the check, can be taken as the local port of any outgoing
 * connection on this host before the process binds it (seen with several clusters up at once). Ports are
 * probed by binding; the small race with other listeners is tolerated in local mode.
 */
export async function freePorts(n: number): Promise<number[]> {
  const [low] = ephemeralRange();
  const out: number[] = [];
  for (let tries = 0; out.length < n && tries < 2000; tries++) {
    const port = 20_000 + Math.floor(Math.random() * Math.max(1, low - 20_000));
    if (out.includes(port)) continue;
    if (await canBind(port)) out.push(port);
  }
  if (out.length < n) throw new Error(`no ${n} free loopback ports below ${low}`);
  return out;
}

function ephemeralRange(): [number, number] {
  try {
    const [a, b] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (a !== undefined && b !== undefined && a > 21_000) return [a, b];
  } catch {}
  return [32_768, 60_999];
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
