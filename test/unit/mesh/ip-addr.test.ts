// Canonical IP text: the store keys on it, so two spellings of one address must meet.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLoopback, parseIpAddr, unmapIpv4 } from '../../../src/mesh/ip-addr.ts';

const canonical: [input: string, expected: string][] = [
  ['10.0.0.1', '10.0.0.1'],
  ['0.0.0.0', '0.0.0.0'],
  ['255.255.255.255', '255.255.255.255'],
  ['::1', '::1'],
  ['::', '::'],
  ['FD00:0:0:0:0:0:0:5', 'fd00::5'],
  ['fd00:0000:0000:0000:0000:0000:0000:0005', 'fd00::5'],
  ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal runs
  ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
  ['1:0:0:2:0:0:0:3', '1:0:0:2::3'], // the longest run wins
  ['::ffff:10.1.2.3', '::ffff:10.1.2.3'],
  ['::FFFF:0a01:0203', '::ffff:10.1.2.3'],
  ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
];

for (const [input, expected] of canonical) {
  test(`parseIpAddr canonicalizes ${input}`, () => {
    assert.deepEqual(parseIpAddr(input), { ok: true, value: expected });
  });
}

const rejected = [
  '',
  '10.0.0',
  '10.0.0.1.2',
  '10.0.0.256',
  '010.0.0.1',
  '10.0.0.-1',
  ' 10.0.0.1',
  '1::2::3',
  '1:2:3:4:5:6:7:8:9',
  '1:2:3:4:5:6:7',
  '1:2:3:4:5:6:7::8',
  'fe80::1%eth0',
  '12345::',
  'g::1',
  'example.com',
  '::ffff:10.0.0.999',
  'x'.repeat(1000),
];
for (const input of rejected) {
  test(`parseIpAddr rejects ${JSON.stringify(input.slice(0, 20))}`, () => {
    const r = parseIpAddr(input);
    assert.equal(r.ok, false);
  });
}

test('loopback covers 127/8, ::1 and mapped loopback, nothing else', () => {
  assert.ok(isLoopback('127.0.0.1'));
  assert.ok(isLoopback('127.9.8.7'));
  assert.ok(isLoopback('::1'));
  assert.ok(isLoopback('::ffff:127.0.0.6'));
  assert.ok(!isLoopback('10.0.0.1'));
  assert.ok(!isLoopback('::'));
  assert.ok(!isLoopback('fd00::127'));
});

test('unmapIpv4 unwraps only IPv4-mapped addresses', () => {
  assert.equal(unmapIpv4('::ffff:10.0.0.1'), '10.0.0.1');
  assert.equal(unmapIpv4('fd00::1'), 'fd00::1');
  assert.equal(unmapIpv4('10.0.0.1'), '10.0.0.1');
});
