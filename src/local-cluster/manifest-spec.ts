// Manifests → the runtime's ClusterSpec for `ferry up -f`: the pods the controller's translation asks for
// (Pods, and `<deployment>-<i>` replicas; listPods), each placed on `spec.nodeName` (`node-<n>`) when set,
// else round-robin in pod-key order (so a Deployment's replicas spread over the nodes), with containers
// mapped 1:1 (image, command, args, containerPorts). Pure: no I/O; diagnostics are the caller's to print.
import type { PodInstance } from '../controller/translate/types.ts';
import { FERRY_SIDECAR_IMAGE, SIDECAR_CONTAINER } from '../mesh/sidecar-injection.ts';
import { ClusterError } from './errors.ts';
import type { ClusterSpec, ContainerSpec, PodSpec } from './layout.ts';

/** Places pods on `nodes` nodes; FERRY_CLUSTER_INVALID_SPEC when a nodeName is not `node-<n>` in range. */
export function clusterSpecFromPods(name: string, nodes: number, pods: readonly PodInstance[]): ClusterSpec {
  let spread = 0;
  const out: PodSpec[] = pods.map((p) => {
    const pinned = p.spec.nodeName;
    let node: number;
    if (pinned === undefined) {
      node = spread++ % nodes;
    } else {
      const m = /^node-(\d{1,3})$/.exec(pinned);
      node = m === null ? -1 : Number(m[1]);
      if (node < 0 || node >= nodes) {
        throw new ClusterError(
          'FERRY_CLUSTER_INVALID_SPEC',
          `pod ${p.key}: spec.nodeName ${JSON.stringify(pinned)} is not one of node-0..node-${nodes - 1} (--nodes ${nodes})`,
        );
      }
    }
    // Ferry's injected proxy is no image to run here: `ferry up` starts it after the controller (sidecars.ts).
    const isFerrySidecar = (c: { name: string; image: string }) =>
      c.name === SIDECAR_CONTAINER && c.image === FERRY_SIDECAR_IMAGE;
    return {
      namespace: p.namespace,
      name: p.name,
      node,
      labels: Object.fromEntries(p.labels),
      ...(p.spec.containers.some(isFerrySidecar) ? { sidecar: true } : {}),
      containers: p.spec.containers
        .filter((c) => !isFerrySidecar(c))
        .map((c): ContainerSpec => {
          const ports = c.ports.filter((cp) => cp.protocol === 'TCP').map((cp) => cp.containerPort);
          return {
            name: c.name,
            ...(c.image === '' ? {} : { image: c.image }),
            ...(c.command.length === 0 ? {} : { command: c.command }),
            ...(c.args.length === 0 ? {} : { args: c.args }),
            ...(ports.length === 0 ? {} : { ports }),
          };
        }),
    };
  });
  return { name, nodes, pods: out };
}
