// `ferry apply|delete -f` on a cluster that serves the Kubernetes API (docs/operations.md "Clusters on the
// API"): the manifests are read as `kubectl apply -f` reads them (files and directories of YAML or JSON,
// `kind: List` expanded), the kinds Ferry reads are checked by Ferry's own parser first (all or nothing:
// one error and nothing is sent, as with the file-based cluster), every other kind (Deployments, ConfigMaps,
// …) is left to the API server's validation, and the objects go through client-side apply
// (src/kube/apply.ts) in dependency order: Namespaces and CRDs first on apply, last on delete.
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { LineCounter, parseAllDocuments } from 'yaml';
import { parseK8sObject } from '../controller/sources/k8s-parse.ts';
import { type Diagnostic, formatDiagnostic } from '../controller/sources/types.ts';
import {
  type ApplyOutcome,
  applyObject,
  asManifestObject,
  deleteObject,
  describeObject,
  type ManifestObject,
} from '../kube/apply.ts';
import type { KubeClient } from '../kube/client.ts';
import type { RestMapper } from '../kube/rest-mapper.ts';
import { LocalControllerError } from './controller/errors.ts';

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;
const MAX_ALIASES = 100;
/** Kinds Ferry's parser knows: checked here before anything is sent. */
const FERRY_KINDS = new Set([
  'Namespace',
  'Pod',
  'Service',
  'ServiceAccount',
  'Node',
  'EndpointSlice',
  'AuthorizationPolicy',
  'PeerAuthentication',
  'Gateway',
  'GatewayClass',
  'HTTPRoute',
  'GRPCRoute',
  'TCPRoute',
  'ReferenceGrant',
]);
/** Applied first (and deleted last): what other objects live in or are typed by. */
const FIRST_KINDS = ['CustomResourceDefinition', 'Namespace', 'ServiceAccount'];

export interface ReadManifests {
  readonly objects: readonly ManifestObject[];
  readonly problems: readonly string[];
}

/** Every object of the files under `paths`, with Ferry's diagnostics for the kinds it reads. */
export async function readManifestObjects(paths: readonly string[]): Promise<ReadManifests> {
  const objects: ManifestObject[] = [];
  const problems: string[] = [];
  for (const file of await expandPaths(paths)) {
    const text = await readFile(file, 'utf8');
    if (text.length > MAX_MANIFEST_BYTES) {
      problems.push(`${file}: larger than ${MAX_MANIFEST_BYTES} bytes`);
      continue;
    }
    const lines = new LineCounter();
    for (const doc of parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false })) {
      const line = lines.linePos(doc.contents?.range?.[0] ?? doc.range[0]).line;
      if (doc.errors.length > 0) {
        for (const e of doc.errors) {
          problems.push(`${file}:${lines.linePos(e.pos[0]).line}: YAML syntax error: ${e.message.split('\n')[0]}`);
        }
        continue;
      }
      let value: unknown;
      try {
        value = doc.toJS({ maxAliasCount: MAX_ALIASES });
      } catch (err) {
        problems.push(`${file}:${line}: YAML error: ${(err as Error).message}`);
        continue;
      }
      if (value === null || value === undefined) continue;
      for (const item of listItems(value)) {
        const checked = checkObject(item, `${file}:${line}`);
        if (typeof checked === 'string') problems.push(checked);
        else objects.push(checked);
      }
    }
  }
  return { objects, problems };
}

function listItems(value: unknown): unknown[] {
  const v = value as { kind?: unknown; items?: unknown };
  return typeof value === 'object' && value !== null && v.kind === 'List' && Array.isArray(v.items) ? v.items : [value];
}

/** The object, or a problem line: the shape every request needs, then Ferry's own checks for its kinds. */
function checkObject(item: unknown, where: string): ManifestObject | string {
  let obj: ManifestObject;
  try {
    obj = asManifestObject(item, where);
  } catch (err) {
    return (err as Error).message;
  }
  if (!FERRY_KINDS.has(obj.kind)) return obj;
  const [file, line] = where.split(/:(?=\d+$)/);
  const parsed = parseK8sObject(item, {
    origin: { file: file ?? where, line: Number(line ?? 0) },
    sequence: 0,
    defaultNamespace: 'default',
  });
  const errors = parsed.diagnostics.filter((d: Diagnostic) => d.severity === 'error');
  return errors.length === 0 ? obj : errors.map(formatDiagnostic).join('\n');
}

async function expandPaths(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(path);
    } catch {
      throw new LocalControllerError('FERRY_LOCAL_NOT_FOUND', `no such file or directory: ${path}`);
    }
    if (!info.isDirectory()) {
      files.push(path);
      continue;
    }
    const names = (await readdir(path)).filter((n) => MANIFEST_EXTENSIONS.has(extname(n))).sort();
    files.push(...names.map((n) => join(path, n)));
  }
  return files;
}

/** Apply order: FIRST_KINDS in their order, then the rest as written. Delete: the reverse. */
export function orderForApply(objects: readonly ManifestObject[]): ManifestObject[] {
  const rank = (o: ManifestObject) => {
    const i = FIRST_KINDS.indexOf(o.kind);
    return i === -1 ? FIRST_KINDS.length : i;
  };
  return objects
    .map((o, i) => ({ o, i }))
    .sort((a, b) => rank(a.o) - rank(b.o) || a.i - b.i)
    .map((x) => x.o);
}

export type ObjectResult = { readonly object: string; readonly outcome: ApplyOutcome | 'deleted' | 'not found' };

/**
 * Applies or deletes every object (after checking all of them: nothing is sent when one is invalid). Stops
 * at the first object the API refuses, and says which were already done.
 */
export async function sendManifests(
  client: KubeClient,
  mapper: RestMapper,
  verb: 'apply' | 'delete',
  read: ReadManifests,
  out: (line: string) => void,
): Promise<ObjectResult[]> {
  if (read.problems.length > 0) {
    for (const p of read.problems) out(`  ${p}`);
    throw new LocalControllerError(
      'FERRY_LOCAL_BAD_MANIFESTS',
      `${read.problems.length} error(s) in the manifests (listed above); nothing was sent to the API`,
    );
  }
  const ordered = orderForApply(read.objects);
  if (verb === 'delete') ordered.reverse();
  const done: ObjectResult[] = [];
  for (const obj of ordered) {
    const object = describeObject(obj);
    try {
      const outcome =
        verb === 'apply'
          ? await applyObject(client, mapper, obj)
          : (await deleteObject(client, mapper, obj))
            ? 'deleted'
            : 'not found';
      done.push({ object, outcome });
      out(`${object} ${outcome}`);
    } catch (err) {
      throw new LocalControllerError(
        'FERRY_LOCAL_BAD_REQUEST',
        `${object}: ${(err as Error).message}${done.length === 0 ? '' : ` (${done.length} object(s) before it were sent)`}`,
      );
    }
  }
  return done;
}
