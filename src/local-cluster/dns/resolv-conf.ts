// Per-pod resolver configuration (docs/architecture.md, "Cluster DNS"): `/etc/netns/<netns>/resolv.conf`,
// the file `ip netns exec` bind-mounts over /etc/resolv.conf, and which the local cluster's pod launcher
// bind-mounts the same way in a private mount namespace per pod process (src/local-cluster/pods.ts).
// Contents as the kubelet writes them for `dnsPolicy: ClusterFirst`: the cluster DNS, the pod's
// namespace first in the search list, `ndots:5`. `ferry down` sweeps the cluster's entries by its netns
// prefix, so a crash between writing and journaling leaves nothing behind.
import { mkdirSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DnsError } from './errors.ts';
import { DEFAULT_CLUSTER_DOMAIN } from './records.ts';

export const ETC_NETNS_DIR = '/etc/netns';

export interface PodResolvConfOptions {
  readonly nameserver: string;
  readonly namespace: string;
  readonly domain?: string;
}

/** The resolv.conf text of a pod in `namespace`. Pure. */
export function podResolvConf(opts: PodResolvConfOptions): string {
  const domain = opts.domain ?? DEFAULT_CLUSTER_DOMAIN;
  return [
    `# written by ferry for pods of namespace ${opts.namespace}: cluster DNS (docs/architecture.md, "Cluster DNS")`,
    `nameserver ${opts.nameserver}`,
    `search ${opts.namespace}.svc.${domain} svc.${domain} ${domain}`,
    'options ndots:5',
    '',
  ].join('\n');
}

// $0 the pod's resolv.conf, rest the command. Exit 96 tells "could not mount the resolver config" apart
// from the app's own exit codes (the launcher uses 97/98 for the cgroup and netns steps).
const BIND_RESOLV_CONF_SCRIPT = 'mount --bind "$0" /etc/resolv.conf || exit 96; exec "$@"';

/**
 * Wraps argv so it runs in a private mount namespace of its own with `resolvConfPath` bind-mounted over
 * /etc/resolv.conf, what `ip netns exec` does for /etc/netns/<name>/* (without its /sys remount, which
 * would hide the cgroup2 mount). glibc's getaddrinfo (Debian's curl) and Node's dns.lookup both read the
 * mounted file; the host's /etc is untouched. Needs CAP_SYS_ADMIN (the local cluster runs as root).
 */
export function withPodResolvConf(argv: readonly [string, ...string[]], resolvConfPath: string): [string, ...string[]] {
  return [
    'unshare',
    '--mount',
    '--propagation',
    'private',
    '--',
    'sh',
    '-c',
    BIND_RESOLV_CONF_SCRIPT,
    resolvConfPath,
    ...argv,
  ];
}

/** The path of a netns's resolv.conf under `root` (/etc/netns). */
export function podResolvConfPath(netnsName: string, root: string = ETC_NETNS_DIR): string {
  if (netnsName === '' || netnsName.includes('/') || netnsName.startsWith('.')) {
    throw new DnsError('FERRY_DNS_RESOLV_CONF_FAILED', `netns name ${JSON.stringify(netnsName)} is not a file name`);
  }
  return join(root, netnsName, 'resolv.conf');
}

/** Writes `/etc/netns/<netns>/resolv.conf` (world-readable, as /etc/resolv.conf is). Returns its path. */
export function writePodResolvConf(netnsName: string, text: string, root: string = ETC_NETNS_DIR): string {
  const path = podResolvConfPath(netnsName, root);
  try {
    mkdirSync(join(root, netnsName), { recursive: true, mode: 0o755 });
    writeFileSync(path, text, { mode: 0o644 });
  } catch (cause) {
    throw new DnsError('FERRY_DNS_RESOLV_CONF_FAILED', `cannot write ${path}: ${String(cause)}`, { cause });
  }
  return path;
}

/**
 * Removes every `<root>/<name>` whose name starts with `prefix` (one cluster's pods), then `root` itself
 * if that left it empty. Returns what was removed. Idempotent.
 */
export function removePodResolvConfs(prefix: string, root: string = ETC_NETNS_DIR): string[] {
  if (prefix === '' || prefix.includes('/')) throw new Error(`bad netns prefix ${JSON.stringify(prefix)}`);
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return []; // no /etc/netns: nothing of ours
  }
  const removed: string[] = [];
  for (const name of entries) {
    if (!name.startsWith(prefix)) continue;
    const dir = join(root, name);
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  if (removed.length > 0) {
    try {
      rmdirSync(root); // only when empty: other clusters' or the admin's entries keep it
    } catch {
      // not empty, or already gone
    }
  }
  return removed;
}
