// Errors of the ztunnel's node agent (enrollment decided from the Kubernetes API). One code union, one
// class; every code is listed in docs/errors.md. A pod that cannot be located is reported and retried,
// never fatal to the agent.
import { FerryError } from '../../errors.ts';

export const NODE_AGENT_ERROR_CODES = [
  'FERRY_NODE_AGENT_BAD_POD_UID', // a pod uid that is not a safe cgroup path component (letters, digits, -)
  'FERRY_NODE_AGENT_POD_NOT_FOUND', // no cgroup of the pod under the cgroup root (not started yet, or another layout)
  'FERRY_NODE_AGENT_NO_PROCESS', // the pod's cgroup has no process yet, so its network namespace is unknown
  'FERRY_NODE_AGENT_CGROUP_V1', // the pod is only in a cgroup v1 hierarchy: the BPF redirector needs cgroup v2
  'FERRY_NODE_AGENT_NO_CGROUP_ROOT', // no --cgroup-root and neither kubepods.slice nor kubepods under the cgroup2 mount
] as const;

export type NodeAgentErrorCode = (typeof NODE_AGENT_ERROR_CODES)[number];

export class NodeAgentError extends FerryError<NodeAgentErrorCode> {}
