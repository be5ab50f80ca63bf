// Refused HBONE handshakes are classified into one stable reason (issue 9, item 6): OpenSSL verify codes,
// TLS alerts, socket errnos, and Ferry's own identity checks; the log fields carry reason and peer ip:port.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProxyError } from '../../../src/errors.ts';
import { hbonePeerErrorFields, logHbonePeerError } from '../../../src/hbone/server.ts';
import { verifyErrorCode } from '../../../src/identity/tls-context.ts';
import {
  classifyTlsErrorCode,
  describeTlsRefusal,
  TLS_REFUSAL_REASONS,
  type TlsRefusalReason,
  TlsRefusedError,
} from '../../../src/identity/tls-refusal.ts';
import { AccessLog } from '../../../src/ztunnel/access-log.ts';
import { ZtunnelMetrics } from '../../../src/ztunnel/metrics.ts';
import { CapturingLogger } from '../../helpers/xds-events.ts';

const CASES: readonly (readonly [code: string | null | undefined, reason: TlsRefusalReason])[] = [
  // X.509 verification (authorizationError on the server, err.code on the client)
  ['CERT_HAS_EXPIRED', 'expired'],
  ['CERT_NOT_YET_VALID', 'not-yet-valid'],
  ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unknown-ca'],
  ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'unknown-ca'],
  ['UNABLE_TO_GET_ISSUER_CERT', 'unknown-ca'],
  ['SELF_SIGNED_CERT_IN_CHAIN', 'unknown-ca'],
  ['DEPTH_ZERO_SELF_SIGNED_CERT', 'unknown-ca'],
  ['CERT_UNTRUSTED', 'unknown-ca'],
  ['CERT_SIGNATURE_FAILURE', 'bad-signature'],
  ['UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'bad-signature'],
  ['CERT_REVOKED', 'revoked'],
  ['INVALID_CA', 'invalid-certificate'],
  ['INVALID_PURPOSE', 'invalid-certificate'],
  ['PATH_LENGTH_EXCEEDED', 'invalid-certificate'],
  ['ERROR_IN_CERT_NOT_AFTER_FIELD', 'invalid-certificate'],
  // alerts and handshake errors
  ['ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED', 'expired'],
  ['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'unknown-ca'],
  ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'invalid-certificate'],
  ['ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED', 'revoked'],
  ['ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', 'no-certificate'],
  ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'no-certificate'],
  ['ERR_SSL_UNSUPPORTED_PROTOCOL', 'protocol'],
  ['ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'protocol'],
  ['ERR_SSL_NO_APPLICATION_PROTOCOL', 'protocol'],
  ['ERR_SSL_WRONG_VERSION_NUMBER', 'protocol'],
  ['ERR_SSL_HTTP_REQUEST', 'protocol'],
  ['ERR_SSL_SOMETHING_NEW_IN_OPENSSL_4', 'protocol'],
  // the transport
  ['ECONNRESET', 'peer-closed'],
  ['EPIPE', 'peer-closed'],
  [null, 'peer-closed'],
  [undefined, 'peer-closed'],
  ['', 'peer-closed'],
  ['ECONNREFUSED', 'connect-failed'],
  ['EHOSTUNREACH', 'connect-failed'],
  ['ETIMEDOUT', 'connect-failed'],
  ['ABORT_ERR', 'timeout'],
  ['ERR_TLS_HANDSHAKE_TIMEOUT', 'timeout'],
  ['EWHATEVER', 'other'],
  ['cert_has_expired', 'other'], // codes are exact: OpenSSL's names are upper case
];

for (const [code, reason] of CASES) {
  test(`classifyTlsErrorCode(${JSON.stringify(code)}) = ${reason}`, () => {
    assert.equal(classifyTlsErrorCode(code), reason);
  });
}

test('every reason has a description, and descriptions are distinct', () => {
  const texts = TLS_REFUSAL_REASONS.map(describeTlsRefusal);
  assert.ok(texts.every((t) => typeof t === 'string' && t.length > 0));
  assert.equal(new Set(texts).size, texts.length);
});

