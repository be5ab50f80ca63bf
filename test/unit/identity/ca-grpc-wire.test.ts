// The CA's hand-written protobuf codec (src/identity/ca-grpc.ts) against protobufjs reading proto/ca.proto:
// what Istio's ztunnel sends and expects on the wire, both directions, plus hostile bytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import {
  decodeCertificateRequestWire,
  decodeCertificateResponseWire,
  encodeCertificateRequest,
  encodeCertificateRequestWire,
  encodeCertificateResponseWire,
  parseCertificateRequest,
} from '../../../src/identity/ca-grpc.ts';
import { WireError } from '../../../src/identity/protobuf-wire.ts';

const CA_PROTO = fileURLToPath(new URL('../../../proto/ca.proto', import.meta.url));

async function types() {
  const root = await new protobuf.Root().load(CA_PROTO, { keepCase: true });
  return {
    request: root.lookupType('istio.v1.auth.IstioCertificateRequest'),
    response: root.lookupType('istio.v1.auth.IstioCertificateResponse'),
  };
}

test('a request we encode reads back in protobufjs with the CSR, validity and ImpersonatedIdentity', async () => {
  const { request } = await types();
  const bytes = encodeCertificateRequestWire(
    encodeCertificateRequest({
      csrPem: 'PEM\n',
      validitySeconds: 86400,
      impersonatedIdentity: 'spiffe://td/ns/a/sa/b',
    }),
  );
  const obj = request.toObject(request.decode(bytes), { longs: String }) as Record<string, unknown>;
  assert.equal(obj.csr, 'PEM\n');
  assert.equal(obj.validity_duration, '86400');
  assert.deepEqual(obj.metadata, { fields: { ImpersonatedIdentity: { stringValue: 'spiffe://td/ns/a/sa/b' } } });
});

test('a request protobufjs encodes (other Struct kinds, unknown fields) parses to what the CA needs', async () => {
  const { request } = await types();
  const message = request.fromObject({
    csr: 'CSR',
    validity_duration: '3600',
    metadata: {
      fields: {
        Other: { numberValue: 3 },
        Nested: { structValue: { fields: { x: { stringValue: 'y' } } } },
        ImpersonatedIdentity: { stringValue: 'spiffe://td/ns/a/sa/b' },
      },
    },
  });
  const bytes = Buffer.concat([request.encode(message).finish(), Buffer.from([0x28, 0x01])]); // + field 5 varint
  const parsed = parseCertificateRequest(decodeCertificateRequestWire(bytes));
  assert.deepEqual(parsed, { csrPem: 'CSR', validitySeconds: 3600, impersonatedIdentity: 'spiffe://td/ns/a/sa/b' });
});

test('responses round-trip with protobufjs in both directions', async () => {
  const { response } = await types();
  const chain = ['leaf', 'intermediate', 'root'];
  const ours = encodeCertificateResponseWire({ cert_chain: chain });
  assert.deepEqual((response.toObject(response.decode(ours)) as { cert_chain: string[] }).cert_chain, chain);
  const theirs = response.encode(response.fromObject({ cert_chain: chain })).finish();
  assert.deepEqual(decodeCertificateResponseWire(theirs).cert_chain, chain);
});

test('malformed bytes are a WireError: truncation, a length past the end, a 64-bit overflowing varint', () => {
  const good = encodeCertificateRequestWire(
    encodeCertificateRequest({ csrPem: 'x'.repeat(300), validitySeconds: 1, impersonatedIdentity: undefined }),
  );
  for (let cut = 1; cut < good.length; cut += 7) {
    assert.throws(() => decodeCertificateRequestWire(good.subarray(0, cut)), WireError, `cut at ${cut}`);
  }
  assert.throws(() => decodeCertificateRequestWire(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])), WireError);
  assert.throws(() => decodeCertificateRequestWire(Buffer.from([0x18, ...Array(11).fill(0xff)])), WireError);
  assert.throws(() => decodeCertificateRequestWire(Buffer.from([0x0b])), WireError); // wire type 3 (group)
});
