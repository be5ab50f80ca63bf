// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Ferry redirector (docs/redirect.md). One object, five programs:
 *  - cgroup/connect4, cgroup/connect6 (v4-mapped only): an enrolled pod's TCP connect is rewritten to
 *    podIP:15001 (127.0.0.1:15001 for an entry without POD_FLAG_STEER_LISTENERS) inside its own netns; the
 *    original destination is stored by socket cookie.
 *  - sockops: at ACTIVE_ESTABLISHED the original destination is re-keyed by (netns cookie, 4-tuple), the key
 *    the ztunnel can compute from its accepted socket. The netns cookie is needed because every pod uses
 *    127.0.0.1, so tuples repeat across pods. At TCP_CONNECT (source port known, SYN not sent yet) a
 *    captured connect's tuple is noted in captured_connects, so this object's sk_lookup knows it as its own.
 *  - sk_lookup (attached per pod netns): inbound plaintext SYNs are assigned to the ztunnel's in-pod 15006
 *    listener, captured connects (podIP:15001) to its 15001 listener and HBONE (podIP:15008) to its 15008
 *    listener, each found in a sockhash keyed by the pod IP that user space fills. Assigned with
 *    NO_REUSEPORT: the in-pod listeners use SO_REUSEPORT for the handoff between two ztunnel processes, and
 *    any process in the pod with the same UID could join those groups; only the registered socket counts.
 *    Two redirectors (pin roots) may have sk_lookup on one pod netns at once (a sidecar and its node's
 *    ztunnel during a migration): a captured connect goes to the listener of the redirector that captured
 *    it, everything else to the first attached one (see steer_captured).
 *  - fail-closed guard (node agent mode only, off while guard_root holds 0): a connect from a cgroup under
 *    the guard root that is neither enrolled nor classified `exempt` by the node agent is refused (EPERM),
 *    so a new pod never talks around the mesh before the agent has looked at it.
 * Layouts of every map key/value are mirrored in src/redirect-bpf/layout.ts; change both together.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

#define PORT_OUTBOUND 15001
#define PORT_INBOUND_PLAINTEXT 15006
#define PORT_HBONE 15008
#define PORT_SOCKS5 15080

#define MAX_EXCLUDED_PORTS 16
#define MAX_CIDRS 8
// Pod cgroups may have container children: connect checks the caller's cgroup and this many ancestors.
#define MAX_CGROUP_DEPTH 16

/* Pin a ctx load to its own instruction so clang cannot merge loads into one access at a computed offset,
 * which the verifier rejects ("dereference of modified ctx ptr"). */
#define CTX_LOAD(expr)                                                                                       \
  ({                                                                                                         \
    __u32 v_ = (expr);                                                                                       \
    asm volatile("" : "+r"(v_));                                                                             \
    v_;                                                                                                      \
  })

#define SOURCE_INPOD_127_0_0_6 0x0600007f /* 127.0.0.6 in network order (little-endian load) */

enum counter_index {
  CTR_OUTBOUND_REDIRECTED = 0,
  CTR_OUTBOUND_BYPASSED = 1,
  CTR_INBOUND_STEERED = 2,
  CTR_INBOUND_BYPASSED = 3,
  CTR_LOOKUP_MISSED = 4,
  CTR_COUNT = 5,
};
#define NO_COUNTER CTR_COUNT

/* pod_info.flags: the ztunnel registered the pod's 15001 and 15008 listeners in outbound_listeners and
 * hbone_listeners, and the pod's sk_lookup program steers to them, so captured connects go to podIP:15001.
 * Entries written before this flag existed keep the 127.0.0.1:15001 rewrite until their pod is enrolled
 * again (a ztunnel upgrade re-enrolls every pod), which keeps an upgrade from refusing connections. */
#define POD_FLAG_STEER_LISTENERS 1

struct pod_info {
  __u32 pod_ip; /* network order */
  __u32 flags;  /* POD_FLAG_* */
};

struct orig_dst {
  __u32 ip;   /* network order */
  __u16 port; /* network order */
  __u16 flags;
  __u64 cgroup_id;
};

struct tuple_key {
  __u64 netns_cookie;
  __u32 src_ip; /* the client's local address, network order */
  __u32 dst_ip; /* the rewritten destination, network order */
  __u16 src_port; /* network order */
  __u16 dst_port; /* network order */
  __u32 pad;
};

