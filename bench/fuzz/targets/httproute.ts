// Fuzz target `httproute` (pure): Gateway API HTTPRoute compilation (gateway-api/compile*.ts) and request
// matching (route-table.ts, match.ts), as the controller (status) and the waypoint (routing) run them. Specs
// are the repository's HTTPRoutes and a rich one with random values planted in fields, plus generated
// regular-expression matches; each compiled route is then matched against generated requests. Contract:
// never throws; problems carry FERRY_ROUTE_* codes; matching one request stays under the hang limit (a
// backtracking regex would not).
import fc from 'fast-check';
import { type CompileContext, compileHttpRoute } from '../../../gateway-api/compile.ts';
import { selectRoute } from '../../../gateway-api/match.ts';
import { buildRouteTables } from '../../../gateway-api/route-table.ts';
import type { RequestView } from '../../../gateway-api/types.ts';
import { loadManifestCorpus } from '../corpus.ts';
import { expectCode, type FuzzTarget, mustNotThrow } from '../engine.ts';
import { mutatedDocument, nastyString } from '../mutate.ts';

const ROUTE_CODES = ['FERRY_ROUTE_INVALID', 'FERRY_ROUTE_UNRESOLVED_REF', 'FERRY_ROUTE_NO_PARENT'];
const WAYPOINT = { namespace: 'default', name: 'waypoint' };

const SERVICES: Record<string, { port: number; name: string | null; appProtocol: string | null }[]> = {
  'default/echo': [
    { port: 80, name: 'http', appProtocol: 'http' },
    { port: 9000, name: 'raw', appProtocol: 'tcp' },
  ],
  'default/echo-v1': [{ port: 80, name: 'http', appProtocol: null }],
  'default/echo-v2': [{ port: 80, name: 'http', appProtocol: null }],
  'shop/echo': [{ port: 80, name: 'http', appProtocol: null }],
  'shop/echo-v1': [{ port: 80, name: 'http', appProtocol: null }],
  'shop/echo-v2': [{ port: 80, name: 'http', appProtocol: null }],
};

const ctx: CompileContext = {
  service: (ns, name) => {
    const ports = SERVICES[`${ns}/${name}`];
    return ports === undefined ? undefined : { ports };
  },
  isWaypointGateway: (ns, name) => ns === 'default' && name === 'waypoint',
  referenceGrantAllows: (from, to) => from === 'default' && to === 'shop',
};

const RICH_SPEC = {
  parentRefs: [
    { group: '', kind: 'Service', name: 'echo', port: 80 },
    { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' },
  ],
  hostnames: ['echo.default.svc.cluster.local'],
  rules: [
    {
      name: 'a',
      matches: [
        {
          path: { type: 'PathPrefix', value: '/api' },
          headers: [
            { name: 'x-env', value: 'canary' },
            { type: 'RegularExpression', name: 'x-v', value: 'v[0-9]+' },
          ],
          queryParams: [{ name: 'debug', value: '1' }],
          method: 'GET',
        },
        { path: { type: 'RegularExpression', value: '/items/[0-9]{1,6}' } },
        { path: { type: 'Exact', value: '/exact' } },
      ],
      filters: [
        {
          type: 'RequestHeaderModifier',
          requestHeaderModifier: { set: [{ name: 'x-a', value: '1' }], remove: ['x-b'] },
        },
        { type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' } } },
      ],
      backendRefs: [
        { name: 'echo-v1', port: 80, weight: 90 },
        { name: 'echo-v2', port: 80, weight: 10 },
      ],
      timeouts: { request: '5s', backendRequest: '1s' },
      retry: { attempts: 3, codes: [502, 503], backoff: '25ms' },
    },
    {
      matches: [{ path: { type: 'PathPrefix', value: '/' } }],
      filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', statusCode: 301 } }],
    },
  ],
};

/** Regular expressions from a small grammar, nested quantifiers included. */
const regex: fc.Arbitrary<string> = fc.letrec((tie) => ({
  re: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom('a', '.', '[a-z]', '[0-9]', '/', '\\d', '\\w', 'x|y', '^', '$', '\\', '(', '[', '(?:a)', '(?=a)'),
    fc.tuple(tie('re'), fc.constantFrom('*', '+', '?', '{2,}', '{1,3}', '*?')).map(([r, q]) => `(${r})${q}`),
    fc.array(tie('re'), { minLength: 2, maxLength: 3 }).map((rs) => rs.join('')),
    fc.array(tie('re'), { minLength: 2, maxLength: 3 }).map((rs) => rs.join('|')),
  ),
})).re as fc.Arbitrary<string>;

const regexSpec = fc.tuple(regex, regex).map(([p, h]) => ({
  parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }],
  rules: [
    {
      matches: [
        { path: { type: 'RegularExpression', value: `/${p}` } },
        { headers: [{ type: 'RegularExpression', name: 'x-r', value: h }] },
      ],
      backendRefs: [{ name: 'echo', port: 80 }],
    },
  ],
}));

