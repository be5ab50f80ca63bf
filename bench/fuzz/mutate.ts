// Structure-aware mutation for the fuzz targets: a valid input with a few bytes broken (mutatedBytes,
// mutatedText), and a valid JSON/YAML document with random values planted in its fields (mutatedDocument).
// Mutations are fast-check arbitraries, so every input is reproducible from a seed and shrinks toward the
// valid original.
import fc from 'fast-check';

/** Bytes that parsers treat specially: delimiters, NUL, CR/LF, sign and high bits. */
const INTERESTING_BYTES = [0x00, 0x01, 0x09, 0x0a, 0x0d, 0x20, 0x22, 0x25, 0x2c, 0x2f, 0x3a, 0x3b, 0x7f, 0x80, 0xff];

type ByteEdit =
  | { readonly op: 'set'; readonly at: number; readonly byte: number }
  | { readonly op: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly op: 'delete'; readonly at: number; readonly len: number }
  | { readonly op: 'duplicate'; readonly at: number; readonly len: number }
  | { readonly op: 'truncate'; readonly at: number };

const anyByte = fc.oneof(fc.constantFrom(...INTERESTING_BYTES), fc.integer({ min: 0, max: 255 }));

const byteEdit: fc.Arbitrary<ByteEdit> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: anyByte }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('insert' as const),
      at: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 8 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }) },
);

/** Applies edits in order; positions wrap around the current length. */
export function applyByteEdits(base: Uint8Array, edits: readonly ByteEdit[]): Uint8Array {
  let b = Buffer.from(base);
  for (const e of edits) {
    const at = b.length === 0 ? 0 : e.at % (b.length + 1);
    switch (e.op) {
      case 'set':
        if (b.length > 0) b[Math.min(at, b.length - 1)] = e.byte;
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), e.bytes, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.len)]);
        break;
      case 'duplicate':
        b = Buffer.concat([b.subarray(0, at + e.len), b.subarray(at, at + e.len), b.subarray(at + e.len)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
    }
  }
  return b;
}

/** `base` (or one of several) with 1..maxEdits byte-level edits. */
export function mutatedBytes(base: fc.Arbitrary<Uint8Array>, maxEdits = 4): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(base, fc.array(byteEdit, { minLength: 1, maxLength: maxEdits }))
    .map(([b, edits]) => applyByteEdits(b, edits));
}

/** Text with byte-level edits (latin1 round trip, so every byte value survives). */
export function mutatedText(base: fc.Arbitrary<string>, maxEdits = 4): fc.Arbitrary<string> {
  return mutatedBytes(
    base.map((s) => Buffer.from(s, 'latin1')),
    maxEdits,
  ).map((b) => Buffer.from(b).toString('latin1'));
}

/** Strings that break naive field handling: empty, huge, control characters, separators, unicode, numbers. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '-',
    '*',
    '/',
    '..',
    '\u0000',
    '\r\n',
    'a\nb',
    '$(x)',
    '%',
    '%zz',
    '0',
    '-1',
    '1e309',
    'NaN',
    'true',
    'null',
    '::',
    '[::1]',
    '999999999999999999999',
    '__proto__',
    'constructor',
    'toString',
    'ａｂｃ',
    '\ud800',
    'x'.repeat(300),
    'a.'.repeat(200),
  ),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
);

/** Any JSON/YAML-representable value, biased toward the shapes manifests use. */
export const wildValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    nastyString,
    fc.integer(),
    fc.constantFrom(0, -1, 1, 65535, 65536, 2 ** 31, 2 ** 53, -(2 ** 53), 0.5, 1e308),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(nastyString, tie('value'), { maxKeys: 4 }),
  ),
})).value;

type PathStep = string | number;

/** Every path into a JSON tree (objects' keys, arrays' indices), root excluded. */
export function pathsOf(doc: unknown): PathStep[][] {
  const out: PathStep[][] = [];
  const walk = (v: unknown, path: PathStep[]): void => {
    if (ArrayBuffer.isView(v)) return; // bytes fields are leaves
    if (Array.isArray(v)) {
      v.forEach((x, i) => {
        out.push([...path, i]);
        walk(x, [...path, i]);
      });
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        out.push([...path, k]);
        walk(x, [...path, k]);
      }
    }
  };
  walk(doc, []);
  return out;
}

type DocEdit =
  | { readonly op: 'replace'; readonly path: number; readonly value: unknown }
  | { readonly op: 'delete'; readonly path: number }
  | { readonly op: 'wrap'; readonly path: number }
  | { readonly op: 'add'; readonly path: number; readonly key: string; readonly value: unknown };

const docEdit: fc.Arbitrary<DocEdit> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('replace' as const), path: fc.nat(), value: wildValue }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), path: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('wrap' as const), path: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('add' as const), path: fc.nat(), key: nastyString, value: wildValue }),
  },
);

/** Applies edits to a deep copy of `doc`; paths are indices into pathsOf(doc), wrapped. */
export function applyDocEdits(doc: unknown, edits: readonly DocEdit[]): unknown {
  const copy: unknown = structuredClone(doc);
  for (const e of edits) {
    const paths = pathsOf(copy);
    if (paths.length === 0) return e.op === 'replace' ? structuredClone(e.value) : copy;
    const path = paths[e.path % paths.length] as PathStep[];
    const parent = path.slice(0, -1).reduce<unknown>((v, k) => (v as Record<PathStep, unknown>)[k], copy) as Record<
      PathStep,
      unknown
    >;
    const key = path[path.length - 1] as PathStep;
    switch (e.op) {
      case 'replace':
        // Copies: a generated value is reused across runs and shrinks, and must never be edited in place.
        parent[key] = structuredClone(e.value);
        break;
      case 'delete':
        if (Array.isArray(parent)) parent.splice(key as number, 1);
        else delete parent[key];
        break;
      case 'wrap':
        parent[key] = [parent[key]];
        break;
      case 'add': {
        const target = parent[key];
        if (typeof target === 'object' && target !== null && !Array.isArray(target) && !ArrayBuffer.isView(target)) {
          // An own property even for "__proto__", as JSON.parse and YAML produce it.
          Object.defineProperty(target, e.key, {
            value: e.value,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        } else if (Array.isArray(target)) {
          target.push(structuredClone(e.value));
        }
        break;
      }
    }
  }
  return copy;
}

/** One of `bases` with 1..maxEdits field-level edits (random values in fields, fields removed or added). */
export function mutatedDocument(bases: readonly unknown[], maxEdits = 3): fc.Arbitrary<unknown> {
  return fc
    .tuple(fc.constantFrom(...bases), fc.array(docEdit, { minLength: 1, maxLength: maxEdits }))
    .map(([doc, edits]) => applyDocEdits(doc, edits));
}
