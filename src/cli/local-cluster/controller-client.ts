// How the CLI (`ferry status/apply/delete/label`, `ferry up`) talks to a running local controller: its admin
// API address comes from the cluster's mesh.json. Transport failures become FERRY_LOCAL_CONTROLLER_UNREACHABLE
// (with the `ferry logs controller` hint); 4xx replies carrying a FERRY_* code are rethrown with that code.
import { LOCAL_CONTROLLER_ERROR_CODES, LocalControllerError } from '../../controller/local/errors.ts';
import { readMeshConfig } from '../../controller/local/mesh-files.ts';

/** A JSON request to the controller admin API; resolves with the parsed reply body. */
export async function controllerRequest(
  stateDir: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs = 60_000,
): Promise<unknown> {
  const config = await readMeshConfig(stateDir);
  const url = `http://${config.controller.admin}${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      signal: AbortSignal.timeout(timeoutMs),
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
  } catch (err) {
    throw new LocalControllerError(
      'FERRY_LOCAL_CONTROLLER_UNREACHABLE',
      `the controller of cluster ${config.cluster} does not answer at ${config.controller.admin} (${(err as Error).message}); see: ferry logs controller --cluster ${config.cluster}`,
      { cause: err },
    );
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // plain-text reply (errors from the HTTP layer)
  }
  if (!res.ok) {
    const o = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
    const code = (LOCAL_CONTROLLER_ERROR_CODES as readonly unknown[]).includes(o.code)
      ? (o.code as LocalControllerError['code'])
      : 'FERRY_LOCAL_BAD_REQUEST';
    throw new LocalControllerError(code, typeof o.error === 'string' ? o.error : `HTTP ${res.status}: ${text.trim()}`);
  }
  return parsed;
}
