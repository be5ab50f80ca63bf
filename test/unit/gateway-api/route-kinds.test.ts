// GRPCRoute and TCPRoute compilation, GRPCRoute precedence, route-kind conflicts on one Service port and
// consumer routes (issue 13): tables of cases against the pure compiler and route tables.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileOne, compileRoutes, type RouteInput } from '../../../gateway-api/compile-routes.ts';
import { selectRoute } from '../../../gateway-api/match.ts';
import { buildRouteTables } from '../../../gateway-api/route-table.ts';
import type { RouteKind, RouteStatus } from '../../../gateway-api/types.ts';
import { backend, ctx, echoParent, req } from '../../helpers/route-fixtures.ts';

const WAYPOINT = { namespace: 'default', name: 'waypoint' };

function input(
  kind: RouteKind,
  spec: unknown,
  opts: { name?: string; namespace?: string; ts?: number } = {},
): RouteInput {
  return {
    kind,
    input: {
      namespace: opts.namespace ?? 'default',
      name: opts.name ?? 'r',
      creationTimestampMs: opts.ts ?? null,
      sequence: 0,
      spec,
    },
  };
}

const grpc = (rules: unknown[], opts: { name?: string; namespace?: string; ts?: number; parent?: unknown } = {}) =>
  input('GRPCRoute', { parentRefs: [opts.parent ?? echoParent], rules }, opts);

function accepted(s: RouteStatus | undefined): { status: string; reason: string; message: string } | undefined {
  return s?.parents[0]?.conditions.find((c) => c.type === 'Accepted');
}

const call = (service: string, method: string, headers: Record<string, string> = {}) =>
  req(`/${service}/${method}`, { method: 'POST', headers: { 'content-type': 'application/grpc', ...headers } });

function grpcWinner(inputs: RouteInput[], r: ReturnType<typeof req>, source?: string): string | null {
  const out = compileRoutes(inputs, ctx);
  const t = buildRouteTables(out.routes, WAYPOINT).forServicePort('default', 'echo', 80, source);
  if (t === null) return 'no-table';
  return selectRoute(t, r)?.rule.backends[0]?.service?.name ?? null;
}

describe('GRPCRoute method matches compile to request paths', () => {
  const cases: [string, unknown, string, string, boolean][] = [
    ['Exact service and method', { service: 'pkg.Echo', method: 'Say' }, 'pkg.Echo', 'Say', true],
    ['Exact: other method', { service: 'pkg.Echo', method: 'Say' }, 'pkg.Echo', 'Shout', false],
    ['Exact service only: any method', { service: 'pkg.Echo' }, 'pkg.Echo', 'Anything', true],
    ['Exact service only: not a longer service name', { service: 'pkg.Echo' }, 'pkg.EchoV2', 'Say', false],
    ['Exact method only: any service', { method: 'Say' }, 'other.Svc', 'Say', true],
    ['Exact method only: other method', { method: 'Say' }, 'other.Svc', 'Sayx', false],
    ['RegularExpression service', { type: 'RegularExpression', service: 'pkg\\.Echo(V2)?' }, 'pkg.EchoV2', 'X', true],
    ['RegularExpression is a full match', { type: 'RegularExpression', method: 'Sa' }, 'pkg.Echo', 'Say', false],
    ['RegularExpression both', { type: 'RegularExpression', service: '.*Echo', method: 'S.*' }, 'a.Echo', 'Say', true],
  ];
  for (const [what, method, service, m, want] of cases) {
    it(`${what} → ${want ? 'matches' : 'no match'}`, () => {
      const got = grpcWinner([grpc([{ matches: [{ method }], backendRefs: [backend('echo-v1')] }])], call(service, m));
      assert.equal(got, want ? 'echo-v1' : null);
    });
  }
  it('header matches AND with the method match', () => {
    const routes = [
      grpc([
        {
          matches: [{ method: { service: 'pkg.Echo' }, headers: [{ name: 'X-Tenant', value: 'a' }] }],
          backendRefs: [backend('echo-v1')],
        },
      ]),
    ];
    assert.equal(grpcWinner(routes, call('pkg.Echo', 'Say', { 'x-tenant': 'a' })), 'echo-v1');
    assert.equal(grpcWinner(routes, call('pkg.Echo', 'Say', { 'x-tenant': 'b' })), null);
  });
});

