// How the CLI (`ferry status/apply/delete/label`, `ferry up`) talks to a running local controller: over its
// admin socket, `<stateDir>/controller-admin.sock` (0600: root only; the TCP admin address only serves
// reads). Transport failures become FERRY_LOCAL_CONTROLLER_UNREACHABLE (with the `ferry logs controller`
// hint, or "run as root" when the socket refused us); 4xx replies carrying a FERRY_* code are rethrown
// with that code.

import { type AdminReply, adminSocketRequest } from '../runtime/admin-socket.ts';
import { LOCAL_CONTROLLER_ERROR_CODES, LocalControllerError } from './controller/errors.ts';
import { adminSocketPath, readMeshConfig } from './controller/mesh-files.ts';

/** A JSON request to the controller admin API; resolves with the parsed reply body. */
export async function controllerRequest(
  stateDir: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs = 60_000,
): Promise<unknown> {
  const config = await readMeshConfig(stateDir);
  const socket = adminSocketPath(stateDir, 'controller');
  let res: AdminReply;
  try {
    res = await adminSocketRequest(socket, method, path, { body, timeoutMs });
  } catch (err) {
    const denied = (err as NodeJS.ErrnoException).code === 'EACCES';
    throw new LocalControllerError(
      'FERRY_LOCAL_CONTROLLER_UNREACHABLE',
      denied
        ? `permission denied on the controller's admin socket ${socket}: it is root only (run as root)`
        : `the controller of cluster ${config.cluster} does not answer at ${socket} (${(err as Error).message}); see: ferry logs controller --cluster ${config.cluster}`,
      { cause: err },
    );
  }
  const text = res.text;
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // plain-text reply (errors from the HTTP layer)
  }
  if (res.status < 200 || res.status > 299) {
    const o = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
    const code = (LOCAL_CONTROLLER_ERROR_CODES as readonly unknown[]).includes(o.code)
      ? (o.code as LocalControllerError['code'])
      : 'FERRY_LOCAL_BAD_REQUEST';
    throw new LocalControllerError(code, typeof o.error === 'string' ? o.error : `HTTP ${res.status}: ${text.trim()}`);
  }
  return parsed;
}
