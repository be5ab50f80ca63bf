// Errors of the Kubernetes API boundary (kubeconfig, HTTP requests, responses). One code union, one class;
// callers branch on `code` and, for request failures, on the HTTP `status` the API server answered.
import { FerryError } from '../errors.ts';

export type KubeErrorCode =
  | 'FERRY_KUBE_CONFIG'
  | 'FERRY_KUBE_REQUEST_FAILED'
  | 'FERRY_KUBE_BAD_RESPONSE'
  | 'FERRY_KUBE_KIND_NOT_SERVED'
  | 'FERRY_KUBE_BAD_OBJECT';

export class KubeError extends FerryError<KubeErrorCode> {
  /** HTTP status of a failed request (0: no answer: connection refused, reset, timed out). */
  readonly status: number;
  /** The API server's `Status.reason` (NotFound, Conflict, Gone, …) when it sent one. */
  readonly reason: string;

  constructor(code: KubeErrorCode, message: string, opts: { status?: number; reason?: string; cause?: unknown } = {}) {
    super(code, message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.status = opts.status ?? 0;
    this.reason = opts.reason ?? '';
  }
}
