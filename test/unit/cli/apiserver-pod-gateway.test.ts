// `ferry apiserver --pod-gateway <netns path>=<IPv4>`: a malformed value is refused with a clear error
// before anything starts (the relay itself is covered by test/e2e/helm-controller-pods.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { run } from '../../../src/cli/apiserver-command.ts';

test('--pod-gateway needs an absolute netns path and an IPv4 address', async () => {
  for (const bad of [
    '10.0.0.1',
    'ferry_bridge=10.0.0.1',
    '/run/netns/x=',
    '/run/netns/x=gateway',
    '/run/netns/x=::1',
  ]) {
    await assert.rejects(run(['--data-dir', '/nonexistent/ferry-test', '--pod-gateway', bad]), {
      code: 'FERRY_APISERVER_BAD_OPTION',
      message: /--pod-gateway: expected <netns path>=<IPv4 address>/,
    });
  }
});
