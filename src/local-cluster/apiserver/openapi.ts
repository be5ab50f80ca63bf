// Minimal OpenAPI documents. kubectl reads /openapi/v3 to decide how to validate (`--validate`, default
// strict): when a resource's PATCH/POST/PUT operations list the `fieldValidation` query parameter, kubectl
// leaves field validation to the server instead of downloading full schemas, so each group version lists
// its paths with that parameter and `x-kubernetes-group-version-kind`, and an open object schema per kind.
// /openapi/v2 is served as an empty (valid) Swagger document. Pure.
import { createHash } from 'node:crypto';
import { apiVersionOf, type ResourceRegistry, type ResourceType } from './resources.ts';

export function openApiV2(_registry: ResourceRegistry): object {
  return { swagger: '2.0', info: { title: 'Kubernetes', version: 'v1.34.0' }, paths: {}, definitions: {} };
}

function gvPath(t: { group: string; version: string }): string {
  return t.group === '' ? `api/${t.version}` : `apis/${t.group}/${t.version}`;
}

export function openApiV3Root(registry: ResourceRegistry): object {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const t of registry.all()) {
    const p = gvPath(t);
    if (paths[p] !== undefined) continue;
    const hash = createHash('sha256')
      .update(JSON.stringify(openApiV3Gv(registry, t.group, t.version)))
      .digest('hex')
      .slice(0, 32);
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` };
  }
  return { paths };
}

const FIELD_VALIDATION = {
  name: 'fieldValidation',
  in: 'query',
  description: 'Ignore, Warn or Strict: how unknown or duplicate fields are treated.',
  schema: { type: 'string', uniqueItems: true },
};

function schemaName(t: ResourceType): string {
  return `${t.group === '' ? 'io.k8s.api.core' : t.group}.${t.version}.${t.kind}`;
}

export function openApiV3Gv(registry: ResourceRegistry, group: string, version: string): object | null {
  const types = registry.all().filter((t) => t.group === group && t.version === version && !t.virtual);
  if (types.length === 0 && !registry.all().some((t) => t.group === group && t.version === version)) return null;
  const paths: Record<string, object> = {};
  const schemas: Record<string, object> = {};
  for (const t of types) {
    const gvk = { group: t.group, version: t.version, kind: t.kind };
    const ref = { $ref: `#/components/schemas/${schemaName(t)}` };
    const body = { content: { 'application/json': { schema: ref } } };
    const ok = { '200': { description: 'OK', content: { 'application/json': { schema: ref } } } };
    const op = (verb: string, extra: object = {}): object => ({
      operationId: `${verb}${t.kind}`,
      'x-kubernetes-action': verb,
      'x-kubernetes-group-version-kind': gvk,
      responses: ok,
      ...extra,
    });
    const base = `/${gvPath(t)}${t.namespaced ? '/namespaces/{namespace}' : ''}/${t.resource}`;
    paths[base] = {
      get: op('list'),
      post: op('post', { parameters: [FIELD_VALIDATION], requestBody: body }),
    };
    paths[`${base}/{name}`] = {
      get: op('get'),
      put: op('put', { parameters: [FIELD_VALIDATION], requestBody: body }),
      patch: op('patch', {
        parameters: [FIELD_VALIDATION],
        requestBody: { content: { 'application/merge-patch+json': { schema: { type: 'object' } } } },
      }),
      delete: op('delete'),
    };
    schemas[schemaName(t)] = {
      type: 'object',
      'x-kubernetes-group-version-kind': [gvk],
      'x-kubernetes-preserve-unknown-fields': true,
      properties: { apiVersion: { type: 'string', enum: [apiVersionOf(t)] }, kind: { type: 'string' } },
    };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: 'v1.34.0' },
    paths,
    components: { schemas },
  };
}
