// GRPCRoute, TCPRoute and consumer routes in the local cluster (issue 13): client pod → ztunnel → waypoint
// → ztunnel → gRPC / TCP echo pods, with the real grpc-js client and server as the pods' programs
// (`ferry testapp grpc-client` / `grpc-echo`, test/e2e/fixtures/route-kinds). 70/30 over 500 gRPC calls
// within ±5 points with the header modifiers as the backend saw them; server, client and bidi streaming;
// 1,000 TCP connections split 70/30 (the waypoint's per-connection log says where each went); a consumer
// GRPCRoute seen only by its namespace's client; statuses in `ferry status`.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { privilegedTest } from '../../testkit/privileged.ts';
import { FerryCli } from '../helpers/cluster-cli.ts';
import { jsonLines, until } from '../helpers/waypoint-e2e.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/route-kinds', import.meta.url));
const UNAVAILABLE = fileURLToPath(new URL('./fixtures/route-kinds-variants/unavailable.yaml', import.meta.url));
const cli = new FerryCli('wp-route-kinds');
test.after(() => cli.remove());

interface GrpcSummary {
  readonly calls: number;
  readonly pods: Record<string, number>;
  readonly codes: Record<string, number>;
  readonly replies: number;
  readonly metadata: Record<string, string> | null;
}

