// The BPF redirector's per-CPU counters as Prometheus series on the ztunnel's registry, read (summed over
// CPUs) on every scrape, plus the number of pods this ztunnel serves in-pod.
import type { RedirectCounters } from '../redirect-bpf/index.ts';
import type { ZtunnelMetrics } from './metrics.ts';

const COUNTERS: ReadonlyArray<{ key: keyof RedirectCounters; name: string; help: string }> = [
  {
    key: 'outboundRedirected',
    name: 'ferry_redirect_outbound_redirected_total',
    help: 'Connects of enrolled pods redirected to the in-pod 15001 listener',
  },
  {
    key: 'outboundBypassed',
    name: 'ferry_redirect_outbound_bypassed_total',
    help: 'Connects of enrolled pods left alone (loopback, own IP, ztunnel or excluded ports and CIDRs)',
  },
  {
    key: 'inboundSteered',
    name: 'ferry_redirect_inbound_steered_total',
    help: 'Inbound SYNs to enrolled pods steered to the in-pod 15006 listener',
  },
  {
    key: 'inboundBypassed',
    name: 'ferry_redirect_inbound_bypassed_total',
    help: 'Inbound SYNs to enrolled pods left alone (127.0.0.6, probe CIDRs, excluded ports, other ztunnel ports)',
  },
  {
    key: 'lookupsMissed',
    name: 'ferry_redirect_lookups_missed_total',
    help: 'SYNs to enrolled pods refused: no ztunnel listener (15006, 15001, 15008) registered for the pod',
  },
  {
    key: 'outboundRefused',
    name: 'ferry_redirect_outbound_refused_total',
    help: 'Connects refused by the fail-closed guard: a pod not enrolled yet nor exempted by the node agent',
  },
];

export function registerRedirectMetrics(
  metrics: ZtunnelMetrics,
  redirector: { readCounters(): RedirectCounters },
  enrolledPods: () => number,
): void {
  for (const c of COUNTERS) {
    metrics.addCollector({
      name: c.name,
      help: c.help,
      kind: 'counter',
      collect: () => {
        try {
          return [{ value: Number(redirector.readCounters()[c.key]) }];
        } catch {
          return []; // redirector closed (shutting down): no sample rather than a failed scrape
        }
      },
    });
  }
  metrics.addCollector({
    name: 'ferry_inpod_enrolled_pods',
    help: 'Pods this ztunnel serves in-pod (enrolled through the BPF redirector)',
    kind: 'gauge',
    collect: () => [{ value: enrolledPods() }],
  });
}
