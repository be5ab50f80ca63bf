// Hostile input for the waypoint, sent from inside a pod (`ferry exec <pod> -- node waypoint-raw-client.ts
// <ip> <port> <case>`): raw bytes to a Service VIP, which the ztunnel tunnels to the waypoint as they are.
// Prints one JSON object: the first response line (HTTP/1.1), whether the server sent an HTTP/2 GOAWAY,
// and whether it closed the connection. Not a test file: test/e2e/waypoint-policy.test.ts runs it.
import { connect } from 'node:net';

const [host = '', portText = '', kind = ''] = process.argv.slice(2);
const H2_PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

const CASES: Record<string, () => Buffer> = {
  'oversized-headers': () => Buffer.from(`GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(64 * 1024)}\r\n\r\n`),
  'bad-chunking': () =>
    Buffer.from('POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'),
  'bad-request-line': () => Buffer.from('GET / HTTP/9.9 nonsense\r\n\r\n'),
  'content-length-and-chunked': () =>
    Buffer.from('POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n'),
  garbage: () => Buffer.from([0x16, 0x03, 0x01, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0xfe]),
  // HEADERS on stream 0 is a connection error (RFC 9113 §6.2): the server must answer GOAWAY.
  'h2-headers-on-stream-0': () =>
    Buffer.concat([
      Buffer.from(H2_PREFACE),
      frame(0x4, 0, 0, Buffer.alloc(0)),
      frame(0x1, 0x4, 0, Buffer.from([0x82])),
    ]),
  // A frame far above the default SETTINGS_MAX_FRAME_SIZE (16 KiB): FRAME_SIZE_ERROR.
  'h2-oversized-frame': () =>
    Buffer.concat([
      Buffer.from(H2_PREFACE),
      frame(0x4, 0, 0, Buffer.alloc(0)),
      frame(0x0, 0, 1, Buffer.alloc(1 << 20, 0x61)),
    ]),
};

const build = CASES[kind];
if (build === undefined) {
  process.stderr.write(`unknown case ${kind}; cases: ${Object.keys(CASES).join(', ')}\n`);
  process.exit(2);
}

const chunks: Buffer[] = [];
let errorCode: string | null = null;
const socket = connect(Number(portText), host);
socket.setTimeout(5_000, () => socket.destroy(new Error('timeout')));
socket.on('connect', () => socket.write(build()));
socket.on('data', (c: Buffer) => chunks.push(c));
socket.on('error', (err: NodeJS.ErrnoException) => {
  errorCode = err.code ?? err.message;
});
socket.on('close', () => {
  const data = Buffer.concat(chunks);
  let goaway = false;
  if (kind.startsWith('h2-')) {
    for (let at = 0; at + 9 <= data.length; ) {
      const length = data.readUIntBE(at, 3);
      if (data.readUInt8(at + 3) === 0x7) goaway = true;
      at += 9 + length;
    }
  }
  const firstLine = kind.startsWith('h2-') ? null : (data.toString('latin1').split('\r\n')[0] ?? null);
  process.stdout.write(`${JSON.stringify({ kind, firstLine, goaway, bytes: data.length, error: errorCode })}\n`);
});
