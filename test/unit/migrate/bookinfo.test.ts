// `ferry migrate` on Istio's Bookinfo routing samples (test/fixtures/migrate/bookinfo/): the exact HTTPRoutes,
// per-subset Services, waypoint and policies produced, and that Ferry's own compiler and route tables send
// each request where Istio's sidecars did.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  backendsOf,
  compiledRoutes,
  findingsOf,
  kindsAndNames,
  objectOf,
  planFrom,
  routeRequest,
} from '../../helpers/migrate-fixtures.ts';

const BASE = ['bookinfo/platform.yaml', 'bookinfo/destination-rules.yaml'];
const MIGRATED = { labels: { 'ferry.dev/migrated-by': 'ferry-migrate' } };
const REVIEWS = { ns: 'bookinfo', service: 'reviews', port: 9080 };

test('reviews-50-v3: a 50/50 split over generated reviews-v1 and reviews-v3 Services, a waypoint and the namespace label', () => {
  const { inv, plan } = planFrom(...BASE, 'bookinfo/scenario-reviews-50-v3.yaml');
  assert.deepEqual(kindsAndNames(plan), [
    'Namespace/bookinfo/bookinfo',
    'Gateway/bookinfo/waypoint',
    'Service/bookinfo/reviews-v1',
    'Service/bookinfo/reviews-v3',
    'HTTPRoute/bookinfo/reviews',
  ]);
  assert.deepEqual(objectOf(plan, 'Namespace', 'bookinfo').manifest, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'bookinfo', labels: { 'istio-injection': 'enabled', 'istio.io/use-waypoint': 'waypoint' } },
  });
  assert.deepEqual(objectOf(plan, 'Gateway', 'waypoint').manifest, {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: {
      name: 'waypoint',
      namespace: 'bookinfo',
      labels: { 'istio.io/waypoint-for': 'service', 'ferry.dev/migrated-by': 'ferry-migrate' },
    },
    spec: { gatewayClassName: 'ferry-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
  });
  assert.deepEqual(objectOf(plan, 'Service', 'reviews-v3').manifest, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'reviews-v3',
      namespace: 'bookinfo',
      ...MIGRATED,
      annotations: { 'ferry.dev/migrated-from': 'DestinationRule/bookinfo/reviews subset v3' },
    },
    spec: {
      selector: { app: 'reviews', version: 'v3' },
      ports: [{ name: 'http', port: 9080, targetPort: 9080, protocol: 'TCP' }],
    },
  });
  assert.deepEqual(objectOf(plan, 'HTTPRoute', 'reviews').manifest, {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: {
      name: 'reviews',
      namespace: 'bookinfo',
      ...MIGRATED,
      annotations: { 'ferry.dev/migrated-from': 'VirtualService/bookinfo/reviews' },
    },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'reviews' }],
      rules: [
        {
          backendRefs: [
            { name: 'reviews-v1', port: 9080, weight: 50 },
            { name: 'reviews-v3', port: 9080, weight: 50 },
          ],
        },
      ],
    },
  });
  assert.deepEqual(findingsOf(plan, 'blocker'), []);
  assert.deepEqual(findingsOf(plan, 'warning'), []);
  const routes = compiledRoutes(inv, plan);
  assert.deepEqual(backendsOf(routeRequest(routes, REVIEWS, { path: '/reviews/0' })), [
    'reviews-v1:50',
    'reviews-v3:50',
  ]);
});

test('reviews-v2-v3 (v1beta1): the split moves to v2/v3 and only those subsets get Services', () => {
  const { inv, plan } = planFrom(...BASE, 'bookinfo/scenario-reviews-v2-v3.yaml');
  assert.deepEqual(
    kindsAndNames(plan).filter((k) => k.startsWith('Service/')),
    ['Service/bookinfo/reviews-v2', 'Service/bookinfo/reviews-v3'],
  );
  const routes = compiledRoutes(inv, plan);
  assert.deepEqual(backendsOf(routeRequest(routes, REVIEWS, { path: '/' })), ['reviews-v2:50', 'reviews-v3:50']);
});