describe('GRPCRoute validation drops the rule with a reason', () => {
  const cases: [string, unknown, string][] = [
    ['neither service nor method', { matches: [{ method: {} }] }, 'one or both of service and method'],
    ['bad Exact service', { matches: [{ method: { service: 'pkg/Echo' } }] }, 'not a gRPC service name'],
    ['bad Exact method', { matches: [{ method: { method: 'Say.It' } }] }, 'not a gRPC method name'],
    ['unknown match type', { matches: [{ method: { type: 'Prefix', service: 'a' } }] }, 'Exact or RegularExpression'],
    ['non-RE2 regex', { matches: [{ method: { type: 'RegularExpression', method: '(a)\\1' } }] }, 'not RE2'],
    ['HTTPRoute-only filter', { filters: [{ type: 'URLRewrite', urlRewrite: {} }] }, 'not valid in a GRPCRoute'],
    [
      'HTTPRoute-only backend filter',
      { backendRefs: [{ ...backend('echo-v1'), filters: [{ type: 'CORS', cors: {} }] }] },
      'not valid in a GRPCRoute',
    ],
    ['ExtensionRef', { filters: [{ type: 'ExtensionRef', extensionRef: {} }] }, 'not supported'],
    ['timeouts (an HTTPRoute field)', { timeouts: { request: '1s' } }, 'unknown field in a GRPCRoute rule'],
    ['path match (an HTTPRoute field)', { matches: [{ path: { value: '/x' } }] }, 'unknown field in a GRPCRoute match'],
  ];
  for (const [what, rule, message] of cases) {
    it(`${what} → Accepted=False, "${message}"`, () => {
      const out = compileOne(
        'GRPCRoute',
        grpc([{ backendRefs: [backend('echo-v1')], ...(rule as object) }]).input,
        ctx,
      );
      assert.equal(out.route, null);
      assert.equal(accepted(out.status)?.status, 'False');
      assert.match(accepted(out.status)?.message ?? '', new RegExp(message.replace(/[.()]/g, '\\$&')));
    });
  }
  it('a valid rule next to an invalid one: PartiallyInvalid, the valid one works', () => {
    const out = compileOne(
      'GRPCRoute',
      grpc([{ backendRefs: [backend('echo-v1')] }, { matches: [{ method: {} }], backendRefs: [backend('echo-v2')] }])
        .input,
      ctx,
    );
    assert.equal(out.route?.rules.length, 1);
    assert.equal(out.status.parents[0]?.conditions.find((c) => c.type === 'PartiallyInvalid')?.status, 'True');
  });
  it('an unresolved backend keeps the rule (its share answers UNAVAILABLE) with ResolvedRefs=False', () => {
    const out = compileOne('GRPCRoute', grpc([{ backendRefs: [backend('echo-v1'), backend('missing')] }]).input, ctx);
    assert.equal(out.route?.rules[0]?.backends[1]?.service, null);
    const rr = out.status.parents[0]?.conditions.find((c) => c.type === 'ResolvedRefs');
    assert.equal(rr?.reason, 'BackendNotFound');
  });
  it('ReferenceGrants are asked about GRPCRoutes (route bound to the waypoint Gateway)', () => {
    const asked: string[] = [];
    const spy = {
      ...ctx,
      referenceGrantAllows: (_f: string, _t: string, _n: string, k?: RouteKind) => {
        asked.push(String(k));
        return false;
      },
    };
    const out = compileOne(
      'GRPCRoute',
      {
        namespace: 'default',
        name: 'g',
        creationTimestampMs: null,
        sequence: 0,
        spec: {
          parentRefs: [{ name: 'waypoint' }],
          rules: [{ backendRefs: [{ name: 'remote', namespace: 'other', port: 80 }] }],
        },
      },
      spy,
    );
    assert.deepEqual(asked, ['GRPCRoute']);
    assert.equal(out.status.parents[0]?.conditions.find((c) => c.type === 'ResolvedRefs')?.reason, 'RefNotPermitted');
  });
});

