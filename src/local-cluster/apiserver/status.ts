// Kubernetes-shaped failures: every refusal the API server sends is a `Status` object (apiVersion v1,
// status Failure, reason, code, details) as the real kube-apiserver sends it, so that kubectl and client
// libraries print and branch on them as they do against a real cluster. Pure: builds values, never throws.

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Invalid'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'UnsupportedMediaType'
  | 'RequestEntityTooLarge'
  | 'TooManyRequests'
  | 'Expired'
  | 'Gone'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'Timeout';

export interface StatusCause {
  readonly reason: string;
  readonly message: string;
  readonly field: string;
}

export interface StatusDetails {
  readonly name?: string;
  readonly group?: string;
  readonly kind?: string;
  readonly causes?: readonly StatusCause[];
  readonly retryAfterSeconds?: number;
}

export interface K8sStatus {
  readonly kind: 'Status';
  readonly apiVersion: 'v1';
  readonly metadata: Record<string, never>;
  readonly status: 'Failure' | 'Success';
  readonly message: string;
  readonly reason: StatusReason | '';
  readonly details?: StatusDetails;
  readonly code: number;
}

/** A refusal carried from deep inside a handler to the HTTP edge, which sends `status` with `status.code`. */
export class ApiError extends Error {
  readonly status: K8sStatus;
  constructor(status: K8sStatus) {
    super(status.message);
    this.name = 'ApiError';
    this.status = status;
  }
}

export function failure(code: number, reason: StatusReason, message: string, details?: StatusDetails): ApiError {
  const status: K8sStatus = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details === undefined ? {} : { details }),
    code,
  };
  return new ApiError(status);
}

/** `pods "web" not found` (the resource is the plural, qualified by group: `deployments.apps`). */
export function notFound(qualifiedResource: string, name: string, group: string, kind: string): ApiError {
  return failure(404, 'NotFound', `${qualifiedResource} "${name}" not found`, { name, group, kind: kind });
}

export function alreadyExists(qualifiedResource: string, name: string, group: string, kind: string): ApiError {
  return failure(409, 'AlreadyExists', `${qualifiedResource} "${name}" already exists`, { name, group, kind });
}

export function conflict(qualifiedResource: string, name: string, group: string, kind: string, why: string): ApiError {
  return failure(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource} "${name}": ${why}`, {
    name,
    group,
    kind,
  });
}

/** 422 with one cause per field, message formatted as the real server does (`Kind "name" is invalid: f: msg`). */
export function invalid(kind: string, group: string, name: string, causes: readonly StatusCause[]): ApiError {
  const listed = causes.map((c) => (c.field === '' ? c.message : `${c.field}: ${c.message}`));
  const summary = listed.length === 1 ? (listed[0] ?? '') : `[${listed.join(', ')}]`;
  return failure(422, 'Invalid', `${kind} "${name}" is invalid: ${summary}`, { name, group, kind, causes });
}

export function badRequest(message: string): ApiError {
  return failure(400, 'BadRequest', message);
}

export function expired(message: string): ApiError {
  return failure(410, 'Expired', message);
}

export function internalError(message: string): ApiError {
  return failure(500, 'InternalError', message);
}
