import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseGatewayDuration } from '../../../gateway-api/duration.ts';
import { applyHeaderModifier, mirrorSampled, redirectLocation, rewritePath } from '../../../gateway-api/filters.ts';
import type { RouteBackend, RouteMatch } from '../../../gateway-api/types.ts';
import { BackendSplitter, pickBackend } from '../../../gateway-api/weights.ts';
import { backend, compile, echoParent } from '../../helpers/route-fixtures.ts';

const cond = (out: ReturnType<typeof compile>, type: string) =>
  out.status.parents[0]?.conditions.find((c) => c.type === type);

describe('GEP-2257 durations', () => {
  const table: [string, number | null][] = [
    ['10s', 10_000],
    ['500ms', 500],
    ['1h30m', 5_400_000],
    ['0s', 0],
    ['1m1s1ms', 61_001],
    ['', null],
    ['1.5s', null],
    ['-1s', null],
    ['10', null],
    ['123456s', null],
    ['1s1s1s1s1s', null],
  ];
  for (const [text, ms] of table) {
    it(`${JSON.stringify(text)} → ${ms}`, () => {
      const r = parseGatewayDuration(text);
      assert.equal(r.ok ? r.ms : null, ms);
    });
  }
});

describe('compileHttpRoute: parents and status', () => {
  it('a valid route is Accepted with resolved refs', () => {
    const out = compile({
      parentRefs: [echoParent],
      rules: [{ backendRefs: [backend('echo-v1', 70), backend('echo-v2', 30)] }],
    });
    assert.ok(out.route);
    assert.deepEqual(out.route.parents, [{ kind: 'Service', namespace: 'default', name: 'echo', port: 80 }]);
    assert.equal(cond(out, 'Accepted')?.status, 'True');
    assert.equal(cond(out, 'ResolvedRefs')?.status, 'True');
    assert.equal(out.route.rules[0]?.matches[0]?.path.type, 'PathPrefix');
  });
  const parentCases: [string, unknown, string][] = [
    ['missing Service', { group: '', kind: 'Service', name: 'nope' }, 'NoMatchingParent'],
    ['port not on the Service', { group: '', kind: 'Service', name: 'echo', port: 81 }, 'NoMatchingParent'],
    ['unknown sectionName', { group: '', kind: 'Service', name: 'echo', sectionName: 'grpc' }, 'NoMatchingParent'],
  ];
  for (const [what, parentRef, reason] of parentCases) {
    it(`${what} → Accepted=False ${reason}`, () => {
      const out = compile({ parentRefs: [parentRef], rules: [{ backendRefs: [backend('echo-v1')] }] });
      assert.equal(out.route, null);
      assert.equal(cond(out, 'Accepted')?.status, 'False');
      assert.equal(cond(out, 'Accepted')?.reason, reason);
      assert.ok(out.problems.some((p) => p.code === 'FERRY_ROUTE_NO_PARENT'));
    });
  }
  it('sectionName names a Service port; the waypoint Gateway is a parent; other Gateways are not ours', () => {
    const out = compile({
      parentRefs: [
        { group: '', kind: 'Service', name: 'echo', sectionName: 'http' },
        { name: 'waypoint' },
        { name: 'ingress' },
      ],
      rules: [{ backendRefs: [backend('echo-v1')] }],
    });
    assert.deepEqual(out.route?.parents, [
      { kind: 'Service', namespace: 'default', name: 'echo', port: 80 },
      { kind: 'Gateway', namespace: 'default', name: 'waypoint' },
    ]);
    assert.equal(out.status.parents.length, 2);
  });
  it('unresolved backends keep their share (500) and set ResolvedRefs=False with the reason', () => {
    const cases: [unknown, string][] = [
      [{ name: 'missing', port: 80 }, 'BackendNotFound'],
      [{ name: 'echo-v1', port: 8080 }, 'BackendNotFound'],
      [{ group: 'example.com', kind: 'Bucket', name: 'x', port: 80 }, 'InvalidKind'],
      [{ name: 'echo', port: 9000 }, 'UnsupportedProtocol'],
    ];
    for (const [ref, reason] of cases) {
      const out = compile({ parentRefs: [echoParent], rules: [{ backendRefs: [backend('echo-v1'), ref] }] });
      assert.ok(out.route, reason);
      assert.equal(out.route.rules[0]?.backends[1]?.service, null);
      assert.equal(out.route.rules[0]?.backends[1]?.problem, reason);
      assert.equal(cond(out, 'ResolvedRefs')?.reason, reason);
      assert.equal(cond(out, 'Accepted')?.status, 'True');
    }
  });
  it('cross-namespace backends: free under Service parents, need a ReferenceGrant under the waypoint Gateway', () => {
    const ref = { name: 'remote', namespace: 'other', port: 80 };
    const svc = compile({ parentRefs: [echoParent], rules: [{ backendRefs: [ref] }] });
    assert.equal(svc.route?.rules[0]?.backends[0]?.service?.name, 'remote');
    const gw = compile({ parentRefs: [{ name: 'waypoint' }], rules: [{ backendRefs: [ref] }] });
    assert.equal(gw.route?.rules[0]?.backends[0]?.problem, 'RefNotPermitted');
  });
  it('an invalid rule is dropped (PartiallyInvalid), the others stay', () => {
    const out = compile({
      parentRefs: [echoParent],
      rules: [
        { matches: [{ path: { type: 'RegularExpression', value: '(' } }], backendRefs: [backend('echo-v1')] },
        { backendRefs: [backend('echo-v2')] },
      ],
    });
    assert.equal(out.route?.rules.length, 1);
    assert.equal(out.route?.rules[0]?.ruleIndex, 1);
    assert.equal(cond(out, 'PartiallyInvalid')?.status, 'True');
    assert.match(cond(out, 'PartiallyInvalid')?.message ?? '', /^Dropped Rule/);
    assert.ok(out.problems.some((p) => p.field === 'spec.rules[0].matches[0].path.value'));
  });
  const invalidRules: [string, unknown][] = [
    ['bad regex', { matches: [{ path: { type: 'RegularExpression', value: '[a-' } }] }],
    ['backreference', { matches: [{ headers: [{ name: 'x', type: 'RegularExpression', value: '(a)\\1' }] }] }],
    ['lookahead', { matches: [{ path: { type: 'RegularExpression', value: '/(?=a)' } }] }],
    ['unknown filter', { filters: [{ type: 'ExtensionRef', extensionRef: { name: 'x' } }] }],
    ['ExternalAuth', { filters: [{ type: 'ExternalAuth' }] }],
    ['unknown path type', { matches: [{ path: { type: 'Glob', value: '/x' } }] }],
    ['path with //', { matches: [{ path: { type: 'Exact', value: '/a//b' } }] }],
    ['path not starting with /', { matches: [{ path: { type: 'PathPrefix', value: 'a' } }] }],
    ['bad method', { matches: [{ method: 'FETCH' }] }],
    [
      'redirect with backends',
      { filters: [{ type: 'RequestRedirect', requestRedirect: {} }], backendRefs: [backend('echo-v1')] },
    ],
    [
      'redirect + rewrite',
      {
        filters: [
          { type: 'RequestRedirect', requestRedirect: {} },
          { type: 'URLRewrite', urlRewrite: {} },
        ],
      },
    ],
    [
      'ReplacePrefixMatch with Exact',
      {
        matches: [{ path: { type: 'Exact', value: '/a' } }],
        filters: [
          { type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/b' } } },
        ],
      },
    ],
    [
      'repeated header modifier',
      {
        filters: [
          { type: 'RequestHeaderModifier', requestHeaderModifier: {} },
          { type: 'RequestHeaderModifier', requestHeaderModifier: {} },
        ],
      },
    ],
    [
      'mirror percent and fraction',
      {
        filters: [
          {
            type: 'RequestMirror',
            requestMirror: { backendRef: { name: 'echo-v1', port: 80 }, percent: 5, fraction: { numerator: 1 } },
          },
        ],
      },
    ],
    ['weight out of range', { backendRefs: [{ name: 'echo-v1', port: 80, weight: 2_000_000 }] }],
    ['backend without port', { backendRefs: [{ name: 'echo-v1' }] }],
    ['backendRequest > request', { timeouts: { request: '1s', backendRequest: '2s' } }],
    ['bad duration', { timeouts: { request: '1.5s' } }],
    ['retry code out of range', { retry: { codes: [200] } }],
    ['retry duplicate code', { retry: { codes: [503, 503] } }],
    ['retry attempts 0', { retry: { attempts: 0 } }],
    ['redirect status 305', { filters: [{ type: 'RequestRedirect', requestRedirect: { statusCode: 305 } }] }],
    [
      'header value with CRLF',
      {
        filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x', value: 'a\r\nb' }] } }],
      },
    ],
    ['rule is a number', 7],
  ];
  for (const [what, rule] of invalidRules) {
    it(`invalid rule: ${what} → Accepted=False, nothing attached`, () => {
      const out = compile({ parentRefs: [echoParent], rules: [rule] });
      assert.equal(out.route, null);
      assert.equal(cond(out, 'Accepted')?.status, 'False');
      assert.ok(
        out.problems.length > 0 && out.problems.every((p) => p.field.startsWith('spec.') && p.message.length > 0),
      );
    });
  }
  it('hostile shapes never throw', () => {
    for (const spec of [
      null,
      7,
      'x',
      [],
      { rules: {} },
      { parentRefs: 'x' },
      { rules: Array(1000).fill({}) },
      JSON.parse('{"__proto__": {"rules": 1}}'),
    ]) {
      assert.doesNotThrow(() => compile(spec));
    }
  });
  it('timeouts: 0s disables; retry defaults to 2 attempts', () => {
    const out = compile({
      parentRefs: [echoParent],
      rules: [
        {
          timeouts: { request: '0s', backendRequest: '200ms' },
          retry: { codes: [503] },
          backendRefs: [backend('echo-v1')],
        },
      ],
    });
    assert.deepEqual(out.route?.rules[0]?.timeouts, { requestMs: null, backendRequestMs: 200 });
    assert.deepEqual(out.route?.rules[0]?.retry, { attempts: 2, codes: [503], backoffMs: 0 });
  });
});

describe('filters', () => {
  const prefix = (value: string): RouteMatch => ({
    path: { type: 'PathPrefix', value: value.length > 1 ? value.replace(/\/$/, '') : value },
    headers: [],
    queryParams: [],
    method: null,
  });
  const table: [string, string, string, string][] = [
    ['/foo/bar', '/foo', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo', '/xyz/', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz/', '/xyz/bar'],
    ['/foo', '/foo', '/xyz', '/xyz'],
    ['/foo/', '/foo', '/xyz', '/xyz/'],
    ['/foo/bar', '/foo', '', '/bar'],
    ['/foo/', '/foo', '', '/'],
    ['/foo', '/foo', '', '/'],
    ['/foo/', '/foo', '/', '/'],
    ['/foo', '/foo', '/', '/'],
  ];
  for (const [path, match, replace, want] of table) {
    it(`ReplacePrefixMatch ${path} (prefix ${match}, replace ${JSON.stringify(replace)}) → ${want}`, () => {
      assert.equal(rewritePath(path, { type: 'ReplacePrefixMatch', value: replace }, prefix(match)), want);
    });
  }
  it('header modifier: set overwrites, add appends comma-joined, remove deletes', () => {
    const out = applyHeaderModifier(
      new Map([
        ['a', ['1']],
        ['b', ['x', 'y']],
        ['c', ['z']],
      ]),
      {
        set: [{ name: 'a', value: 'set' }],
        add: [
          { name: 'b', value: 'added' },
          { name: 'd', value: 'new' },
        ],
        remove: ['c'],
      },
    );
    assert.deepEqual(
      [...out],
      [
        ['a', ['set']],
        ['b', ['x,y,added']],
        ['d', ['new']],
      ],
    );
  });
  const redirects: [string, Parameters<typeof redirectLocation>[0], string][] = [
    [
      'hostname only',
      { scheme: null, hostname: 'example.org', path: null, port: null, statusCode: 302 },
      'http://example.org:8080/a/b?q=1',
    ],
    [
      'scheme https drops the port',
      { scheme: 'https', hostname: null, path: null, port: null, statusCode: 301 },
      'https://echo/a/b?q=1',
    ],
    [
      'explicit port 8443',
      { scheme: 'https', hostname: null, path: null, port: 8443, statusCode: 302 },
      'https://echo:8443/a/b?q=1',
    ],
    [
      'port 80 omitted for http',
      { scheme: null, hostname: null, path: null, port: 80, statusCode: 302 },
      'http://echo/a/b?q=1',
    ],
    [
      'full path',
      { scheme: null, hostname: null, path: { type: 'ReplaceFullPath', value: '/new' }, port: null, statusCode: 302 },
      'http://echo:8080/new?q=1',
    ],
    [
      'prefix path',
      { scheme: null, hostname: null, path: { type: 'ReplacePrefixMatch', value: '/z' }, port: null, statusCode: 302 },
      'http://echo:8080/z/b?q=1',
    ],
  ];
  for (const [what, r, want] of redirects) {
    it(`redirect Location: ${what}`, () => {
      assert.equal(
        redirectLocation(
          r,
          { scheme: 'http', host: 'echo:8080', listenerPort: 8080, path: '/a/b', query: 'q=1' },
          prefix('/a'),
        ),
        want,
      );
    });
  }
  it('mirror sampling follows the fraction', () => {
    const m = { backend: null, numerator: 1, denominator: 4 };
    assert.equal(mirrorSampled(m, 0.2), true);
    assert.equal(mirrorSampled(m, 0.25), false);
    assert.equal(mirrorSampled({ ...m, numerator: 0 }, 0), false);
  });
  it('weighted pick: proportional, weight 0 never, all-zero → null', () => {
    const bs: RouteBackend[] = [70, 0, 30].map((weight, i) => ({
      service: { namespace: 'd', name: `v${i}`, port: 80 },
      problem: null,
      weight,
      filters: [],
    }));
    const counts = [0, 0, 0];
    for (let i = 0; i < 10_000; i++) counts[Number(pickBackend(bs, i / 10_000)?.service?.name.slice(1))]! += 1;
    assert.deepEqual(counts, [7000, 0, 3000]);
    assert.equal(
      pickBackend(
        bs.map((b) => ({ ...b, weight: 0 })),
        0.5,
      ),
      null,
    );
    assert.equal(pickBackend([], 0.5), null);
  });
  it('BackendSplitter: 70/30 over 500 requests lands within 1 point for any start, also on every 2nd/3rd request', () => {
    const bs: RouteBackend[] = [70, 0, 30].map((weight, i) => ({
      service: { namespace: 'd', name: `v${i}`, port: 80 },
      problem: null,
      weight,
      filters: [],
    }));
    for (let s = 0; s < 200; s++) {
      const start = s / 200;
      const splitter = new BackendSplitter(() => start);
      const picks = Array.from({ length: 500 }, () => splitter.pick(bs)?.service?.name);
      const share = (xs: (string | undefined)[]) => xs.filter((n) => n === 'v0').length / xs.length;
      assert.ok(Math.abs(share(picks) - 0.7) <= 0.01, `start ${start}: ${share(picks)}`);
      assert.ok(!picks.includes('v1'), 'weight 0 never chosen');
      for (const stride of [2, 3]) {
        const sub = picks.filter((_, i) => i % stride === 0);
        assert.ok(Math.abs(share(sub) - 0.7) <= 0.02, `start ${start}, every ${stride}: ${share(sub)}`);
      }
    }
  });
  it('BackendSplitter: each backend list has its own sequence; a bad start value is treated as 0', () => {
    const mk = (w: number[]): RouteBackend[] =>
      w.map((weight, i) => ({
        service: { namespace: 'd', name: `v${i}`, port: 80 },
        problem: null,
        weight,
        filters: [],
      }));
    const a = mk([50, 50]);
    const b = mk([50, 50]);
    const splitter = new BackendSplitter(() => Number.NaN);
    for (let i = 0; i < 5; i++) splitter.pick(b);
    // a starts at 0 (NaN → 0), then 0.618…: untouched by the picks made for b.
    assert.deepEqual(
      [splitter.pick(a), splitter.pick(a)].map((x) => x?.service?.name),
      ['v0', 'v1'],
    );
    assert.equal(splitter.pick(mk([0, 0])), null);
  });
});
