// Shared helpers for the gateway-api tables: a cluster with a few Services, and a route compiler.
import { type CompileContext, compileHttpRoute } from '../../gateway-api/compile.ts';
import { buildRouteTables } from '../../gateway-api/route-table.ts';
import type { CompiledRoute, RequestView } from '../../gateway-api/types.ts';

const SERVICES: Record<string, { port: number; name: string | null; appProtocol: string | null }[]> = {
  'default/echo': [
    { port: 80, name: 'http', appProtocol: 'http' },
    { port: 9000, name: 'raw', appProtocol: 'tcp' },
  ],
  'default/echo-v1': [{ port: 80, name: 'http', appProtocol: null }],
  'default/echo-v2': [{ port: 80, name: 'http', appProtocol: null }],
  'default/echo-v3': [{ port: 80, name: 'http', appProtocol: null }],
  'other/remote': [{ port: 80, name: 'http', appProtocol: null }],
};

export const ctx: CompileContext = {
  service: (ns, name) => {
    const ports = SERVICES[`${ns}/${name}`];
    return ports === undefined ? undefined : { ports };
  },
  isWaypointGateway: (ns, name) => ns === 'default' && name === 'waypoint',
  referenceGrantAllows: (from, to, name) => from === 'default' && to === 'other' && name === 'granted',
};

export const echoParent = { group: '', kind: 'Service', name: 'echo', port: 80 };

export function compile(spec: unknown, name = 'r', sequence = 0, creationTimestampMs: number | null = null) {
  return compileHttpRoute({ namespace: 'default', name, sequence, creationTimestampMs, spec }, ctx);
}

export function route(spec: Record<string, unknown>, name = 'r', sequence = 0): CompiledRoute {
  const out = compile({ parentRefs: [echoParent], ...spec }, name, sequence);
  if (out.route === null) throw new Error(`route did not compile: ${JSON.stringify(out.problems)}`);
  return out.route;
}

export function table(routes: CompiledRoute[]) {
  const t = buildRouteTables(routes, { namespace: 'default', name: 'waypoint' }).forServicePort('default', 'echo', 80);
  if (t === null) throw new Error('no table');
  return t;
}

export function req(path: string, opts: { method?: string; headers?: Record<string, string> } = {}): RequestView {
  const q = path.indexOf('?');
  return {
    method: opts.method ?? 'GET',
    path: q < 0 ? path : path.slice(0, q),
    query: q < 0 ? '' : path.slice(q + 1),
    headers: new Map(Object.entries(opts.headers ?? {}).map(([k, v]) => [k.toLowerCase(), [v]])),
  };
}

export const backend = (name: string, weight = 1) => ({ name, port: 80, weight });
