// Fuzz targets for CSRs and the CA (src/identity/csr.ts, ca.ts, ca-server.ts). `csr` (pure): PKCS#10 PEMs
// made by Ferry's own createCsr and by the X.509 library with unwanted shapes (CN, DNS SAN, two SANs, RSA
// and P-384 keys), with DER bytes broken and re-armoured, PEM text damaged, or arbitrary text; each goes
// through parseCsr, then CertificateAuthority.prepare with a random ImpersonatedIdentity and TTL, and is
// signed when accepted. Contract: never throws; refusals are IdentityErrors with FERRY_CA_* codes; an
// issued chain carries exactly the CSR's identity. `ca-server` (network): the same requests as gRPC
// CreateCertificate calls, each on a fresh connection to a real CA server; then a legitimate fetch must
// still return a certificate.
import { webcrypto } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { CertificateAuthority } from '../../../src/identity/ca.ts';
import { allowAll } from '../../../src/identity/ca-authz.ts';
import { CaClient } from '../../../src/identity/ca-client.ts';
import { encodeCertificateRequest, loadCaServiceDefinition } from '../../../src/identity/ca-grpc.ts';
import { startCaServer } from '../../../src/identity/ca-server.ts';
import { createCsr } from '../../../src/identity/csr.ts';
import { IDENTITY_ERROR_CODES, IdentityError } from '../../../src/identity/errors.ts';
import { formatSpiffeId, spiffeId } from '../../../src/identity/spiffe-id.ts';
import { ECDSA_SHA256, x509 } from '../../../src/identity/x509.ts';
import { expectCode, type FuzzTarget, FuzzViolation, mustNotReject } from '../engine.ts';
import { mutatedBytes, mutatedText, nastyString } from '../mutate.ts';

const TD = 'cluster.local';
const CSR_CODES = IDENTITY_ERROR_CODES.filter((c) => c.startsWith('FERRY_CA_'));

interface CsrInput {
  readonly pem: string;
  readonly impersonatedIdentity: string | undefined;
  readonly ttlSeconds: number;
}

async function generatorCsr(
  alg: webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams,
  sign: webcrypto.EcdsaParams | webcrypto.Algorithm,
  name: string | undefined,
  sans: readonly x509.JsonGeneralName[],
): Promise<string> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    ...(name === undefined ? {} : { name }),
    keys,
    signingAlgorithm: sign,
    extensions: sans.length === 0 ? [] : [new x509.SubjectAlternativeNameExtension([...sans], true)],
  });
  return csr.toString('pem');
}

