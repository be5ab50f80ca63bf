// Fuzz targets for the SOCKS5 entry (src/ztunnel/socks5.ts, RFC 1928). `socks5-parse` (pure): greetings and
// requests, valid ones with bytes broken and arbitrary bytes; the parsers never throw, decide only on bytes
// they have (every strict prefix of an accepted message is 'incomplete'), and accept only ports 1..65535 and
// real IPs or hostnames. `socks5-server` (network): each input on a fresh TCP connection to a real
// Socks5Server, split into random writes, then a legitimate CONNECT through the same server must still work.
import { once } from 'node:events';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import fc from 'fast-check';
import {
  type ParseStep,
  parseSocks5Greeting,
  parseSocks5Request,
  Socks5Server,
  socks5RepForError,
} from '../../../src/ztunnel/socks5.ts';
import { startEchoServer } from '../../../test/helpers/echo-server.ts';
import { type FuzzTarget, FuzzViolation, mustNotThrow } from '../engine.ts';
import { mutatedBytes } from '../mutate.ts';

const greeting = fc
  .array(fc.oneof(fc.constant(0), fc.nat({ max: 255 })), { minLength: 1, maxLength: 8 })
  .map((methods) => Buffer.from([5, methods.length, ...methods]));

const port = fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constant(0));
const portBytes = (p: number) => [p >> 8, p & 0xff];

const request = fc.oneof(
  fc
    .tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), port)
    .map(([ip, p]) => Buffer.from([5, 1, 0, 1, ...ip, ...portBytes(p)])),
  fc
    .tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), port)
    .map(([ip, p]) => Buffer.from([5, 1, 0, 4, ...ip, ...portBytes(p)])),
  fc
    .tuple(fc.oneof(fc.domain(), fc.ipV4(), fc.ipV6(), fc.string({ unit: 'binary-ascii', maxLength: 40 })), port)
    .map(([host, p]) => {
      const name = Buffer.from(host, 'latin1').subarray(0, 255);
      return Buffer.from([5, 1, 0, 3, name.length, ...name, ...portBytes(p)]);
    }),
);

/** What a client sends: greeting + request (+ early data), valid, broken, or arbitrary. */
export const socks5Bytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 2, arbitrary: fc.tuple(greeting, request).map(([g, r]) => Buffer.concat([g, r])) },
  {
    weight: 4,
    arbitrary: mutatedBytes(
      fc.tuple(greeting, request).map(([g, r]) => Buffer.concat([g, r])),
      3,
    ),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
);

function checkStep<T>(what: string, parse: (b: Uint8Array) => ParseStep<T>, buf: Uint8Array): ParseStep<T> {
  const step = mustNotThrow(what, () => parse(buf));
  if (step.kind !== 'ok') return step;
  if (!Number.isInteger(step.consumed) || step.consumed < 2 || step.consumed > buf.length) {
    throw new FuzzViolation(`${what}: consumed ${step.consumed} of ${buf.length} bytes`);
  }
  // Deciding before the bytes arrived would make the result depend on how TCP split the stream.
  const prefix = parse(buf.subarray(0, step.consumed - 1));
  if (prefix.kind === 'ok') throw new FuzzViolation(`${what}: accepted a strict prefix of a message`);
  const exact = parse(buf.subarray(0, step.consumed));
  if (exact.kind !== 'ok' || JSON.stringify(exact.value) !== JSON.stringify(step.value)) {
    throw new FuzzViolation(`${what}: result depends on bytes after the message`);
  }
  return step;
}

function checkParsers(bytes: Uint8Array): void {
  const g = checkStep('parseSocks5Greeting', parseSocks5Greeting, bytes);
  const rest = g.kind === 'ok' ? bytes.subarray(g.consumed) : bytes;
  const r = checkStep('parseSocks5Request', parseSocks5Request, rest);
  if (r.kind !== 'ok') return;
  const { target, port: p } = r.value;
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new FuzzViolation(`port ${p} accepted`);
  if (target.kind === 'ip' && isIP(target.ip) === 0) throw new FuzzViolation(`target ${target.ip} is not an IP`);
  if (target.kind === 'domain' && (target.host.length === 0 || !/^[A-Za-z0-9_.-]+$/.test(target.host))) {
    throw new FuzzViolation(`hostname ${JSON.stringify(target.host)} accepted`);
  }
}

