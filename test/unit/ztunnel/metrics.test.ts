// Istio traffic metrics and the per-connection access log, checked through what users see: the
// Prometheus text (parsed, queried by labels) and the JSON log lines.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProxyError } from '../../../src/errors.ts';
import { spiffeId } from '../../../src/identity/spiffe-id.ts';
import { defaultTrafficLabels, TRAFFIC_LABEL_NAMES, trafficLabelsFor } from '../../../src/mesh/traffic-labels.ts';
import type { Service, Workload } from '../../../src/mesh/types.ts';
import { createLogger, type LogLevel } from '../../../src/runtime/logger.ts';
import { AccessLog, responseFlagsFor } from '../../../src/ztunnel/access-log.ts';
import { METRIC_NAMES, ZtunnelMetrics } from '../../../src/ztunnel/metrics.ts';
import { parseMetrics } from '../../helpers/parse-metrics.ts';

function workload(name: string, namespace: string, over: Partial<Workload> = {}): Workload {
  return {
    uid: `Kubernetes//Pod/${namespace}/${name}`,
    name,
    namespace,
    addresses: ['10.0.0.1'],
    network: '',
    protocol: 'HBONE',
    trustDomain: 'cluster.local',
    serviceAccount: 'default',
    node: 'node-a',
    waypoint: null,
    workloadName: name.replace(/-[a-z0-9]+$/, ''),
    workloadType: 'deployment',
    canonicalName: name.replace(/-[a-z0-9]+$/, ''),
    canonicalRevision: 'v1',
    clusterId: 'Kubernetes',
    status: 'Healthy',
    capacity: 1,
    authorizationPolicies: [],
    services: new Map(),
    ...over,
  };
}

const echoService: Service = {
  name: 'echo',
  namespace: 'default',
  hostname: 'echo.default.svc.cluster.local',
  vips: [{ network: '', address: '10.96.0.10' }],
  ports: [{ servicePort: 80, targetPort: 8080 }],
  subjectAltNames: [],
  waypoint: null,
};
const sleepPod = workload('sleep-abc12', 'client-ns', { addresses: ['10.0.0.5'], serviceAccount: 'sleep' });
const echoPod = workload('echo-xyz89', 'default', { addresses: ['10.0.1.7'], canonicalRevision: 'v2' });
const sleepId = spiffeId('cluster.local', 'client-ns', 'sleep');
const echoId = spiffeId('cluster.local', 'default', 'default');

async function scrape(metrics: ZtunnelMetrics) {
  return parseMetrics(await metrics.metrics());
}

function captureLogger(level: LogLevel = 'info') {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    component: 'ztunnel',
    level,
    destination: { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) },
  });
  return { lines, logger };
}

test('label set is exactly Istio traffic labels, all defaulting to unknown', () => {
  const labels = defaultTrafficLabels('destination');
  assert.deepEqual(Object.keys(labels).sort(), [...TRAFFIC_LABEL_NAMES].sort());
  assert.equal(labels.reporter, 'destination');
  assert.equal(labels.request_protocol, 'tcp');
  assert.equal(labels.response_flags, '-');
  for (const name of TRAFFIC_LABEL_NAMES) {
    if (!['reporter', 'request_protocol', 'response_flags'].includes(name)) assert.equal(labels[name], 'unknown', name);
  }
});

test('trafficLabelsFor fills labels from workloads, service and identities', () => {
  const labels = trafficLabelsFor({
    reporter: 'source',
    sourceWorkload: sleepPod,
    sourceIdentity: sleepId,
    destinationWorkload: echoPod,
    destinationService: echoService,
    destinationIdentity: echoId,
    mtls: true,
  });
  assert.deepEqual(labels, {
    reporter: 'source',
    source_workload: 'sleep',
    source_canonical_service: 'sleep',
    source_canonical_revision: 'v1',
    source_workload_namespace: 'client-ns',
    source_principal: 'spiffe://cluster.local/ns/client-ns/sa/sleep',
    source_app: 'sleep',
    source_version: 'v1',
    source_cluster: 'Kubernetes',
    destination_service: 'echo.default.svc.cluster.local',
    destination_service_namespace: 'default',
    destination_service_name: 'echo',
    destination_workload: 'echo',
    destination_canonical_service: 'echo',
    destination_canonical_revision: 'v2',
    destination_workload_namespace: 'default',
    destination_principal: 'spiffe://cluster.local/ns/default/sa/default',
    destination_app: 'echo',
    destination_version: 'v2',
    destination_cluster: 'Kubernetes',
    request_protocol: 'tcp',
    response_flags: '-',
    connection_security_policy: 'mutual_tls',
  });
});