/** Valid CSRs and CSRs of every shape the CA must refuse. */
async function csrSeeds(): Promise<string[]> {
  const web = spiffeId(TD, 'default', 'web');
  const uri = (v: string): x509.JsonGeneralName => ({ type: 'url', value: v });
  const p256 = { name: 'ECDSA', namedCurve: 'P-256' };
  return [
    (await createCsr(web)).csrPem,
    (await createCsr(spiffeId(TD, 'shop', 'client'))).csrPem,
    (await createCsr(spiffeId('other.example', 'default', 'web'))).csrPem,
    await generatorCsr(p256, ECDSA_SHA256, 'CN=web', [uri(formatSpiffeId(web))]),
    await generatorCsr(p256, ECDSA_SHA256, undefined, [{ type: 'dns', value: 'web.default.svc' }]),
    await generatorCsr(p256, ECDSA_SHA256, undefined, [
      uri(formatSpiffeId(web)),
      uri('spiffe://cluster.local/ns/x/sa/y'),
    ]),
    await generatorCsr(p256, ECDSA_SHA256, undefined, []),
    await generatorCsr(p256, ECDSA_SHA256, undefined, [uri('https://example.com/')]),
    await generatorCsr({ name: 'ECDSA', namedCurve: 'P-384' }, { name: 'ECDSA', hash: 'SHA-384' }, undefined, [
      uri(formatSpiffeId(web)),
    ]),
    await generatorCsr(
      { name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
      { name: 'RSASSA-PKCS1-v1_5' },
      undefined,
      [uri(formatSpiffeId(web))],
    ),
  ];
}

function derOf(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

function armour(der: Uint8Array, label = 'CERTIFICATE REQUEST'): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

function csrInputs(seeds: readonly string[]): fc.Arbitrary<CsrInput> {
  const seed = fc.constantFrom(...seeds);
  const pem = fc.oneof(
    { weight: 2, arbitrary: seed },
    { weight: 5, arbitrary: mutatedBytes(seed.map(derOf), 3).map((der) => armour(der)) },
    { weight: 2, arbitrary: mutatedText(seed, 3) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        nastyString,
        fc.uint8Array({ maxLength: 300 }).map((b) => armour(b)),
        seed.map((p) => armour(derOf(p), 'CERTIFICATE')),
        seed.map((p) => `${p}${p}`),
        fc.constant(`-----BEGIN CERTIFICATE REQUEST-----\n${'A'.repeat(20_000)}\n-----END CERTIFICATE REQUEST-----`),
      ),
    },
  );
  return fc.record({
    pem,
    impersonatedIdentity: fc.oneof(
      { weight: 4, arbitrary: fc.constant(undefined) },
      {
        weight: 1,
        arbitrary: fc.constantFrom('spiffe://cluster.local/ns/default/sa/web', 'spiffe://cluster.local/ns/x/sa/y'),
      },
      { weight: 1, arbitrary: nastyString },
    ),
    ttlSeconds: fc.oneof(fc.constantFrom(0, 1, 3600, -1, 1e12, Number.MAX_SAFE_INTEGER, 0.5), fc.integer()),
  });
}

async function checkSign(ca: CertificateAuthority, input: CsrInput): Promise<void> {
  const result = await mustNotReject('CertificateAuthority.sign', () =>
    ca.sign({ csrPem: input.pem, impersonatedIdentity: input.impersonatedIdentity, ttlSeconds: input.ttlSeconds }),
  );
  if (!result.ok) {
    if (!(result.error instanceof IdentityError)) throw new FuzzViolation('sign refused without an IdentityError');
    expectCode(result.error.code, CSR_CODES, 'CertificateAuthority.sign');
    return;
  }
  const leaf = new x509.X509Certificate(result.value.certChainPem[0] as string);
  const sans = new x509.SubjectAlternativeNameExtension(leaf.getExtension('2.5.29.17')?.rawData ?? new ArrayBuffer(0))
    .names.items;
  if (sans.length !== 1 || sans[0]?.value !== formatSpiffeId(result.value.identity)) {
    throw new FuzzViolation(`issued leaf SANs ${JSON.stringify(sans)} for ${formatSpiffeId(result.value.identity)}`);
  }
  if (result.value.identity.trustDomain !== TD) throw new FuzzViolation('issued outside the trust domain');
}

export const csrTarget: FuzzTarget = {
  name: 'csr',
  kind: 'pure',
  what: 'CSR parsing and CA policy (parseCsr, CertificateAuthority.prepare/sign)',
  hangMs: 10_000,
  async start() {
    const ca = await CertificateAuthority.generate({ trustDomain: TD });
    const seeds = await csrSeeds();
    return {
      sync: false,
      arbitrary: csrInputs(seeds),
      run: (input: CsrInput) => checkSign(ca, input),
      async close() {},
    };
  },
};

export const caServerTarget: FuzzTarget = {
  name: 'ca-server',
  kind: 'network',
  what: 'the CA gRPC server: CreateCertificate with fuzzed CSRs and metadata on fresh connections, then a real fetch',
  hangMs: 30_000,
  async start() {
    const ca = await CertificateAuthority.generate({ trustDomain: TD });
    const server = await startCaServer({ ca, authorizer: allowAll() });
    const roots = Buffer.from(ca.trustBundlePem().join('\n'));
    const def = await loadCaServiceDefinition();
    const method = def.CreateCertificate as grpc.MethodDefinition<Record<string, unknown>, unknown>;
    const legit = await CaClient.create({
      address: server.address,
      roots: { pem: ca.trustBundlePem() },
      timeoutMs: 10_000,
    });
    const web = spiffeId(TD, 'default', 'web');
    const seeds = await csrSeeds();
    return {
      sync: false,
      arbitrary: csrInputs(seeds),
      async run(input: CsrInput) {
        // A fresh channel per input: its own TCP + TLS connection.
        const raw = new grpc.Client(server.address, grpc.credentials.createSsl(roots), {
          'grpc.use_local_subchannel_pool': 1,
        });
        try {
          const req = encodeCertificateRequest({
            csrPem: input.pem,
            validitySeconds: Number.isFinite(input.ttlSeconds) ? input.ttlSeconds : 0,
            impersonatedIdentity: input.impersonatedIdentity,
          });
          const err = await new Promise<grpc.ServiceError | null>((resolve) =>
            raw.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, req, (e) =>
              resolve(e),
            ),
          );
          if (err !== null && err.code === grpc.status.INTERNAL) {
            throw new FuzzViolation(`the CA failed internally: ${err.details}`);
          }
        } finally {
          raw.close();
        }
        const cert = await legit.fetch(web);
        if (cert.identity.serviceAccount !== 'web')
          throw new FuzzViolation('legitimate fetch returned another identity');
      },
      async close() {
        legit.close();
        await server.close();
      },
    };
  },
};
