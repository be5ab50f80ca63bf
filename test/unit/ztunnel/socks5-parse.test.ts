// The SOCKS5 parsers on hostile and partial input (RFC 1928 §3, §4): every prefix of a valid message is
// "incomplete", bad bytes give the right reply code, and nothing reads past the message.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSocks5Greeting, parseSocks5Request, SOCKS5_REP } from '../../../src/ztunnel/socks5.ts';

const b = (...bytes: number[]): Buffer => Buffer.from(bytes);

test('greeting: complete, partial, and extra bytes left for the request', () => {
  assert.deepEqual(parseSocks5Greeting(b(5, 2, 0, 2)), { kind: 'ok', value: { methods: [0, 2] }, consumed: 4 });
  for (const prefix of [b(), b(5), b(5, 2), b(5, 2, 0)]) assert.equal(parseSocks5Greeting(prefix).kind, 'incomplete');
  const withMore = parseSocks5Greeting(b(5, 1, 0, 5, 1, 0));
  assert.equal(withMore.kind === 'ok' && withMore.consumed, 3);
});

test('greeting: wrong version or no methods is an error without a reply', () => {
  for (const bad of [b(4, 1, 0), b(0x16, 3, 1), b(5, 0), Buffer.from('GET / HTTP/1.1\r\n')]) {
    const r = parseSocks5Greeting(bad);
    assert.equal(r.kind, 'error');
    assert.equal(r.kind === 'error' && r.rep, null);
  }
});

const cases: Array<[string, Buffer, unknown]> = [
  ['ipv4', b(5, 1, 0, 1, 10, 0, 0, 7, 0x1f, 0x90), { target: { kind: 'ip', ip: '10.0.0.7' }, port: 8080 }],
  ['ipv6', b(5, 1, 0, 4, 0xfd, 0, ...Array(13).fill(0), 5, 0, 80), { target: { kind: 'ip', ip: 'fd00::5' }, port: 80 }],
  [
    'domain',
    Buffer.concat([b(5, 1, 0, 3, 4), Buffer.from('echo'), b(0, 80)]),
    { target: { kind: 'domain', host: 'echo' }, port: 80 },
  ],
  [
    'domain that is an IP literal',
    Buffer.concat([b(5, 1, 0, 3, 8), Buffer.from('10.1.2.3'), b(1, 0)]),
    { target: { kind: 'ip', ip: '10.1.2.3' }, port: 256 },
  ],
];
for (const [name, bytes, value] of cases) {
  test(`request ${name}: parses, and every prefix is incomplete`, () => {
    assert.deepEqual(parseSocks5Request(bytes), { kind: 'ok', value, consumed: bytes.length });
    for (let i = 0; i < bytes.length; i++)
      assert.equal(parseSocks5Request(bytes.subarray(0, i)).kind, 'incomplete', `prefix ${i}`);
    const extra = parseSocks5Request(Buffer.concat([bytes, Buffer.from('early data')]));
    assert.equal(extra.kind === 'ok' && extra.consumed, bytes.length);
  });
}

const errors: Array<[string, Buffer, number | null]> = [
  ['BIND', b(5, 2, 0, 1, 1, 2, 3, 4, 0, 80), SOCKS5_REP.commandNotSupported],
  ['UDP ASSOCIATE', b(5, 3, 0, 1, 1, 2, 3, 4, 0, 80), SOCKS5_REP.commandNotSupported],
  ['unknown address type', b(5, 1, 0, 9, 1, 2, 3, 4, 0, 80), SOCKS5_REP.addressTypeNotSupported],
  ['empty domain', b(5, 1, 0, 3, 0, 0, 80), SOCKS5_REP.generalFailure],
  [
    'domain with control bytes',
    Buffer.concat([b(5, 1, 0, 3, 3), b(0x0a, 0x00, 0x41), b(0, 80)]),
    SOCKS5_REP.hostUnreachable,
  ],
  ['port 0', b(5, 1, 0, 1, 1, 2, 3, 4, 0, 0), SOCKS5_REP.generalFailure],
  ['version 4', b(4, 1, 0, 80, 1, 2, 3, 4, 0), null],
];
for (const [name, bytes, rep] of errors) {
  test(`request ${name}: error with reply ${rep}`, () => {
    const r = parseSocks5Request(bytes);
    assert.equal(r.kind, 'error');
    assert.equal(r.kind === 'error' && r.rep, rep);
  });
}

test('fuzz: random bytes never throw and never consume more than given', () => {
  for (let i = 0; i < 5000; i++) {
    const buf = crypto.getRandomValues(Buffer.alloc(Math.floor(Math.random() * 300)));
    if (i % 2 === 0 && buf.length > 0) buf[0] = 5; // reach deeper states half the time
    for (const r of [parseSocks5Greeting(buf), parseSocks5Request(buf)]) {
      if (r.kind === 'ok') assert.ok(r.consumed <= buf.length);
    }
  }
});
