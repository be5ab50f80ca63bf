// CSR validation table: every malformed or policy-violating CSR is refused with its own code and a message
// naming the problem; a well-formed one is signed into an SVID that the CA's root verifies.
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { describe, test } from 'node:test';
import { CertificateAuthority } from '../../../src/identity/ca.ts';
import { createCsr, parseCsr } from '../../../src/identity/csr.ts';
import type { IdentityErrorCode } from '../../../src/identity/errors.ts';
import { spiffeId } from '../../../src/identity/spiffe-id.ts';
import { ECDSA_SHA256, generateP256KeyPair, type KeyPair, x509 } from '../../../src/identity/x509.ts';

const TD = 'cluster.local';
const GOOD = `spiffe://${TD}/ns/default/sa/web`;

interface CsrShape {
  readonly name?: string;
  readonly sans?: readonly { type: 'url' | 'dns' | 'ip' | 'email'; value: string }[];
  readonly keys?: KeyPair;
  readonly signingAlgorithm?: Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[0]['signingAlgorithm'];
}

async function makeCsr(shape: CsrShape = {}): Promise<string> {
  const keys = shape.keys ?? (await generateP256KeyPair());
  const sans = shape.sans ?? [{ type: 'url', value: GOOD }];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    ...(shape.name === undefined ? {} : { name: shape.name }),
    keys,
    signingAlgorithm: shape.signingAlgorithm ?? ECDSA_SHA256,
    extensions: sans.length === 0 ? [] : [new x509.SubjectAlternativeNameExtension([...sans], true)],
  });
  return csr.toString('pem');
}

async function rsaKeys(): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    true,
    ['sign', 'verify'],
  )) as KeyPair;
}

async function mismatchedKeys(): Promise<KeyPair> {
  const a = await generateP256KeyPair();
  const b = await generateP256KeyPair();
  return { publicKey: a.publicKey, privateKey: b.privateKey }; // signed by a key that is not the subject key
}

interface Case {
  readonly name: string;
  readonly csr: () => Promise<string>;
  readonly impersonated?: string;
  readonly code: IdentityErrorCode;
  readonly mentions: RegExp;
}