test('plaintext inbound: no principal is claimed, security policy unknown', () => {
  const labels = trafficLabelsFor({
    reporter: 'destination',
    sourceWorkload: sleepPod,
    destinationWorkload: echoPod,
    mtls: false,
  });
  assert.equal(labels.source_principal, 'unknown');
  assert.equal(labels.destination_principal, 'unknown');
  assert.equal(labels.connection_security_policy, 'unknown');
  assert.equal(labels.destination_service, 'unknown');
  assert.equal(labels.source_workload, 'sleep');
});

test('opened, closed and byte counters per label set; bytes follow Istio directions', async () => {
  const metrics = new ZtunnelMetrics({ processMetrics: false });
  const labels = trafficLabelsFor({
    reporter: 'destination',
    sourceWorkload: sleepPod,
    sourceIdentity: sleepId,
    destinationWorkload: echoPod,
    destinationIdentity: echoId,
    mtls: true,
  });
  const a = metrics.openConnection(labels);
  const b = metrics.openConnection(labels);
  a.recordSent(100); // request: source → destination
  a.recordSent(20);
  a.recordReceived(7); // response
  let m = await scrape(metrics);
  const sel = { reporter: 'destination', destination_workload: 'echo', source_principal: formatId(sleepId) };
  assert.equal(m.sum(METRIC_NAMES.opened, sel), 2);
  assert.equal(m.sum(METRIC_NAMES.closed, sel), 0);
  // Live connections show their bytes at scrape time, before they close.
  assert.equal(m.sum(METRIC_NAMES.receivedBytes, sel), 120);
  assert.equal(m.sum(METRIC_NAMES.sentBytes, sel), 7);
  a.close();
  a.close(); // idempotent
  b.recordSent(5);
  b.close('CONNECT');
  m = await scrape(metrics);
  assert.equal(m.sum(METRIC_NAMES.closed, { ...sel, response_flags: '-' }), 1);
  assert.equal(m.sum(METRIC_NAMES.closed, { ...sel, response_flags: 'CONNECT' }), 1);
  assert.equal(m.sum(METRIC_NAMES.failed, { ...sel, response_flags: 'CONNECT' }), 1);
  assert.equal(m.sum(METRIC_NAMES.failed, { ...sel, response_flags: '-' }), 0);
  assert.equal(m.sum(METRIC_NAMES.receivedBytes, sel), 125);
  assert.equal(metrics.liveConnections, 0);
  // Every sample carries the full Istio label set.
  for (const s of m.query(METRIC_NAMES.opened))
    assert.deepEqual(Object.keys(s.labels).sort(), [...TRAFFIC_LABEL_NAMES].sort());
});

