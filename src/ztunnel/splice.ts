// Bidirectional byte copy between a TCP socket and a tunnel (an HBONE stream or another socket), in the
// manner of istio/ztunnel:src/copy.rs: both directions run to completion independently (TCP half-close is
// a real state: EOF on one side ends only the other side's write), backpressure is pipe()'s, bytes are
// counted from the socket's own counters (no per-chunk work), and resets after setup end the splice
// without being errors. It owns neither stream's creation; it destroys both when it ends abnormally.
// Bulk chunks from the tunnel are coalesced into one writev per event-loop turn (see coalesceBulkWrites).
import type { Socket } from 'node:net';
import { type Duplex, finished } from 'node:stream';

export interface SpliceResult {
  /** Bytes read from the socket and forwarded to the peer. */
  readonly bytesSent: number;
  /** Bytes from the peer written to the socket. */
  readonly bytesReceived: number;
  /** Set when the splice ended by an abort or an unexpected error; resets and broken pipes are not errors. */
  readonly error?: Error;
}

export interface SpliceOptions {
  /** Aborting tears both sides down (policy late rejection, drain deadline); the reason becomes `error`. */
  readonly signal?: AbortSignal;
}

// How a connection normally ends when the other side goes away (ztunnel's ignore_io_errors): not an error.
const BENIGN_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_STREAM_DESTROYED',
  'ERR_HTTP2_STREAM_ERROR', // RST_STREAM from the peer
  'ERR_HTTP2_STREAM_CANCEL',
  'ERR_HTTP2_INVALID_STREAM',
]);

/** True for errors that only mean "the other side went away". */
export function isBenignDisconnect(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && BENIGN_CODES.has(code);
}

// A tunnel delivers a bulk transfer as one chunk per HTTP/2 DATA piece (8–16 KiB, several per TLS read),
// and pipe() writes each with its own write(2) to the socket. Chunks at least this large are held in the
// corked socket until the event loop's check phase and then leave as one writev; smaller ones (request /
// response traffic) are written at once, without the extra hop. Measured in docs/performance.md, "L4 CPU and
// bulk".
const COALESCE_MIN_CHUNK_BYTES = 4096;

function uncorkSocket(socket: Socket): void {
  if (!socket.destroyed) socket.uncork();
}

/** Before pipe() writes a bulk chunk into `socket`, corks it until the loop's check phase (once per turn). */
function coalesceBulkWrites(peer: Duplex, socket: Socket): void {
  peer.on('data', (chunk: Buffer) => {
    if (chunk.length < COALESCE_MIN_CHUNK_BYTES || socket.writableCorked > 0) return;
    socket.cork();
    setImmediate(uncorkSocket, socket);
  });
}

/** Copies bytes both ways until both directions are done or either side is destroyed. Never rejects. */
export function splice(socket: Socket, peer: Duplex, opts: SpliceOptions = {}): Promise<SpliceResult> {
  // Half-close: a FIN from the socket must end only the peer's write side, not our write side.
  socket.allowHalfOpen = true;
  // Bytes already buffered in the socket (e.g. unshifted after a SOCKS5 request) are still to be forwarded.
  const readBase = socket.bytesRead - socket.readableLength;
  const writtenBase = socket.bytesWritten;
  return new Promise<SpliceResult>((resolve) => {
    let error: Error | undefined;
    let pending = 2;
    const teardown = (): void => {
      socket.destroy();
      peer.destroy();
    };
    const onSideDone = (err: Error | null | undefined): void => {
      // A side that ended abnormally takes the other down: nothing more can flow through the pair.
      if (err) {
        if (error === undefined && !isBenignDisconnect(err)) error = err;
        teardown();
      }
      if (--pending > 0) return;
      opts.signal?.removeEventListener('abort', onAbort);
      const result = { bytesSent: socket.bytesRead - readBase, bytesReceived: socket.bytesWritten - writtenBase };
      resolve(error === undefined ? result : { ...result, error });
    };
    const onAbort = (): void => {
      const reason: unknown = opts.signal?.reason;
      error ??= reason instanceof Error ? reason : new Error(String(reason));
      teardown();
    };
    finished(socket, onSideDone);
    finished(peer, onSideDone);
    // A tunnel that is gone (stream reset, its connection closed) can take no more upload. Unlike a
    // half-close, nothing more can flow: flush what the peer sent us, then close the socket too, or a client
    // that never ends its own side would stay connected to nothing.
    peer.once('close', () => {
      if (!socket.destroyed) socket.destroySoon();
    });
    if (opts.signal?.aborted) {
      onAbort();
      return;
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    socket.pipe(peer);
    coalesceBulkWrites(peer, socket); // registered first: runs before pipe()'s own 'data' listener
    peer.pipe(socket);
  });
}