describe('GRPCRoute precedence (service characters, method characters, headers; then oldest route)', () => {
  it('a longer service beats a method-only match, a longer method beats a service-only match', () => {
    const routes = [
      grpc([
        { matches: [{ method: { method: 'Say' } }], backendRefs: [backend('echo-v1')] },
        { matches: [{ method: { service: 'pkg.Echo' } }], backendRefs: [backend('echo-v2')] },
        { matches: [{ method: { service: 'pkg.Echo', method: 'Say' } }], backendRefs: [backend('echo-v3')] },
      ]),
    ];
    assert.equal(grpcWinner(routes, call('pkg.Echo', 'Say')), 'echo-v3');
    assert.equal(grpcWinner(routes, call('pkg.Echo', 'Other')), 'echo-v2');
    assert.equal(grpcWinner(routes, call('x.Y', 'Say')), 'echo-v1');
  });
  it('equal method matches: more headers win, then the older route', () => {
    const a = grpc([{ matches: [{ method: { service: 'pkg.Echo' } }], backendRefs: [backend('echo-v1')] }], {
      name: 'a',
      ts: 2000,
    });
    const b = grpc(
      [
        {
          matches: [{ method: { service: 'pkg.Echo' }, headers: [{ name: 'x', value: '1' }] }],
          backendRefs: [backend('echo-v2')],
        },
      ],
      { name: 'b', ts: 3000 },
    );
    const c = grpc([{ matches: [{ method: { service: 'pkg.Echo' } }], backendRefs: [backend('echo-v3')] }], {
      name: 'c',
      ts: 1000,
    });
    assert.equal(grpcWinner([a, b, c], call('pkg.Echo', 'Say', { x: '1' })), 'echo-v2');
    assert.equal(grpcWinner([a, b, c], call('pkg.Echo', 'Say')), 'echo-v3');
  });
});

describe('route kinds on one Service port: GRPCRoute > HTTPRoute > TCPRoute', () => {
  const http = (opts: { name?: string; ts?: number; parent?: unknown } = {}) =>
    input(
      'HTTPRoute',
      { parentRefs: [opts.parent ?? echoParent], rules: [{ backendRefs: [backend('echo-v2')] }] },
      opts,
    );
  const tcp = (name: string, ts: number, to = 'echo-v3', parent: unknown = echoParent) =>
    input('TCPRoute', { parentRefs: [parent], rules: [{ backendRefs: [backend(to)] }] }, { name, ts });
  it('GRPCRoute and HTTPRoute on the same port: the GRPCRoute applies, the HTTPRoute is Conflicted', () => {
    const out = compileRoutes([grpc([{ backendRefs: [backend('echo-v1')] }], { name: 'g' }), http({ name: 'h' })], ctx);
    assert.equal(accepted(out.statuses[0])?.status, 'True');
    assert.equal(accepted(out.statuses[1])?.status, 'False');
    assert.equal(accepted(out.statuses[1])?.reason, 'Conflicted');
    assert.match(accepted(out.statuses[1])?.message ?? '', /GRPCRoute default\/g/);
    const t = buildRouteTables(out.routes, WAYPOINT).forServicePort('default', 'echo', 80);
    assert.equal(t?.kind, 'GRPCRoute');
  });
  it('an HTTPRoute on every port loses only the GRPCRoute port and stays Accepted', () => {
    const out = compileRoutes(
      [
        grpc([{ backendRefs: [backend('echo-v1')] }], { name: 'g' }),
        http({ name: 'h', parent: { group: '', kind: 'Service', name: 'echo' } }),
      ],
      ctx,
    );
    assert.equal(accepted(out.statuses[1])?.status, 'True');
    assert.match(accepted(out.statuses[1])?.message ?? '', /not in effect on port 80/);
    const tables = buildRouteTables(out.routes, WAYPOINT);
    assert.equal(tables.forServicePort('default', 'echo', 9000)?.kind, 'HTTPRoute');
  });
  it('HTTPRoute beats TCPRoute; of two TCPRoutes the oldest applies', () => {
    const out = compileRoutes([http({ name: 'h' }), tcp('t', 1)], ctx);
    assert.equal(accepted(out.statuses[1])?.reason, 'Conflicted');
    const two = compileRoutes([tcp('new', 2000, 'echo-v1'), tcp('old', 1000, 'echo-v2')], ctx);
    assert.equal(accepted(two.statuses[0])?.reason, 'Conflicted');
    assert.equal(accepted(two.statuses[1])?.status, 'True');
    const t = buildRouteTables(two.routes, WAYPOINT).tcpForServicePort('default', 'echo', 80);
    assert.equal(t?.route, 'default/old');
    assert.equal(t?.rule.backends[0]?.service?.name, 'echo-v2');
    assert.equal(buildRouteTables(two.routes, WAYPOINT).forServicePort('default', 'echo', 80), null);
  });
  it('TCPRoute: weights kept, backends with appProtocol tcp allowed, a second rule dropped with a reason', () => {
    const out = compileOne(
      'TCPRoute',
      {
        namespace: 'default',
        name: 't',
        creationTimestampMs: null,
        sequence: 0,
        spec: {
          parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 9000 }],
          rules: [
            {
              backendRefs: [
                { name: 'echo', port: 9000, weight: 70 },
                { name: 'echo-v1', port: 80, weight: 30 },
              ],
            },
            { backendRefs: [backend('echo-v2')] },
          ],
        },
      },
      ctx,
    );
    assert.deepEqual(
      out.route?.rules[0]?.backends.map((b) => [b.service?.name, b.weight]),
      [
        ['echo', 70],
        ['echo-v1', 30],
      ],
    );
    const partial = out.status.parents[0]?.conditions.find((c) => c.type === 'PartiallyInvalid');
    assert.match(partial?.message ?? '', /only its first rule/);
  });
  it('TCPRoute refuses filters and matches', () => {
    const out = compileOne(
      'TCPRoute',
      input('TCPRoute', { parentRefs: [echoParent], rules: [{ matches: [{}], backendRefs: [backend('echo-v1')] }] })
        .input,
      ctx,
    );
    assert.equal(accepted(out.status)?.status, 'False');
  });
});

