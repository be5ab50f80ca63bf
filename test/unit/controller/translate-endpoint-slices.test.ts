// Services without a selector get their endpoints from EndpointSlices (kubernetes.io/service-name): a pod
// named by targetRef gets the Service, an address that is no pod gets a plain-TCP workload of its own, ports
// map by name, not-ready endpoints are left out, and slices of selector Services change nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ns, translateYaml } from '../../helpers/controller-fixtures.ts';

const pod = (name: string) =>
  `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: demo, labels: {app: db}}\nspec:\n  containers: [{name: app, image: x}]\n---\n`;
const svc = (name: string, selector: string) =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: demo}\nspec:\n  ${selector}ports: [{name: sql, port: 5432, targetPort: 5432}]\n---\n`;
const slice = (svcName: string, endpoints: string) =>
  `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: ${svcName}-abc, namespace: demo, labels: {kubernetes.io/service-name: ${svcName}}}\naddressType: IPv4\nports: [{name: sql, port: 15432, protocol: TCP}]\nendpoints: ${endpoints}\n---\n`;
const HOST = 'demo/external-db.demo.svc.cluster.local';

test('selector-less Service: EndpointSlice endpoints become its endpoints (pods by targetRef, others as own workloads)', () => {
  // helpers place pods at 10.0.0.1, .2, … in key order: demo/db-0 is 10.0.0.1.
  const r = translateYaml(
    ns('demo') +
      pod('db-0') +
      svc('external-db', '') +
      slice(
        'external-db',
        `[{addresses: ["10.0.0.1"], targetRef: {kind: Pod, namespace: demo, name: db-0}}, {addresses: ["192.0.2.7"], nodeName: node-b}, {addresses: ["192.0.2.8"], conditions: {ready: false}}]`,
      ),
  );
  const dbPod = r.config.workloads.find((w) => w.name === 'db-0');
  assert.deepEqual([...(dbPod?.services.get(HOST) ?? [])], [[5432, 15432]], 'pod gets the slice port as target');
  const ext = r.config.workloads.find((w) => w.addresses.includes('192.0.2.7'));
  assert.ok(ext, 'an address that is no pod gets a workload');
  assert.equal(ext.uid, 'Kubernetes/discovery.k8s.io/EndpointSlice/demo/192.0.2.7');
  assert.equal(ext.protocol, 'TCP');
  assert.equal(ext.node, 'node-b');
  assert.deepEqual([...ext.services.get(HOST)!], [[5432, 15432]]);
  assert.equal(
    r.config.workloads.some((w) => w.addresses.includes('192.0.2.8')),
    false,
    'not-ready endpoint left out',
  );
  assert.ok(r.config.services.some((s) => s.name === 'external-db' && s.vips.length === 1));
});

test('EndpointSlice of a Service with a selector changes nothing (the selector decides)', () => {
  const base = ns('demo') + pod('db-0') + svc('db', 'selector: {app: db}\n  ');
  const withSlice = base + slice('db', `[{addresses: ["192.0.2.9"]}]`);
  assert.deepEqual(translateYaml(withSlice).config, translateYaml(base).config);
});

test('EndpointSlice without a Service or with FQDN addresses adds no workload', () => {
  const r = translateYaml(ns('demo') + slice('nothing', `[{addresses: ["192.0.2.9"]}]`));
  assert.equal(r.config.workloads.length, 0);
  const fqdn = translateYaml(
    ns('demo') +
      svc('external-db', '') +
      slice('external-db', `[{addresses: ["db.example.com"]}]`).replace('IPv4', 'FQDN'),
  );
  assert.equal(fqdn.config.workloads.length, 0);
  assert.ok(fqdn.diagnostics.some((d) => d.code === 'FERRY_TRANSLATE_UNSUPPORTED' && d.field === 'addressType'));
});
