// Fuzz target `xds` (pure): the ztunnel's and waypoint's xDS resource conversion (src/xds/convert.ts)
// on the resources the controller makes from the repository's manifests: bytes damaged, decoded messages
// with random values planted in fields and re-encoded, and arbitrary bytes. Every body goes through all
// three parsers (Address, Authorization, L7Resource). Contract: never throws; a refusal is
// FERRY_XDS_RESOURCE_REJECTED naming the resource.
import fc from 'fast-check';
import { l7Resources, meshResources } from '../../../src/controller/xds-resources.ts';
import { parseAddressResource, parseAuthorizationResource, parseL7Resource } from '../../../src/xds/convert.ts';
import { decodeMessage, encodeMessage, loadXdsProtos, type XdsProtos } from '../../../src/xds/proto.ts';
import { loadManifestCorpus, translateObjects } from '../corpus.ts';
import { expectCode, type FuzzTarget, FuzzViolation, mustNotThrow } from '../engine.ts';
import { mutatedBytes, mutatedDocument } from '../mutate.ts';

type MessageKind = 'address' | 'authorization' | 'l7';

function checkAll(protos: XdsProtos, bytes: Uint8Array): void {
  const results = [
    mustNotThrow('parseAddressResource', () => parseAddressResource(protos, 'fuzz', bytes)),
    mustNotThrow('parseAuthorizationResource', () => parseAuthorizationResource(protos, 'fuzz', bytes)),
    mustNotThrow('parseL7Resource', () => parseL7Resource(protos, 'fuzz', bytes)),
  ];
  for (const r of results) {
    if (r.ok) continue;
    expectCode(r.error.code, ['FERRY_XDS_RESOURCE_REJECTED'], 'xDS conversion');
    if (r.error.resource !== 'fuzz') throw new FuzzViolation(`refusal names resource ${r.error.resource}`);
  }
}

export const xdsTarget: FuzzTarget = {
  name: 'xds',
  kind: 'pure',
  what: 'xDS resource conversion: istio.workload.Address, istio.security.Authorization, ferry L7Resource',
  hangMs: 5_000,
  async start() {
    const protos = await loadXdsProtos();
    const corpus = await loadManifestCorpus();
    const result = translateObjects(corpus.objects);
    const bodies: { kind: MessageKind; bytes: Uint8Array }[] = [];
    for (const [typeUrl, map] of meshResources(protos, result.config)) {
      const kind: MessageKind = typeUrl.endsWith('Address') ? 'address' : 'authorization';
      for (const res of map.values()) bodies.push({ kind, bytes: res.value });
    }
    for (const res of l7Resources(protos, result.l7).values()) bodies.push({ kind: 'l7', bytes: res.value });
    const typeOf = (k: MessageKind) => protos[k];
    const decoded = bodies.map((b) => ({ kind: b.kind, doc: decodeMessage(typeOf(b.kind), b.bytes) }));
    const reencoded = fc.constantFrom(...(['address', 'authorization', 'l7'] as const)).chain((kind) => {
      const docs = decoded.filter((d) => d.kind === kind).map((d) => d.doc);
      return mutatedDocument(docs.length > 0 ? docs : [{}], 3).map((doc) => {
        try {
          return encodeMessage(typeOf(kind), doc);
        } catch {
          return Buffer.alloc(0); // protobufjs cannot encode that shape: not a wire input
        }
      });
    });
    const bytes = fc.constantFrom(...bodies.map((b) => b.bytes));
    return {
      sync: true,
      arbitrary: fc.oneof(
        { weight: 4, arbitrary: mutatedBytes(bytes, 4) },
        { weight: 4, arbitrary: reencoded },
        { weight: 1, arbitrary: bytes },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }) },
      ),
      run: (input: Uint8Array) => checkAll(protos, input),
      async close() {},
    };
  },
};
