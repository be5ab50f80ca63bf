// Fuzz target `manifests` (pure): the controller's whole input path on hostile manifests. The repository's
// manifests (examples/, controller fixtures) with random values planted in fields, byte-level damage to the
// YAML text, or arbitrary text go through parseManifestText, join the valid example cluster, and are
// translated (translateCluster). Contract (docs/errors.md): nothing throws; every problem is a diagnostic with
// a listed code; and what the controller publishes is accepted by its consumers: every xDS resource it
// would serve parses on the ztunnel (parseAddressResource / parseAuthorizationResource, no NACK) and every
// L7 resource on the waypoint (parseL7Resource, then compileHttpRoute / compileL7Policy without throwing).
import fc from 'fast-check';
import { stringify } from 'yaml';
import { compileOne } from '../../../gateway-api/compile-routes.ts';
import { parseManifestText } from '../../../src/controller/sources/manifest-source.ts';
import { DIAGNOSTIC_CODES, type K8sObject } from '../../../src/controller/sources/types.ts';
import { l7Resources, meshResources } from '../../../src/controller/xds-resources.ts';
import { compileL7Policy } from '../../../src/waypoint/authz/compile.ts';
import { parseAddressResource, parseAuthorizationResource, parseL7Resource } from '../../../src/xds/convert.ts';
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, loadXdsProtos, type XdsProtos } from '../../../src/xds/proto.ts';
import { loadManifestCorpus, translateObjects } from '../corpus.ts';
import { expectCode, type FuzzTarget, FuzzViolation, mustNotThrow } from '../engine.ts';
import { mutatedDocument, mutatedText, nastyString } from '../mutate.ts';

const ROUTE_CODES = ['FERRY_ROUTE_INVALID', 'FERRY_ROUTE_UNRESOLVED_REF', 'FERRY_ROUTE_NO_PARENT'];
const L7_POLICY_CODES = ['FERRY_L7_POLICY_INVALID', 'FERRY_L7_POLICY_UNSUPPORTED'];

const refOf = (o: K8sObject) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;

/** Checks what the controller would publish for `objects`: its consumers must accept all of it. */
export function checkPublished(protos: XdsProtos, objects: readonly K8sObject[]): void {
  const result = mustNotThrow('translateCluster', () => translateObjects(objects));
  for (const d of result.diagnostics) expectCode(d.code, DIAGNOSTIC_CODES, 'translate diagnostic');
  const resources = mustNotThrow('meshResources', () => meshResources(protos, result.config));
  for (const [typeUrl, map] of resources) {
    for (const [name, res] of map) {
      const parsed =
        typeUrl === ADDRESS_TYPE_URL
          ? mustNotThrow('parseAddressResource', () => parseAddressResource(protos, name, res.value))
          : typeUrl === AUTHORIZATION_TYPE_URL
            ? mustNotThrow('parseAuthorizationResource', () => parseAuthorizationResource(protos, name, res.value))
            : null;
      if (parsed !== null && !parsed.ok) {
        throw new FuzzViolation(`the ztunnel would NACK what the controller publishes: ${parsed.error.message}`);
      }
    }
  }
  for (const [name, res] of mustNotThrow('l7Resources', () => l7Resources(protos, result.l7))) {
    const parsed = mustNotThrow('parseL7Resource', () => parseL7Resource(protos, name, res.value));
    if (!parsed.ok)
      throw new FuzzViolation(`the waypoint would NACK what the controller publishes: ${parsed.error.message}`);
    const v = parsed.value;
    if (v.kind === 'HTTPRoute' || v.kind === 'GRPCRoute' || v.kind === 'TCPRoute') {
      const kind = v.kind;
      const compiled = mustNotThrow('compileOne', () =>
        compileOne(kind, v.input, {
          service: () => ({ ports: [{ port: 80, name: 'http', appProtocol: null }] }),
          isWaypointGateway: () => true,
          referenceGrantAllows: () => false,
        }),
      );
      for (const p of compiled.problems) expectCode(p.code, ROUTE_CODES, `compile ${kind} problem`);
    } else if (v.kind === 'AuthorizationPolicy') {
      const compiled = mustNotThrow('compileL7Policy', () => compileL7Policy(v.input));
      for (const p of compiled.problems) expectCode(p.code, L7_POLICY_CODES, 'compileL7Policy problem');
    }
  }
}

export const manifestsTarget: FuzzTarget = {
  name: 'manifests',
  kind: 'pure',
  what: 'manifest parsing (YAML → objects), translation, and the controller output round trip (xDS, L7)',
  hangMs: 10_000,
  async start() {
    const corpus = await loadManifestCorpus();
    const protos = await loadXdsProtos();
    const docs = fc.tuple(
      mutatedDocument(corpus.documents, 3),
      fc.array(fc.constantFrom(...corpus.documents), { maxLength: 2 }),
    );
    const text = fc.oneof(
      { weight: 5, arbitrary: docs.map(([m, extra]) => [m, ...extra].map((d) => stringify(d)).join('---\n')) },
      { weight: 1, arbitrary: docs.map(([m]) => JSON.stringify(m) ?? 'null') },
      { weight: 3, arbitrary: mutatedText(fc.constantFrom(...corpus.texts), 4) },
      {
        weight: 1,
        arbitrary: fc.oneof(
          nastyString,
          fc.constantFrom(
            'a: &a [*a]',
            '- &x\n  - *x',
            '{',
            '!!binary xx',
            'kind: List\nitems: [1, null, {kind: Pod}]',
          ),
          fc.string({ maxLength: 200 }),
        ),
      },
    );
    return {
      sync: true,
      arbitrary: text,
      run(input: string) {
        const parsed = mustNotThrow('parseManifestText', () =>
          parseManifestText(input, 'fuzz.yaml', { defaultNamespace: 'default', firstSequence: 10_000 }),
        );
        for (const d of parsed.diagnostics) expectCode(d.code, DIAGNOSTIC_CODES, 'manifest diagnostic');
        if (parsed.objects.length === 0) return;
        // The new objects replace the example objects of the same name, as `ferry apply` would.
        const replaced = new Set(parsed.objects.map(refOf));
        checkPublished(protos, [...corpus.objects.filter((o) => !replaced.has(refOf(o))), ...parsed.objects]);
      },
      async close() {},
    };
  },
};
