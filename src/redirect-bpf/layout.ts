// Byte layouts of the BPF maps' keys and values (pure; mirrors the structs in bpf/redirect.bpf.c, change
// both together). Addresses and ports are network order where the C side says so; integers the kernel
// reads natively (cgroup ids, cookies, counts) are little-endian host order (x86_64/arm64).
import { isIPv4 } from 'node:net';
import { BpfError } from './errors.ts';

export const MAX_EXCLUDED_PORTS = 16;
export const MAX_CIDRS = 8;
export const CONFIG_SIZE = 176;
export const TUPLE_KEY_SIZE = 24;
export const ORIG_DST_SIZE = 16;
export const POD_INFO_SIZE = 8;
/** struct capture_key: client address and port, the pod IP it was rewritten to (docs/redirect.md, "Two redirectors on one pod"). */
export const CAPTURE_KEY_SIZE = 12;
/**
 * pod_info.flags bit (POD_FLAG_STEER_LISTENERS in bpf/redirect.bpf.c): the pod's 15001 and 15008 listeners
 * are registered for sk_lookup, so connect4 rewrites to podIP:15001 instead of 127.0.0.1:15001
 * (docs/redirect.md, "Only the ztunnel's own sockets").
 */
export const POD_FLAG_STEER_LISTENERS = 1;

export const COUNTER_NAMES = [
  'outboundRedirected',
  'outboundBypassed',
  'inboundSteered',
  'inboundBypassed',
  'lookupsMissed',
  'outboundRefused',
] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];
/**
 * Where each counter lives: its slot in `counters`, except the guard's refusals, which have a map of their
 * own (`guard_counters`) so that `counters` keeps the size pinned by earlier versions.
 */
export const COUNTER_SLOTS: Readonly<Record<CounterName, { map: 'counters' | 'guard_counters'; index: number }>> = {
  outboundRedirected: { map: 'counters', index: 0 },
  outboundBypassed: { map: 'counters', index: 1 },
  inboundSteered: { map: 'counters', index: 2 },
  inboundBypassed: { map: 'counters', index: 3 },
  lookupsMissed: { map: 'counters', index: 4 },
  outboundRefused: { map: 'guard_counters', index: 0 },
};

/**
 * The node agent's classification of a pod cgroup that is not enrolled (the `classified` map; CLASS_* in
 * bpf/redirect.bpf.c): `ambient` is refused until enrolled, `exempt` connects directly. Only read while a
 * guard root is set (docs/redirect.md, "Fail-closed capture for new pods").
 */
export type PodClass = 'ambient' | 'exempt';
const CLASS_VALUES: Readonly<Record<PodClass, number>> = { ambient: 1, exempt: 2 };

export function encodePodClass(cls: PodClass): Buffer {
  return encodeU32(CLASS_VALUES[cls]);
}

/** null for a value this version does not know (the datapath treats it as refused). */
export function decodePodClass(buf: Buffer): PodClass | null {
  const value = buf.readUInt32LE(0);
  if (value === CLASS_VALUES.ambient) return 'ambient';
  if (value === CLASS_VALUES.exempt) return 'exempt';
  return null;
}
export type RedirectCounters = Readonly<Record<CounterName, bigint>>;

export interface Cidr {
  readonly address: string;
  readonly prefixLength: number;
}

/** What the datapath must leave alone, beyond the fixed rules (loopback, own IP, ztunnel ports). */
export interface RedirectConfig {
  /** Destination ports never captured outbound nor steered inbound (e.g. a node-local DNS). */
  readonly excludedPorts?: readonly number[];
  /** Outbound destinations never captured. */
  readonly excludedCidrs?: readonly (string | Cidr)[];
  /** Inbound sources never steered (kubelet probes, docs/architecture.md "How a connection flows through the code" step 5). */
  readonly probeCidrs?: readonly (string | Cidr)[];
}

export interface OriginalDestination {
  readonly address: string;
  readonly port: number;
  /** cgroup id of the enrolled pod that made the connection. */
  readonly cgroupId: bigint;
}

export interface TupleKey {
  readonly netnsCookie: bigint;
  /** The client's (peer's) address and port as the accepting ztunnel sees them. */
  readonly srcAddress: string;
  readonly srcPort: number;
  /** The rewritten destination: the in-pod listener's local address and port. */
  readonly dstAddress: string;
  readonly dstPort: number;
}

/** '::ffff:10.0.0.1' → '10.0.0.1'; anything that is not IPv4 afterwards → null. */
export function normalizeIpv4(address: string): string | null {
  const plain = address.toLowerCase().startsWith('::ffff:') ? address.slice(7) : address;
  return isIPv4(plain) ? plain : null;
}

export function parseIpv4(address: string): Buffer {
  const plain = normalizeIpv4(address);
  if (plain === null)
    throw new BpfError('FERRY_BPF_INVALID_ARGUMENT', `not an IPv4 address: ${JSON.stringify(address)}`);
  return Buffer.from(plain.split('.').map(Number));
}

export function formatIpv4(buf: Buffer, offset = 0): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

