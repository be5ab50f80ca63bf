// `ferry migrate` on the authorization task's policies and the httpbin mirror/header samples: the exact
// AuthorizationPolicies with targetRefs and HTTPRoute filters produced, and the whole converted output read
// back by Ferry's own manifest parser and controller translation (routes Accepted, L7 policies bound to the
// waypoint instead of being cut down by ztunnel).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseManifestText } from '../../../src/controller/sources/manifest-source.ts';
import { buildClusterState } from '../../../src/controller/sources/types.ts';
import { translateCluster } from '../../../src/controller/translate/translate.ts';
import { renderYaml } from '../../../src/migrate/render.ts';
import { compileL7Policy } from '../../../src/waypoint/authz/compile.ts';
import {
  backendsOf,
  compiledRoutes,
  FIXTURES,
  findingsOf,
  kindsAndNames,
  objectOf,
  planFrom,
  planWith,
  routeRequest,
} from '../../helpers/migrate-fixtures.ts';

const BASE = ['bookinfo/platform.yaml', 'bookinfo/destination-rules.yaml'];

test('get-productpage (L7, selector) → targetRefs Service productpage; L4 policies stay as they are', () => {
  const { plan } = planFrom(...BASE, 'bookinfo/policies.yaml');
  assert.deepEqual(kindsAndNames(plan), [
    'Namespace/bookinfo/bookinfo',
    'Gateway/bookinfo/waypoint',
    'AuthorizationPolicy/bookinfo/get-productpage',
    'AuthorizationPolicy/bookinfo/get-reviews',
  ]);
  const ap = objectOf(plan, 'AuthorizationPolicy', 'get-productpage').manifest;
  assert.deepEqual(ap, {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: {
      name: 'get-productpage',
      namespace: 'bookinfo',
      labels: { 'ferry.dev/migrated-by': 'ferry-migrate' },
      annotations: { 'ferry.dev/migrated-from': 'AuthorizationPolicy/bookinfo/get-productpage' },
    },
    spec: {
      targetRefs: [{ group: '', kind: 'Service', name: 'productpage' }],
      action: 'ALLOW',
      rules: [{ to: [{ operation: { methods: ['GET'] } }] }],
    },
  });
  // Ferry's waypoint accepts it as a policy on the productpage Service.
  const compiled = compileL7Policy({
    namespace: 'bookinfo',
    name: 'get-productpage',
    creationTimestampMs: null,
    sequence: 0,
    spec: ap.spec,
  });
  assert.deepEqual(compiled.problems, []);
  assert.deepEqual(compiled.policy?.targets, [{ kind: 'Service', name: 'productpage' }]);
  const reviews = objectOf(plan, 'AuthorizationPolicy', 'get-reviews').manifest.spec as Record<string, unknown>;
  assert.deepEqual(reviews.targetRefs, [{ group: '', kind: 'Service', name: 'reviews' }]);
  assert.deepEqual(
    plan.findings.filter((f) => f.category === 'l4-policy').map((f) => f.object),
    ['AuthorizationPolicy/bookinfo/allow-nothing', 'AuthorizationPolicy/bookinfo/details-from-productpage'],
  );
  assert.deepEqual(
    findingsOf(plan, 'warning').map((f) => f.field),
    ['spec.portLevelMtls[9090]'],
  );
});

test('a policy selecting one version binds to its Service and warns that the Service fronts the other versions too', () => {
  const { plan } = planWith(
    BASE,
    `apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: v2-no-delete, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: reviews, version: v2}}
  action: DENY
  rules:
  - to: [{operation: {methods: [DELETE]}}]
`,
  );
  const spec = objectOf(plan, 'AuthorizationPolicy', 'v2-no-delete').manifest.spec;
  assert.deepEqual(spec, {
    targetRefs: [{ group: '', kind: 'Service', name: 'reviews' }],
    action: 'DENY',
    rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }],
  });
  assert.deepEqual(
    findingsOf(plan, 'warning').map((f) => f.message),
    [
      'Service reviews also fronts Deployment reviews-v1, Deployment reviews-v3, which the selector did not pick: the policy now applies to them too',
      'a DENY enforced at the waypoint applies to requests sent to the Service; requests sent to pod IPs directly bypass it (label the waypoint istio.io/waypoint-for: all if clients do that)',
    ],
  );
});

