// Input is hostile (STYLE.md §9: parse, never trust): a VirtualService, DestinationRule or
// AuthorizationPolicy with a wrong type in any field the converters read must give a plan (findings), never
// an exception — including values whose toString would throw when printed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildInventory } from '../../../src/migrate/inventory.ts';
import { planMigration } from '../../../src/migrate/plan.ts';
import type { MigrationPlan } from '../../../src/migrate/types.ts';

const SERVICE = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'r', namespace: 'n' },
  spec: { selector: { app: 'r' }, ports: [{ port: 80 }] },
};
const WEIRD: unknown[] = [
  null,
  5,
  'x',
  [],
  {},
  [null],
  [5],
  [{}],
  { toString: 1 },
  [{ exact: 5 }],
  { exact: {} },
  [[1]],
  true,
];
const API: Record<string, string> = {
  VirtualService: 'networking.istio.io/v1',
  DestinationRule: 'networking.istio.io/v1',
  AuthorizationPolicy: 'security.istio.io/v1',
};

function plan(kind: string, spec: unknown): MigrationPlan {
  const docs = [SERVICE, { apiVersion: API[kind], kind, metadata: { name: 'v', namespace: 'n' }, spec }];
  return planMigration(buildInventory(docs.map((value) => ({ value, origin: { file: 'hostile.yaml', line: 1 } }))));
}

function cases(w: unknown): [string, unknown][] {
  const route = [{ destination: { host: 'r' } }];
  const http = (extra: Record<string, unknown>) => ({ hosts: ['r'], http: [{ route, ...extra }] });
  return [
    ...['hosts', 'http', 'gateways', 'exportTo', 'tcp'].map((f): [string, unknown] => [
      'VirtualService',
      { hosts: ['r'], [f]: w },
    ]),
    ...[
      'match',
      'route',
      'redirect',
      'rewrite',
      'timeout',
      'retries',
      'headers',
      'mirror',
      'mirrors',
      'mirrorPercentage',
      'corsPolicy',
      'fault',
      'name',
      'delegate',
    ].map((f): [string, unknown] => ['VirtualService', http({ [f]: w })]),
    ...['uri', 'method', 'headers', 'queryParams', 'gateways', 'sourceLabels'].map((f): [string, unknown] => [
      'VirtualService',
      http({ match: [{ [f]: w }] }),
    ]),
    [
      'VirtualService',
      { hosts: ['r'], http: [{ route: [{ destination: { host: 'r', subset: w, port: w }, weight: w, headers: w }] }] },
    ],
    ['VirtualService', http({ retries: { attempts: w, retryOn: w, perTryTimeout: w } })],
    ['VirtualService', http({ headers: { request: { set: w, add: w, remove: w } } })],
    [
      'VirtualService',
      http({ redirect: { uri: w, authority: w, port: w, redirectCode: w, scheme: w, derivePort: w } }),
    ],
    ['VirtualService', http({ match: [{ uri: { prefix: '/a' } }], rewrite: { uri: w, authority: w } })],
    ['VirtualService', http({ mirror: { host: 'r' }, mirrorPercentage: { value: w } })],
    ['VirtualService', http({ corsPolicy: { allowOrigins: w, allowMethods: w, maxAge: w } })],
    ['DestinationRule', { host: 'r', subsets: w, trafficPolicy: w, exportTo: w }],
    ['DestinationRule', { host: 'r', subsets: [{ name: w, labels: w, trafficPolicy: w }] }],
    [
      'AuthorizationPolicy',
      {
        selector: { matchLabels: { app: 'r' } },
        rules: [{ to: [{ operation: { methods: ['GET'] } }], when: w, from: w }],
      },
    ],
  ];
}

test('hostile values in every converted field give findings, never an exception', () => {
  let count = 0;
  for (const w of WEIRD) {
    for (const [kind, spec] of cases(w)) {
      const p = plan(kind, spec);
      // A DestinationRule with only a host (null fields are absent) has nothing to report.
      if (kind !== 'DestinationRule') assert.ok(p.findings.length > 0, JSON.stringify(spec));
      count++;
    }
  }
  assert.equal(count, WEIRD.length * 35);
});
