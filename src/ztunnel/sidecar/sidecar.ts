// Sidecar mode (docs/architecture.md "Sidecar mode"): the ztunnel serving exactly one pod, as Istio's
// istio-proxy container would. Same code as the node proxy's in-pod mode (listeners 15001/15006/15008 in
// the pod netns, HBONE with the pod's certificate, L4 authorization inbound), with three differences: its
// own BPF pin root, the cgroup programs attached to the pod's application containers only (so the proxy's
// own sockets, made from the istio-proxy cgroup, are never captured), and a certificate for that pod's
// identity only. Enrolls its pod before it reports ready; the pins stay when it exits (fail closed).
// L7 for the pod's outbound HTTP (client-side routes) comes in through `outboundL7` (../outbound-l7.ts).
import type { ManagedCertificates } from '../../identity/cert-manager.ts';
import { BpfRedirector } from '../../redirect-bpf/loader.ts';
import type { LogDestination } from '../../runtime/logger.ts';
import { ConfigError } from '../../runtime/process-config.ts';
import { startZtunnel, type Ztunnel } from '../app.ts';
import type { ZtunnelConfig } from '../config.ts';
import type { OutboundL7Factory } from '../outbound-l7.ts';

export const DEFAULT_SIDECAR_PIN_ROOT = '/sys/fs/bpf/ferry-sidecar';

export interface SidecarConfig {
  /** The served workload's uid in the mesh config (e.g. Kubernetes//Pod/<ns>/<name>). */
  readonly uid: string;
  readonly netnsPath: string;
  /** The pod's cgroup (enrolled: the programs find it as the ancestor of an app container's cgroup). */
  readonly podCgroup: string;
  /** The application containers' cgroups (children of podCgroup): where connect4/connect6/sockops attach. */
  readonly appCgroups: readonly string[];
  readonly pinRoot: string;
}

export interface SidecarFlags {
  readonly sidecar?: string;
  readonly netns?: string;
  readonly 'cgroup-root'?: string;
  readonly 'app-cgroup'?: readonly string[];
  readonly 'pin-root'?: string;
}

/** Validates the sidecar flags. Throws ConfigError naming the flag. */
export function parseSidecarFlags(flags: SidecarFlags): SidecarConfig {
  const uid = flags.sidecar ?? '';
  if (uid === '') throw new ConfigError('--sidecar <workload uid> is required in sidecar mode');
  const netnsPath = absolute(flags.netns, '--netns <pod netns path>');
  const podCgroup = absolute(flags['cgroup-root'], '--cgroup-root <pod cgroup2 dir>');
  const appCgroups = (flags['app-cgroup'] ?? []).map((c) => absolute(c, '--app-cgroup <container cgroup2 dir>'));
  if (appCgroups.length === 0) throw new ConfigError('at least one --app-cgroup <container cgroup2 dir> is required');
  for (const c of appCgroups) {
    if (!c.startsWith(`${podCgroup}/`))
      throw new ConfigError(`--app-cgroup ${c} is not inside --cgroup-root ${podCgroup}`);
  }
  const pinRoot = absolute(flags['pin-root'] ?? DEFAULT_SIDECAR_PIN_ROOT, '--pin-root');
  return { uid, netnsPath, podCgroup, appCgroups, pinRoot };
}

/**
 * Istio's sidecar Node.id shape, `sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local` (the IP is the proxy's
 * control-plane address, loopback here), from a `<cluster>//Pod/<ns>/<pod>` uid; else `sidecar~…~<uid>`.
 */
export function sidecarXdsNodeId(uid: string): string {
  const m = /^[^/]*\/\/Pod\/([^/]+)\/([^/]+)$/.exec(uid);
  return m === null ? `sidecar~127.0.0.1~${uid}` : `sidecar~127.0.0.1~${m[2]}.${m[1]}~${m[1]}.svc.cluster.local`;
}

function absolute(value: string | undefined, what: string): string {
  if (value === undefined || !value.startsWith('/')) throw new ConfigError(`${what}: an absolute path is required`);
  return value;
}

export interface SidecarDeps {
  readonly certificates: ManagedCertificates;
  readonly logDestination?: LogDestination;
  /** L7 for the pod's outbound requests (HTTP routes applied client-side), composed by the CLI. */
  readonly outboundL7?: OutboundL7Factory;
}

/** Starts the sidecar: redirector on the app containers, ztunnel serving only `sidecar.uid`, pod enrolled. */
export async function startSidecar(config: ZtunnelConfig, sidecar: SidecarConfig, deps: SidecarDeps): Promise<Ztunnel> {
  const redirector = await BpfRedirector.open({
    cgroupPath: sidecar.podCgroup,
    attachCgroupPaths: sidecar.appCgroups,
    pinRoot: sidecar.pinRoot,
  });
  try {
    const zt = await startZtunnel(
      { ...config, redirect: { kind: 'none' } },
      {
        ...deps,
        redirector,
        servedWorkload: sidecar.uid,
        xdsNodeId: sidecarXdsNodeId(sidecar.uid),
        enrollOnStart: [{ uid: sidecar.uid, netnsPath: sidecar.netnsPath, cgroupPath: sidecar.podCgroup }],
      },
    );
    // Our handles only: the pinned datapath keeps the pod fail-closed until a sidecar serves it again.
    void zt.stopped.finally(() => redirector.close());
    return zt;
  } catch (err) {
    redirector.close();
    throw err;
  }
}