function formatId(id: { trustDomain: string; namespace: string; serviceAccount: string }): string {
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

test('instances do not share registries; process metrics and istio_build are present', async () => {
  const one = new ZtunnelMetrics({ buildTag: '1.2.3' });
  const two = new ZtunnelMetrics();
  one.openConnection(defaultTrafficLabels('source')).close();
  const m1 = await scrape(one);
  const m2 = await scrape(two);
  assert.equal(m1.sum(METRIC_NAMES.opened), 1);
  assert.equal(m2.sum(METRIC_NAMES.opened), 0);
  assert.equal(m1.sum('istio_build', { component: 'ztunnel', tag: '1.2.3' }), 1);
  assert.ok(m1.has('process_resident_memory_bytes') || m1.has('process_cpu_seconds_total'));
  assert.ok(m2.has('process_cpu_seconds_total'));
});

test('extra collectors report current values on each scrape (BPF counters)', async () => {
  const metrics = new ZtunnelMetrics({ processMetrics: false });
  let redirected = 3;
  metrics.addCollector({
    name: 'ferry_bpf_redirected_total',
    help: 'connections redirected by cgroup/connect4',
    kind: 'counter',
    labelNames: ['family'],
    collect: () => [{ labels: { family: 'ipv4' }, value: redirected }],
  });
  metrics.addCollector({
    name: 'ferry_enrolled_pods',
    help: 'pods',
    kind: 'gauge',
    collect: async () => [{ value: 2 }],
  });
  assert.equal((await scrape(metrics)).sum('ferry_bpf_redirected_total', { family: 'ipv4' }), 3);
  redirected = 10;
  const m = await scrape(metrics);
  assert.equal(m.sum('ferry_bpf_redirected_total', { family: 'ipv4' }), 10);
  assert.equal(m.sum('ferry_enrolled_pods'), 2);
});

test('access log: one "connection complete" line with ztunnel fields, and the metrics', async () => {
  const { lines, logger } = captureLogger();
  const metrics = new ZtunnelMetrics({ processMetrics: false });
  let now = 1_000;
  const log = new AccessLog({ logger, metrics, now: () => now });
  const conn = log.startConnection({
    direction: 'outbound',
    srcAddr: '10.0.0.5:46238',
    source: sleepPod,
    sourceIdentity: sleepId,
    mtls: true,
  });
  conn.recordSent(10); // before the destination is known
  conn.setDestination({
    addr: '10.0.1.7:15008',
    hboneAddr: '10.0.1.7:8080',
    workload: echoPod,
    service: echoService,
    identity: echoId,
  });
  assert.equal(lines.length, 0, 'nothing logged before completion at info');
  now = 1_013.4;
  conn.finish({ bytesSent: 67, bytesReceived: 490 });
  conn.finish({ bytesSent: 1, bytesReceived: 1 }); // second end is ignored
  assert.equal(lines.length, 1);
  const line = lines[0] as Record<string, unknown>;
  assert.equal(line.msg, 'connection complete');
  assert.equal(line.level, 'info');
  assert.equal(line.scope, 'access');
  assert.equal(line.component, 'ztunnel');
  assert.deepEqual(
    {
      'src.addr': line['src.addr'],
      'src.workload': line['src.workload'],
      'src.namespace': line['src.namespace'],
      'src.identity': line['src.identity'],
      'dst.addr': line['dst.addr'],
      'dst.hbone_addr': line['dst.hbone_addr'],
      'dst.service': line['dst.service'],
      'dst.workload': line['dst.workload'],
      'dst.namespace': line['dst.namespace'],
      'dst.identity': line['dst.identity'],
      direction: line.direction,
      bytes_sent: line.bytes_sent,
      bytes_recv: line.bytes_recv,
      duration: line.duration,
    },
    {
      'src.addr': '10.0.0.5:46238',
      'src.workload': 'sleep-abc12',
      'src.namespace': 'client-ns',
      'src.identity': 'spiffe://cluster.local/ns/client-ns/sa/sleep',
      'dst.addr': '10.0.1.7:15008',
      'dst.hbone_addr': '10.0.1.7:8080',
      'dst.service': 'echo.default.svc.cluster.local',
      'dst.workload': 'echo-xyz89',
      'dst.namespace': 'default',
      'dst.identity': 'spiffe://cluster.local/ns/default/sa/default',
      direction: 'outbound',
      bytes_sent: 67,
      bytes_recv: 490,
      duration: 13,
    },
  );
  assert.equal(line.error, undefined);
  const m = await scrape(metrics);
  const sel = { reporter: 'source', destination_service: 'echo.default.svc.cluster.local', source_workload: 'sleep' };
  assert.equal(m.sum(METRIC_NAMES.opened, sel), 1);
  assert.equal(m.sum(METRIC_NAMES.closed, { ...sel, response_flags: '-' }), 1);
  assert.equal(m.sum(METRIC_NAMES.receivedBytes, sel), 67);
  assert.equal(m.sum(METRIC_NAMES.sentBytes, sel), 490);
  assert.equal(m.sum(METRIC_NAMES.failed), 0);
});

test('access log: policy deny is info with code and policy; metrics flag DENY', async () => {
  const { lines, logger } = captureLogger();
  const metrics = new ZtunnelMetrics({ processMetrics: false });
  const log = new AccessLog({ logger, metrics });
  const conn = log.startConnection({
    direction: 'inbound',
    srcAddr: '10.0.0.5:5555',
    source: sleepPod,
    sourceIdentity: sleepId,
    mtls: true,
    destination: { addr: '10.0.1.7:8080', hboneAddr: '10.0.1.7:8080', workload: echoPod, identity: echoId },
  });
  conn.fail(new ProxyError('FERRY_AUTHZ_DENIED', 'explicitly denied by: default/deny-sleep'), {
    policy: 'default/deny-sleep',
  });
  assert.equal(lines.length, 1);
  const line = lines[0] as Record<string, unknown>;
  assert.equal(line.msg, 'connection failed');
  assert.equal(line.level, 'info');
  assert.equal(line.direction, 'inbound');
  assert.equal(line.policy, 'default/deny-sleep');
  assert.deepEqual(line.error, { code: 'FERRY_AUTHZ_DENIED', message: 'explicitly denied by: default/deny-sleep' });
  assert.equal(line['src.identity'], 'spiffe://cluster.local/ns/client-ns/sa/sleep');
  const m = await scrape(metrics);
  const sel = { reporter: 'destination', response_flags: 'DENY', source_principal: formatId(sleepId) };
  assert.equal(m.sum(METRIC_NAMES.closed, sel), 1);
  assert.equal(m.sum(METRIC_NAMES.failed, sel), 1);
  assert.equal(m.sum(METRIC_NAMES.opened, { reporter: 'destination', response_flags: '-' }), 1);
});

test('access log: upstream failure warns with the cause chain; plaintext logs no identity', () => {
  const { lines, logger } = captureLogger();
  const metrics = new ZtunnelMetrics({ processMetrics: false });
  const log = new AccessLog({ logger, metrics });
  const conn = log.startConnection({
    direction: 'inbound',
    srcAddr: '10.0.0.9:4000',
    sourceIdentity: sleepId, // must not be logged: no mTLS proved it
    mtls: false,
  });
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8080'), { code: 'ECONNREFUSED' });
  conn.fail(new ProxyError('FERRY_UPSTREAM_CONNECT_FAILED', 'connect to 10.0.1.7:8080 failed', { cause: refused }));
  const line = lines[0] as Record<string, unknown>;
  assert.equal(line.level, 'warn');
  assert.equal(line.msg, 'connection failed');
  assert.deepEqual(line.error, {
    code: 'FERRY_UPSTREAM_CONNECT_FAILED',
    message: 'connect to 10.0.1.7:8080 failed',
    cause: 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:8080',
  });
  assert.equal(line['src.identity'], undefined);
  assert.equal(line['dst.addr'], undefined);
  assert.equal(metrics.liveConnections, 0);
});

test('a result disposed without finish or fail is logged at error and releases its metrics', async () => {
  const { lines, logger } = captureLogger();
  const metrics = new ZtunnelMetrics({ processMetrics: false });
  const log = new AccessLog({ logger, metrics });
  {
    using conn = log.startConnection({ direction: 'outbound', srcAddr: '10.0.0.5:1', mtls: true });
    conn.setDestination({ addr: '10.0.1.7:15008' });
  }
  {
    using conn = log.startConnection({ direction: 'outbound', srcAddr: '10.0.0.5:2', mtls: true });
    conn.finish();
  }
  assert.deepEqual(
    lines.map((l) => [l.level, l.msg]),
    [
      ['error', 'connection failed'],
      ['info', 'connection complete'],
    ],
  );
  assert.equal(metrics.liveConnections, 0);
  assert.equal((await scrape(metrics)).sum(METRIC_NAMES.closed), 2);
});

test('debug level adds a "connection opened" line once the destination is known', () => {
  const { lines, logger } = captureLogger('debug');
  const log = new AccessLog({ logger, metrics: new ZtunnelMetrics({ processMetrics: false }) });
  const conn = log.startConnection({ direction: 'outbound', srcAddr: '10.0.0.5:1', mtls: true });
  assert.equal(lines.length, 0);
  conn.setDestination({ addr: '10.0.1.7:15008' });
  conn.finish({ bytesSent: 0, bytesReceived: 0 });
  assert.deepEqual(
    lines.map((l) => l.msg),
    ['connection opened', 'connection complete'],
  );
});

test('response flags derive from error codes', () => {
  assert.equal(responseFlagsFor('FERRY_AUTHZ_NOT_ALLOWED'), 'DENY');
  assert.equal(responseFlagsFor('FERRY_AUTHZ_LATE_REJECTION'), 'DENY');
  assert.equal(responseFlagsFor('FERRY_HBONE_PEER_IDENTITY_MISMATCH'), 'IDENTITY_ERROR');
  assert.equal(responseFlagsFor('FERRY_HBONE_HANDSHAKE_FAILED'), 'TLS_FAILURE');
  assert.equal(responseFlagsFor('FERRY_UPSTREAM_CONNECT_FAILED'), 'CONNECT');
  assert.equal(responseFlagsFor('FERRY_NO_HEALTHY_UPSTREAM'), 'CONNECT');
});