const request: fc.Arbitrary<RequestView> = fc
  .record({
    method: fc.constantFrom('GET', 'POST', 'DELETE', 'get', ''),
    path: fc.oneof(
      fc.constantFrom('/', '/api', '/api/x', '/items/12', '/exact', '/exact/', '//', '/%2e%2e/'),
      fc
        .tuple(fc.constantFrom('a', 'ab', '0', 'x'), fc.integer({ min: 1, max: 40 }), fc.constantFrom('', '!', '/'))
        .map(([unit, n, end]) => `/${unit.repeat(n)}${end}`),
      nastyString,
    ),
    query: fc.constantFrom('', 'debug=1', 'debug=1&debug=2', '%', '=&=', 'a'.repeat(100)),
    headers: fc.array(
      fc.tuple(
        fc.constantFrom('x-env', 'x-v', 'x-r', 'host', 'X-Env'),
        fc.oneof(nastyString, fc.constant('a'.repeat(40))),
      ),
      { maxLength: 4 },
    ),
  })
  .map((r) => {
    const headers = new Map<string, string[]>();
    for (const [n, v] of r.headers) headers.set(n.toLowerCase(), [...(headers.get(n.toLowerCase()) ?? []), v]);
    return { method: r.method, path: r.path, query: r.query, headers };
  });

export const httprouteTarget: FuzzTarget = {
  name: 'httproute',
  kind: 'pure',
  what: 'HTTPRoute compilation and request matching (gateway-api/compile*.ts, route-table.ts, match.ts)',
  hangMs: 5_000,
  async start() {
    const corpus = await loadManifestCorpus();
    const specs: unknown[] = [RICH_SPEC];
    for (const d of corpus.documents) {
      const doc = d as { kind?: unknown; spec?: unknown };
      if (doc.kind === 'HTTPRoute' && doc.spec !== undefined) specs.push(doc.spec);
    }
    const spec = fc.oneof(
      { weight: 6, arbitrary: mutatedDocument(specs, 3) },
      { weight: 2, arbitrary: regexSpec },
      { weight: 1, arbitrary: fc.constantFrom(...specs) },
    );
    return {
      sync: true,
      arbitrary: fc.record({
        spec,
        namespace: fc.constantFrom('default', 'shop'),
        requests: fc.array(request, { minLength: 1, maxLength: 4 }),
      }),
      run(input: { spec: unknown; namespace: string; requests: RequestView[] }) {
        const out = mustNotThrow('compileHttpRoute', () =>
          compileHttpRoute(
            { namespace: input.namespace, name: 'fuzz', sequence: 0, creationTimestampMs: null, spec: input.spec },
            ctx,
          ),
        );
        for (const p of out.problems) expectCode(p.code, ROUTE_CODES, 'compileHttpRoute problem');
        if (out.route === null) return;
        const route = out.route;
        mustNotThrow('route matching', () => {
          const tables = buildRouteTables([route], WAYPOINT);
          for (const [ns, name, port] of [
            [input.namespace, 'echo', 80],
            ['default', 'echo-v1', 80],
          ] as const) {
            const table = tables.forServicePort(ns, name, port);
            if (table === null) continue;
            for (const req of input.requests) selectRoute(table, req);
          }
        });
      },
      async close() {},
    };
  },
};
