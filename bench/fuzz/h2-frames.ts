// HTTP/2 on the wire for the fuzz targets (RFC 9113 §4.1 frame layout, RFC 7541 literal header fields):
// a structure-aware generator of connection prefaces and frame sequences, so the fuzzer reaches the
// server's stream handling (a CONNECT with one pseudo-header broken, a HEADERS split over CONTINUATIONs,
// a DATA frame on a closed stream) rather than dying at the preface check.
import fc from 'fast-check';
import { mutatedBytes, nastyString } from './mutate.ts';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FRAME = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;

/** 9-byte frame header + payload. Length is the real payload length unless `lengthOverride` is given. */
export function encodeFrame(
  type: number,
  flags: number,
  streamId: number,
  payload: Uint8Array,
  lengthOverride?: number,
): Buffer {
  const head = Buffer.alloc(9);
  const len = lengthOverride ?? payload.length;
  head.writeUIntBE(len & 0xffffff, 0, 3);
  head[3] = type & 0xff;
  head[4] = flags & 0xff;
  head.writeUInt32BE(streamId >>> 0, 5);
  return Buffer.concat([head, payload]);
}

/** RFC 7541 §5.1 integer with an n-bit prefix (first byte's high bits given in `mask`). */
function hpackInt(value: number, prefixBits: number, mask: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [mask | value];
  const out = [mask | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, 'latin1');
  return Buffer.concat([Buffer.from(hpackInt(bytes.length, 7, 0)), bytes]);
}

/** A header block of literal fields without indexing, new names (RFC 7541 §6.2.2): no table state needed. */
export function encodeHeaderBlock(headers: readonly (readonly [string, string])[]): Buffer {
  return Buffer.concat(headers.map(([n, v]) => Buffer.concat([Buffer.from([0x00]), hpackString(n), hpackString(v)])));
}

export function settingsFrame(pairs: readonly (readonly [number, number])[] = [], ack = false): Buffer {
  const payload = Buffer.alloc(pairs.length * 6);
  pairs.forEach(([id, value], i) => {
    payload.writeUInt16BE(id & 0xffff, i * 6);
    payload.writeUInt32BE(value >>> 0, i * 6 + 2);
  });
  return encodeFrame(FRAME.SETTINGS, ack ? 1 : 0, 0, payload);
}

export function headersFrame(
  streamId: number,
  headers: readonly (readonly [string, string])[],
  endStream: boolean,
): Buffer {
  return encodeFrame(
    FRAME.HEADERS,
    FLAG_END_HEADERS | (endStream ? FLAG_END_STREAM : 0),
    streamId,
    encodeHeaderBlock(headers),
  );
}

export type HeaderList = readonly (readonly [string, string])[];

const streamId = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(1, 3, 5) },
  { weight: 1, arbitrary: fc.constantFrom(0, 2, 0x7fffffff, 0x80000001) },
  { weight: 1, arbitrary: fc.nat() },
);

const flags = fc.oneof(
  fc.constantFrom(0, FLAG_END_STREAM, FLAG_END_HEADERS, 0x5, 0x8, 0x20, 0x2d),
  fc.nat({ max: 255 }),
);

const settingsPair = fc.tuple(
  fc.oneof(fc.integer({ min: 1, max: 8 }), fc.nat({ max: 0xffff })),
  fc.oneof(fc.constantFrom(0, 1, 16_383, 16_384, 65_535, 2 ** 24, 2 ** 31 - 1, 2 ** 31, 0xffffffff), fc.nat()),
);

