// `ferry testapp <kind>`: the built-in test apps that stand in for container images in the local cluster
// (src/local-cluster/images.ts): http-echo, tcp-echo, grpc-echo, curl, grpc-client, tcp-client. Servers run
// until SIGTERM/SIGINT.
import { once } from 'node:events';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { CURL_HELP, parseCurlArgs, runCurl } from './testapp/curl.ts';
import { runGrpcClient, startGrpcEcho } from './testapp/grpc-echo.ts';
import { runTcpClient } from './testapp/tcp-client.ts';

const SHAPES = ['unary', 'server', 'client', 'bidi'] as const;

import { startHttpEcho } from './testapp/http-echo.ts';
import { startTcpEcho } from './testapp/tcp-echo.ts';

const HELP = `usage: ferry testapp <kind> [options]

  http-echo --port <n> [--host <ip>]   HTTP/1.1 echo: JSON with pod (POD_NAME), method, path, headers, peer;
                                       ?delay=200ms, ?status=N, x-fail-times/x-fail-status/x-fail-reset
                                       keyed by x-request-id
  tcp-echo --port <n> [--host <ip>]    echoes bytes back
  grpc-echo --port <n> [--host <ip>]   gRPC (h2c) service ferry.test.Echo: Unary, ServerStream, ClientStream,
                                       Bidi; replies name the pod and the request metadata
  grpc-client --target <host:port> [--calls <n>] [--shape unary|server|client|bidi] [--concurrency <n>]
              [--metadata k=v]...      n calls to ferry.test.Echo; prints {pods, codes, replies, metadata} JSON
  tcp-client --target <host:port> [--connections <n>] [--concurrency <n>]
                                       n connections: each sends a line, half-closes, expects it echoed;
                                       prints {ok, failed} JSON
  curl <url> [options]                 HTTP client (ferry testapp curl --help)
`;

function log(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ time: Date.now(), ...line })}\n`);
}

function serverArgs(argv: readonly string[]): { port: number; host: string } | string {
  const { values } = parseArgs({
    args: [...argv],
    options: { port: { type: 'string' }, host: { type: 'string', default: '0.0.0.0' } },
  });
  const port = Number(values.port ?? process.env.PORT ?? '8080');
  if (!Number.isInteger(port) || port < 0 || port > 65535) return `--port: ${values.port} is not a port`;
  return { port, host: values.host };
}

async function untilSignal(): Promise<void> {
  await Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]);
}

export async function run(argv: readonly string[]): Promise<number> {
  const [kind, ...rest] = argv;
  switch (kind) {
    case 'grpc-echo': {
      const args = serverArgs(rest);
      if (typeof args === 'string') {
        process.stderr.write(`ferry testapp ${kind}: ${args}\n`);
        return 2;
      }
      const podName = process.env.POD_NAME ?? hostname();
      const app = await startGrpcEcho({ ...args, podName, log });
      log({ msg: 'listening', app: kind, port: app.port, pod: podName });
      await untilSignal();
      await app[Symbol.asyncDispose]();
      return 0;
    }
    case 'grpc-client': {
      const { values } = parseArgs({
        args: [...rest],
        options: {
          target: { type: 'string' },
          calls: { type: 'string', default: '1' },
          shape: { type: 'string', default: 'unary' },
          concurrency: { type: 'string', default: '1' },
          metadata: { type: 'string', multiple: true, default: [] },
        },
      });
      const calls = Number(values.calls);
      const pairs = values.metadata.map((kv) => kv.split('=', 2));
      if (values.target === undefined || !Number.isInteger(calls) || calls < 1 || pairs.some((p) => p.length !== 2)) {
        process.stderr.write('ferry testapp grpc-client: --target <host:port> [--calls <n ≥ 1>] [--metadata k=v]\n');
        return 2;
      }
      const metadata = Object.fromEntries(pairs) as Record<string, string>;
      const shape = SHAPES.find((s) => s === values.shape);
      const concurrency = Number(values.concurrency);
      if (shape === undefined || !Number.isInteger(concurrency) || concurrency < 1) {
        process.stderr.write(`ferry testapp grpc-client: --shape ${SHAPES.join('|')}, --concurrency <n ≥ 1>\n`);
        return 2;
      }
      const out = (t: string) => process.stdout.write(t);
      return runGrpcClient({ target: values.target, calls, shape, concurrency, metadata, out });
    }
    case 'tcp-client': {
      const { values } = parseArgs({
        args: [...rest],
        options: {
          target: { type: 'string' },
          connections: { type: 'string', default: '1' },
          concurrency: { type: 'string', default: '1' },
        },
      });
      const connections = Number(values.connections);
      const concurrency = Number(values.concurrency);
      if (values.target === undefined || !(connections >= 1) || !(concurrency >= 1)) {
        process.stderr.write(
          'ferry testapp tcp-client: --target <host:port> [--connections <n>] [--concurrency <n>]\n',
        );
        return 2;
      }
      return runTcpClient({ target: values.target, connections, concurrency, out: (t) => process.stdout.write(t) });
    }
    case 'http-echo':
    case 'tcp-echo': {
      const args = serverArgs(rest);
      if (typeof args === 'string') {
        process.stderr.write(`ferry testapp ${kind}: ${args}\n`);
        return 2;
      }
      const podName = process.env.POD_NAME ?? hostname();
      const app =
        kind === 'http-echo'
          ? await startHttpEcho({ ...args, podName, namespace: process.env.POD_NAMESPACE, log })
          : await startTcpEcho({ ...args, log });
      log({ msg: 'listening', app: kind, port: app.port, pod: podName });
      await untilSignal();
      await app[Symbol.asyncDispose]();
      return 0;
    }
    case 'curl': {
      if (rest.includes('--help')) {
        process.stdout.write(CURL_HELP);
        return 0;
      }
      const opts = parseCurlArgs(rest);
      if ('usage' in opts) {
        process.stderr.write(`curl: ${opts.usage}\n${CURL_HELP}`);
        return 2;
      }
      return runCurl(
        opts,
        (t) => process.stdout.write(t),
        (t) => process.stderr.write(t),
      );
    }
    case undefined:
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return kind === undefined ? 2 : 0;
    default:
      process.stderr.write(`ferry testapp: unknown kind ${JSON.stringify(kind)}\n${HELP}`);
      return 2;
  }
}
