// Errors of the local-mode controller and the CLI commands that talk to it (`ferry controller`, `up -f`,
// `status`, `apply`, `delete`, `label`, `logs`). One code union, one class; callers branch on `code`.
import { FerryError } from '../../errors.ts';

export const LOCAL_CONTROLLER_ERROR_CODES = [
  'FERRY_LOCAL_NOT_FOUND', // no mesh state for this cluster (not started with `ferry up -f`)
  'FERRY_LOCAL_BAD_STATE', // a state file (mesh.json, vips.json, controller-state.json, …) is malformed or damaged
  'FERRY_LOCAL_STATE_WRITE_FAILED', // the controller could not make a change durable: the change was not applied
  'FERRY_LOCAL_CONTROLLER_UNREACHABLE', // the controller's admin API did not answer (is it running?)
  'FERRY_LOCAL_BAD_REQUEST', // a request to the controller admin API was invalid (label syntax, unknown object)
  'FERRY_LOCAL_NOT_READY', // `ferry up` timed out waiting for ztunnels to be ready or pods to be enrolled
  'FERRY_LOCAL_BAD_MANIFESTS', // `ferry up -f`: the manifests have errors; nothing was created
] as const;

export type LocalControllerErrorCode = (typeof LOCAL_CONTROLLER_ERROR_CODES)[number];

export class LocalControllerError extends FerryError<LocalControllerErrorCode> {}