test('policies the waypoint cannot evaluate, or with no Service to bind to, are blockers and not converted', () => {
  const { plan } = planWith(
    BASE,
    `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: jwt-only, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: productpage}}
  rules:
  - from: [{source: {requestPrincipals: ["*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: orphan, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: nothing-here}}
  rules:
  - to: [{operation: {paths: ["/admin*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext-authz, namespace: bookinfo}
spec:
  action: CUSTOM
  provider: {name: opa}
  rules:
  - to: [{operation: {paths: ["/api*"]}}]
`,
  );
  assert.deepEqual(
    findingsOf(plan, 'blocker').map((f) => [f.object, f.field]),
    [
      ['AuthorizationPolicy/bookinfo/ext-authz', 'spec.action'],
      ['AuthorizationPolicy/bookinfo/jwt-only', 'spec.rules[0].from[0].source.requestPrincipals'],
      ['AuthorizationPolicy/bookinfo/orphan', 'spec.selector'],
    ],
  );
  assert.deepEqual(plan.objects, []);
});

test('httpbin: redirect, per-match prefix rewrites, header operations, 100% mirror to v2 — exact rules, accepted and routed', () => {
  const { inv, plan } = planFrom('httpbin/httpbin.yaml');
  assert.deepEqual(objectOf(plan, 'HTTPRoute', 'httpbin').manifest.spec, {
    parentRefs: [{ group: '', kind: 'Service', name: 'httpbin' }],
    rules: [
      {
        name: 'legacy',
        matches: [{ path: { type: 'Exact', value: '/old-status' } }],
        filters: [
          {
            type: 'RequestRedirect',
            requestRedirect: { path: { type: 'ReplaceFullPath', replaceFullPath: '/status/200' }, statusCode: 301 },
          },
        ],
      },
      {
        name: 'api-0',
        matches: [{ path: { type: 'PathPrefix', value: '/api/v1/' }, method: 'GET' }],
        filters: [
          { type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } },
        ],
        backendRefs: [{ name: 'httpbin-v1', port: 8000 }],
      },
      {
        name: 'api-1',
        matches: [
          {
            path: { type: 'PathPrefix', value: '/api/v1beta/' },
            queryParams: [{ name: 'debug', type: 'Exact', value: '1' }],
          },
        ],
        filters: [
          { type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } },
        ],
        backendRefs: [{ name: 'httpbin-v1', port: 8000 }],
      },
      {
        name: 'headers',
        matches: [{ path: { type: 'PathPrefix', value: '/headers' } }],
        filters: [
          {
            type: 'RequestHeaderModifier',
            requestHeaderModifier: {
              set: [{ name: 'x-request-from', value: 'mesh' }],
              add: [{ name: 'x-trace-tag', value: 'migrated' }],
              remove: ['x-internal-debug'],
            },
          },
          { type: 'ResponseHeaderModifier', responseHeaderModifier: { remove: ['x-powered-by'] } },
        ],
        backendRefs: [
          {
            name: 'httpbin-v1',
            port: 8000,
            filters: [
              {
                type: 'ResponseHeaderModifier',
                responseHeaderModifier: { set: [{ name: 'x-served-by', value: 'v1' }] },
              },
            ],
          },
        ],
      },
      {
        filters: [
          { type: 'RequestMirror', requestMirror: { backendRef: { name: 'httpbin-v2', port: 8000 }, percent: 100 } },
        ],
        backendRefs: [{ name: 'httpbin-v1', port: 8000, weight: 100 }],
      },
    ],
  });
  assert.deepEqual(findingsOf(plan, 'blocker'), []);
  assert.deepEqual(
    findingsOf(plan, 'warning').map((f) => f.field),
    ['spec.http[2].match[0].uri'], // "/headers" prefix: PathPrefix is segment-aware
  );
  const routes = compiledRoutes(inv, plan);
  const target = { ns: 'httpbin', service: 'httpbin', port: 8000 };
  assert.equal(routeRequest(routes, target, { path: '/old-status' })?.rule.name, 'legacy');
  assert.equal(routeRequest(routes, target, { path: '/api/v1/get' })?.rule.name, 'api-0');
  assert.equal(routeRequest(routes, target, { method: 'POST', path: '/api/v1/post' })?.rule.name, null); // falls to the mirror rule
  assert.equal(routeRequest(routes, target, { path: '/api/v1beta/x', query: 'debug=1' })?.rule.name, 'api-1');
  const mirrorRule = routeRequest(routes, target, { path: '/anything' })?.rule;
  assert.deepEqual(backendsOf(routeRequest(routes, target, { path: '/anything' })), ['httpbin-v1:100']);
  assert.deepEqual(mirrorRule?.filters, [
    {
      type: 'RequestMirror',
      mirror: { backend: { namespace: 'httpbin', name: 'httpbin-v2', port: 8000 }, numerator: 100, denominator: 100 },
    },
  ]);
});

