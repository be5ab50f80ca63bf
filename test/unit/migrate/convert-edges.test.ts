// The conversion's edges, table-driven: retryOn → status codes, durations, hosts, string matches; and the
// cases where routing would differ — rule order Gateway API ranks differently, matches and destinations that
// cannot be expressed, consumer-side routes, bad input — each listed, never converted silently.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  convertStringMatch,
  formatGatewayDuration,
  parseIstioDurationMs,
  resolveServiceHost,
} from '../../../src/migrate/istio-values.ts';
import { mapRetryOn } from '../../../src/migrate/retry.ts';
import { compiledRoutes, findingsOf, objectOf, planWith, routeRequest } from '../../helpers/migrate-fixtures.ts';

const BASE = ['bookinfo/platform.yaml', 'bookinfo/destination-rules.yaml'];
const AT = 'retryOn';

test('retryOn conditions map to the statuses they stand for; gRPC and Envoy-only conditions are listed', () => {
  const cases: [string, number[], string[]][] = [
    ['5xx', [500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511], []],
    ['gateway-error', [502, 503, 504], []],
    ['connect-failure,refused-stream,503', [503], []],
    ['retriable-4xx', [409], []],
    ['retriable-status-codes,429,503', [429, 503], []],
    ['reset,gateway-error,unavailable,cancelled', [502, 503, 504], ['unavailable', 'cancelled']],
    ['envoy-ratelimited,retriable-headers', [], ['envoy-ratelimited', 'retriable-headers']],
    ['connect-failure,302', [], ['302']],
  ];
  for (const [retryOn, codes, lost] of cases) {
    const out = mapRetryOn(retryOn, AT);
    assert.deepEqual(out.codes, codes, retryOn);
    assert.deepEqual(
      out.notConverted.map((n) => n.split(': ')[1]?.replace(/^status /, '')),
      lost,
      retryOn,
    );
  }
  // A list without connection conditions: the waypoint retries connection failures anyway, and says so.
  assert.match(mapRetryOn('retriable-4xx', AT).notes.join(), /also retries connection failures/);
  assert.deepEqual(mapRetryOn('connect-failure', AT).notes, []);
});

test('Istio durations → GEP-2257 durations', () => {
  const cases: [string, number | null, string | null][] = [
    ['0.5s', 500, '500ms'],
    ['10s', 10_000, '10s'],
    ['1m30s', 90_000, '1m30s'],
    ['1.5s', 1500, '1s500ms'],
    ['2h', 7_200_000, '2h'],
    ['250us', 0.25, '1ms'],
    ['abc', null, null],
    ['-1s', null, null],
  ];
  for (const [text, ms, formatted] of cases) {
    assert.equal(parseIstioDurationMs(text), ms, text);
    if (ms !== null) assert.equal(formatGatewayDuration(ms), formatted, text);
  }
});

test('hosts resolve like Istio short names; external and wildcard hosts are not Services', () => {
  assert.deepEqual(resolveServiceHost('reviews', 'bookinfo'), { namespace: 'bookinfo', name: 'reviews' });
  assert.deepEqual(resolveServiceHost('reviews.other', 'bookinfo'), { namespace: 'other', name: 'reviews' });
  assert.deepEqual(resolveServiceHost('reviews.other.svc.cluster.local', 'bookinfo'), {
    namespace: 'other',
    name: 'reviews',
  });
  assert.equal(resolveServiceHost('api.example.com', 'bookinfo'), null);
  assert.equal(resolveServiceHost('*.bookinfo.svc.cluster.local', 'bookinfo'), null);
});

test('string matches: exact, prefix as an anchored regex with escaped metacharacters, regex as written', () => {
  assert.deepEqual(convertStringMatch({ exact: 'jason' }), { ok: true, match: { type: 'Exact', value: 'jason' } });
  assert.deepEqual(convertStringMatch({ prefix: 'v1.2+' }), {
    ok: true,
    match: { type: 'RegularExpression', value: 'v1\\.2\\+.*' },
  });
  assert.deepEqual(convertStringMatch({ regex: 'ja.*' }), {
    ok: true,
    match: { type: 'RegularExpression', value: 'ja.*' },
  });
  assert.equal(convertStringMatch({ suffix: 'x' }).ok, false);
});

const vs = (http: string, extra = '') => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]${extra}
  http:
${http}`;

test('an earlier rule that Gateway API ranks lower (prefix before exact) is a blocker: routing would differ', () => {
  const { plan } = planWith(
    BASE,
    vs(`  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: reviews, subset: v1}}]
  - match: [{uri: {exact: /api/health}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{uri: {exact: /other}}]
    route: [{destination: {host: reviews, subset: v3}}]
`),
  );
  const blockers = findingsOf(plan, 'blocker');
  assert.equal(blockers.length, 1);
  assert.equal(blockers[0]?.field, 'HTTPRoute reviews rules[1]');
  assert.match(
    blockers[0]?.message ?? '',
    /rule 1 \(Exact \/api\/health\) is more specific .* earlier rule 0 \(PathPrefix \/api\)/,
  );
});

test('a later, more specific rule is fine when no request matches both (different exact values)', () => {
  const { inv, plan } = planWith(
    BASE,
    vs(`  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{headers: {end-user: {exact: ann}, x-beta: {exact: "1"}}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - match: [{method: {exact: POST}, headers: {end-user: {exact: bob}}}]
    route: [{destination: {host: reviews, subset: v1}}]
  - route: [{destination: {host: reviews, subset: v1}}]
`),
  );
  assert.deepEqual(findingsOf(plan, 'blocker'), []);
  const routes = compiledRoutes(inv, plan);
  const target = { ns: 'bookinfo', service: 'reviews', port: 9080 };
  assert.equal(
    routeRequest(routes, target, { path: '/x', headers: { 'end-user': 'ann', 'x-beta': '1' } })?.rule.ruleIndex,
    1,
  );
  assert.equal(
    routeRequest(routes, target, { method: 'POST', path: '/', headers: { 'end-user': 'jason' } })?.rule.ruleIndex,
    0,
  );
  assert.equal(
    routeRequest(routes, target, { method: 'POST', path: '/', headers: { 'end-user': 'bob' } })?.rule.ruleIndex,
    2,
  );
  assert.equal(routeRequest(routes, target, { path: '/' })?.rule.ruleIndex, 3);
});

test('a header-only rule before an exact-path rule overlaps (jason POSTing /reviews): a blocker', () => {
  const { plan } = planWith(
    BASE,
    vs(`  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{method: {exact: POST}, uri: {exact: /reviews}}]
    route: [{destination: {host: reviews, subset: v1}}]
`),
  );
  assert.deepEqual(
    findingsOf(plan, 'blocker').map((f) => f.field),
    ['HTTPRoute reviews rules[1]'],
  );
});

test('a match with a condition Gateway API cannot express is left out whole; a route left without matches is not converted', () => {
  const { plan } = planWith(
    BASE,
    vs(`  - match:
    - sourceLabels: {app: productpage}
    - headers: {end-user: {exact: jason}}
    route: [{destination: {host: reviews, subset: v2}}]
  - match:
    - uri: {prefix: /v3}
      ignoreUriCase: true
    route: [{destination: {host: reviews, subset: v3}}]
  - route: [{destination: {host: reviews, subset: v1}}]
`),
  );
  const rules = (objectOf(plan, 'HTTPRoute', 'reviews').manifest.spec as { rules: unknown[] }).rules;
  assert.deepEqual(rules, [
    {
      matches: [{ headers: [{ name: 'end-user', type: 'Exact', value: 'jason' }] }],
      backendRefs: [{ name: 'reviews-v2', port: 9080 }],
    },
    { backendRefs: [{ name: 'reviews-v1', port: 9080 }] },
  ]);
  assert.deepEqual(
    findingsOf(plan, 'blocker').map((f) => f.field),
    ['spec.http[0].match[0].sourceLabels', 'spec.http[1].match[0].ignoreUriCase', 'spec.http[1].match'],
  );
});

test('routes only for ingress gateways are not mesh routing; directResponse, unknown subsets, other namespaces are blockers', () => {
  const { plan } = planWith(
    BASE,
    `${vs(
      `  - match: [{uri: {exact: /teapot}}]
    directResponse: {status: 418}
  - match: [{uri: {exact: /v9}}]
    route: [{destination: {host: reviews, subset: v9}}]
  - route: [{destination: {host: reviews, subset: v1}}]
`,
    )}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo-ingress, namespace: bookinfo}
spec:
  hosts: ["bookinfo.example.com"]
  gateways: [bookinfo-gateway]
  http:
  - route: [{destination: {host: productpage}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: consumer-side, namespace: default}
spec:
  hosts: [reviews.bookinfo.svc.cluster.local]
  http:
  - route: [{destination: {host: reviews.bookinfo.svc.cluster.local, subset: v1}}]
`,
  );
  assert.deepEqual(
    findingsOf(plan, 'blocker').map((f) => [f.object, f.field]),
    [
      ['VirtualService/bookinfo/reviews', 'spec.http[0].directResponse'],
      ['VirtualService/bookinfo/reviews', 'spec.http[1].route[0].destination'],
      ['VirtualService/default/consumer-side', 'spec.hosts[0]'],
    ],
  );
  assert.deepEqual(
    findingsOf(plan, 'warning').map((f) => [f.object, f.field]),
    [['VirtualService/bookinfo/bookinfo-ingress', 'spec.gateways']],
  );
  assert.equal(plan.objects.filter((o) => o.manifest.kind === 'HTTPRoute').length, 1);
});

test('input that cannot be read is a blocker naming file and line, and the rest is still planned', () => {
  const { plan } = planWith(
    BASE,
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: Bad_Name, namespace: bookinfo}
spec: {hosts: [reviews]}
---
kind: Service
apiVersion: v1
metadata: {name: broken, namespace: bookinfo}
spec: {ports: [{port: 99999}]}
---
key: [unclosed
`,
  );
  const blockers = findingsOf(plan, 'blocker');
  const at = (line: string) => blockers.find((f) => f.message.startsWith(`inline.yaml:${line}: `))?.message ?? '';
  assert.equal(blockers.length, 3);
  assert.match(at('1'), /VirtualService\/bookinfo\/Bad_Name: metadata\.name must be a DNS-1123 subdomain/);
  assert.match(at('6'), /Service\/bookinfo\/broken/);
  assert.match(at('12'), /YAML syntax error/);
  // The platform still converts to nothing (no routes), but is read: its Services are known.
  assert.deepEqual(plan.objects, []);
});

