// Regressions found by the fuzzer in HTTPRoute compilation and matching (`npm run fuzz -- --target
// httproute`). A regex match ran on V8's backtracking engine, so `/(a|b|ab)*` against `/abab…ab!` took
// exponential time and one request would stall the waypoint for every client; matching runs in a child
// process here, so a hang cannot block the test runner and the child's deadline turns it into a failure.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { compileRouteRegex } from '../../../gateway-api/route-regex.ts';
import { compile, route, table } from '../../helpers/route-fixtures.ts';

const CHILD = `
  import { compile, req, table } from ${JSON.stringify(new URL('../../helpers/route-fixtures.ts', import.meta.url).href)};
  import { selectRoute } from ${JSON.stringify(new URL('../../../gateway-api/match.ts', import.meta.url).href)};
  const patterns = ['/(a|b|ab)*', '/(.\\\\w(a){1,3}|[0-9]|(?:a)|[a-z]|(?:a))*?', '/((a+)+)+x'];
  const rules = patterns.map((value) => ({ matches: [{ path: { type: 'RegularExpression', value } }], backendRefs: [{ name: 'echo', port: 80 }] }));
  const out = compile({ parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }], rules });
  if (out.route === null) throw new Error(JSON.stringify(out.problems));
  const t = table([out.route]);
  const results = ['/' + 'ab'.repeat(40) + '!', '/' + 'a'.repeat(60) + '!'].map((p) => selectRoute(t, req(p)));
  process.stdout.write(JSON.stringify(results));
`;

test('route regexes match in linear time: pathological patterns against crafted paths finish', async () => {
  const run = promisify(execFile);
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', CHILD], { timeout: 20_000 });
  assert.deepEqual(JSON.parse(stdout), [null, null]);
});

test('the linear-time regexes match what the u-flag regexes match', () => {
  const cases: [string, string, boolean][] = [
    ['/items/[0-9]{1,6}', '/items/123', true],
    ['/items/[0-9]{1,6}', '/items/1234567', false],
    ['/(a|b|ab)*', '/abab', true],
    ['/\\w+\\.json', '/x.json', true],
    ['/caf\\u00e9', '/café', true],
    ['/\\p{L}+', '/héllo', true],
    ['/\\p{L}+', '/123', false],
  ];
  for (const [value, path, expected] of cases) {
    const compiled = compileRouteRegex(value);
    assert.ok(compiled.ok, value);
    assert.equal(compiled.regex.test(path), expected, `${value} on ${path}`);
    assert.equal(new RegExp(`^(?:${value})$`, 'u').test(path), expected, `u-flag ${value} on ${path}`);
  }
  const t = table([route({ rules: [{ matches: [{ path: { type: 'RegularExpression', value: '/r/[a-z]+' } }] }] })]);
  assert.notEqual(t.entries.length, 0);
  assert.equal(compileRouteRegex('(a)\\1').ok, false, 'backreferences are refused');
  assert.equal(compileRouteRegex('a(?=b)').ok, false, 'lookahead is refused');
  assert.equal(compileRouteRegex('a\\-').ok, false, 'stray escapes are refused (u-flag syntax)');
});

// Regression (found by `npm run fuzz -- --target httproute`): a value carrying its own `toString` key made
// String() throw inside compileHttpRoute, so an invalid route became an exception instead of a status.
test('spec values with their own toString or valueOf keys are refused, never thrown', () => {
  const hostile: unknown[] = [{ toString: '' }, [{ toString: '' }], { valueOf: 1, toString: null }];
  for (const value of hostile) {
    const out = compile({
      parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: value, sectionName: value }],
      rules: [{ backendRefs: [{ group: value, kind: value, name: 'echo', port: 80 }] }],
    });
    assert.equal(out.route, null, JSON.stringify(value));
    assert.ok(out.problems.length > 0);
    const named = compile({
      parentRefs: [{ group: '', kind: 'Service', name: 'echo', sectionName: value }],
      rules: [{ backendRefs: [{ name: 'echo', port: 80 }] }],
    });
    assert.equal(named.route, null);
  }
});