export const socks5ParseTarget: FuzzTarget = {
  name: 'socks5-parse',
  kind: 'pure',
  what: 'SOCKS5 greeting and request parsers (parseSocks5Greeting, parseSocks5Request)',
  hangMs: 5_000,
  async start() {
    return { sync: true, arbitrary: socks5Bytes, run: checkParsers, async close() {} };
  },
};

/** Splits bytes into 1..4 writes at random cut points. */
const chunked = fc
  .tuple(socks5Bytes, fc.array(fc.nat(), { maxLength: 3 }), fc.boolean())
  .map(([bytes, cuts, halfClose]) => {
    const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))].sort((a, b) => a - b);
    const parts: Uint8Array[] = [];
    let from = 0;
    for (const p of points) {
      parts.push(bytes.subarray(from, p));
      from = p;
    }
    parts.push(bytes.subarray(from));
    return { parts: parts.filter((p) => p.length > 0), halfClose };
  });

export const socks5ServerTarget: FuzzTarget = {
  name: 'socks5-server',
  kind: 'network',
  what: 'SOCKS5 listener over real sockets (each input on a fresh connection, then a legitimate CONNECT)',
  hangMs: 10_000,
  async start() {
    const echo = await startEchoServer();
    const dialed: string[] = [];
    // Only the echo server is ever dialed: a fuzzed target elsewhere is refused as unreachable.
    const server = await Socks5Server.listen({
      host: '127.0.0.1',
      port: 0,
      handshakeTimeoutMs: 2_000,
      resolve: async () => {
        throw Object.assign(new Error('no DNS in the fuzzer'), { code: 'ENOTFOUND' });
      },
      onConnect: async (req) => {
        dialed.push(`${req.dst.ip}:${req.dst.port}`);
        if (req.dst.ip !== echo.ip || req.dst.port !== echo.port) return { ok: false, rep: 4 };
        const upstream = netConnect({ host: echo.ip, port: echo.port, allowHalfOpen: true });
        upstream.on('error', () => {});
        try {
          await Promise.race([once(upstream, 'connect'), once(upstream, 'error').then(([e]) => Promise.reject(e))]);
          return { ok: true, upstream };
        } catch (err) {
          return { ok: false, rep: socks5RepForError(err) };
        }
      },
    });
    const addr = server.address;
    return {
      sync: false,
      arbitrary: chunked,
      async run(input: { parts: Uint8Array[]; halfClose: boolean }) {
        const s = await open(addr);
        for (const part of input.parts) s.write(part);
        if (input.halfClose) s.end();
        // The server answers (or closes) quickly; an open connection waiting for more bytes is fine and is
        // dropped by us, or by the handshake deadline.
        await settle(s, 15);
        s.destroy();
        await legitimateConnect(addr, echo);
      },
      async close() {
        await server.close();
        await echo[Symbol.asyncDispose]();
      },
    };
  },
};

async function open(addr: { ip: string; port: number }): Promise<Socket> {
  const s = netConnect({ host: addr.ip, port: addr.port, allowHalfOpen: true });
  s.on('error', () => {});
  await once(s, 'connect');
  return s;
}

function settle(s: Socket, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    s.resume();
    s.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** Greeting, CONNECT to the echo, one round trip: throws a violation if the server stopped serving. */
async function legitimateConnect(
  addr: { ip: string; port: number },
  echo: { ip: string; port: number },
): Promise<void> {
  const s = await open(addr);
  try {
    const reply = readBytes(s, 2 + 10 + 4);
    s.write(Buffer.from([5, 1, 0]));
    s.write(Buffer.from([5, 1, 0, 1, ...echo.ip.split('.').map(Number), echo.port >> 8, echo.port & 0xff]));
    s.write('ping');
    const got = await reply;
    if (got[1] !== 0 || got[3] !== 0 || got.subarray(12).toString() !== 'ping') {
      throw new FuzzViolation(`legitimate SOCKS5 CONNECT failed after the input: ${got.toString('hex')}`);
    }
  } finally {
    s.destroy();
  }
}

function readBytes(s: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= n) {
        s.off('data', onData);
        resolve(buf);
      }
    };
    s.on('data', onData);
    s.once('close', () => reject(new FuzzViolation(`connection closed after ${buf.length} of ${n} bytes`)));
  });
}
