import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expandVars, resolveContainerEnv, resolveFieldPath } from '../../../../src/local-cluster/kubelet/pod-env.ts';
import { podContainers } from '../../../../src/local-cluster/kubelet/pod-spec.ts';
import { objectFiles } from '../../../../src/local-cluster/kubelet/pod-volume-files.ts';
import {
  containerMounts,
  mountTable,
  podVolumeDir,
  podVolumes,
  rewriteMountPaths,
} from '../../../../src/local-cluster/kubelet/pod-volumes.ts';

const FACTS = { podIp: '10.7.1.3', hostIp: '10.7.1.1', nodeName: 'node-1' };
const POD = {
  metadata: {
    name: 'wp-7f9c-abcde',
    namespace: 'demo',
    uid: 'u-1',
    labels: { app: 'wp' },
    annotations: { 'a.b/c': 'x' },
  },
  spec: { serviceAccountName: 'wp' },
};

test('fieldRef paths resolve as the kubelet resolves them; others are refused', () => {
  const table: [string, string | null][] = [
    ['metadata.name', 'wp-7f9c-abcde'],
    ['metadata.namespace', 'demo'],
    ['metadata.uid', 'u-1'],
    ["metadata.labels['app']", 'wp'],
    ["metadata.annotations['a.b/c']", 'x'],
    ["metadata.labels['absent']", ''],
    ['spec.nodeName', 'node-1'],
    ['spec.serviceAccountName', 'wp'],
    ['status.podIP', '10.7.1.3'],
    ['status.hostIP', '10.7.1.1'],
    ['status.podIPs', null],
    ['metadata.generateName', null],
  ];
  for (const [path, want] of table) assert.equal(resolveFieldPath(path, POD, FACTS), want, path);
  assert.equal(resolveFieldPath('spec.serviceAccountName', { spec: {} }, FACTS), 'default');
});

test('$(VAR) expansion: known names replaced, unknown kept, $$ escapes', () => {
  const env = { NODE_NAME: 'node-1', A: 'x' };
  const table: [string, string][] = [
    ['--node=$(NODE_NAME)', '--node=node-1'],
    ['$(A)$(A)', 'xx'],
    ['$(MISSING)', '$(MISSING)'],
    ['$$(A)', '$(A)'],
    ['cost $5', 'cost $5'],
  ];
  for (const [text, want] of table) assert.equal(expandVars(text, env), want, text);
});

