// Fuzz targets for the waypoint's request parsers, over real HBONE tunnels into a real waypoint on loopback
// (test/helpers/waypoint-harness.ts): `waypoint-http1` sends HTTP/1.x requests built from parts (methods,
// targets, versions, framing headers, chunked bodies, pipelining) with fields and bytes broken;
// `waypoint-h2c` sends an h2c preface and generated HTTP/2 frames. Each input is a fresh tunnel (a fresh
// connection for the waypoint's parser). Checked: whatever comes back on an HTTP/1 tunnel is an HTTP/1
// response (never stray bytes: issue 9 item 1 was heap bytes in responses), the waypoint logs nothing at
// error level (docs/errors.md: that is a bug), and a legitimate request still gets 200 afterwards.
import { once } from 'node:events';
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { TestContext } from 'node:test';
import fc from 'fast-check';
import { meshConfig, service, waypointByHostname, workload } from '../../../test/helpers/mesh-builders.ts';
import { startWaypointHarness, type WaypointHarness } from '../../../test/helpers/waypoint-harness.ts';
import { type FuzzTarget, FuzzViolation } from '../engine.ts';
import { type HeaderList, h2ClientBytes, mutatedHeaderList } from '../h2-frames.ts';
import { mutatedBytes, nastyString } from '../mutate.ts';

const ECHO_VIP = '10.96.7.10';
const GRPC_VIP = '10.96.7.20';
const WAYPOINT = waypointByHostname('default', 'waypoint.default.svc.cluster.local');
const PINO_ERROR = 50;
const SETTLE_MS = 100;

interface RunningWaypoint {
  readonly h: WaypointHarness;
  close(): Promise<void>;
}

/** The harness wants a TestContext for cleanup; outside node:test, keep the hooks and run them on close. */
async function startFuzzWaypoint(): Promise<RunningWaypoint> {
  const hooks: (() => unknown)[] = [];
  const t = { after: (fn: () => unknown) => hooks.push(fn) } as unknown as TestContext;
  const pods = [
    { name: 'echo-a', ip: '127.0.0.71' },
    { name: 'grpc-a', ip: '127.0.0.72', h2c: true },
  ];
  const h = await startWaypointHarness(t, pods, () => ({
    mesh: meshConfig({
      workloads: [
        workload('echo-a', '127.0.0.71', { services: { 'default/echo.default.svc.cluster.local': { 80: 8080 } } }),
        workload('grpc-a', '127.0.0.72', { services: { 'default/grpc.default.svc.cluster.local': { 80: 8080 } } }),
      ],
      services: [
        { ...service('echo', ECHO_VIP, { ports: { 80: 8080 } }), waypoint: WAYPOINT },
        {
          ...service('grpc', GRPC_VIP),
          ports: [{ servicePort: 80, targetPort: 8080, appProtocol: 'grpc' as const }],
          waypoint: WAYPOINT,
        },
      ],
    }),
    httpRoutes: [
      {
        metadata: { name: 'fuzz', namespace: 'default' },
        spec: {
          parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }],
          rules: [
            {
              matches: [
                { path: { type: 'RegularExpression', value: '/re/[a-z]+/[0-9]{1,4}' } },
                { headers: [{ name: 'x-route', value: 'a' }], method: 'POST' },
                { queryParams: [{ name: 'q', value: '1' }] },
              ],
              filters: [
                { type: 'RequestHeaderModifier', requestHeaderModifier: { add: [{ name: 'x-f', value: '1' }] } },
              ],
              backendRefs: [{ name: 'echo', port: 80 }],
              timeouts: { request: '2s' },
            },
            { backendRefs: [{ name: 'echo', port: 80 }], retry: { attempts: 2, codes: [503], backoff: '1ms' } },
          ],
        },
      },
    ],
  }));
  return {
    h,
    async close() {
      for (const hook of hooks.reverse()) {
        try {
          await hook();
        } catch {
          // best effort: the run is over
        }
      }
    },
  };
}

/**
 * Opening a tunnel (or a request's tunnel) through the test client's pooled HBONE session, retried once
 * when the CONNECT is reset before any response: seen under heavy machine load on the pooled session
 * itself, before the input is sent (docs/fuzzing.md, open findings). Counted and reported, not hidden.
 */