export function parseCidr(input: string | Cidr): { addr: Buffer; mask: Buffer } {
  const { address, prefixLength } = typeof input === 'string' ? splitCidr(input) : input;
  if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > 32) {
    throw new BpfError('FERRY_BPF_INVALID_ARGUMENT', `bad CIDR prefix length ${prefixLength} for ${address}`);
  }
  const addr = parseIpv4(address);
  const maskInt = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  const mask = Buffer.alloc(4);
  mask.writeUInt32BE(maskInt);
  for (let i = 0; i < 4; i++) addr[i] = (addr[i] ?? 0) & (mask[i] ?? 0);
  return { addr, mask };
}

function splitCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  if (slash < 0) return { address: text, prefixLength: 32 };
  return { address: text.slice(0, slash), prefixLength: Number(text.slice(slash + 1)) };
}

function checkPort(port: number, what: string): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new BpfError('FERRY_BPF_INVALID_ARGUMENT', `bad ${what}: ${port}`);
  }
  return port;
}

export function encodeU64(value: bigint): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64LE(value);
  return buf;
}

export function encodeU32(value: number): Buffer {
  const buf = Buffer.alloc(4);
  buf.writeUInt32LE(value);
  return buf;
}

export function encodePodInfo(podIp: string, flags = 0): Buffer {
  const buf = Buffer.alloc(POD_INFO_SIZE);
  parseIpv4(podIp).copy(buf, 0);
  buf.writeUInt32LE(flags, 4);
  return buf;
}

export function decodePodInfo(buf: Buffer): { podIp: string; flags: number } {
  return { podIp: formatIpv4(buf, 0), flags: buf.readUInt32LE(4) };
}

export function encodeConfig(cfg: RedirectConfig): Buffer {
  const ports = cfg.excludedPorts ?? [];
  const excluded = (cfg.excludedCidrs ?? []).map(parseCidr);
  const probes = (cfg.probeCidrs ?? []).map(parseCidr);
  if (ports.length > MAX_EXCLUDED_PORTS) {
    throw new BpfError('FERRY_BPF_INVALID_ARGUMENT', `at most ${MAX_EXCLUDED_PORTS} excluded ports`);
  }
  if (excluded.length > MAX_CIDRS || probes.length > MAX_CIDRS) {
    throw new BpfError('FERRY_BPF_INVALID_ARGUMENT', `at most ${MAX_CIDRS} excluded and ${MAX_CIDRS} probe CIDRs`);
  }
  const buf = Buffer.alloc(CONFIG_SIZE);
  buf.writeUInt32LE(ports.length, 0);
  buf.writeUInt32LE(excluded.length, 4);
  buf.writeUInt32LE(probes.length, 8);
  ports.forEach((p, i) => {
    buf.writeUInt16LE(checkPort(p, 'excluded port'), 16 + 2 * i);
  });
  excluded.forEach((c, i) => {
    c.addr.copy(buf, 48 + 8 * i);
    c.mask.copy(buf, 52 + 8 * i);
  });
  probes.forEach((c, i) => {
    c.addr.copy(buf, 112 + 8 * i);
    c.mask.copy(buf, 116 + 8 * i);
  });
  return buf;
}

export function encodeTupleKey(key: TupleKey): Buffer {
  const buf = Buffer.alloc(TUPLE_KEY_SIZE);
  buf.writeBigUInt64LE(key.netnsCookie, 0);
  parseIpv4(key.srcAddress).copy(buf, 8);
  parseIpv4(key.dstAddress).copy(buf, 12);
  buf.writeUInt16BE(checkPort(key.srcPort, 'source port'), 16);
  buf.writeUInt16BE(checkPort(key.dstPort, 'destination port'), 18);
  return buf;
}

export function decodeOrigDst(buf: Buffer): OriginalDestination {
  return { address: formatIpv4(buf, 0), port: buf.readUInt16BE(4), cgroupId: buf.readBigUInt64LE(8) };
}

/** Sums a PERCPU_ARRAY value (one u64 per possible CPU, 8-byte slots). */
export function sumPerCpu(buf: Buffer, cpus: number): bigint {
  let total = 0n;
  for (let cpu = 0; cpu < cpus; cpu++) total += buf.readBigUInt64LE(cpu * 8);
  return total;
}

/** Key and value sizes of every map Ferry pins, as the BPF object declares them. */
export const MAP_SHAPES = {
  enrolled: { key: 8, value: POD_INFO_SIZE },
  orig_by_cookie: { key: 8, value: ORIG_DST_SIZE },
  orig_by_tuple: { key: TUPLE_KEY_SIZE, value: ORIG_DST_SIZE },
  config: { key: 4, value: CONFIG_SIZE },
  inbound_listeners: { key: 4, value: 8 },
  outbound_listeners: { key: 4, value: 8 },
  hbone_listeners: { key: 4, value: 8 },
  counters: { key: 4, value: 8 },
  captured_connects: { key: CAPTURE_KEY_SIZE, value: 4 },
  classified: { key: 8, value: 4 },
  guard_root: { key: 4, value: 8 },
  guard_counters: { key: 4, value: 8 },
} as const;
export type MapName = keyof typeof MAP_SHAPES;
