// `ferry testapp tcp-client`: n TCP connections to a tcp-echo, each sending one line, half-closing and
// expecting exactly that line back before the server's FIN; a JSON summary of how many round trips
// succeeded. Tests of TCP routing through the mesh run it inside a pod.
import { connect } from 'node:net';

function roundTrip(host: string, port: number, text: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host, port, allowHalfOpen: true });
    const timer = setTimeout(() => socket.destroy(new Error('timeout')), timeoutMs);
    socket.on('connect', () => socket.end(text));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString() === text);
    });
    socket.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

export async function runTcpClient(opts: {
  readonly target: string;
  readonly connections: number;
  readonly concurrency: number;
  readonly out: (text: string) => void;
}): Promise<number> {
  const colon = opts.target.lastIndexOf(':');
  const host = opts.target.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(opts.target.slice(colon + 1));
  let next = 0;
  let ok = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (next < opts.connections) {
      const i = next;
      next += 1;
      if (await roundTrip(host, port, `hello ${i}\n`, 10_000)) ok += 1;
      else failed += 1;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  opts.out(`${JSON.stringify({ connections: opts.connections, ok, failed })}\n`);
  return failed === 0 ? 0 : 1;
}