/* A captured connect in flight, as sk_lookup sees its SYN: the client's address and port, and the pod IP
 * it was rewritten to (port 15001 implied). Pod IPs are unique on a node, so no netns cookie is needed
 * (sk_lookup has none). */
struct capture_key {
  __u32 src_ip;   /* network order */
  __u32 dst_ip;   /* network order: the pod IP */
  __u16 src_port; /* network order */
  __u16 pad;
};

/* classified values: what the node agent decided for a pod cgroup that is not (or not yet) enrolled. */
#define CLASS_AMBIENT 1 /* to be enrolled: refused until it is */
#define CLASS_EXEMPT 2  /* not in the mesh: connects directly */

struct cidr {
  __u32 addr; /* network order, already masked */
  __u32 mask; /* network order */
};

struct config {
  __u32 excluded_port_count;
  __u32 excluded_cidr_count;
  __u32 probe_cidr_count;
  __u32 pad;
  __u16 excluded_ports[MAX_EXCLUDED_PORTS]; /* host order */
  struct cidr excluded_cidrs[MAX_CIDRS];    /* outbound destinations never redirected */
  struct cidr probe_cidrs[MAX_CIDRS];       /* inbound sources never steered */
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u64);
  __type(value, struct pod_info);
} enrolled SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u64);
  __type(value, struct orig_dst);
} orig_by_cookie SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct tuple_key);
  __type(value, struct orig_dst);
} orig_by_tuple SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct config);
} config SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, 4096);
  __type(key, __u32); /* pod IP, network order */
  __type(value, __u64);
} inbound_listeners SEC(".maps");

/* The ztunnel's captured-outbound listener in each pod (bound to 127.0.0.1:15001; sk_lookup hands it the
 * SYNs to podIP:15001 that connect4 made). */
struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, 4096);
  __type(key, __u32); /* pod IP, network order */
  __type(value, __u64);
} outbound_listeners SEC(".maps");

/* The ztunnel's HBONE listener in each pod (podIP:15008). */
struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, 4096);
  __type(key, __u32); /* pod IP, network order */
  __type(value, __u64);
} hbone_listeners SEC(".maps");

/* Connects this redirector captured whose handshake has not completed: written by sockops at TCP_CONNECT,
 * removed at ACTIVE_ESTABLISHED (a refused connect's entry ages out of the LRU). Per pin root, so each
 * redirector knows its own captures; value unused. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct capture_key);
  __type(value, __u32);
} captured_connects SEC(".maps");

/* The node agent's classification of pod cgroups (cgroup id → CLASS_*). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u64);
  __type(value, __u32);
} classified SEC(".maps");

/* The cgroup id of the node's pod root (0: no guard). Written by the node agent only. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} guard_root SEC(".maps");

/* Connects the guard refused. A map of its own, not a slot in `counters`: a bigger `counters` would not
 * match the map pinned by an earlier ztunnel, and an upgrade would fail to load. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} guard_counters SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, CTR_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 index) {
  __u64 *value = bpf_map_lookup_elem(&counters, &index);
  if (value)
    *value += 1;
}

static __always_inline struct config *load_config(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&config, &zero);
}

static __always_inline int is_ztunnel_port(__u16 port_host) {
  return port_host == PORT_OUTBOUND || port_host == PORT_INBOUND_PLAINTEXT || port_host == PORT_HBONE ||
         port_host == PORT_SOCKS5;
}

static __always_inline int is_excluded_port(const struct config *cfg, __u16 port_host) {
#pragma unroll
  for (int i = 0; i < MAX_EXCLUDED_PORTS; i++) {
    if (i >= cfg->excluded_port_count)
      break;
    if (cfg->excluded_ports[i] == port_host)
      return 1;
  }
  return 0;
}

static __always_inline int in_cidrs(const struct cidr *cidrs, __u32 n, __u32 ip) {
#pragma unroll
  for (int i = 0; i < MAX_CIDRS; i++) {
    if (i >= n)
      break;
    if ((ip & cidrs[i].mask) == cidrs[i].addr)
      return 1;
  }
  return 0;
}

static __always_inline int is_loopback_or_any(__u32 ip) {
  __u32 host = bpf_ntohl(ip);
  return (host >> 24) == 127 || host == 0;
}

/* The pod record of the calling task: its own cgroup or the nearest enrolled ancestor. */
static __always_inline struct pod_info *current_pod(__u64 *cgroup_id) {
  __u64 id = bpf_get_current_cgroup_id();
  struct pod_info *pod = bpf_map_lookup_elem(&enrolled, &id);
  if (pod) {
    *cgroup_id = id;
    return pod;
  }
#pragma unroll
  for (int level = MAX_CGROUP_DEPTH - 1; level >= 0; level--) {
    id = bpf_get_current_ancestor_cgroup_id(level);
    if (id == 0)
      continue;
    pod = bpf_map_lookup_elem(&enrolled, &id);
    if (pod) {
      *cgroup_id = id;
      return pod;
    }
  }
  return 0;
}

