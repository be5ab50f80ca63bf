// The logging surface identity modules need: a subset of src/runtime/logger.ts's Logger (and of pino), so
// the CA and the certificate manager can run with any of them, or silently when none is given.
export interface IdentityLog {
  info(fields: Readonly<Record<string, unknown>>, msg: string): void;
  warn(fields: Readonly<Record<string, unknown>>, msg: string): void;
  error(fields: Readonly<Record<string, unknown>>, msg: string): void;
}

export const SILENT_LOG: IdentityLog = { info() {}, warn() {}, error() {} };
