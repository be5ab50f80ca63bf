// Errors of `ferry migrate` (docs/errors.md "Migration"): input that cannot be read at all. Problems inside
// the input (bad YAML, invalid objects) are findings of the plan, not errors.
import { FerryError } from '../errors.ts';

export type MigrateErrorCode =
  | 'FERRY_MIGRATE_READ_FAILED' // a -f path cannot be read
  | 'FERRY_MIGRATE_KUBE_FAILED' // the Kubernetes API could not be read (kubeconfig, connection, permissions)
  | 'FERRY_MIGRATE_WRITE_FAILED'; // the -o directory cannot be written

export class MigrateError extends FerryError<MigrateErrorCode> {}
