// An HBONE tunnel's HTTP/2 stream as a byte stream that any writer may use: every write reaches the native
// stream as exactly one non-empty Buffer.
//
// Why (docs/architecture.md, "HBONE tunnels as byte streams"): Node's Http2Stream takes a batched write
// (writev: several chunks after cork() or while a write is pending) as one request whose completion is
// tied to the *last* chunk of the batch. String chunks are copied into a native buffer owned by that
// request. When the last chunk is empty (node:http ends every Content-Length or HTTP/1.0 body with
// `write('')`), the request completes at once and frees that buffer while the earlier chunks still wait in
// the stream's queue: the peer then receives freed heap memory in their place (seen as the first 16 bytes
// of a response's status line replaced by allocator pointers). The same early completion also lets a
// small last chunk (copied by nghttp2) finish before larger, referenced ones are on the wire.
//
// Coalescing each batch into one Buffer and dropping empty writes leaves the native stream with
// one-buffer requests only, whose completion covers all their bytes.
import type { Http2Stream } from 'node:http2';

type WriteCallback = (error?: Error | null) => void;
interface BufferedChunk {
  readonly chunk: Buffer | string | Uint8Array;
  readonly encoding: BufferEncoding | 'buffer';
}
interface WritableInternals {
  _write(chunk: unknown, encoding: BufferEncoding | 'buffer', cb: WriteCallback): void;
  _writev?(chunks: readonly BufferedChunk[], cb: WriteCallback): void;
}

const HARDENED = Symbol('ferry.hbone.hardenedTunnel');

function toBuffer(chunk: Buffer | string | Uint8Array, encoding: BufferEncoding | 'buffer'): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk, encoding === 'buffer' ? 'utf8' : encoding);
  return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/**
 * Makes `stream` safe for writers that batch or mix strings and Buffers (node:http, node:http2 sessions
 * over a tunnel, pipes). Idempotent; returns the same stream.
 */
export function hardenTunnelStream<T extends Http2Stream>(stream: T): T {
  const internals = stream as unknown as WritableInternals & { [HARDENED]?: true };
  if (internals[HARDENED] === true) return stream;
  internals[HARDENED] = true;
  const writeOne = internals._write.bind(stream);
  internals._write = (chunk, encoding, cb) => {
    const buf = toBuffer(chunk as Buffer | string, encoding);
    if (buf.length === 0) {
      cb();
      return;
    }
    writeOne(buf, 'buffer', cb);
  };
  internals._writev = (chunks, cb) => {
    const parts: Buffer[] = [];
    let total = 0;
    for (const { chunk, encoding } of chunks) {
      const buf = toBuffer(chunk, encoding);
      if (buf.length === 0) continue;
      parts.push(buf);
      total += buf.length;
    }
    if (total === 0) {
      cb();
      return;
    }
    writeOne(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, total), 'buffer', cb);
  };
  return stream;
}