/* Whether a connect of a task that is not in an enrolled pod is refused: under the guard root, and its own
 * cgroup or the nearest classified ancestor below the root is not CLASS_EXEMPT. Nearest first, so a pod
 * cgroup's classification is found before the root. */
static __always_inline int guard_refuses(void) {
  __u32 zero = 0;
  __u64 *root = bpf_map_lookup_elem(&guard_root, &zero);
  if (!root || *root == 0)
    return 0; /* no guard (admin-enrolled mode, sidecars): as before */
  __u64 guard = *root;
  __u64 id = bpf_get_current_cgroup_id();
  if (id == guard)
    return 0; /* the root itself holds no pod */
  __u32 *cls = bpf_map_lookup_elem(&classified, &id);
  if (cls)
    return *cls != CLASS_EXEMPT;
#pragma unroll
  for (int level = MAX_CGROUP_DEPTH - 1; level >= 0; level--) {
    id = bpf_get_current_ancestor_cgroup_id(level);
    if (id == 0)
      continue;
    if (id == guard)
      return 1; /* under the root, nothing classified on the way: a pod the agent has not seen yet */
    cls = bpf_map_lookup_elem(&classified, &id);
    if (cls)
      return *cls != CLASS_EXEMPT;
  }
  return 0; /* not under the guard root: not a pod */
}

#define VERDICT_LEAVE 0
#define VERDICT_REWRITE 1
#define VERDICT_REFUSE 2

/* Shared decision for connect4/connect6: VERDICT_REWRITE with *target set to the address to rewrite the
 * destination to (network order, orig stored), VERDICT_LEAVE, or VERDICT_REFUSE (the guard). */
static __always_inline int capture(void *ctx, __u32 dst_ip, __u16 dst_port_net, __u32 *target) {
  __u64 cgroup_id = 0;
  struct pod_info *pod = current_pod(&cgroup_id);
  struct config *cfg = load_config();
  __u16 port = bpf_ntohs(dst_port_net);
  if (!pod) {
    /* Loopback and the configured exclusions never leave in plaintext around the mesh: not guarded. */
    if (!cfg || is_loopback_or_any(dst_ip) || is_excluded_port(cfg, port) ||
        in_cidrs(cfg->excluded_cidrs, cfg->excluded_cidr_count, dst_ip) || !guard_refuses())
      return VERDICT_LEAVE; /* not a mesh pod: not even counted */
    __u32 zero = 0;
    __u64 *refused = bpf_map_lookup_elem(&guard_counters, &zero);
    if (refused)
      *refused += 1;
    return VERDICT_REFUSE;
  }
  if (!cfg || is_loopback_or_any(dst_ip) || dst_ip == pod->pod_ip || is_ztunnel_port(port) ||
      is_excluded_port(cfg, port) || in_cidrs(cfg->excluded_cidrs, cfg->excluded_cidr_count, dst_ip)) {
    count(CTR_OUTBOUND_BYPASSED);
    return VERDICT_LEAVE;
  }
  struct orig_dst orig = {.ip = dst_ip, .port = dst_port_net, .flags = 0, .cgroup_id = cgroup_id};
  __u64 cookie = bpf_get_socket_cookie(ctx);
  if (bpf_map_update_elem(&orig_by_cookie, &cookie, &orig, BPF_ANY) != 0) {
    count(CTR_OUTBOUND_BYPASSED);
    return VERDICT_LEAVE;
  }
  count(CTR_OUTBOUND_REDIRECTED);
  /* The pod IP, not 127.0.0.1: sk_lookup has no netns cookie, so the destination address is what tells it
   * which pod's listener the SYN belongs to. */
  *target = (pod->flags & POD_FLAG_STEER_LISTENERS) ? pod->pod_ip : bpf_htonl(0x7f000001);
  return VERDICT_REWRITE;
}

