// Errors of the local API server process itself (not the Status answers it sends: status.ts). One code
// union, one class; every code is listed in docs/errors.md.

export const APISERVER_ERROR_CODES = [
  'FERRY_APISERVER_WAL_CORRUPT', // the write-ahead log or snapshot is damaged somewhere other than a torn tail
  'FERRY_APISERVER_WAL_FAILED', // appending to or syncing the write-ahead log failed: writes are refused
  'FERRY_APISERVER_BAD_OPTION', // startApiServer or `ferry apiserver` got an invalid option
] as const;

export type ApiServerErrorCode = (typeof APISERVER_ERROR_CODES)[number];

export class ApiServerError extends Error {
  readonly code: ApiServerErrorCode;
  constructor(code: ApiServerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ApiServerError';
    this.code = code;
  }
}