let tunnelRetries = 0;
async function onceMore<T>(open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (err) {
    if (!(err instanceof Error) || !err.message.includes('reset before a response')) throw err;
    tunnelRetries++;
    process.stderr.write(`fuzz: ${err.message}; retried once (${tunnelRetries} so far)\n`);
    return open();
  }
}

/** Checks after one input: no error-level log line, then a legitimate request must get 200. */
async function afterInput(h: WaypointHarness, count: number): Promise<void> {
  const bad = h.logs.lines.find((l) => typeof l.level === 'number' && l.level >= PINO_ERROR);
  if (bad !== undefined) throw new FuzzViolation(`the waypoint logged at error level: ${JSON.stringify(bad)}`);
  // The harness keeps every log line and echo record; a long run must not measure those.
  h.logs.lines.length = 0;
  for (const lines of h.seen.values()) (lines as unknown[]).length = 0;
  const res = await onceMore(() => h.request(ECHO_VIP, 80, { path: `/legit/${count}` }));
  if (res.status !== 200) throw new FuzzViolation(`legitimate request got ${res.status} after the input`);
}

/** Sends bytes on a tunnel; resolves with what came back once the waypoint closed it or SETTLE_MS passed. */
async function exchange(tunnel: Duplex, bytes: Uint8Array, halfClose: boolean): Promise<Buffer> {
  const chunks: Buffer[] = [];
  tunnel.on('data', (c: Buffer) => chunks.push(c));
  tunnel.on('error', () => {});
  if (halfClose) tunnel.end(bytes);
  else tunnel.write(bytes);
  await Promise.race([once(tunnel, 'end'), once(tunnel, 'close'), new Promise((r) => setTimeout(r, SETTLE_MS))]);
  tunnel.destroy();
  return Buffer.concat(chunks);
}

// ---- HTTP/1.1 ----

const token = fc.oneof(
  fc.constantFrom('GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE', 'PRI', 'get', ''),
  fc.string({ unit: 'binary-ascii', maxLength: 8 }),
);
const requestTarget = fc.oneof(
  fc.constantFrom(
    '/',
    '/ok',
    '/re/abc/12',
    '/re/abc/12345',
    '/?q=1',
    '*',
    'http://echo/x',
    '//x',
    '/%00',
    '/a b',
    '/..%2f',
  ),
  fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)),
  nastyString,
);
const version = fc.oneof(
  { weight: 8, arbitrary: fc.constant('HTTP/1.1') },
  { weight: 2, arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', 'HTTP/1.1 ', 'HTTP/11', 'http/1.1', '') },
);
const headerLine = fc.oneof(
  fc.constantFrom(
    'Host: echo',
    'Host: echo.default.svc.cluster.local:80',
    'Host:',
    'Content-Length: 5',
    'Content-Length: -1',
    'Content-Length: 5, 6',
    'Content-Length: 99999999999999999999',
    'Transfer-Encoding: chunked',
    'Transfer-Encoding: gzip, chunked',
    'Transfer-Encoding: chunked, identity',
    'Connection: close',
    'Connection: keep-alive',
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Upgrade: h2c',
    'HTTP2-Settings: AAMAAABkAAQAAP__',
    'Expect: 100-continue',
    'Te: trailers',
    'X-Route: a',
    'X-Request-Id: fuzz',
    'X-Fail-Times: 1',
    'X-Fail-Status: 503',
    'Forwarded: for=x',
    ' folded: continuation',
    'Bad Header: x',
    'X-Nul: a\u0000b',
  ),
  fc.tuple(nastyString, nastyString).map(([n, v]) => `${n}: ${v}`),
);
const body = fc.oneof(
  fc.constant(''),
  fc.constant('hello'),
  fc.constant('5\r\nhello\r\n0\r\n\r\n'),
  fc.constant('5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n'),
  fc.constantFrom('ZZ\r\nhello\r\n0\r\n\r\n', 'fffffffffffffffff\r\n', '5;ext=1\r\nhello\r\n0\r\n\r\n', '-1\r\n\r\n'),
  fc.string({ unit: 'binary-ascii', maxLength: 64 }),
);
const http1Request = fc
  .tuple(token, requestTarget, version, fc.array(headerLine, { maxLength: 6 }), body, fc.boolean())
  .map(([m, target, v, headers, b, withHost]) => {
    const lines = [`${m} ${target} ${v}`.trimEnd(), ...(withHost ? ['Host: echo'] : []), ...headers];
    return `${lines.join('\r\n')}\r\n\r\n${b}`;
  });
const http1Bytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.array(http1Request, { minLength: 1, maxLength: 3 }).map((r) => Buffer.from(r.join(''), 'latin1')),
  },
  {
    weight: 3,
    arbitrary: mutatedBytes(
      http1Request.map((r) => Buffer.from(r, 'latin1')),
      4,
    ),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
);