SEC("cgroup/connect4")
int ferry_connect4(struct bpf_sock_addr *ctx) {
  if (ctx->protocol != IPPROTO_TCP)
    return 1;
  __u32 target = 0;
  int verdict = capture(ctx, ctx->user_ip4, (__u16)ctx->user_port, &target);
  if (verdict == VERDICT_REFUSE)
    return 0; /* EPERM */
  if (verdict == VERDICT_REWRITE) {
    ctx->user_ip4 = target;
    ctx->user_port = bpf_htons(PORT_OUTBOUND);
  }
  return 1;
}

SEC("cgroup/connect6")
int ferry_connect6(struct bpf_sock_addr *ctx) {
  if (ctx->protocol != IPPROTO_TCP)
    return 1;
  /* Only v4-mapped destinations (::ffff:a.b.c.d); native IPv6 is not in v1. */
  if (ctx->user_ip6[0] != 0 || ctx->user_ip6[1] != 0 || ctx->user_ip6[2] != bpf_htonl(0xffff))
    return 1;
  __u32 target = 0;
  int verdict = capture(ctx, ctx->user_ip6[3], (__u16)ctx->user_port, &target);
  if (verdict == VERDICT_REFUSE)
    return 0; /* EPERM */
  if (verdict == VERDICT_REWRITE) {
    ctx->user_ip6[3] = target;
    ctx->user_port = bpf_htons(PORT_OUTBOUND);
  }
  return 1;
}

/* The connection's tuple as the ztunnel's accepted socket will show it (src = the client's local end). */
static __always_inline void socket_tuple(struct bpf_sock_ops *skops, struct tuple_key *key) {
  key->netns_cookie = bpf_get_netns_cookie(skops);
  /* Read every field unconditionally (see CTX_LOAD). For an AF_INET6 socket connected to a v4-mapped address
   * the embedded IPv4 words are the ones that matter. */
  __u32 family = CTX_LOAD(skops->family);
  __u32 local4 = CTX_LOAD(skops->local_ip4);
  __u32 remote4 = CTX_LOAD(skops->remote_ip4);
  __u32 local6 = CTX_LOAD(skops->local_ip6[3]);
  __u32 remote6 = CTX_LOAD(skops->remote_ip6[3]);
  key->src_ip = family == AF_INET ? local4 : local6;
  key->dst_ip = family == AF_INET ? remote4 : remote6;
  key->src_port = bpf_htons((__u16)skops->local_port); /* local_port is host order */
  key->dst_port = (__u16)(skops->remote_port >> 16);   /* remote_port is network order in the high half */
}

