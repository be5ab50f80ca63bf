// Errors of the process runtime (servers, drain, logging). One code union, one class; callers branch on
// `code`, never on message text. Every code is listed in docs/errors.md.
import { FerryError } from '../errors.ts';

export const RUNTIME_ERROR_CODES = [
  'FERRY_RUNTIME_LISTEN_FAILED', // a metrics/readiness/admin server could not bind its address
  'FERRY_RUNTIME_ALREADY_STARTED', // start() called on a server that is already listening or closed
  'FERRY_RUNTIME_INVALID_LOG_LEVEL', // a log level name that is not one of LOG_LEVELS
  'FERRY_RUNTIME_DRAINING', // abort reason of the drain signal: the process stops accepting new work
  'FERRY_RUNTIME_DRAIN_DEADLINE', // abort reason of the force signal: the drain deadline passed (or immediate drain)
  'FERRY_RUNTIME_DRAINED', // track() after the drain completed: no work may start any more
] as const;

export type RuntimeErrorCode = (typeof RUNTIME_ERROR_CODES)[number];

export class RuntimeError extends FerryError<RuntimeErrorCode> {}