const HTTP1_RESPONSE = /^HTTP\/1\.[01] [1-5][0-9]{2} /;

export const waypointHttp1Target: FuzzTarget = {
  name: 'waypoint-http1',
  kind: 'network',
  what: "the waypoint's HTTP/1.1 ingress over HBONE tunnels (each input a fresh tunnel), then a legitimate request",
  hangMs: 30_000,
  async start() {
    const w = await startFuzzWaypoint();
    let count = 0;
    return {
      sync: false,
      arbitrary: fc.record({ bytes: http1Bytes, halfClose: fc.boolean() }),
      async run(input: { bytes: Uint8Array; halfClose: boolean }) {
        count++;
        const tunnel = await onceMore(() => w.h.openTunnel(ECHO_VIP, 80));
        const reply = await exchange(tunnel, input.bytes, input.halfClose);
        if (reply.length > 0 && !HTTP1_RESPONSE.test(reply.subarray(0, 16).toString('latin1'))) {
          throw new FuzzViolation(
            `the waypoint answered with non-HTTP bytes: ${JSON.stringify(reply.subarray(0, 64).toString('latin1'))}`,
          );
        }
        await afterInput(w.h, count);
      },
      close: () => w.close(),
    };
  },
};

// ---- h2c ----

const validH2Requests: fc.Arbitrary<HeaderList> = fc.constantFrom<HeaderList>(
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':authority', 'echo'],
    [':path', '/h2?q=1'],
  ],
  [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':authority', 'grpc'],
    [':path', '/grpc.Echo/Say'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
  ],
  [
    [':method', 'CONNECT'],
    [':protocol', 'websocket'],
    [':scheme', 'http'],
    [':authority', 'echo'],
    [':path', '/ws'],
  ],
);

export const waypointH2cTarget: FuzzTarget = {
  name: 'waypoint-h2c',
  kind: 'network',
  what: "the waypoint's h2c (HTTP/2 prior knowledge) ingress over HBONE tunnels, then legitimate requests",
  hangMs: 30_000,
  async start() {
    const w = await startFuzzWaypoint();
    let count = 0;
    return {
      sync: false,
      arbitrary: fc.record({
        bytes: h2ClientBytes(mutatedHeaderList(validH2Requests)),
        vip: fc.constantFrom(ECHO_VIP, GRPC_VIP),
        halfClose: fc.boolean(),
      }),
      async run(input: { bytes: Uint8Array; vip: string; halfClose: boolean }) {
        count++;
        await exchange(await onceMore(() => w.h.openTunnel(input.vip, 80)), input.bytes, input.halfClose);
        await afterInput(w.h, count);
        if (count % 20 === 0) await legitimateH2c(w.h);
      },
      close: () => w.close(),
    };
  },
};

async function legitimateH2c(h: WaypointHarness): Promise<void> {
  const tunnel = await h.openTunnel(ECHO_VIP, 80);
  const session = http2.connect(`http://${ECHO_VIP}`, { createConnection: () => tunnel as never });
  session.on('error', () => {});
  try {
    const stream = session.request({ ':path': '/h2-legit', ':method': 'GET' });
    stream.on('error', () => {});
    const [headers] = (await Promise.race([
      once(stream, 'response'),
      once(stream, 'close').then(() => [{ ':status': 'closed' }]),
    ])) as [http2.IncomingHttpHeaders];
    stream.resume();
    if (Number(headers[':status']) !== 200)
      throw new FuzzViolation(`legitimate h2c request got ${String(headers[':status'])}`);
  } finally {
    session.destroy();
  }
}
