// The last guard before an admin dump leaves the process (/config_dump): whatever a provider put in the
// snapshot, no private key, CA key, token, password or PEM key block is served. Providers are written not
// to include them (certificate snapshots carry serial and validity only); this catches the one that forgets.
// Pure: returns a redacted copy, never mutates its input.

export const REDACTED = '[redacted]';

// Key names whose values are secrets: privateKey, private_key, caKey, keyPem, token, caToken,
// bearerToken, secret, password, passphrase, credentials.
const SECRET_KEY = /(private_?key|ca_?key|key_?pem|token|secret|passw(or)?d|passphrase|credential)/i;
// A PEM block of any private key (PKCS#8, EC, RSA, encrypted).
const PEM_PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

export function redactSecrets(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return PEM_PRIVATE_KEY.test(value) ? REDACTED : value;
  if (typeof value !== 'object' || value === null) return value;
  if (depth > 64) return REDACTED; // a dump is never this deep; refuse rather than recurse without bound
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v, depth + 1));
  if (value instanceof Map) return redactSecrets(Object.fromEntries(value), depth + 1);
  if (value instanceof Set) return redactSecrets([...value], depth + 1);
  if (value instanceof Date) return value;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return REDACTED; // raw bytes: maybe a key
  const toJson = (value as { toJSON?: () => unknown }).toJSON;
  if (typeof toJson === 'function') return redactSecrets(toJson.call(value), depth + 1);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) && v !== null && v !== undefined ? REDACTED : redactSecrets(v, depth + 1);
  }
  return out;
}