/** Header lists: `valid` with one field added, removed, duplicated or given a random name/value. */
export function mutatedHeaderList(valid: fc.Arbitrary<HeaderList>): fc.Arbitrary<HeaderList> {
  const name = fc.oneof(
    fc.constantFrom(
      ':method',
      ':authority',
      ':path',
      ':scheme',
      ':protocol',
      ':status',
      'host',
      'te',
      'connection',
      'transfer-encoding',
      'content-length',
      'upgrade',
      'forwarded',
      'baggage',
      'traceparent',
      'cookie',
      'X-Upper',
      '',
    ),
    nastyString,
  );
  const value = fc.oneof(
    fc.constantFrom(
      'CONNECT',
      'GET',
      'POST',
      '127.0.0.1:1',
      '[::1]:80',
      'http',
      'https',
      '/',
      '*',
      'trailers',
      'chunked',
      '0',
      '-1',
      'keep-alive',
      'websocket',
      'a\r\nb: c',
      'x\u0000y',
    ),
    nastyString,
  );
  const edit = fc.oneof(
    fc.record({ op: fc.constant('set' as const), at: fc.nat(), value }),
    fc.record({ op: fc.constant('rename' as const), at: fc.nat(), name }),
    fc.record({ op: fc.constant('add' as const), at: fc.nat(), name, value }),
    fc.record({ op: fc.constant('remove' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('duplicate' as const), at: fc.nat() }),
  );
  return fc.tuple(valid, fc.array(edit, { minLength: 0, maxLength: 3 })).map(([base, edits]) => {
    const list = base.map(([n, v]) => [n, v] as [string, string]);
    for (const e of edits) {
      const at = list.length === 0 ? 0 : e.at % list.length;
      const cur = list[at];
      switch (e.op) {
        case 'set':
          if (cur !== undefined) cur[1] = e.value;
          break;
        case 'rename':
          if (cur !== undefined) cur[0] = e.name;
          break;
        case 'add':
          list.splice(at, 0, [e.name, e.value]);
          break;
        case 'remove':
          list.splice(at, 1);
          break;
        case 'duplicate':
          if (cur !== undefined) list.splice(at, 0, [cur[0], cur[1]]);
          break;
      }
    }
    return list;
  });
}

/** One frame: a structured one of a known type, sometimes with a lying length or random payload. */
export function frameArbitrary(headerLists: fc.Arbitrary<HeaderList>): fc.Arbitrary<Buffer> {
  const payload = fc.uint8Array({ maxLength: 64 });
  return fc.oneof(
    {
      weight: 5,
      arbitrary: fc.tuple(streamId, headerLists, fc.boolean()).map(([id, h, end]) => headersFrame(id, h, end)),
    },
    {
      weight: 2,
      arbitrary: fc.tuple(streamId, headerLists, fc.integer({ min: 1, max: 3 })).map(([id, h, parts]) => {
        // HEADERS without END_HEADERS, then CONTINUATIONs (the last one may be missing).
        const block = encodeHeaderBlock(h);
        const size = Math.ceil(block.length / parts) || 1;
        const chunks: Buffer[] = [];
        for (let i = 0; i * size < block.length || i === 0; i++) {
          const last = (i + 1) * size >= block.length;
          const type = i === 0 ? FRAME.HEADERS : FRAME.CONTINUATION;
          chunks.push(
            encodeFrame(type, last && parts > 1 ? FLAG_END_HEADERS : 0, id, block.subarray(i * size, (i + 1) * size)),
          );
        }
        return Buffer.concat(chunks);
      }),
    },
    { weight: 3, arbitrary: fc.tuple(streamId, flags, payload).map(([id, f, p]) => encodeFrame(FRAME.DATA, f, id, p)) },
    { weight: 2, arbitrary: fc.array(settingsPair, { maxLength: 4 }).map((pairs) => settingsFrame(pairs)) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(streamId, fc.oneof(fc.constantFrom(0, 1, 0x7fffffff, 0x80000000), fc.nat()))
        .map(([id, inc]) => {
          const p = Buffer.alloc(4);
          p.writeUInt32BE(inc >>> 0);
          return encodeFrame(FRAME.WINDOW_UPDATE, 0, id, p);
        }),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(streamId, fc.nat({ max: 20 })).map(([id, code]) => {
        const p = Buffer.alloc(4);
        p.writeUInt32BE(code);
        return encodeFrame(FRAME.RST_STREAM, 0, id, p);
      }),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.boolean(), fc.uint8Array({ minLength: 8, maxLength: 8 }))
        .map(([ack, p]) => encodeFrame(FRAME.PING, ack ? 1 : 0, 0, p)),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(streamId, fc.nat({ max: 15 })).map(([last, code]) => {
        const p = Buffer.alloc(8);
        p.writeUInt32BE(last >>> 0);
        p.writeUInt32BE(code, 4);
        return encodeFrame(FRAME.GOAWAY, 0, 0, p);
      }),
    },
    { weight: 1, arbitrary: fc.tuple(streamId, payload).map(([id, p]) => encodeFrame(FRAME.PRIORITY, 0, id, p)) },
    {
      weight: 1,
      arbitrary: fc.tuple(streamId, payload).map(([id, p]) => encodeFrame(FRAME.PUSH_PROMISE, FLAG_END_HEADERS, id, p)),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.nat({ max: 255 }), flags, streamId, payload, fc.option(fc.nat({ max: 0xffffff })))
        .map(([type, f, id, p, len]) => encodeFrame(type, f, id, p, len ?? undefined)),
    },
  );
}

/** A client's bytes: preface (usually intact) + SETTINGS + frames, sometimes with byte-level damage. */
export function h2ClientBytes(headerLists: fc.Arbitrary<HeaderList>): fc.Arbitrary<Buffer> {
  const preface = fc.oneof(
    { weight: 8, arbitrary: fc.constant(H2_PREFACE) },
    { weight: 1, arbitrary: mutatedBytes(fc.constant(H2_PREFACE), 2).map((b) => Buffer.from(b)) },
  );
  const settings = fc.oneof(
    { weight: 6, arbitrary: fc.constant(settingsFrame()) },
    { weight: 2, arbitrary: fc.array(settingsPair, { maxLength: 4 }).map((p) => settingsFrame(p)) },
    { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
  );
  // Usually a well-formed first request on stream 1, so the server's request handling is reached.
  const lead = fc.oneof(
    { weight: 3, arbitrary: fc.tuple(headerLists, fc.boolean()).map(([h, end]) => [headersFrame(1, h, end)]) },
    { weight: 1, arbitrary: fc.constant([] as Buffer[]) },
  );
  const frames = fc.array(frameArbitrary(headerLists), { minLength: 0, maxLength: 5 });
  const whole = fc.tuple(preface, settings, lead, frames).map(([p, s, l, f]) => Buffer.concat([p, s, ...l, ...f]));
  return fc.oneof(
    { weight: 6, arbitrary: whole },
    { weight: 1, arbitrary: mutatedBytes(whole, 3).map((b) => Buffer.from(b)) },
  );
}
