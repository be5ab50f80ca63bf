// Route status for people (`ferry status`) and for Kubernetes (the `status` stanza of an HTTPRoute,
// gateway.networking.k8s.io RouteParentStatus). Pure.
import type { RouteStatus } from './types.ts';

function describeParent(ref: Readonly<Record<string, string | number>>): string {
  const kind = String(ref.kind ?? 'Gateway');
  const ns = ref.namespace === undefined ? '' : `${ref.namespace}/`;
  const port = ref.port === undefined ? '' : `:${ref.port}`;
  const section = ref.sectionName === undefined ? '' : `/${ref.sectionName}`;
  return `${kind} ${ns}${ref.name}${port}${section}`;
}

/** One line per parent: `HTTPRoute ns/name  parent Service echo:80  Accepted=True  ResolvedRefs=False (BackendNotFound: ...)`. */
export function formatRouteStatus(status: RouteStatus): string[] {
  const kind = status.kind ?? 'HTTPRoute';
  if (status.parents.length === 0) return [`${kind} ${status.key}  no parent Ferry serves (not attached)`];
  return status.parents.map((p) => {
    const conds = p.conditions.map((c) =>
      c.status === 'True' && c.type !== 'PartiallyInvalid'
        ? `${c.type}=True`
        : `${c.type}=${c.status} (${c.reason}: ${c.message})`,
    );
    return `${kind} ${status.key}  parent ${describeParent(p.parentRef)}  ${conds.join('  ')}`;
  });
}

/** The Kubernetes `status` stanza; `lastTransitionTime` is the writer's to fill. */
export function routeStatusToK8s(status: RouteStatus, observedGeneration: number): Record<string, unknown> {
  return {
    parents: status.parents.map((p) => ({
      parentRef: p.parentRef,
      controllerName: p.controllerName,
      conditions: p.conditions.map((c) => ({ ...c, observedGeneration })),
    })),
  };
}
