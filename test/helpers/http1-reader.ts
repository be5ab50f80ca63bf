// A strict reader of HTTP/1.x responses from a raw byte stream, for tests that must see exactly what a
// proxy put on the wire: status line and header bytes as sent, bodies framed by Content-Length, chunked
// coding or the end of the connection (RFC 9112 §6.3), no body for HEAD, 1xx, 204 and 304.
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';

export interface RawResponse {
  readonly statusLine: string;
  readonly status: number;
  readonly headers: ReadonlyMap<string, string>;
  /** The raw header block (status line to the blank line), for byte-exact checks. */
  readonly head: string;
  readonly framing: 'content-length' | 'chunked' | 'close' | 'none';
  readonly bodyLength: number;
  /** SHA-256 of the body, hex. */
  readonly bodySha256: string;
  /** The body, when at most 1 MiB (else empty). */
  readonly body: Buffer;
}

const MAX_KEPT_BODY = 1024 * 1024;

/** Reads responses to `methods` (one per request sent, in order) off `stream`; rejects on malformed bytes. */
export function readResponses(stream: Duplex, methods: readonly string[], timeoutMs = 60_000): Promise<RawResponse[]> {
  return new Promise((resolve, reject) => {
    const out: RawResponse[] = [];
    let buf: Buffer = Buffer.alloc(0);
    let ended = false;
    let current: BodyReader | null = null;
    const timer = setTimeout(() => finish(new Error(`timed out after ${out.length} responses`)), timeoutMs);
    const finish = (err: Error | null): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      if (err !== null) reject(err);
      else resolve(out);
    };
    const pump = (): void => {
      try {
        for (;;) {
          if (out.length === methods.length) {
            finish(null);
            return;
          }
          if (current === null) {
            const end = buf.indexOf('\r\n\r\n');
            if (end === -1) {
              if (ended) {
                finish(new Error(`connection ended inside response ${out.length + 1}'s head`));
                return;
              }
              return;
            }
            const head = buf.subarray(0, end + 4).toString('latin1');
            buf = buf.subarray(end + 4);
            current = new BodyReader(head, methods[out.length] ?? 'GET');
          }
          const consumed = current.feed(buf, ended);
          buf = buf.subarray(consumed);
          if (!current.done) {
            if (ended) {
              finish(new Error(`connection ended inside response ${out.length + 1}'s body`));
              return;
            }
            return;
          }
          out.push(current.result());
          current = null;
        }
      } catch (err) {
        finish(err as Error);
      }
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      pump();
    };
    const onEnd = (): void => {
      ended = true;
      pump();
    };
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
    stream.on('error', () => {});
  });
}

class BodyReader {
  readonly #head: string;
  readonly #statusLine: string;
  readonly #status: number;
  readonly #headers = new Map<string, string>();
  readonly #framing: RawResponse['framing'];
  readonly #hash = createHash('sha256');
  readonly #kept: Buffer[] = [];
  #remaining = 0;
  #length = 0;
  #chunkState: 'size' | 'data' | 'data-crlf' | 'trailers' | 'done' = 'size';
  done = false;

  constructor(head: string, method: string) {
    this.#head = head;
    const lines = head.slice(0, -4).split('\r\n');
    this.#statusLine = lines[0] ?? '';
    const m = /^HTTP\/1\.[01] (\d{3}) [\x20-\x7e]*$/.exec(this.#statusLine);
    if (m === null) throw new Error(`malformed status line ${JSON.stringify(this.#statusLine)}`);
    this.#status = Number(m[1]);
    for (const line of lines.slice(1)) {
      const h = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\x20-\x7e\t]*?)[ \t]*$/.exec(line);
      if (h === null) throw new Error(`malformed header line ${JSON.stringify(line)}`);
      this.#headers.set((h[1] ?? '').toLowerCase(), h[2] ?? '');
    }
    const noBody = method === 'HEAD' || this.#status < 200 || this.#status === 204 || this.#status === 304;
    const te = this.#headers.get('transfer-encoding');
    const cl = this.#headers.get('content-length');
    if (noBody) this.#framing = 'none';
    else if (te !== undefined) {
      if (te.toLowerCase() !== 'chunked') throw new Error(`unexpected transfer-encoding ${te}`);
      this.#framing = 'chunked';
    } else if (cl !== undefined) {
      if (!/^\d+$/.test(cl)) throw new Error(`malformed content-length ${cl}`);
      this.#framing = 'content-length';
      this.#remaining = Number(cl);
    } else this.#framing = 'close';
    this.done = this.#framing === 'none' || (this.#framing === 'content-length' && this.#remaining === 0);
  }

  /** Takes what it can from `buf`; returns how many bytes it consumed. */
  feed(buf: Buffer, ended: boolean): number {
    if (this.done) return 0;
    if (this.#framing === 'content-length') {
      const n = Math.min(this.#remaining, buf.length);
      this.#take(buf.subarray(0, n));
      this.#remaining -= n;
      this.done = this.#remaining === 0;
      return n;
    }
    if (this.#framing === 'close') {
      this.#take(buf);
      this.done = ended;
      return buf.length;
    }
    return this.#feedChunked(buf);
  }

  #feedChunked(buf: Buffer): number {
    let pos = 0;
    while (pos < buf.length && this.#chunkState !== 'done') {
      if (this.#chunkState === 'size' || this.#chunkState === 'trailers') {
        const eol = buf.indexOf('\r\n', pos);
        if (eol === -1) return pos;
        const line = buf.subarray(pos, eol).toString('latin1');
        pos = eol + 2;
        if (this.#chunkState === 'trailers') {
          if (line === '') this.#chunkState = 'done';
          continue;
        }
        const m = /^([0-9a-fA-F]{1,8})(;.*)?$/.exec(line);
        if (m === null) throw new Error(`malformed chunk size line ${JSON.stringify(line)}`);
        this.#remaining = Number.parseInt(m[1] ?? '', 16);
        this.#chunkState = this.#remaining === 0 ? 'trailers' : 'data';
      } else if (this.#chunkState === 'data') {
        const n = Math.min(this.#remaining, buf.length - pos);
        this.#take(buf.subarray(pos, pos + n));
        pos += n;
        this.#remaining -= n;
        if (this.#remaining === 0) this.#chunkState = 'data-crlf';
      } else {
        if (buf.length - pos < 2) return pos;
        if (buf[pos] !== 0x0d || buf[pos + 1] !== 0x0a) throw new Error('chunk data not followed by CRLF');
        pos += 2;
        this.#chunkState = 'size';
      }
    }
    this.done = this.#chunkState === 'done';
    return pos;
  }

  #take(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.#hash.update(bytes);
    this.#length += bytes.length;
    if (this.#length <= MAX_KEPT_BODY) this.#kept.push(Buffer.from(bytes));
  }

  result(): RawResponse {
    return {
      statusLine: this.#statusLine,
      status: this.#status,
      headers: this.#headers,
      head: this.#head,
      framing: this.#framing,
      bodyLength: this.#length,
      bodySha256: this.#hash.digest('hex'),
      body: this.#length <= MAX_KEPT_BODY ? Buffer.concat(this.#kept) : Buffer.alloc(0),
    };
  }
}
