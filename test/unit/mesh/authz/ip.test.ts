// IP parsing, canonical printing and CIDR containment used by authz and the config parsers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalIp, ipInCidr, parseCidr, parseIp } from '../../../../src/mesh/ip-addr.ts';

test('canonicalIp accepts IPv4 and IPv6 and prints the RFC 5952 form', () => {
  const cases: [string, string][] = [
    ['10.0.0.1', '10.0.0.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['::', '::'],
    ['::1', '::1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of equal-length runs
    ['2001:0db8:0000:0001:0000:0000:0000:0001', '2001:db8:0:1::1'], // longest run wins
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero hextet is not compressed
    ['1::', '1::'],
    ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
    ['::FFFF:a00:1', '::ffff:10.0.0.1'],
    ['64:ff9b::1.2.3.4', '64:ff9b::102:304'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
  ];
  for (const [input, want] of cases) assert.equal(canonicalIp(input), want, input);
});

test('parseIp rejects anything that is not exactly one address', () => {
  const bad = [
    '',
    '10.0.0',
    '10.0.0.1.2',
    '10.0.0.256',
    '010.0.0.1',
    '10.0.0.-1',
    ' 10.0.0.1',
    '10.0.0.1/32',
    '::1::',
    ':::',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4::5:6:7:8',
    '12345::',
    'fe80::1%eth0',
    '[::1]',
    'g::1',
    '::ffff:1.2.3',
    'localhost',
    '1.2.3.4:80',
  ];
  for (const input of bad) assert.equal(parseIp(input), null, JSON.stringify(input));
});

test('parseCidr accepts prefixes and bare addresses as host routes', () => {
  assert.deepEqual(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefixLength: 8 });
  assert.deepEqual(parseCidr('10.1.2.3'), { address: '10.1.2.3', prefixLength: 32 });
  assert.deepEqual(parseCidr('2001:DB8::/32'), { address: '2001:db8::', prefixLength: 32 });
  assert.deepEqual(parseCidr('::1'), { address: '::1', prefixLength: 128 });
  assert.deepEqual(parseCidr('0.0.0.0/0'), { address: '0.0.0.0', prefixLength: 0 });
  for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/08', '10.0.0.0/-1', '/8', 'x/8', '10.0.0.0/8/8']) {
    assert.equal(parseCidr(bad), null, bad);
  }
});

test('ipInCidr covers /0, /32, /128, boundaries and IPv6', () => {
  const yes: [string, string][] = [
    ['0.0.0.0', '0.0.0.0/0'],
    ['255.255.255.255', '0.0.0.0/0'],
    ['10.255.255.255', '10.0.0.0/8'],
    ['10.0.0.0', '10.0.0.0/8'],
    ['10.1.2.3', '10.1.2.3/32'],
    ['10.1.2.3', '10.1.2.3'],
    ['10.1.2.3', '10.1.2.0/24'],
    ['10.1.2.3', '10.1.2.99/24'], // host bits in the CIDR are ignored
    ['2001:db8::1', '2001:db8::/32'],
    ['2001:db8:ffff::1', '2001:db8::/32'],
    ['::1', '::1/128'],
    ['2001:db8::1', '::/0'],
  ];
  const no: [string, string][] = [
    ['11.0.0.0', '10.0.0.0/8'],
    ['9.255.255.255', '10.0.0.0/8'],
    ['10.1.2.4', '10.1.2.3/32'],
    ['2001:db9::1', '2001:db8::/32'],
    ['::2', '::1/128'],
    ['10.0.0.1', '::/0'], // families do not cross ...
    ['2001:db8::1', '0.0.0.0/0'],
    ['not-an-ip', '0.0.0.0/0'],
  ];
  for (const [ip, cidr] of yes) assert.equal(ipInCidr(ip, parseCidr(cidr)!), true, `${ip} in ${cidr}`);
  for (const [ip, cidr] of no) assert.equal(ipInCidr(ip, parseCidr(cidr)!), false, `${ip} not in ${cidr}`);
});

test('an IPv4-mapped IPv6 address matches the IPv4 CIDR and the other way round', () => {
  assert.equal(ipInCidr('::ffff:10.0.0.1', parseCidr('10.0.0.0/8')!), true);
  assert.equal(ipInCidr('::ffff:10.0.0.1', parseCidr('10.0.0.1')!), true);
  assert.equal(ipInCidr('::ffff:10.0.0.1', parseCidr('0.0.0.0/0')!), true);
  assert.equal(ipInCidr('::ffff:11.0.0.1', parseCidr('10.0.0.0/8')!), false);
  assert.equal(ipInCidr('10.0.0.1', parseCidr('::ffff:10.0.0.0/104')!), true);
  assert.equal(ipInCidr('10.0.0.1', parseCidr('::ffff:0:0/96')!), true);
  assert.equal(ipInCidr('11.0.0.1', parseCidr('::ffff:10.0.0.0/104')!), false);
  assert.equal(ipInCidr('::ffff:10.0.0.1', parseCidr('::/0')!), true); // it is also an IPv6 address
  assert.equal(ipInCidr('10.0.0.1', parseCidr('::/0')!), false); // but a plain IPv4 one is not
});

test('random IPv6 addresses round-trip and agree with the WHATWG URL serializer', () => {
  let seed = 0x1234_5678;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed >>> 16;
  };
  for (let i = 0; i < 2000; i++) {
    // Zero-heavy hextets so that compression runs of every length occur.
    const hextets = Array.from({ length: 8 }, () => (next() % 3 === 0 ? next() : 0));
    if (hextets.slice(0, 5).every((h) => h === 0) && hextets[5] === 0xffff) continue; // mapped: printed dotted
    const text = hextets.map((h) => h.toString(16)).join(':');
    const canonical = canonicalIp(text);
    assert.equal(canonical, new URL(`http://[${text}]/`).hostname.slice(1, -1), text);
    assert.equal(canonicalIp(canonical!), canonical);
  }
});
