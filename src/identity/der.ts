// The few DER (X.690) encodings a PKCS#10 request needs: definite lengths, SEQUENCE/SET, INTEGER of a
// small number, OBJECT IDENTIFIER, BOOLEAN, OCTET/BIT STRING and context-specific tags. Writes only; input
// is always Ferry's own values, so nothing here parses or validates peer bytes (csr.ts does that).

export const TAG_SEQUENCE = 0x30;
export const TAG_SET = 0x31;

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

/** A tag-length-value of `content` (already encoded children, concatenated). */
export function tlv(tag: number, ...content: readonly Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag, ...lengthBytes(body.length)]), body]);
}

export const sequence = (...items: readonly Uint8Array[]): Buffer => tlv(TAG_SEQUENCE, ...items);
export const set = (...items: readonly Uint8Array[]): Buffer => tlv(TAG_SET, ...items);

/** INTEGER for 0 ≤ n < 128 (version numbers). */
export function smallInteger(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 127) throw new RangeError(`smallInteger(${n}) is out of range`);
  return Buffer.from([0x02, 0x01, n]);
}

export function boolean(v: boolean): Buffer {
  return Buffer.from([0x01, 0x01, v ? 0xff : 0x00]);
}

/** OBJECT IDENTIFIER from its dotted form, e.g. '2.5.29.17'. */
export function objectIdentifier(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const [first = 0, second = 0, ...rest] = arcs;
  const body: number[] = [first * 40 + second];
  for (const arc of rest) {
    const base128: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) base128.unshift(0x80 | (v & 0x7f));
    body.push(...base128);
  }
  return tlv(0x06, Buffer.from(body));
}

export function octetString(content: Uint8Array): Buffer {
  return tlv(0x04, content);
}

/** BIT STRING of whole bytes (no unused bits). */
export function bitString(content: Uint8Array): Buffer {
  return tlv(0x03, Buffer.from([0]), content);
}

/** [n] context-specific: constructed (EXPLICIT or IMPLICIT SET/SEQUENCE) or primitive (IMPLICIT string). */
export function contextTag(n: number, constructed: boolean, ...content: readonly Uint8Array[]): Buffer {
  return tlv(0x80 | (constructed ? 0x20 : 0) | n, ...content);
}

/** PEM armour of DER bytes, 64 base64 characters per line (RFC 7468). */
export function toPem(der: Uint8Array, label: string): string {
  const lines =
    Buffer.from(der)
      .toString('base64')
      .match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