SEC("sockops")
int ferry_sockops(struct bpf_sock_ops *skops) {
  __u32 op = skops->op;
  if (op != BPF_SOCK_OPS_TCP_CONNECT_CB && op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
    return 1;
  __u64 cookie = bpf_get_socket_cookie(skops);
  struct orig_dst *orig = bpf_map_lookup_elem(&orig_by_cookie, &cookie);
  if (!orig)
    return 1; /* not captured by this redirector (maybe by another one on a nested cgroup) */
  struct tuple_key key = {};
  socket_tuple(skops, &key);
  struct capture_key captured = {.src_ip = key.src_ip, .dst_ip = key.dst_ip, .src_port = key.src_port, .pad = 0};
  if (op == BPF_SOCK_OPS_TCP_CONNECT_CB) {
    /* Before the SYN leaves: this object's sk_lookup must know the connect is its own when the SYN arrives. */
    __u32 one = 1;
    bpf_map_update_elem(&captured_connects, &captured, &one, BPF_ANY);
    return 1;
  }
  bpf_map_delete_elem(&captured_connects, &captured);
  struct orig_dst copy = *orig;
  bpf_map_update_elem(&orig_by_tuple, &key, &copy, BPF_ANY);
  bpf_map_delete_elem(&orig_by_cookie, &cookie);
  return 1;
}

/* Assigns the SYN to the listener registered under the pod IP in `listeners`; SK_DROP (ECONNREFUSED) when
 * there is none, so nothing else in the pod ever gets it. NO_REUSEPORT: the registered socket itself, never
 * another member of its reuseport group: a process in the pod with the ztunnel's UID can join that group,
 * and so can a previous enrollment's listener that is about to close (re-enrolled within the unenroll
 * grace). A newer ztunnel process registering its own listener replaces the entry: the handoff.
 * Every sk_lookup program on a netns runs, in attach order, and the last socket assigned wins; assigning
 * over an earlier program's choice fails unless BPF_SK_LOOKUP_F_REPLACE is given. Without `replace`, a
 * socket an earlier program (another redirector) chose stands: SK_PASS keeps it. */
static __always_inline int assign_registered(struct bpf_sk_lookup *ctx, void *listeners, __u32 pod_ip,
                                             __u32 steered_counter, int replace) {
  if (!replace && ctx->sk)
    return SK_PASS;
  struct bpf_sock *sk = bpf_map_lookup_elem(listeners, &pod_ip);
  if (!sk) {
    count(CTR_LOOKUP_MISSED);
    return SK_DROP;
  }
  __u64 flags = BPF_SK_LOOKUP_F_NO_REUSEPORT | (replace ? BPF_SK_LOOKUP_F_REPLACE : 0);
  long err = bpf_sk_assign(ctx, sk, flags);
  bpf_sk_release(sk);
  if (err != 0) {
    count(CTR_LOOKUP_MISSED);
    return SK_DROP;
  }
  if (steered_counter != NO_COUNTER)
    count(steered_counter);
  return SK_PASS;
}

/* A SYN to podIP:15001. Two redirectors can share the pod netns for a moment: a migration attaches a
 * sidecar's sk_lookup next to the node ztunnel's (or the other way round), and the sidecar's connect4, on
 * the app containers' cgroups, runs before the node's. A connect this redirector captured (its sockops
 * noted the tuple) is assigned to its own listener, replacing an earlier program's choice: only this
 * redirector has its original destination. Any other SYN (another redirector's capture, a peer dialing
 * podIP:15001) goes to our listener only if no program before us chose one: the first attached serves it. */
static __always_inline int steer_captured(struct bpf_sk_lookup *ctx, __u32 pod_ip) {
  struct capture_key key = {
      .src_ip = ctx->remote_ip4, .dst_ip = pod_ip, .src_port = CTX_LOAD(ctx->remote_port), .pad = 0};
  int own = bpf_map_lookup_elem(&captured_connects, &key) != 0;
  return assign_registered(ctx, &outbound_listeners, pod_ip, NO_COUNTER, own); /* counted at connect */
}

SEC("sk_lookup")
int ferry_sk_lookup(struct bpf_sk_lookup *ctx) {
  if (ctx->protocol != IPPROTO_TCP || ctx->family != AF_INET)
    return SK_PASS;
  __u32 local_ip = ctx->local_ip4;
  __u32 remote_ip = ctx->remote_ip4;
  __u16 port = (__u16)ctx->local_port;
  if (is_loopback_or_any(local_ip))
    return SK_PASS; /* in-pod loopback traffic is the app's own business */
  /* podIP:15001 is where connect4 sends the pod's captured connects, from whichever local address the app's
   * socket has (the pod IP, loopback, another address it bound). Every SYN to it goes to the registered
   * listener, never to the ordinary lookup, where a foreign socket could answer. A peer elsewhere dialing
   * it gets a reset from the ztunnel, which has no original destination for that tuple. */
  if (port == PORT_OUTBOUND)
    return steer_captured(ctx, local_ip);
  if (port == PORT_HBONE)
    return assign_registered(ctx, &hbone_listeners, local_ip, NO_COUNTER, 0);
  struct config *cfg = load_config();
  if (!cfg || is_ztunnel_port(port) || is_excluded_port(cfg, port) || remote_ip == SOURCE_INPOD_127_0_0_6 ||
      remote_ip == local_ip || in_cidrs(cfg->probe_cidrs, cfg->probe_cidr_count, remote_ip)) {
    count(CTR_INBOUND_BYPASSED);
    return SK_PASS;
  }
  /* Enrolled (this program is attached) but no ztunnel listener: fail closed. SK_DROP makes the lookup
   * fail with ECONNREFUSED, so the client gets a reset at once, and plaintext never reaches the app behind
   * the mesh's back (STRICT would otherwise be bypassed while the ztunnel is down). */
  return assign_registered(ctx, &inbound_listeners, local_ip, CTR_INBOUND_STEERED, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
