// Request bodies of the local API server: read with a size cap (413), decoded from JSON, YAML or the little
// protobuf kubectl's generators send (protobuf.ts), refused when nested too deep (400), and the patch type
// named by the Content-Type. Throws ApiErrors; never buffers more than the cap.
import type { IncomingMessage } from 'node:http';
import { parse as parseYaml } from 'yaml';
import type { PatchType } from './handlers.ts';
import { decodeProtobufBody } from './protobuf.ts';
import { badRequest, failure } from './status.ts';

export function patchTypeOf(contentType: string | undefined): PatchType {
  const ct = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
  switch (ct) {
    case 'application/merge-patch+json':
      return 'merge';
    case 'application/strategic-merge-patch+json':
      return 'strategic';
    case 'application/json-patch+json':
      return 'json';
    case 'application/apply-patch+yaml':
    case 'application/apply-patch+cbor':
      return 'apply';
    default:
      throw failure(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got ${JSON.stringify(ct)})`,
      );
  }
}

/** Reads and decodes the body (JSON, or YAML when sent as such), refusing more than `max` bytes with 413. */
export async function readBody(
  req: IncomingMessage,
  max: number,
  purpose: 'create' | 'update' | 'patch' | 'apply' | 'delete',
): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > max) {
    req.resume();
    throw failure(413, 'RequestEntityTooLarge', `the request body is larger than ${max} bytes`);
  }
  const chunks: Buffer[] = [];
  const tooLarge = await new Promise<boolean>((resolve, reject) => {
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        resolve(true);
      } else chunks.push(chunk);
    });
    req.once('end', () => resolve(false));
    req.once('error', reject);
  });
  if (tooLarge) throw failure(413, 'RequestEntityTooLarge', `the request body is larger than ${max} bytes`);
  const raw = Buffer.concat(chunks);
  const ctRaw = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (ctRaw === 'application/vnd.kubernetes.protobuf' && purpose !== 'apply') {
    if (purpose !== 'create')
      throw failure(415, 'UnsupportedMediaType', `protobuf is accepted only to create objects; send application/json`);
    return decodeProtobufBody(raw);
  }
  const text = raw.toString('utf8');
  if (text.trim() === '') {
    if (purpose === 'delete') return null;
    throw badRequest('the request body is empty');
  }
  const ct = (req.headers['content-type'] ?? 'application/json').split(';')[0]?.trim().toLowerCase() ?? '';
  if (purpose === 'apply') return null; // refused with 415 by the patch handler
  if (ct.includes('protobuf') || ct.includes('cbor')) {
    throw failure(415, 'UnsupportedMediaType', `${ct} is not supported; send application/json or application/yaml`);
  }
  if (ct === 'application/yaml' || ct === 'application/x-yaml' || ct === 'text/yaml') {
    try {
      return withinDepth(parseYaml(text, { maxAliasCount: 100 }) as unknown);
    } catch (err) {
      throw badRequest(`the request body is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (err) {
    throw badRequest(`the request body is not valid JSON: ${(err as Error).message}`);
  }
  return withinDepth(value);
}

const MAX_BODY_DEPTH = 64; // Kubernetes objects nest far less; deeper input only aims at recursion limits

/** Refuses documents nested deeper than MAX_BODY_DEPTH (checked without recursion). */
function withinDepth(value: unknown): unknown {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= MAX_BODY_DEPTH) throw badRequest(`the request body is nested deeper than ${MAX_BODY_DEPTH} levels`);
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return value;
}