test('the converted YAML parses with Ferry manifest parser and translates: routes Accepted, L7 policies at the waypoint only', () => {
  const files = [...BASE, 'bookinfo/scenario-reviews-jason.yaml', 'bookinfo/policies.yaml'];
  const { plan } = planFrom(...files);
  const converted = parseManifestText(renderYaml(plan.objects, ''), 'converted.yaml', {
    defaultNamespace: 'default',
    firstSequence: 1000,
  });
  assert.deepEqual(converted.diagnostics, []);
  const before = parseManifestText(
    files.map((f) => readFileSync(`${FIXTURES}${f}`, 'utf8')).join('\n---\n'),
    'before.yaml',
    {
      defaultNamespace: 'default',
      firstSequence: 0,
    },
  );
  // After: the platform (the converted Namespace replaces the original), the kept L4 policies, the converted objects.
  const replaced = new Set(converted.objects.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`));
  const kept = before.objects.filter((o) => !replaced.has(`${o.kind}/${o.metadata.namespace}/${o.metadata.name}`));
  const after = translateCluster(buildClusterState([...kept, ...converted.objects]), {
    placement: new Map(),
    vips: new Map(),
  });
  assert.deepEqual(
    after.routeStatus.map((s) => [s.key, s.parents.flatMap((p) => p.conditions.map((c) => `${c.type}=${c.status}`))]),
    [
      ['bookinfo/productpage', ['Accepted=True', 'ResolvedRefs=True']],
      ['bookinfo/reviews', ['Accepted=True', 'ResolvedRefs=True']],
    ],
  );
  assert.deepEqual(
    after.waypoints.map((w) => `${w.namespace}/${w.name}`),
    ['bookinfo/waypoint'],
  );
  const l7Policies = after.l7.filter((e) => e.kind === 'AuthorizationPolicy').map((e) => e.name);
  assert.deepEqual(l7Policies.sort(), [
    'AuthorizationPolicy/bookinfo/get-productpage',
    'AuthorizationPolicy/bookinfo/get-reviews',
  ]);
  // Before the conversion, ztunnel would have cut the L7 ALLOW rules down to "matches nothing".
  const beforeT = translateCluster(buildClusterState(before.objects), { placement: new Map(), vips: new Map() });
  const cut = (t: typeof after) =>
    t.diagnostics.filter((d) => d.message.includes('HTTP attributes')).map((d) => d.object);
  assert.deepEqual(cut(beforeT).sort(), [
    'AuthorizationPolicy/bookinfo/get-productpage',
    'AuthorizationPolicy/bookinfo/get-reviews',
  ]);
  assert.deepEqual(cut(after), []);
});
