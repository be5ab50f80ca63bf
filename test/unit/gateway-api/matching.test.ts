import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pathPrefixMatches, selectRoute } from '../../../gateway-api/match.ts';
import { backend, req, route, table } from '../../helpers/route-fixtures.ts';

/** The backend the winning rule sends to, or null for 404. */
function winner(t: ReturnType<typeof table>, r: ReturnType<typeof req>): string | null {
  return selectRoute(t, r)?.rule.backends[0]?.service?.name ?? null;
}

describe('PathPrefix is segment-aware and case-sensitive', () => {
  const cases: [string, string, boolean][] = [
    ['/abc', '/abc', true],
    ['/abc', '/abc/', true],
    ['/abc', '/abc/def', true],
    ['/abc', '/abcd', false],
    ['/abc', '/Abc', false],
    ['/', '/anything', true],
    ['/v2', '/v2example', false],
  ];
  for (const [prefix, path, want] of cases) {
    it(`${prefix} vs ${path} → ${want}`, () => assert.equal(pathPrefixMatches(prefix, path), want));
  }
  it('a trailing slash in the prefix does not change what matches', () => {
    const t = table([
      route({
        rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/abc/' } }], backendRefs: [backend('echo-v1')] }],
      }),
    ]);
    assert.equal(winner(t, req('/abc')), 'echo-v1');
    assert.equal(winner(t, req('/abcd')), null);
  });
});