test('corsPolicy (Istio docs example) → a CORS filter; a regex origin is listed, so fewer origins are allowed, never more', () => {
  const { inv, plan } = planWith(
    BASE,
    vs(`  - route: [{destination: {host: reviews, subset: v1}}]
    corsPolicy:
      allowOrigins:
      - exact: https://example.com
      - regex: "https://.*\\\\.example\\\\.org"
      allowMethods: [POST, GET]
      allowCredentials: false
      allowHeaders: [X-Foo-Bar]
      maxAge: "24h"
`),
  );
  const rule = (objectOf(plan, 'HTTPRoute', 'reviews').manifest.spec as { rules: Record<string, unknown>[] }).rules[0];
  assert.deepEqual(rule?.filters, [
    {
      type: 'CORS',
      cors: {
        allowOrigins: ['https://example.com'],
        allowMethods: ['POST', 'GET'],
        allowHeaders: ['X-Foo-Bar'],
        allowCredentials: false,
        maxAge: 86400,
      },
    },
  ]);
  assert.deepEqual(
    findingsOf(plan, 'warning').map((f) => f.field),
    ['spec.http[0].corsPolicy.allowOrigins[1]'],
  );
  const compiled = routeRequest(
    compiledRoutes(inv, plan),
    { ns: 'bookinfo', service: 'reviews', port: 9080 },
    { path: '/' },
  );
  assert.deepEqual(compiled?.rule.filters, [
    {
      type: 'CORS',
      cors: {
        allowOrigins: ['https://example.com'],
        allowCredentials: false,
        allowMethods: ['POST', 'GET'],
        allowHeaders: ['x-foo-bar'],
        exposeHeaders: [],
        maxAgeSeconds: 86400,
      },
    },
  ]);
});

test('two VirtualServices for one Service: a warning (both HTTPRoutes would apply); a host named twice is one parentRef', () => {
  const { plan } = planWith(
    BASE,
    `${vs(`  - route: [{destination: {host: reviews, subset: v1}}]
`)}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-canary, namespace: bookinfo}
spec:
  hosts: [reviews, reviews.bookinfo.svc.cluster.local]
  http:
  - match: [{headers: {x-canary: {exact: "1"}}}]
    route: [{destination: {host: reviews, subset: v3}}]
`,
  );
  assert.deepEqual(
    (objectOf(plan, 'HTTPRoute', 'reviews-canary').manifest.spec as { parentRefs: unknown[] }).parentRefs,
    [{ group: '', kind: 'Service', name: 'reviews' }],
  );
  assert.deepEqual(
    findingsOf(plan, 'warning').map((f) => [f.object, f.message.split(':')[0]]),
    [['VirtualService/bookinfo/reviews-canary', 'Service reviews is also a host of VirtualService/bookinfo/reviews']],
  );
});

test('a gRPC Service (appProtocol grpc) is converted as an HTTPRoute and says so', () => {
  const { inv, plan } = planWith(
    [],
    `apiVersion: v1
kind: Service
metadata: {name: greeter, namespace: grpc}
spec:
  selector: {app: greeter}
  ports: [{name: grpc, port: 50051, appProtocol: grpc}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: greeter, namespace: grpc}
spec:
  hosts: [greeter]
  http:
  - match: [{uri: {exact: /helloworld.Greeter/SayHello}}]
    route: [{destination: {host: greeter}}]
    timeout: 2s
`,
  );
  assert.deepEqual(findingsOf(plan, 'blocker'), []);
  assert.ok(
    plan.findings.some((f) => f.field === 'spec.hosts[0]' && f.message.startsWith('Service greeter serves gRPC')),
  );
  const sel = routeRequest(
    compiledRoutes(inv, plan),
    { ns: 'grpc', service: 'greeter', port: 50051 },
    { method: 'POST', path: '/helloworld.Greeter/SayHello' },
  );
  assert.deepEqual(sel?.rule.timeouts, { requestMs: 2000, backendRequestMs: null });
});
