// Upstream resolver configuration and reply matching (src/local-cluster/dns/upstream.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import dnsPacket from 'dns-packet';
import { isReplyTo, parseResolvConf } from '../../../../src/local-cluster/dns/upstream.ts';

const cases: readonly { name: string; text: string; hosts: readonly string[] }[] = [
  { name: 'one nameserver', text: 'nameserver 10.255.255.53\n', hosts: ['10.255.255.53'] },
  {
    name: 'comments, search and options are ignored; at most three, as glibc',
    text: '# c\nsearch a b\nnameserver 1.1.1.1 ; x\nnameserver ::1\nnameserver 8.8.8.8\nnameserver 9.9.9.9\noptions ndots:1\n',
    hosts: ['1.1.1.1', '::1', '8.8.8.8'],
  },
  { name: 'IPv6 zone id dropped', text: 'nameserver fe80::1%eth0\n', hosts: ['fe80::1'] },
  { name: 'names are not nameservers', text: 'nameserver dns.example\n', hosts: ['127.0.0.1'] },
  { name: 'empty file: glibc default, the local host', text: '', hosts: ['127.0.0.1'] },
];
for (const c of cases) {
  test(`parseResolvConf: ${c.name}`, () => {
    assert.deepEqual(
      parseResolvConf(c.text).map((s) => s.host),
      c.hosts,
    );
  });
}

test('isReplyTo: same id, QR set and the same question bytes; anything else is a stray', () => {
  const q = dnsPacket.encode({ type: 'query', id: 77, questions: [{ name: 'example.com', type: 'A' }] });
  const reply = (id: number, name: string, type: 'query' | 'response' = 'response') =>
    dnsPacket.encode({ type, id, questions: [{ name, type: 'A' }], answers: [] });
  assert.equal(isReplyTo(q, reply(77, 'example.com')), true);
  assert.equal(isReplyTo(q, reply(78, 'example.com')), false);
  assert.equal(isReplyTo(q, reply(77, 'example.org')), false);
  assert.equal(isReplyTo(q, reply(77, 'example.com', 'query')), false);
  assert.equal(isReplyTo(q, Buffer.alloc(3)), false);
});