describe('consumer routes (GEP-1294): only the consumer namespace, ahead of producer routes', () => {
  const remoteParent = { group: '', kind: 'Service', name: 'remote', namespace: 'other', port: 80 };
  const producer = input(
    'HTTPRoute',
    {
      parentRefs: [{ group: '', kind: 'Service', name: 'remote', port: 80 }],
      rules: [{ backendRefs: [{ name: 'remote', port: 80 }] }],
    },
    { name: 'p', namespace: 'other' },
  );
  const consumer = input(
    'HTTPRoute',
    { parentRefs: [remoteParent], rules: [{ backendRefs: [backend('echo-v1')] }] },
    { name: 'c', namespace: 'default' },
  );
  const out = compileRoutes([producer, consumer], ctx);
  const tables = buildRouteTables(out.routes, WAYPOINT);
  const pick = (source: string | undefined) =>
    (tables.forServicePort('other', 'remote', 80, source) &&
      selectRoute(tables.forServicePort('other', 'remote', 80, source)!, req('/'))?.rule.route) ??
    null;
  it('is Accepted, and its status says whose requests it applies to', () => {
    assert.equal(accepted(out.statuses[1])?.status, 'True');
    assert.match(
      accepted(out.statuses[1])?.message ?? '',
      /consumer route: applies to requests from namespace default only/,
    );
  });
  const cases: [string, string | undefined, string][] = [
    ['from the consumer namespace → the consumer route', 'default', 'default/c'],
    ['from the producer namespace → the producer route', 'other', 'other/p'],
    ['from a third namespace → the producer route', 'third', 'other/p'],
    ['source unknown → the producer route', undefined, 'other/p'],
  ];
  for (const [what, source, want] of cases) it(what, () => assert.equal(pick(source), want));
  it('a consumer route does not conflict with producer routes of another kind', () => {
    const g = input(
      'GRPCRoute',
      { parentRefs: [remoteParent], rules: [{ backendRefs: [backend('echo-v1')] }] },
      { name: 'cg', namespace: 'default' },
    );
    const both = compileRoutes([producer, g], ctx);
    assert.equal(accepted(both.statuses[0])?.status, 'True');
    assert.equal(accepted(both.statuses[1])?.status, 'True');
    const t = buildRouteTables(both.routes, WAYPOINT);
    assert.equal(t.forServicePort('other', 'remote', 80, 'default')?.kind, 'GRPCRoute');
    assert.equal(t.forServicePort('other', 'remote', 80, 'third')?.kind, 'HTTPRoute');
  });
  it('without a consumer route, requests from its namespace get the producer route', () => {
    const only = buildRouteTables(compileRoutes([producer], ctx).routes, WAYPOINT);
    assert.equal(only.forServicePort('other', 'remote', 80, 'default')?.entries[0]?.rule.route, 'other/p');
  });
});
