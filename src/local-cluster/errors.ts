// Errors of the local cluster runtime (`ferry up/down/exec`, src/local-cluster). One code union, one
// class; callers branch on `code`. Messages name the bad value and say what the operator can do.
import { FerryError } from '../errors.ts';

export const CLUSTER_ERROR_CODES = [
  'FERRY_CLUSTER_NOT_ROOT', // `ferry up`/`down`/`exec` needs root (netns, veth, cgroups, BPF)
  'FERRY_CLUSTER_UNSUPPORTED_HOST', // a host feature check failed (kernel, cgroup2, bpffs, BPF, iproute2, nsenter)
  'FERRY_CLUSTER_INVALID_SPEC', // bad cluster name, pod spec, node index or CIDR
  'FERRY_CLUSTER_EXISTS', // state for this cluster is already on disk: run `ferry down` first
  'FERRY_CLUSTER_NOT_FOUND', // no state on disk for this cluster (nothing to exec into)
  'FERRY_CLUSTER_POD_NOT_FOUND', // `ferry exec <ns>/<pod>` names a pod the cluster does not have
  'FERRY_CLUSTER_STATE_CORRUPT', // a state journal line could not be parsed (the rest is still used)
  'FERRY_CLUSTER_UNSUPPORTED_IMAGE', // a container has an image we do not map and no command to run
  'FERRY_CLUSTER_COMMAND_FAILED', // a host command (ip, nsenter) failed while building the cluster
  'FERRY_CLUSTER_TEARDOWN_INCOMPLETE', // `ferry down` could not remove some objects (listed in the message)
  'FERRY_CLUSTER_MIGRATION_STATE_CORRUPT', // migration.json (pod phases of `ferry migrate namespace`) is damaged
  'FERRY_CLUSTER_MIGRATION_STEP_FAILED', // a step of `ferry migrate namespace|rollback` did not complete
] as const;

export type ClusterErrorCode = (typeof CLUSTER_ERROR_CODES)[number];

export class ClusterError extends FerryError<ClusterErrorCode> {}
