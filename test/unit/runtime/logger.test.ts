import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RuntimeError } from '../../../src/runtime/errors.ts';
import { createLogger, parseLogLevel } from '../../../src/runtime/logger.ts';

function capture(): { lines: Record<string, unknown>[]; write(line: string): void } {
  const lines: Record<string, unknown>[] = [];
  return { lines, write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) };
}

test('lines are JSON with level name, time, component and the given fields', () => {
  const out = capture();
  const log = createLogger({ component: 'ztunnel', destination: out });
  log.info({ 'src.addr': '10.0.0.1:1234', n: 3 }, 'hello');
  assert.equal(out.lines.length, 1);
  const line = out.lines[0];
  assert.equal(line?.level, 'info');
  assert.equal(line?.component, 'ztunnel');
  assert.equal(line?.msg, 'hello');
  assert.equal(line?.['src.addr'], '10.0.0.1:1234');
  assert.equal(line?.n, 3);
  assert.match(String(line?.time), /^\d{4}-\d\d-\d\dT/);
});

test('children carry their bindings and follow later level changes of the root', () => {
  const out = capture();
  const log = createLogger({ component: 'ztunnel', level: 'info', destination: out });
  const access = log.child({ scope: 'access' });
  access.debug({}, 'dropped at info');
  assert.equal(out.lines.length, 0);
  assert.equal(access.isLevelEnabled('debug'), false);
  log.setLevel('debug');
  access.debug({ a: 1 }, 'kept at debug');
  assert.equal(out.lines.length, 1);
  assert.equal(out.lines[0]?.scope, 'access');
  assert.equal(out.lines[0]?.level, 'debug');
  log.setLevel('error');
  access.warn({}, 'dropped at error');
  log.child({ x: 1 }).error({}, 'kept');
  assert.deepEqual(
    out.lines.map((l) => l.msg),
    ['kept at debug', 'kept'],
  );
});

test('silent drops everything', () => {
  const out = capture();
  const log = createLogger({ component: 'c', level: 'silent', destination: out });
  log.error({}, 'x');
  assert.equal(out.lines.length, 0);
  assert.equal(log.isLevelEnabled('error'), false);
});

test('unknown level names are refused with a typed error', () => {
  assert.equal(parseLogLevel(' DEBUG '), 'debug');
  assert.throws(
    () => parseLogLevel('verbose'),
    (err: unknown) => err instanceof RuntimeError && err.code === 'FERRY_RUNTIME_INVALID_LOG_LEVEL',
  );
  const log = createLogger({ component: 'c', destination: capture() });
  assert.throws(() => log.setLevel('loud' as 'info'), RuntimeError);
  assert.equal(log.level, 'info');
});
