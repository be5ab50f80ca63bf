// Byte layouts shared with bpf/redirect.bpf.c and the pure parts of feature probing: no root needed.
import assert from 'node:assert/strict';
import test from 'node:test';
import { BpfError } from '../../../src/redirect-bpf/errors.ts';
import {
  CONFIG_SIZE,
  COUNTER_SLOTS,
  decodeOrigDst,
  decodePodClass,
  decodePodInfo,
  encodeConfig,
  encodePodClass,
  encodePodInfo,
  encodeTupleKey,
  normalizeIpv4,
  parseCidr,
  sumPerCpu,
} from '../../../src/redirect-bpf/layout.ts';
import { findCgroup2Mount, parseKernelVersion } from '../../../src/redirect-bpf/probe.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof BpfError);
    return err.code;
  }
  return 'no error';
}

test('pod info: IP in network order, flags little-endian', () => {
  const buf = encodePodInfo('10.244.0.2', 5);
  assert.equal(buf.toString('hex'), '0af4000205000000');
  assert.deepEqual(decodePodInfo(buf), { podIp: '10.244.0.2', flags: 5 });
});

test('tuple key: cookie LE, addresses and ports network order, v4-mapped peers normalized', () => {
  const key = encodeTupleKey({
    netnsCookie: 0x0102n,
    srcAddress: '::ffff:127.0.0.1',
    srcPort: 40000,
    dstAddress: '127.0.0.1',
    dstPort: 15001,
  });
  assert.equal(key.toString('hex'), `0201000000000000${'7f000001'.repeat(2)}9c403a9900000000`);
});

test('original destination decodes address, port and cgroup id', () => {
  const buf = Buffer.from('0a60000a00500000' + '2a00000000000000', 'hex');
  assert.deepEqual(decodeOrigDst(buf), { address: '10.96.0.10', port: 80, cgroupId: 42n });
});

test('config: counts, host-order ports, masked CIDRs at the C offsets', () => {
  const buf = encodeConfig({
    excludedPorts: [53, 9090],
    excludedCidrs: ['10.96.0.7/16'],
    probeCidrs: ['169.254.7.127'],
  });
  assert.equal(buf.length, CONFIG_SIZE);
  assert.deepEqual([buf.readUInt32LE(0), buf.readUInt32LE(4), buf.readUInt32LE(8)], [2, 1, 1]);
  assert.deepEqual([buf.readUInt16LE(16), buf.readUInt16LE(18)], [53, 9090]);
  assert.equal(buf.subarray(48, 56).toString('hex'), '0a600000ffff0000');
  assert.equal(buf.subarray(112, 120).toString('hex'), 'a9fe077fffffffff');
  assert.equal(encodeConfig({}).equals(Buffer.alloc(CONFIG_SIZE)), true);
});

test('config rejects what the datapath cannot hold or express', () => {
  assert.equal(
    codeOf(() => encodeConfig({ excludedPorts: [0] })),
    'FERRY_BPF_INVALID_ARGUMENT',
  );
  assert.equal(
    codeOf(() => encodeConfig({ excludedPorts: Array.from({ length: 17 }, (_, i) => i + 1) })),
    'FERRY_BPF_INVALID_ARGUMENT',
  );
  assert.equal(
    codeOf(() => encodeConfig({ excludedCidrs: ['10.0.0.0/33'] })),
    'FERRY_BPF_INVALID_ARGUMENT',
  );
  assert.equal(
    codeOf(() => encodeConfig({ probeCidrs: ['fd00::/8'] })),
    'FERRY_BPF_INVALID_ARGUMENT',
  );
  assert.equal(
    codeOf(() => parseCidr('not-an-ip/8')),
    'FERRY_BPF_INVALID_ARGUMENT',
  );
});

test('parseCidr masks host bits; /0 matches everything', () => {
  assert.equal(parseCidr('10.1.2.3/8').addr.toString('hex'), '0a000000');
  assert.deepEqual(parseCidr({ address: '1.2.3.4', prefixLength: 0 }), {
    addr: Buffer.alloc(4),
    mask: Buffer.alloc(4),
  });
});

test('normalizeIpv4 accepts IPv4 and v4-mapped only', () => {
  assert.equal(normalizeIpv4('::FFFF:10.0.0.1'), '10.0.0.1');
  assert.equal(normalizeIpv4('10.0.0.1'), '10.0.0.1');
  assert.equal(normalizeIpv4('::1'), null);
  assert.equal(normalizeIpv4(''), null);
});

test('per-CPU counters are summed over possible CPUs', () => {
  const buf = Buffer.alloc(24);
  buf.writeBigUInt64LE(2n, 0);
  buf.writeBigUInt64LE(3n, 8);
  buf.writeBigUInt64LE(4n, 16);
  assert.equal(sumPerCpu(buf, 3), 9n);
});

test('kernel version and cgroup2 mount parsing', () => {
  assert.deepEqual(parseKernelVersion('6.18.44-fc-v669'), [6, 18]);
  assert.equal(parseKernelVersion('garbage'), null);
  const hybrid = 'cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n';
  assert.equal(findCgroup2Mount(hybrid), '/sys/fs/cgroup/unified');
  assert.equal(
    findCgroup2Mount('cgroup2 /host/sys/fs/cgroup cgroup2 rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw 0 0'),
    '/sys/fs/cgroup',
  );
  assert.equal(findCgroup2Mount('tmpfs /tmp tmpfs rw 0 0'), null);
});

test('pod class: ambient 1, exempt 2 (CLASS_* in the C); unknown values decode to null', () => {
  assert.deepEqual([...encodePodClass('ambient')], [1, 0, 0, 0]);
  assert.deepEqual([...encodePodClass('exempt')], [2, 0, 0, 0]);
  assert.equal(decodePodClass(encodePodClass('exempt')), 'exempt');
  assert.equal(decodePodClass(encodePodClass('ambient')), 'ambient');
  assert.equal(decodePodClass(Buffer.from([7, 0, 0, 0])), null);
});

test('counters: the guard refusals live in their own map, the others keep their slots', () => {
  assert.deepEqual(COUNTER_SLOTS.outboundRefused, { map: 'guard_counters', index: 0 });
  assert.deepEqual(COUNTER_SLOTS.lookupsMissed, { map: 'counters', index: 4 });
});
