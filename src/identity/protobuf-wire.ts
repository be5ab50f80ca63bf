// The protobuf wire format (protobuf.dev/programming-guides/encoding) for the CA's two small messages:
// varints, length-delimited fields, skipping of unknown fields. A reader over untrusted bytes checks every
// length against what is left and throws WireError on anything malformed; it never recurses, so nesting
// cannot exhaust the stack. Used instead of @grpc/proto-loader, which parses .proto text at start.

export class WireError extends Error {}

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LENGTH_DELIMITED = 2;
export const WIRE_FIXED32 = 5;

export interface WireField {
  readonly field: number;
  readonly wireType: number;
  /** For varints: the value as a BigInt (int64 needs all 64 bits). */
  readonly varint: bigint;
  /** For length-delimited fields: the bytes (a view, not a copy). */
  readonly bytes: Uint8Array;
}

const NO_BYTES = new Uint8Array(0);

/** Reads the fields of one message in order; repeated fields appear once per occurrence. */
export function* readFields(buf: Uint8Array): Generator<WireField> {
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (pos >= buf.length) throw new WireError('truncated varint');
      const b = buf[pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asUintN(64, result);
    }
    throw new WireError('varint longer than 10 bytes');
  };
  while (pos < buf.length) {
    const key = varint();
    const field = Number(key >> 3n);
    const wireType = Number(key & 7n);
    if (field === 0) throw new WireError('field number 0');
    switch (wireType) {
      case WIRE_VARINT:
        yield { field, wireType, varint: varint(), bytes: NO_BYTES };
        break;
      case WIRE_LENGTH_DELIMITED: {
        const len = varint();
        if (len > BigInt(buf.length - pos)) throw new WireError(`field ${field}: length ${len} past the end`);
        const start = pos;
        pos += Number(len);
        yield { field, wireType, varint: 0n, bytes: buf.subarray(start, pos) };
        break;
      }
      case WIRE_FIXED64:
      case WIRE_FIXED32: {
        const size = wireType === WIRE_FIXED64 ? 8 : 4;
        if (pos + size > buf.length) throw new WireError(`field ${field}: truncated fixed${size * 8}`);
        const start = pos;
        pos += size;
        yield { field, wireType, varint: 0n, bytes: buf.subarray(start, pos) };
        break;
      }
      default:
        throw new WireError(`field ${field}: unsupported wire type ${wireType}`);
    }
  }
}

/** A length-delimited field as UTF-8 text; throws when the field has another wire type. */
export function fieldText(f: WireField): string {
  if (f.wireType !== WIRE_LENGTH_DELIMITED) throw new WireError(`field ${f.field}: expected a string`);
  return Buffer.from(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength).toString('utf8');
}

/** Builds one message: append fields in order, then `finish()`. */
export class WireWriter {
  readonly #parts: Buffer[] = [];

  #varint(v: bigint): Buffer {
    const out: number[] = [];
    let n = BigInt.asUintN(64, v);
    do {
      const b = Number(n & 0x7fn);
      n >>= 7n;
      out.push(n > 0n ? b | 0x80 : b);
    } while (n > 0n);
    return Buffer.from(out);
  }

  #key(field: number, wireType: number): Buffer {
    return this.#varint((BigInt(field) << 3n) | BigInt(wireType));
  }

  varint(field: number, v: bigint): this {
    this.#parts.push(this.#key(field, WIRE_VARINT), this.#varint(v));
    return this;
  }

  bytes(field: number, content: Uint8Array): this {
    this.#parts.push(
      this.#key(field, WIRE_LENGTH_DELIMITED),
      this.#varint(BigInt(content.length)),
      Buffer.from(content),
    );
    return this;
  }

  string(field: number, text: string): this {
    return this.bytes(field, Buffer.from(text, 'utf8'));
  }

  finish(): Buffer {
    return Buffer.concat(this.#parts);
  }
}