const cases: readonly Case[] = [
  { name: 'garbage text', csr: async () => 'hello', code: 'FERRY_CA_CSR_MALFORMED', mentions: /PEM/ },
  {
    name: 'garbage inside a PEM block',
    csr: async () => '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
    code: 'FERRY_CA_CSR_MALFORMED',
    mentions: /PKCS#10/,
  },
  {
    name: 'truncated PEM',
    csr: async () => (await makeCsr()).slice(0, 200),
    code: 'FERRY_CA_CSR_MALFORMED',
    mentions: /PEM|PKCS#10/,
  },
  {
    name: 'bad signature',
    csr: async () => makeCsr({ keys: await mismatchedKeys() }),
    code: 'FERRY_CA_CSR_BAD_SIGNATURE',
    mentions: /signature/,
  },
  { name: 'no SAN', csr: () => makeCsr({ sans: [] }), code: 'FERRY_CA_CSR_NO_SAN', mentions: /no subjectAltName/ },
  {
    name: 'two SANs',
    csr: () =>
      makeCsr({
        sans: [
          { type: 'url', value: GOOD },
          { type: 'url', value: `spiffe://${TD}/ns/default/sa/admin` },
        ],
      }),
    code: 'FERRY_CA_CSR_MULTIPLE_SANS',
    mentions: /2 SANs.*sa\/admin/,
  },
  {
    name: 'DNS SAN',
    csr: () => makeCsr({ sans: [{ type: 'dns', value: 'web.default.svc' }] }),
    code: 'FERRY_CA_CSR_SAN_NOT_URI',
    mentions: /dns:web\.default\.svc/,
  },
  {
    name: 'non-SPIFFE URI SAN',
    csr: () => makeCsr({ sans: [{ type: 'url', value: 'https://example.com/web' }] }),
    code: 'FERRY_CA_CSR_SAN_NOT_SPIFFE',
    mentions: /https:\/\/example\.com\/web/,
  },
  {
    name: 'wrong trust domain',
    csr: () => makeCsr({ sans: [{ type: 'url', value: 'spiffe://evil.example/ns/default/sa/web' }] }),
    code: 'FERRY_CA_WRONG_TRUST_DOMAIN',
    mentions: /evil\.example.*cluster\.local/,
  },
  {
    name: 'RSA key',
    csr: async () => makeCsr({ keys: await rsaKeys(), signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' } }),
    code: 'FERRY_CA_CSR_KEY_NOT_P256',
    mentions: /rsa/,
  },
  {
    name: 'CN present',
    csr: () => makeCsr({ name: 'CN=web.default' }),
    code: 'FERRY_CA_CSR_HAS_COMMON_NAME',
    mentions: /CN="web\.default"/,
  },
  {
    name: 'ImpersonatedIdentity differs from the SAN',
    csr: () => makeCsr(),
    impersonated: `spiffe://${TD}/ns/default/sa/admin`,
    code: 'FERRY_CA_IDENTITY_MISMATCH',
    mentions: /sa\/admin.*sa\/web/,
  },
  {
    name: 'ImpersonatedIdentity not a SPIFFE ID',
    csr: () => makeCsr(),
    impersonated: 'web',
    code: 'FERRY_CA_IDENTITY_MISMATCH',
    mentions: /not a SPIFFE ID/,
  },
];

describe('CA refuses bad CSRs with a typed error', async () => {
  const ca = await CertificateAuthority.generate({ trustDomain: TD });
  for (const c of cases) {
    test(c.name, async () => {
      const res = await ca.sign({ csrPem: await c.csr(), impersonatedIdentity: c.impersonated });
      assert.equal(res.ok, false);
      if (res.ok) return;
      assert.equal(res.error.code, c.code, res.error.message);
      assert.match(res.error.message, c.mentions);
    });
  }

  test('a CSR made by createCsr is accepted, with and without a matching ImpersonatedIdentity', async () => {
    const id = spiffeId(TD, 'default', 'web');
    const { csrPem } = await createCsr(id);
    assert.equal((await ca.sign({ csrPem })).ok, true);
    assert.equal((await ca.sign({ csrPem, impersonatedIdentity: GOOD })).ok, true);
  });
});

test('parseCsr returns the identity and P-256 key of a good CSR', async () => {
  const id = spiffeId(TD, 'shop', 'cart');
  const made = await createCsr(id);
  const parsed = await parseCsr(made.csrPem);
  assert.ok(parsed.ok);
  assert.deepEqual(parsed.value.identity, id);
  assert.deepEqual(parsed.value.publicKey.algorithm, { name: 'ECDSA', namedCurve: 'P-256' });
  assert.match(made.privateKeyPem, /BEGIN PRIVATE KEY/);
});

test('parseCsr survives random bytes and random truncations without throwing', async () => {
  const good = await makeCsr();
  for (let i = 0; i < 200; i++) {
    const bytes = webcrypto.getRandomValues(new Uint8Array(1 + (i % 300)));
    const body = Buffer.from(bytes).toString('base64');
    const garbage =
      i % 2 === 0
        ? `-----BEGIN CERTIFICATE REQUEST-----\n${body}\n-----END CERTIFICATE REQUEST-----`
        : good.slice(0, Math.min(i * 3, good.trimEnd().length - 1)); // cut before the END marker is complete
    const res = await parseCsr(garbage);
    assert.equal(res.ok, false, `input #${i} was accepted`);
  }
  const tooBig = `-----BEGIN CERTIFICATE REQUEST-----\n${'A'.repeat(20_000)}\n-----END CERTIFICATE REQUEST-----`;
  const res = await parseCsr(tooBig);
  assert.ok(!res.ok && res.error.code === 'FERRY_CA_CSR_MALFORMED');
});