test('verifyErrorCode reads the server form (a string) and the Error form, else null', () => {
  assert.equal(verifyErrorCode('CERT_HAS_EXPIRED'), 'CERT_HAS_EXPIRED');
  assert.equal(
    verifyErrorCode(Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' })),
    'CERT_HAS_EXPIRED',
  );
  assert.equal(verifyErrorCode(new Error('no code')), null);
  assert.equal(verifyErrorCode(undefined), null);
  assert.equal(verifyErrorCode(''), null);
});

test('TlsRefusedError is a ProxyError with the code callers branch on, plus reason and TLS code', () => {
  const e = new TlsRefusedError('FERRY_HBONE_HANDSHAKE_FAILED', 'expired', 'CERT_HAS_EXPIRED', 'refused');
  assert.ok(e instanceof ProxyError);
  assert.equal(e.code, 'FERRY_HBONE_HANDSHAKE_FAILED');
  assert.equal(e.reason, 'expired');
  assert.equal(e.tlsCode, 'CERT_HAS_EXPIRED');
});

test('log fields: reason and TLS code for refusals, the peer as ip:port (IPv6 bracketed), unknown when lost', () => {
  const refused = new TlsRefusedError('FERRY_HBONE_HANDSHAKE_FAILED', 'unknown-ca', 'SELF_SIGNED_CERT_IN_CHAIN', 'x');
  assert.deepEqual(hbonePeerErrorFields({ error: refused, peer: { ip: '10.0.0.7', port: 40512 } }), {
    code: 'FERRY_HBONE_HANDSHAKE_FAILED',
    reason: 'unknown-ca',
    tls_error: 'SELF_SIGNED_CERT_IN_CHAIN',
    peer: '10.0.0.7:40512',
    error: 'x',
  });
  const own = new TlsRefusedError('FERRY_HBONE_TRUST_DOMAIN_MISMATCH', 'wrong-trust-domain', null, 'y');
  assert.deepEqual(hbonePeerErrorFields({ error: own, peer: { ip: 'fd00::7', port: 1 } }), {
    code: 'FERRY_HBONE_TRUST_DOMAIN_MISMATCH',
    reason: 'wrong-trust-domain',
    peer: '[fd00::7]:1',
    error: 'y',
  });
  const bad = new ProxyError('FERRY_HBONE_BAD_REQUEST', 'z');
  assert.deepEqual(hbonePeerErrorFields({ error: bad, peer: { ip: undefined, port: undefined } }), {
    code: 'FERRY_HBONE_BAD_REQUEST',
    peer: 'unknown',
    error: 'z',
  });
});

test('the access log of a failed outbound connection carries the handshake reason', () => {
  const log = new CapturingLogger();
  const access = new AccessLog({ logger: log, metrics: new ZtunnelMetrics({ processMetrics: false }) });
  const result = access.startConnection({ direction: 'outbound', srcAddr: '10.0.0.1:5000', mtls: true });
  result.fail(new TlsRefusedError('FERRY_HBONE_HANDSHAKE_FAILED', 'expired', 'CERT_HAS_EXPIRED', 'expired cert'));
  const line = log.lines.at(-1);
  assert.equal(line?.msg, 'connection failed');
  assert.deepEqual(line?.fields.error, {
    code: 'FERRY_HBONE_HANDSHAKE_FAILED',
    message: 'expired cert',
    reason: 'expired',
  });
});

test("log levels: refusals at warn everywhere; a client that left and bad requests at the caller's level", () => {
  const peer = { ip: '10.0.0.7', port: 1 };
  const cases = [
    [new TlsRefusedError('FERRY_HBONE_HANDSHAKE_FAILED', 'expired', 'CERT_HAS_EXPIRED', 'x'), 'debug', 'warn'],
    [new TlsRefusedError('FERRY_HBONE_TRUST_DOMAIN_MISMATCH', 'wrong-trust-domain', null, 'x'), 'debug', 'warn'],
    [new TlsRefusedError('FERRY_HBONE_HANDSHAKE_FAILED', 'peer-closed', 'ECONNRESET', 'x'), 'debug', 'debug'],
    [new TlsRefusedError('FERRY_HBONE_HANDSHAKE_FAILED', 'peer-closed', 'ECONNRESET', 'x'), 'warn', 'warn'],
    [new ProxyError('FERRY_HBONE_BAD_REQUEST', 'x'), 'debug', 'debug'],
    [new ProxyError('FERRY_HBONE_BAD_REQUEST', 'x'), 'warn', 'warn'],
  ] as const;
  for (const [error, otherLevel, want] of cases) {
    const seen: string[] = [];
    const log = new CapturingLogger();
    log.debug = () => seen.push('debug');
    log.warn = () => seen.push('warn');
    logHbonePeerError(log, { error, peer }, otherLevel);
    assert.deepEqual(
      seen,
      [want],
      `${error.code} ${error instanceof TlsRefusedError ? error.reason : ''} ${otherLevel}`,
    );
  }
});
