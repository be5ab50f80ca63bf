// Service VIP allocation from the service CIDR (10.96.0.0/16). The controller asks for a VIP per Service
// (`ns/name`) and gets the same one back while the Service exists. VIPs are never routed by the kernel:
// enrolled pods' connects are redirected to their ztunnel before routing (docs/architecture.md "How a connection flows through the code"); in an unenrolled
// pod the service CIDR is an `unreachable` route (network.ts), so connect() fails at once with
// EHOSTUNREACH: non-mesh clients must use pod IPs.
import { ClusterError } from './errors.ts';
import { SERVICE_CIDR } from './layout.ts';

export class ServiceVipAllocator {
  readonly #base: number;
  readonly #size: number;
  readonly #byKey = new Map<string, number>();
  readonly #taken = new Set<number>();
  #next = 1; // .0 is the network address

  constructor(cidr: string = SERVICE_CIDR) {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
    const parts = m?.slice(1, 5).map(Number) ?? [];
    const bits = Number(m?.[5]);
    if (m === null || parts.some((p) => p > 255) || bits < 8 || bits > 30) {
      throw new ClusterError(
        'FERRY_CLUSTER_INVALID_SPEC',
        `service CIDR ${JSON.stringify(cidr)}: expected a.b.c.d/8..30`,
      );
    }
    const [a = 0, b = 0, c = 0, d = 0] = parts;
    this.#size = 2 ** (32 - bits);
    this.#base = ((a * 2 ** 24 + b * 2 ** 16 + c * 2 ** 8 + d) / this.#size) * this.#size;
    if (!Number.isInteger(this.#base)) {
      throw new ClusterError('FERRY_CLUSTER_INVALID_SPEC', `service CIDR ${cidr}: host bits must be zero`);
    }
  }

  /** The VIP of `key` (`ns/name`): the one it already has, else the lowest free one. */
  allocate(key: string): string {
    const existing = this.#byKey.get(key);
    if (existing !== undefined) return format(this.#base + existing);
    for (let i = 0; i < this.#size - 2; i++) {
      const offset = ((this.#next - 1 + i) % (this.#size - 2)) + 1; // skip network and broadcast
      if (!this.#taken.has(offset)) {
        this.#take(key, offset);
        this.#next = offset + 1;
        return format(this.#base + offset);
      }
    }
    throw new ClusterError('FERRY_CLUSTER_INVALID_SPEC', `service CIDR exhausted allocating ${key}`);
  }

  /** Claims an explicit clusterIP for `key`; throws if it is outside the CIDR or held by another key. */
  reserve(key: string, ip: string): void {
    const n = parseIp(ip);
    const offset = n === null ? -1 : n - this.#base;
    if (offset < 1 || offset >= this.#size - 1) {
      throw new ClusterError(
        'FERRY_CLUSTER_INVALID_SPEC',
        `${key}: clusterIP ${ip} is not a host address of the service CIDR`,
      );
    }
    const holder = [...this.#byKey].find(([, o]) => o === offset)?.[0];
    if (holder !== undefined && holder !== key) {
      throw new ClusterError('FERRY_CLUSTER_INVALID_SPEC', `${key}: clusterIP ${ip} is already used by ${holder}`);
    }
    this.release(key);
    this.#take(key, offset);
  }

  release(key: string): void {
    const offset = this.#byKey.get(key);
    if (offset === undefined) return;
    this.#byKey.delete(key);
    this.#taken.delete(offset);
  }

  #take(key: string, offset: number): void {
    this.#byKey.set(key, offset);
    this.#taken.add(offset);
  }
}

function parseIp(ip: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (m === null) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return parts.reduce((acc, p) => acc * 256 + p, 0);
}

function format(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}