privilegedTest('GRPCRoute, TCPRoute and consumer routes through a waypoint in the local cluster', async (t) => {
  const { cluster } = await cli.up(t, 'rk', FIXTURE);
  const status = await cli.status(cluster);
  const vip = (name: string) => {
    const s = status.services.find((x) => x.namespace === 'rk' && x.name === name);
    assert.ok(typeof s?.vip === 'string', `rk/${name} has a VIP`);
    return s.vip;
  };
  const grpcClient = async (pod: string, args: readonly string[]): Promise<GrpcSummary> => {
    const r = await cli.run(['exec', '--cluster', cluster, pod, '--', 'ferry', 'testapp', 'grpc-client', ...args]);
    const line = r.stdout.split('\n').find((l) => l.startsWith('{"calls"'));
    assert.ok(line !== undefined, `grpc-client: no summary\n${r.stdout}\n${r.stderr}`);
    return JSON.parse(line) as GrpcSummary;
  };
  const target = `${vip('grpc')}:50051`;

  await t.test(
    'GRPCRoute 70/30 over 500 calls within ±5 points; header modifiers as the backend saw them',
    async () => {
      const s = await grpcClient('rk/client-0', [
        ...['--target', target, '--calls', '500', '--concurrency', '4'],
        ...['--metadata', 'x-multi=client', '--metadata', 'x-drop=gone', '--metadata', 'x-keep=kept'],
      ]);
      t.diagnostic(`gRPC 70/30 over 500 calls: ${JSON.stringify(s.pods)} codes ${JSON.stringify(s.codes)}`);
      assert.deepEqual(s.codes, { '0': 500 });
      const v1 = (s.pods['grpc-v1-0'] ?? 0) / 500;
      assert.ok(Math.abs(v1 - 0.7) <= 0.05, `grpc-v1 share ${v1}`);
      assert.equal((s.pods['grpc-v1-0'] ?? 0) + (s.pods['grpc-v2-0'] ?? 0), 500);
      assert.equal(s.metadata?.['x-route'], 'grpc-split');
      assert.equal(s.metadata?.['x-multi'], 'client,added');
      assert.equal(s.metadata?.['x-drop'], undefined);
      assert.equal(s.metadata?.['x-keep'], 'kept');
    },
  );

  for (const shape of ['server', 'client', 'bidi'] as const) {
    await t.test(`${shape} streaming through the waypoint`, async () => {
      const s = await grpcClient('rk/client-0', ['--target', target, '--calls', '20', '--shape', shape]);
      assert.deepEqual(s.codes, { '0': 20 }, JSON.stringify(s));
      const perCall = { server: 50, client: 1, bidi: 11 }[shape];
      assert.equal(s.replies, 20 * perCall);
    });
  }

  await t.test('a consumer GRPCRoute: rk-consumer reaches grpc-v2 only; rk keeps the producer split', async () => {
    const consumer = await grpcClient('rk-consumer/client-0', ['--target', target, '--calls', '50']);
    assert.deepEqual(consumer.codes, { '0': 50 });
    assert.deepEqual(consumer.pods, { 'grpc-v2-0': 50 });
    assert.equal(consumer.metadata?.['x-route'], undefined, 'the producer route did not apply');
    const producer = await grpcClient('rk/client-0', ['--target', target, '--calls', '50']);
    assert.ok((producer.pods['grpc-v1-0'] ?? 0) > 0, JSON.stringify(producer.pods));
    assert.equal(producer.metadata?.['x-route'], 'grpc-split');
  });

  await t.test('TCPRoute: 1,000 connections echoed, split 70/30 per connection within ±5 points', async () => {
    const r = await cli.run([
      ...['exec', '--cluster', cluster, 'rk/client-0', '--', 'ferry', 'testapp', 'tcp-client'],
      ...['--target', `${vip('tcp')}:9000`, '--connections', '1000', '--concurrency', '8'],
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}'), { connections: 1000, ok: 1000, failed: 0 });
    const { value: lines } = await until(
      async () => {
        const text = await readFile(join(cli.stateRoot, cluster, 'logs', 'waypoint-rk-waypoint.log'), 'utf8');
        const l = jsonLines(text).filter((x) => x.msg === 'tcp connection' && x.route === 'rk/tcp-split');
        return l.length >= 1000 ? l : undefined;
      },
      { limitMs: 15_000, what: '1,000 tcp connection lines in the waypoint log' },
    );
    const v1 = lines.filter((l) => l.backend === 'rk/tcp-v1:9000').length / lines.length;
    t.diagnostic(`TCP 70/30 over ${lines.length} connections: tcp-v1 share ${v1}`);
    assert.ok(Math.abs(v1 - 0.7) <= 0.05, `tcp-v1 share ${v1}`);
  });

  await t.test('ferry status shows each route kind Accepted, the consumer route for its namespace', async () => {
    const s = await cli.status(cluster);
    const line = (prefix: string) => s.routes.find((r) => r.startsWith(prefix)) ?? '';
    assert.match(line('GRPCRoute rk/grpc-split'), /Accepted=True/);
    assert.match(line('TCPRoute rk/tcp-split'), /Accepted=True/);
    assert.match(line('GRPCRoute rk-consumer/ours'), /Accepted=True/);
  });

  await t.test(
    'statuses: an unresolved backend share answers UNAVAILABLE, an unmatched method UNIMPLEMENTED',
    async () => {
      const applied = await cli.run(['apply', '--cluster', cluster, '-f', UNAVAILABLE]);
      assert.equal(applied.code, 0, applied.stdout + applied.stderr);
      const { value: s } = await until(
        async () => {
          const r = await grpcClient('rk/client-0', ['--target', target, '--calls', '100', '--concurrency', '4']);
          // A run that straddled the change still reached grpc-v2 (old route): ask again.
          return r.codes['14'] !== undefined && r.pods['grpc-v2-0'] === undefined ? r : undefined;
        },
        { limitMs: 10_000, what: 'the new GRPCRoute in effect' },
      );
      t.diagnostic(`1:1 with an unresolved backend over 100 calls: codes ${JSON.stringify(s.codes)}`);
      assert.ok(Math.abs((s.codes['14'] ?? 0) - 50) <= 5, JSON.stringify(s.codes));
      assert.equal((s.codes['0'] ?? 0) + (s.codes['14'] ?? 0), 100);
      assert.deepEqual(Object.keys(s.pods), ['grpc-v1-0']);
      const streams = await grpcClient('rk/client-0', ['--target', target, '--calls', '5', '--shape', 'server']);
      assert.deepEqual(streams.codes, { '12': 5 });
      const status = await cli.status(cluster);
      const line = status.routes.find((r) => r.startsWith('GRPCRoute rk/grpc-split')) ?? '';
      assert.match(line, /ResolvedRefs=False \(BackendNotFound: .*grpc-missing/);
    },
  );
});
