// Seed inputs for the structure-aware targets: the repository's own manifests (examples/, the controller
// fixtures) as text and as decoded documents, and the xDS resources the controller makes from them. Read
// once per process; the fuzz targets mutate copies.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseManifestText } from '../../src/controller/sources/manifest-source.ts';
import { buildClusterState, type ClusterState, type K8sObject } from '../../src/controller/sources/types.ts';
import { listPods, type TranslateInputs, translateCluster } from '../../src/controller/translate/translate.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const MANIFEST_DIRS = ['examples', 'test/fixtures/controller'];

export interface ManifestCorpus {
  /** Whole files as written. */
  readonly texts: readonly string[];
  /** Every document of those files, decoded. */
  readonly documents: readonly unknown[];
  /** The valid objects of all files: the cluster a mutated object joins. */
  readonly objects: readonly K8sObject[];
}

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await yamlFiles(path)));
    else if (/\.ya?ml$/.test(entry.name)) out.push(path);
  }
  return out.sort();
}

export async function loadManifestCorpus(): Promise<ManifestCorpus> {
  const texts: string[] = [];
  const documents: unknown[] = [];
  const objects = new Map<string, K8sObject>();
  for (const dir of MANIFEST_DIRS) {
    for (const file of await yamlFiles(dir)) {
      const text = await readFile(join(ROOT, file), 'utf8');
      texts.push(text);
      for (const doc of parseAllDocuments(text)) {
        const value: unknown = doc.toJS();
        if (typeof value === 'object' && value !== null) documents.push(value);
      }
      const parsed = parseManifestText(text, file, { defaultNamespace: 'default', firstSequence: objects.size });
      for (const o of parsed.objects) objects.set(`${o.kind}/${o.metadata.namespace}/${o.metadata.name}`, o);
    }
  }
  return { texts, documents, objects: [...objects.values()] };
}

/** Pod IPs and Service VIPs for a cluster, as the local cluster would assign them (deterministic). */
export function placeCluster(state: ClusterState): TranslateInputs {
  const placement = new Map<string, { ip: string; node: string }>();
  listPods(state).forEach((p, i) => {
    placement.set(p.key, {
      ip: `10.244.${(i >> 8) & 0xff}.${(i & 0xff) + 1}`,
      node: i % 2 === 0 ? 'node-a' : 'node-b',
    });
  });
  const vips = new Map<string, string>();
  state.services.forEach((s, i) => {
    vips.set(`${s.metadata.namespace}/${s.metadata.name}`, `10.96.${(i >> 8) & 0xff}.${(i & 0xff) + 1}`);
  });
  return { placement, vips };
}

/** Translates the objects as the controller would. */
export function translateObjects(objects: readonly K8sObject[]) {
  const state = buildClusterState(objects);
  return translateCluster(state, placeCluster(state));
}