test('env: values, fieldRefs, references to earlier variables; secretKeyRef refused naming the variable', () => {
  const ok = resolveContainerEnv(
    {
      env: [
        { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
        { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
        { name: 'ADDR', value: '$(POD_IP):15008' },
        { name: 'EMPTY' },
      ],
    },
    POD,
    FACTS,
  );
  assert.deepEqual(ok, {
    ok: true,
    env: { NODE_NAME: 'node-1', POD_IP: '10.7.1.3', ADDR: '10.7.1.3:15008', EMPTY: '' },
  });
  const secret = resolveContainerEnv(
    { env: [{ name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }] },
    POD,
    FACTS,
  );
  assert.equal(secret.ok, false);
  assert.match(secret.ok ? '' : secret.message, /PASSWORD: secretKeyRef/);
  const bad = resolveContainerEnv(
    { env: [{ name: 'X', valueFrom: { fieldRef: { fieldPath: 'spec.x' } } }] },
    POD,
    FACTS,
  );
  assert.match(bad.ok ? '' : bad.message, /X: unsupported fieldPath "spec.x"/);
});

test('volumes: emptyDir, configMap items, secret, projected token; unsupported kinds named', () => {
  const r = podVolumes({
    spec: {
      volumes: [
        { name: 'tmp', emptyDir: { medium: 'Memory' } },
        { name: 'root', configMap: { name: 'ferry-ca-root-cert', items: [{ key: 'root-cert.pem', path: 'r.pem' }] } },
        { name: 'creds', secret: { secretName: 'db', optional: true } },
        { name: 'tok', projected: { sources: [{ serviceAccountToken: { audience: 'ferry-ca', path: 'token' } }] } },
      ],
    },
  });
  assert.deepEqual(r, {
    ok: true,
    volumes: [
      { name: 'tmp', sources: [], hostPath: null },
      {
        name: 'root',
        sources: [
          {
            kind: 'configMap',
            name: 'ferry-ca-root-cert',
            items: [{ key: 'root-cert.pem', path: 'r.pem' }],
            optional: false,
          },
        ],
        hostPath: null,
      },
      { name: 'creds', sources: [{ kind: 'secret', name: 'db', items: null, optional: true }], hostPath: null },
      {
        name: 'tok',
        sources: [
          {
            kind: 'serviceAccountToken',
            audience: 'ferry-ca',
            expirationSeconds: 3600,
            path: 'token',
            optional: false,
          },
        ],
        hostPath: null,
      },
      {
        name: 'kube-api-access',
        sources: [
          { kind: 'serviceAccountToken', audience: null, expirationSeconds: 3607, path: 'token', optional: true },
          { kind: 'apiCa', path: 'ca.crt' },
          { kind: 'podNamespace', path: 'namespace' },
        ],
        hostPath: null,
      },
    ],
  });
  const refused: [unknown, RegExp][] = [
    [{ name: 'c', persistentVolumeClaim: { claimName: 'x' } }, /volume c: persistentVolumeClaim is not supported/],
    [{ name: 'h', hostPath: { path: 'proc' } }, /volume h: hostPath.path must be absolute/],
    [{ name: 'p', projected: { sources: [{ downwardAPI: {} }] } }, /volume p: projected source downwardAPI/],
    [
      { name: 't', projected: { sources: [{ serviceAccountToken: { path: '../escape' } }] } },
      /volume t: serviceAccountToken.path must be a relative path/,
    ],
    [{ name: 'Bad_Name', emptyDir: {} }, /not a valid volume name/],
  ];
  for (const [volume, message] of refused) {
    const bad = podVolumes({ spec: { volumes: [volume] } });
    assert.match(bad.ok ? '' : bad.message, message);
  }
});

test('mounts: mountPath → the pod volume directory (plus subPath); unknown volumes refused', () => {
  const volumes = [
    { name: 'tok', sources: [], hostPath: null },
    { name: 'tmp', sources: [], hostPath: null },
  ];
  const m = containerMounts(
    {
      volumeMounts: [
        { name: 'tok', mountPath: '/var/run/secrets/ferry/ca-token/' },
        { name: 'tmp', mountPath: '/tmp', subPath: 'x' },
      ],
    },
    volumes,
  );
  assert.ok(m.ok);
  assert.deepEqual(mountTable('/s', 'u-1', m.mounts), [
    { mountPath: '/var/run/secrets/ferry/ca-token', hostPath: podVolumeDir('/s', 'u-1', 'tok') },
    { mountPath: '/tmp', hostPath: `${podVolumeDir('/s', 'u-1', 'tmp')}/x` },
  ]);
  const unknown = containerMounts({ volumeMounts: [{ name: 'nope', mountPath: '/x' }] }, volumes);
  assert.match(unknown.ok ? '' : unknown.message, /volumeMount "nope": no such volume/);
  const relative = containerMounts({ volumeMounts: [{ name: 'tok', mountPath: 'x' }] }, volumes);
  assert.match(relative.ok ? '' : relative.message, /mountPath must be absolute/);
});

test('hostPath: the mountPath becomes the host path itself; the in-cluster files are automounted unless opted out', () => {
  const pod = {
    metadata: { name: 'zt', namespace: 'ferry-system', uid: 'u-2' },
    spec: {
      volumes: [{ name: 'bpffs', hostPath: { path: '/sys/fs/bpf/', type: 'Directory' } }],
      containers: [
        {
          name: 'ztunnel',
          image: 'ferry/ferry:1',
          args: ['ztunnel', '--bpffs=/host/bpf/ferry'],
          volumeMounts: [{ name: 'bpffs', mountPath: '/host/bpf' }],
        },
      ],
    },
  };
  const r = podContainers(pod, ['ferry'], { ...FACTS, stateDir: '/s' });
  assert.ok(r.ok, r.ok ? '' : r.message);
  const [c] = r.containers;
  assert.deepEqual(c?.argv, ['ferry', 'ztunnel', '--bpffs=/sys/fs/bpf/ferry']);
  assert.equal(c?.env.FERRY_SERVICEACCOUNT_DIR, podVolumeDir('/s', 'u-2', 'kube-api-access'));

  const optedOut = podContainers({ ...pod, spec: { ...pod.spec, automountServiceAccountToken: false } }, ['ferry'], {
    ...FACTS,
    stateDir: '/s',
  });
  assert.ok(optedOut.ok);
  assert.equal(optedOut.containers[0]?.env.FERRY_SERVICEACCOUNT_DIR, undefined);
  const volumes = podVolumes({ spec: { automountServiceAccountToken: false } });
  assert.deepEqual(volumes, { ok: true, volumes: [] });
});

test('path rewriting: whole path segments only, after = : or , and the longest mount wins', () => {
  const table = [
    { mountPath: '/var/run/a/b', hostPath: '/h/ab' },
    { mountPath: '/var/run/a', hostPath: '/h/a' },
  ];
  const cases: [string, string][] = [
    ['/var/run/a/token', '/h/a/token'],
    ['--ca-token-file=/var/run/a/token', '--ca-token-file=/h/a/token'],
    ['--x=/var/run/a/b/c', '--x=/h/ab/c'],
    ['/var/run/a', '/h/a'],
    ['/var/run/ab/token', '/var/run/ab/token'],
    ['PATH=/bin:/var/run/a,/var/run/a/b', 'PATH=/bin:/h/a,/h/ab'],
    ['see /var/run/a', 'see /var/run/a'],
  ];
  for (const [text, want] of cases) assert.equal(rewriteMountPaths(text, table), want, text);
});

test("the chart's waypoint container runs this Ferry with host paths and its node name", () => {
  const pod = {
    metadata: { name: 'wp-1', namespace: 'demo', uid: 'u-9' },
    spec: {
      serviceAccountName: 'wp',
      volumes: [
        {
          name: 'ca-token',
          projected: { sources: [{ serviceAccountToken: { audience: 'ferry-ca', path: 'token' } }] },
        },
        { name: 'ca-root', configMap: { name: 'ferry-ca-root-cert' } },
      ],
      containers: [
        {
          name: 'waypoint',
          image: 'registry.example.com/ferry/ferry:0.1.0',
          args: [
            'waypoint',
            '--node=$(NODE_NAME)',
            '--ca-root=/var/run/secrets/ferry/ca-root/root-cert.pem',
            '--ca-token-file=/var/run/secrets/ferry/ca-token/token',
          ],
          env: [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
          volumeMounts: [
            { name: 'ca-token', mountPath: '/var/run/secrets/ferry/ca-token', readOnly: true },
            { name: 'ca-root', mountPath: '/var/run/secrets/ferry/ca-root', readOnly: true },
          ],
          ports: [{ containerPort: 15008 }],
        },
      ],
    },
  };
  const r = podContainers(pod, ['node', 'main.ts'], { ...FACTS, stateDir: '/s' });
  assert.ok(r.ok, r.ok ? '' : r.message);
  assert.deepEqual(r.containers[0]?.argv, [
    'node',
    'main.ts',
    'waypoint',
    '--node=node-1',
    `--ca-root=${podVolumeDir('/s', 'u-9', 'ca-root')}/root-cert.pem`,
    `--ca-token-file=${podVolumeDir('/s', 'u-9', 'ca-token')}/token`,
  ]);
  const hostPath = podContainers(
    { ...pod, spec: { ...pod.spec, volumes: [{ name: 'ca-token', hostPath: { path: '/' } }] } },
    ['node', 'main.ts'],
    { ...FACTS, stateDir: '/s' },
  );
  assert.match(hostPath.ok ? '' : hostPath.message, /volume ca-token: hostPath/);
});

test('ConfigMap data and binaryData, Secret data base64-decoded', () => {
  const cm = objectFiles(
    { data: { 'a.txt': 'hello' }, binaryData: { 'b.bin': Buffer.from([1, 2]).toString('base64') } },
    false,
  );
  assert.deepEqual(
    [...cm.entries()],
    [
      ['a.txt', Buffer.from('hello')],
      ['b.bin', Buffer.from([1, 2])],
    ],
  );
  const secret = objectFiles({ data: { k: Buffer.from('s3cret').toString('base64') } }, true);
  assert.deepEqual(secret.get('k'), Buffer.from('s3cret'));
});
