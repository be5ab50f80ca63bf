// The admin socket: a Unix socket, mode 0600 and owned by the process's user (root for Ferry's processes),
// on which admin servers accept changes (POST/DELETE: apply, delete, label, enroll, unenroll, log level,
// quit). The kernel checks write permission on the socket file at connect(2), so only root (or the same
// user) can reach it: no token to leak, nothing to compare. The loopback TCP admin port only serves reads
// (docs/operations.md, "Admin endpoints: who may call what"). This module creates the socket safely and is
// the one client every caller (CLI, controller → ztunnel enrollment, tests, bench) uses.
import { once } from 'node:events';
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { dirname } from 'node:path';
import { RuntimeError } from './errors.ts';

/** sun_path is 108 bytes on Linux, including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;
const SOCKET_MODE = 0o600;

/**
 * Listens on `path` with mode 0600. A stale socket (nobody accepting) is replaced; a live one, or a
 * file that is not a socket, is an error (never clobbered). The parent directory is created 0700.
 */
export async function listenAdminSocket(server: net.Server, path: string): Promise<void> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new RuntimeError(
      'FERRY_RUNTIME_LISTEN_FAILED',
      `admin socket path is longer than ${MAX_SOCKET_PATH_BYTES} bytes: ${path}`,
    );
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  await removeStaleSocket(path);
  // The file is created by bind(2), which Node calls synchronously inside listen() for a pipe: with the
  // umask set around it, the socket never exists with wider permissions, not even for a moment.
  const previous = process.umask(0o177);
  try {
    server.listen({ path, exclusive: true });
  } finally {
    process.umask(previous);
  }
  try {
    await once(server, 'listening');
  } catch (err) {
    throw new RuntimeError('FERRY_RUNTIME_LISTEN_FAILED', `cannot listen on admin socket ${path}`, { cause: err });
  }
  chmodSync(path, SOCKET_MODE); // belt and braces (e.g. a umask-less worker)
}

async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) {
    throw new RuntimeError('FERRY_RUNTIME_LISTEN_FAILED', `admin socket path exists and is not a socket: ${path}`);
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) {
    throw new RuntimeError('FERRY_RUNTIME_LISTEN_FAILED', `admin socket ${path} is in use by another process`);
  }
  unlinkSync(path);
}

export interface AdminReply {
  readonly status: number;
  readonly text: string;
}

export interface AdminRequestOptions {
  /** Sent as JSON. */
  readonly body?: unknown;
  /** Sent as is instead of `body` (tests of hostile input). */
  readonly rawBody?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * One HTTP request over the admin socket; `body` is sent as JSON. Rejects on transport errors (ENOENT:
 * nobody listens; EACCES: the caller is not root) with the errno error as is.
 */
export function adminSocketRequest(
  socketPath: string,
  method: string,
  path: string,
  opts: AdminRequestOptions = {},
): Promise<AdminReply> {
  const payload = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  const signals = [AbortSignal.timeout(opts.timeoutMs ?? 30_000), ...(opts.signal === undefined ? [] : [opts.signal])];
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        method,
        path,
        host: 'localhost',
        signal: AbortSignal.any(signals),
        headers: {
          ...(payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          ...opts.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.once('error', reject);
      },
    );
    req.once('error', reject);
    req.end(payload);
  });
}
