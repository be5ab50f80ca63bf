// The cluster network (docs/architecture.md "Local cluster"): one L2 segment, a bridge `br0` in its own netns (the host netns is
// never touched), and per pod a netns with a veth `eth0` on that bridge. All pods share one /16 (node n
// owns <a.b>.n.0/24), so pods on different nodes reach each other on-link: no routing or rp_filter changes.
// Service VIPs (10.96.0.0/16) are `unreachable` inside each pod, so a non-mesh client calling a VIP fails at
// once (non-mesh clients use pod IPs). Other off-net destinations go to the gateway
// <a.b>.255.254 in the bridge netns, whose only route is `unreachable default`: an ICMP error, never a hang
// (forwarding is on there only so the kernel sends that ICMP). Objects are journaled first (state.ts).
import { mkdirSync } from 'node:fs';
import { runHost } from './host.ts';
import { type ClusterLayout, type PodNetwork, SERVICE_CIDR } from './layout.ts';
import type { StateJournal } from './state.ts';

export const BRIDGE_DEVICE = 'br0';

/** Creates the bridge netns with br0 holding the pods' gateway address. */
export async function createBridge(layout: ClusterLayout, journal: StateJournal, gateway: string): Promise<void> {
  journal.record({ kind: 'netns', name: layout.bridgeNetns });
  await runHost('ip', ['netns', 'add', layout.bridgeNetns]);
  const br = ['-n', layout.bridgeNetns];
  await runHost('ip', [...br, 'link', 'add', BRIDGE_DEVICE, 'type', 'bridge']);
  await runHost('ip', [...br, 'addr', 'add', `${gateway}/16`, 'dev', BRIDGE_DEVICE]);
  await runHost('ip', [...br, 'link', 'set', BRIDGE_DEVICE, 'up']);
  await runHost('ip', [...br, 'link', 'set', 'lo', 'up']);
  await runHost('ip', ['netns', 'exec', layout.bridgeNetns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  await runHost('ip', [...br, 'route', 'add', 'unreachable', 'default']);
}

/** Creates a pod's netns, veth pair on the bridge, addresses, routes, and its cgroup directory. */
export async function createPodNetwork(layout: ClusterLayout, journal: StateJournal, net: PodNetwork): Promise<void> {
  journal.record({ kind: 'netns', name: net.netnsName });
  await runHost('ip', ['netns', 'add', net.netnsName]);
  const br = ['-n', layout.bridgeNetns];
  journal.record({ kind: 'link', netns: layout.bridgeNetns, name: net.bridgePort });
  await runHost('ip', [
    ...br,
    'link',
    'add',
    net.bridgePort,
    'type',
    'veth',
    'peer',
    'name',
    'eth0',
    'netns',
    net.netnsName,
  ]);
  await runHost('ip', [...br, 'link', 'set', net.bridgePort, 'master', BRIDGE_DEVICE, 'up']);
  const pod = ['-n', net.netnsName];
  await runHost('ip', [...pod, 'link', 'set', 'lo', 'up']);
  await runHost('ip', [...pod, 'addr', 'add', `${net.ip}/${net.prefixLength}`, 'dev', 'eth0']);
  await runHost('ip', [...pod, 'link', 'set', 'eth0', 'up']);
  await runHost('ip', [...pod, 'route', 'add', 'default', 'via', net.gateway, 'dev', 'eth0']);
  // Connects to a VIP from an unenrolled pod fail at once with EHOSTUNREACH (no ICMP rate limit involved).
  // Enrolled pods are unaffected: cgroup/connect4 rewrites the destination before the route lookup.
  await runHost('ip', [...pod, 'route', 'add', 'unreachable', SERVICE_CIDR]);
  journal.record({ kind: 'cgroup', path: net.cgroupDir });
  mkdirSync(net.cgroupDir, { recursive: true });
}