describe('precedence across rules and routes (HTTPRoute conformance examples)', () => {
  it('HTTPRouteMatchingAcrossRoutes: equal paths, more headers wins across routes', () => {
    const a = route(
      {
        rules: [
          {
            matches: [{ path: { type: 'PathPrefix', value: '/' } }, { headers: [{ name: 'version', value: 'one' }] }],
            backendRefs: [backend('echo-v1')],
          },
        ],
      },
      'a',
      0,
    );
    const b = route(
      {
        rules: [
          {
            matches: [{ path: { type: 'PathPrefix', value: '/v2' } }, { headers: [{ name: 'version', value: 'two' }] }],
            backendRefs: [backend('echo-v2')],
          },
        ],
      },
      'b',
      1,
    );
    const t = table([a, b]);
    assert.equal(winner(t, req('/', { headers: { version: 'two' } })), 'echo-v2');
    assert.equal(winner(t, req('/v2/x')), 'echo-v2');
    assert.equal(winner(t, req('/x')), 'echo-v1');
  });
  it('HTTPRouteHeaderMatching: same header count → first rule in list', () => {
    const r = route({
      rules: [
        { matches: [{ headers: [{ name: 'version', value: 'one' }] }], backendRefs: [backend('echo-v1')] },
        { matches: [{ headers: [{ name: 'version', value: 'two' }] }], backendRefs: [backend('echo-v2')] },
        { matches: [{ headers: [{ name: 'color', value: 'blue' }] }], backendRefs: [backend('echo-v3')] },
      ],
    });
    assert.equal(winner(table([r]), req('/', { headers: { version: 'two', color: 'blue' } })), 'echo-v2');
    assert.equal(winner(table([r]), req('/', { headers: { Color: 'blue' } })), 'echo-v3');
    assert.equal(winner(table([r]), req('/', { headers: { color: 'BLUE' } })), null);
  });
  it('HTTPRouteMethodMatching: method beats headers, path beats method', () => {
    const r = route({
      rules: [
        { matches: [{ method: 'PATCH' }], backendRefs: [backend('echo-v2')] },
        { matches: [{ headers: [{ name: 'version', value: 'four' }] }], backendRefs: [backend('echo-v3')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/path5' } }], backendRefs: [backend('echo-v1')] },
      ],
    });
    assert.equal(winner(table([r]), req('/', { method: 'PATCH', headers: { version: 'four' } })), 'echo-v2');
    assert.equal(winner(table([r]), req('/path5', { method: 'PATCH' })), 'echo-v1');
    assert.equal(winner(table([r]), req('/', { method: 'GET' })), null);
  });
  it('HTTPRouteQueryParamMatching: more query matches win; headers beat query; names are case-sensitive', () => {
    const r = route({
      rules: [
        { matches: [{ queryParams: [{ name: 'animal', value: 'whale' }] }], backendRefs: [backend('echo-v1')] },
        {
          matches: [
            {
              queryParams: [
                { name: 'animal', value: 'dolphin' },
                { name: 'color', value: 'blue' },
              ],
            },
          ],
          backendRefs: [backend('echo-v3')],
        },
        { matches: [{ queryParams: [{ name: 'animal', value: 'dolphin' }] }], backendRefs: [backend('echo-v2')] },
        { matches: [{ queryParams: [{ name: 'ANIMAL', value: 'Whale' }] }], backendRefs: [backend('echo-v3')] },
        { matches: [{ headers: [{ name: 'version', value: 'four' }] }], backendRefs: [backend('echo-v3')] },
        { matches: [{ queryParams: [{ name: 'animal', value: 'hydra' }] }], backendRefs: [backend('echo-v1')] },
      ],
    });
    const t = table([r]);
    assert.equal(winner(t, req('/?animal=whale')), 'echo-v1');
    assert.equal(winner(t, req('/?animal=dolphin&color=blue')), 'echo-v3');
    assert.equal(winner(t, req('/?animal=dolphin')), 'echo-v2');
    assert.equal(winner(t, req('/?ANIMAL=Whale')), 'echo-v3');
    assert.equal(winner(t, req('/?animal=hydra', { headers: { version: 'four' } })), 'echo-v3');
    assert.equal(winner(t, req('/?animal=whale&animal=dolphin')), 'echo-v1', 'first value of a repeated param');
    assert.equal(winner(t, req('/?color=blue')), null);
  });
  it('HTTPRoutePathMatchOrder: Exact beats longer prefixes; longest prefix wins', () => {
    const rule = (type: string, value: string, to: string) => ({
      matches: [{ path: { type, value } }],
      backendRefs: [backend(to)],
    });
    const r = route({
      rules: [
        rule('Exact', '/match', 'echo-v1'),
        rule('Exact', '/match/exact', 'echo-v2'),
        rule('Exact', '/match/exact/one', 'echo-v3'),
        rule('PathPrefix', '/match/', 'echo-v3'),
        rule('PathPrefix', '/match/prefix/', 'echo-v1'),
        rule('PathPrefix', '/match/prefix/one', 'echo-v2'),
      ],
    });
    const t = table([r]);
    assert.equal(winner(t, req('/match/exact/one')), 'echo-v3');
    assert.equal(winner(t, req('/match/exact')), 'echo-v2');
    assert.equal(winner(t, req('/match')), 'echo-v1');
    assert.equal(winner(t, req('/match/prefix/one/any')), 'echo-v2');
    assert.equal(winner(t, req('/match/prefix/any')), 'echo-v1');
    assert.equal(winner(t, req('/match/any')), 'echo-v3');
  });
  it('ties across routes: the older route wins, then ns/name', () => {
    const m = { matches: [{ path: { type: 'PathPrefix', value: '/' } }] };
    const young = route({ rules: [{ ...m, backendRefs: [backend('echo-v1')] }] }, 'a-young', 5);
    const old = route({ rules: [{ ...m, backendRefs: [backend('echo-v2')] }] }, 'z-old', 1);
    assert.equal(winner(table([young, old]), req('/')), 'echo-v2');
  });
  it('regex matches rank below prefixes and are full matches', () => {
    const r = route({
      rules: [
        {
          matches: [{ path: { type: 'RegularExpression', value: '/api/v[0-9]+' } }],
          backendRefs: [backend('echo-v1')],
        },
        { matches: [{ path: { type: 'PathPrefix', value: '/api' } }], backendRefs: [backend('echo-v2')] },
        {
          matches: [{ headers: [{ name: 'x-id', type: 'RegularExpression', value: 'a+' }] }],
          backendRefs: [backend('echo-v3')],
        },
      ],
    });
    const t = table([r]);
    assert.equal(winner(t, req('/api/v1')), 'echo-v2');
    assert.equal(winner(t, req('/other', { headers: { 'x-id': 'aaa' } })), 'echo-v3');
    assert.equal(winner(t, req('/other', { headers: { 'x-id': 'aaab' } })), null);
  });
});
