// `ferry waypoint` settings a user sets by flag or environment: the access log is off unless asked for.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../../src/runtime/process-config.ts';
import { loadWaypointConfig } from '../../../src/waypoint/config.ts';

const BASE = { waypoint: 'shop/waypoint', config: '/dev/null' };

test('the access log is off by default, as in Istio, and on with --access-log on or the env', () => {
  assert.equal(loadWaypointConfig(BASE, {}).accessLog, false);
  assert.equal(loadWaypointConfig({ ...BASE, 'access-log': 'on' }, {}).accessLog, true);
  assert.equal(loadWaypointConfig(BASE, { FERRY_WAYPOINT_ACCESS_LOG: 'on' }).accessLog, true);
  assert.equal(
    loadWaypointConfig({ ...BASE, 'access-log': 'off' }, { FERRY_WAYPOINT_ACCESS_LOG: 'on' }).accessLog,
    false,
  );
});

test('a wrong --access-log value is refused with the value named', () => {
  assert.throws(
    () => loadWaypointConfig({ ...BASE, 'access-log': 'yes' }, {}),
    (err: unknown) => err instanceof ConfigError && /--access-log: expected on or off, got "yes"/.test(err.message),
  );
});
