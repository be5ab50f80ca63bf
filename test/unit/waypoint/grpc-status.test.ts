// What a gRPC client is told when the waypoint answers a call itself (src/waypoint/grpc-status.ts): the
// status code per outcome, which requests count as gRPC, and grpc-message percent-encoding.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeGrpcMessage, grpcStatusFor, isGrpcContentType } from '../../../src/waypoint/grpc-status.ts';

describe('gRPC status for a local outcome', () => {
  const cases: [string, number, number][] = [
    ['no rule matched (404)', 404, 12],
    ['unresolved backend / no backend (500)', 500, 14],
    ['no healthy endpoint, connect failure (503)', 503, 14],
    ['timeout (504)', 504, 4],
    ['L7 authorization denied (403)', 403, 7],
    ['anything else', 418, 2],
  ];
  for (const [what, http, grpc] of cases) it(`${what} → ${grpc}`, () => assert.equal(grpcStatusFor(http), grpc));
});

describe('which requests are gRPC', () => {
  const cases: [string | undefined, boolean][] = [
    ['application/grpc', true],
    ['application/grpc+proto', true],
    ['application/grpc;charset=utf-8', true],
    ['APPLICATION/GRPC', true],
    ['application/grpc-web', false],
    ['application/grpc-web+proto', false],
    ['application/json', false],
    [undefined, false],
  ];
  for (const [ct, want] of cases) it(`${String(ct)} → ${want}`, () => assert.equal(isGrpcContentType(ct), want));
});

describe('grpc-message is percent-encoded', () => {
  it('printable ASCII stays, % and non-ASCII are encoded', () => {
    assert.equal(encodeGrpcMessage('backend not available (x)'), 'backend not available (x)');
    assert.equal(encodeGrpcMessage('100% é\n'), '100%25 %C3%A9%0A');
  });
});