test('reviews-jason: end-user: jason reaches reviews-v2, everyone else reviews-v1, as the ordered VirtualService did', () => {
  const { inv, plan } = planFrom(...BASE, 'bookinfo/scenario-reviews-jason.yaml');
  assert.deepEqual(objectOf(plan, 'HTTPRoute', 'reviews').manifest.spec, {
    parentRefs: [{ group: '', kind: 'Service', name: 'reviews' }],
    rules: [
      {
        matches: [{ headers: [{ name: 'end-user', type: 'Exact', value: 'jason' }] }],
        backendRefs: [{ name: 'reviews-v2', port: 9080 }],
      },
      { backendRefs: [{ name: 'reviews-v1', port: 9080 }] },
    ],
  });
  assert.deepEqual(objectOf(plan, 'HTTPRoute', 'productpage').manifest.spec, {
    parentRefs: [{ group: '', kind: 'Service', name: 'productpage' }],
    rules: [{ backendRefs: [{ name: 'productpage-v1', port: 9080 }] }],
  });
  assert.deepEqual(findingsOf(plan, 'blocker'), []);
  const routes = compiledRoutes(inv, plan);
  const jason = routeRequest(routes, REVIEWS, { path: '/reviews/0', headers: { 'End-User': 'jason' } });
  assert.deepEqual(backendsOf(jason), ['reviews-v2:1']);
  assert.deepEqual(backendsOf(routeRequest(routes, REVIEWS, { path: '/reviews/0', headers: { 'end-user': 'ann' } })), [
    'reviews-v1:1',
  ]);
  assert.deepEqual(backendsOf(routeRequest(routes, REVIEWS, { path: '/reviews/0' })), ['reviews-v1:1']);
  // Istio's implicit default retries are named, once per VirtualService.
  const retryNotes = plan.findings.filter(
    (f) => f.object === 'VirtualService/bookinfo/reviews' && f.message.startsWith('no retries stanza'),
  );
  assert.deepEqual(
    retryNotes.map((f) => f.field),
    ['spec.http[0], spec.http[1]'],
  );
});

test('ratings retries and reviews timeout: retry codes from retryOn, per-try and request timeouts, what did not map is listed', () => {
  const { inv, plan } = planFrom(...BASE, 'bookinfo/scenario-ratings-retries.yaml');
  const ratings = objectOf(plan, 'HTTPRoute', 'ratings');
  assert.deepEqual(ratings.manifest.spec, {
    parentRefs: [{ group: '', kind: 'Service', name: 'ratings' }],
    rules: [
      {
        backendRefs: [{ name: 'ratings-v1', port: 9080 }],
        timeouts: { request: '10s', backendRequest: '2s' },
        retry: { attempts: 3, codes: [409, 502, 503, 504] },
      },
    ],
  });
  assert.deepEqual(ratings.notConverted, [
    'spec.http[0].retries.retryOn: unavailable: a gRPC status (in trailers); an HTTPRoute retries on HTTP statuses only',
  ]);
  assert.deepEqual(objectOf(plan, 'HTTPRoute', 'reviews').manifest.spec, {
    parentRefs: [{ group: '', kind: 'Service', name: 'reviews' }],
    rules: [{ backendRefs: [{ name: 'reviews-v2', port: 9080 }], timeouts: { request: '500ms' } }],
  });
  const [warning] = findingsOf(plan, 'warning');
  assert.equal(warning?.object, 'VirtualService/bookinfo/ratings');
  assert.equal(warning?.field, 'spec.http[0].retries.retryOn');
  // What the waypoint will run: 3 retries on those statuses, 2s per try within 10s.
  const routes = compiledRoutes(inv, plan);
  const rule = routeRequest(routes, { ns: 'bookinfo', service: 'ratings', port: 9080 }, { path: '/ratings/0' })?.rule;
  assert.deepEqual(rule?.retry, { attempts: 3, codes: [409, 502, 503, 504], backoffMs: 0 });
  assert.deepEqual(rule?.timeouts, { requestMs: 10_000, backendRequestMs: 2000 });
});

test('fault injection is listed as not converted; the route itself converts and still routes jason', () => {
  const { inv, plan } = planFrom(...BASE, 'bookinfo/scenario-ratings-fault.yaml');
  const ratings = objectOf(plan, 'HTTPRoute', 'ratings');
  assert.deepEqual(ratings.notConverted, [
    'spec.http[0].fault: fault injection has no HTTPRoute equivalent: not converted',
  ]);
  assert.deepEqual(
    findingsOf(plan, 'warning').map((f) => [f.object, f.field]),
    [['VirtualService/bookinfo/ratings', 'spec.http[0].fault']],
  );
  assert.deepEqual(findingsOf(plan, 'blocker'), []);
  const routes = compiledRoutes(inv, plan);
  const target = { ns: 'bookinfo', service: 'ratings', port: 9080 };
  assert.equal(routeRequest(routes, target, { path: '/', headers: { 'end-user': 'jason' } })?.rule.ruleIndex, 0);
  assert.equal(routeRequest(routes, target, { path: '/' })?.rule.ruleIndex, 1);
});

test('the EnvoyFilter is a blocker, the Sidecar a warning; nothing is generated for either', () => {
  const { plan } = planFrom(...BASE, 'bookinfo/blockers.yaml');
  assert.deepEqual(
    findingsOf(plan, 'blocker').map((f) => [f.category, f.object]),
    [['envoy-filter', 'EnvoyFilter/bookinfo/reviews-lua']],
  );
  assert.deepEqual(
    findingsOf(plan, 'warning').map((f) => [f.category, f.object, f.field]),
    [['sidecar', 'Sidecar/bookinfo/productpage', 'spec.egress']],
  );
  assert.deepEqual(plan.objects, []);
});
