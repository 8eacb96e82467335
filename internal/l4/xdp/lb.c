//go:build ignore

// lb.c is strata's in-kernel L4 data plane: an XDP program that looks up
// a packet's virtual service, picks a real server by Maglev (or keeps the
// one its flow already has) and forwards the packet without holding TCP
// state, either by rewriting the destination MAC (LVS DR) or by
// encapsulating it IP-in-IP (LVS TUN, Katran). Replies go from the real
// server straight to the client. The Go control plane (dataplane.go)
// fills the maps; bpf2go compiles this file into lb_bpfel.o, which is
// committed so that neither CI nor a user needs clang ("make bpf").

#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/icmpv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_SERVICES 512
#define MAX_REALS 4096
/* The Maglev table size: a prime, the same M internal/balance uses. */
#define RING_SIZE 65537
#define MAX_FLOWS 262144

/* linux/icmp.h would pull in the C library's socket headers. */
#define ICMP_DEST_UNREACH 3
#define ICMP_FRAG_NEEDED 4
struct icmphdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u32 rest;
};

#define MODE_DR 1
#define MODE_TUNNEL 2

/* Indexes of the global counters (lb_stats). */
enum {
	ST_PASS = 0,     /* not for a VIP: handed to the stack */
	ST_FRAG,         /* a fragment of a VIP's packet: handed to the stack */
	ST_NO_REAL,      /* the service has no table or no real: dropped */
	ST_ICMP_FWD,     /* ICMP "fragmentation needed" forwarded to a real */
	ST_ENCAP_FAIL,   /* the packet had no room for the outer header */
	ST_MAX,
};

/* A virtual service: its address (IPv4 in addr[0]), port and protocol,
 * all in network order. */
struct vip_key {
	__u32 addr[4];
	__u16 port;
	__u8 proto;
	__u8 family; /* 4 or 6 */
};

struct vip_meta {
	__u32 id;   /* index into rings and svc_stats */
	__u32 mode; /* MODE_DR or MODE_TUNNEL */
};

/* A real server of one service. mac is the next hop's: the real's own
 * on the segment in DR, the gateway's (or the real's) in tunnel mode.
 * gen changes whenever the slot is given to another real, so that a flow
 * remembered for the slot's previous owner is not sent to the new one. */
struct real {
	__u32 addr[4];
	__u8 mac[6];
	__u8 family; /* 0: the slot is free */
	__u8 pad;
	__u32 gen;
};

struct flow_key {
	__u32 src[4];
	__u32 dst[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u16 pad;
};

struct flow {
	__u32 real;
	__u32 gen;
};

struct counters {
	__u64 packets;
	__u64 bytes;
	__u64 flows;
};

/* The outer source addresses of tunnelled packets. */
struct lb_config {
	__u32 src4;
	__u32 src6[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, struct vip_key);
	__type(value, struct vip_meta);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_REALS);
	__type(key, __u32);
	__type(value, struct real);
} reals SEC(".maps");

struct ring {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RING_SIZE);
	__type(key, __u32);
	__type(value, __u32);
};

/* One Maglev table per service. The control plane builds a new inner
 * map completely and then replaces the outer slot, which the kernel does
 * atomically: a packet sees the old table or the new one, never a
 * half-written one. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__array(values, struct ring);
} rings SEC(".maps");

/* The connection table. BPF_F_NO_COMMON_LRU gives each CPU its own LRU
 * list, so that CPUs do not contend for one lock, while the entries are
 * shared: a flow whose packets land on two CPUs still finds its real. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_FLOWS);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct flow_key);
	__type(value, struct flow);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct counters);
} svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_REALS);
	__type(key, __u32);
	__type(value, struct counters);
} real_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lb_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_config);
} config SEC(".maps");

static __always_inline void count(__u32 what)
{
	__u64 *v = bpf_map_lookup_elem(&lb_stats, &what);
	if (v)
		*v += 1;
}

struct pkt {
	struct flow_key key;
	__u32 len;   /* bytes of the IP packet */
	__u8 syn;    /* a TCP SYN without ACK: always consults the table */
	__u8 icmp;   /* an ICMP error about one of the VIP's flows */
	__u8 tos;
};

/* parse_ports reads the ports of a TCP or UDP header at l4. */
static __always_inline int parse_ports(void *l4, void *end, __u8 proto, struct pkt *p)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > end)
			return -1;
		p->key.sport = th->source;
		p->key.dport = th->dest;
		p->syn = th->syn && !th->ack;
		return 0;
	}
	if (proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > end)
			return -1;
		p->key.sport = uh->source;
		p->key.dport = uh->dest;
		return 0;
	}
	return -1;
}

/* parse_icmp4 turns an ICMP "fragmentation needed" about a packet the
 * VIP sent into the key of that packet's flow, reversed: the error is
 * about VIP:port → client:port, and the flow is client → VIP. */
static __always_inline int parse_icmp4(void *l4, void *end, struct pkt *p)
{
	struct icmphdr *ic = l4;
	if ((void *)(ic + 1) > end)
		return -1;
	if (ic->type != ICMP_DEST_UNREACH || ic->code != ICMP_FRAG_NEEDED)
		return -1;
	struct iphdr *in = (void *)(ic + 1);
	if ((void *)(in + 1) > end || in->ihl != 5)
		return -1;
	__u16 *ports = (void *)(in + 1);
	if ((void *)(ports + 2) > end)
		return -1;
	if (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP)
		return -1;
	p->key.src[0] = in->daddr;
	p->key.dst[0] = in->saddr;
	p->key.sport = ports[1];
	p->key.dport = ports[0];
	p->key.proto = in->protocol;
	p->icmp = 1;
	return 0;
}

static __always_inline int parse_icmp6(void *l4, void *end, struct pkt *p)
{
	struct icmp6hdr *ic = l4;
	if ((void *)(ic + 1) > end)
		return -1;
	if (ic->icmp6_type != ICMPV6_PKT_TOOBIG)
		return -1;
	struct ipv6hdr *in = (void *)(ic + 1);
	if ((void *)(in + 1) > end)
		return -1;
	__u16 *ports = (void *)(in + 1);
	if ((void *)(ports + 2) > end)
		return -1;
	if (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP)
		return -1;
	__builtin_memcpy(p->key.src, &in->daddr, 16);
	__builtin_memcpy(p->key.dst, &in->saddr, 16);
	p->key.sport = ports[1];
	p->key.dport = ports[0];
	p->key.proto = in->nexthdr;
	p->icmp = 1;
	return 0;
}

/* parse returns 0 for a TCP, UDP or ICMP-error packet whose key it
 * filled, 1 for a fragment, and -1 for anything else. */
static __always_inline int parse(void *data, void *end, __u16 eth_proto, struct pkt *p)
{
	void *l3 = data + sizeof(struct ethhdr);
	if (eth_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > end)
			return -1;
		/* Options are rare enough to leave to the stack, and a fixed
		 * header length keeps the verifier's bounds simple. */
		if (ip->ihl != 5)
			return -1;
		p->key.family = 4;
		p->len = bpf_ntohs(ip->tot_len);
		p->tos = ip->tos;
		if (ip->frag_off & bpf_htons(0x3fff))
			return 1;
		if (ip->protocol == IPPROTO_ICMP)
			return parse_icmp4(ip + 1, end, p);
		p->key.src[0] = ip->saddr;
		p->key.dst[0] = ip->daddr;
		p->key.proto = ip->protocol;
		return parse_ports(ip + 1, end, ip->protocol, p);
	}
	if (eth_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > end)
			return -1;
		p->key.family = 6;
		p->len = bpf_ntohs(ip6->payload_len) + sizeof(struct ipv6hdr);
		p->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
		if (ip6->nexthdr == 44 /* fragment header */)
			return 1;
		if (ip6->nexthdr == IPPROTO_ICMPV6)
			return parse_icmp6(ip6 + 1, end, p);
		__builtin_memcpy(p->key.src, &ip6->saddr, 16);
		__builtin_memcpy(p->key.dst, &ip6->daddr, 16);
		p->key.proto = ip6->nexthdr;
		return parse_ports(ip6 + 1, end, ip6->nexthdr, p);
	}
	return -1;
}

/* flow_hash mixes the 5-tuple into a slot of the Maglev table. */
static __always_inline __u32 flow_hash(struct flow_key *k)
{
	__u64 h = 0x9e3779b97f4a7c15ULL;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		h = (h ^ k->src[i]) * 0xff51afd7ed558ccdULL;
		h = (h ^ k->dst[i]) * 0xc4ceb9fe1a85ec53ULL;
	}
	h ^= ((__u64)k->sport << 32) | ((__u64)k->dport << 16) | k->proto;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (__u32)(h % RING_SIZE);
}

static __always_inline void add(struct counters *c, __u32 bytes, int new_flow)
{
	if (!c)
		return;
	c->packets += 1;
	c->bytes += bytes;
	if (new_flow)
		c->flows += 1;
}

static __always_inline __u16 csum_fold(__u32 csum)
{
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	return (__u16)~csum;
}

/* encap puts an outer IPv4 or IPv6 header (by the real's family) in front
 * of the packet's IP header, and a new Ethernet header towards the
 * real's next hop in front of that. */
static __always_inline int encap(struct xdp_md *ctx, struct real *r, struct pkt *p)
{
	__u32 zero = 0;
	struct lb_config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return XDP_ABORTED;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *old = data;
	if ((void *)(old + 1) > end)
		return XDP_DROP;
	__u8 our_mac[ETH_ALEN];
	__builtin_memcpy(our_mac, old->h_dest, ETH_ALEN);
	__u8 inner = p->key.family == 4 ? IPPROTO_IPIP : IPPROTO_IPV6;

	if (r->family == 4) {
		struct iphdr o = {};
		o.version = 4;
		o.ihl = 5;
		o.tos = p->tos;
		o.tot_len = bpf_htons(p->len + sizeof(struct iphdr));
		o.ttl = 64;
		o.protocol = inner;
		o.saddr = cfg->src4;
		o.daddr = r->addr[0];
		__u32 sum = 0;
		__u16 *w = (__u16 *)&o;
#pragma unroll
		for (int i = 0; i < (int)sizeof(o) / 2; i++)
			sum += w[i];
		o.check = csum_fold(sum);
		if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
			return -1;
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
		struct ethhdr *eth = data;
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end)
			return XDP_DROP;
		__builtin_memcpy(eth->h_dest, r->mac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, our_mac, ETH_ALEN);
		eth->h_proto = bpf_htons(ETH_P_IP);
		__builtin_memcpy(ip, &o, sizeof(o));
		return XDP_TX;
	}
	struct ipv6hdr o = {};
	o.version = 6;
	o.priority = p->tos >> 4;
	o.flow_lbl[0] = (p->tos & 0xf) << 4;
	o.payload_len = bpf_htons(p->len);
	o.nexthdr = inner;
	o.hop_limit = 64;
	__builtin_memcpy(&o.saddr, cfg->src6, 16);
	__builtin_memcpy(&o.daddr, r->addr, 16);
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct ipv6hdr)))
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, r->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, our_mac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	__builtin_memcpy(ip6, &o, sizeof(o));
	return XDP_TX;
}

SEC("xdp")
int xdp_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_PASS;

	struct pkt p = {};
	int rc = parse(data, end, eth->h_proto, &p);
	if (rc != 0) {
		count(rc == 1 ? ST_FRAG : ST_PASS);
		return XDP_PASS;
	}

	struct vip_key vk = {};
	__builtin_memcpy(vk.addr, p.key.dst, 16);
	vk.port = p.key.dport;
	vk.proto = p.key.proto;
	vk.family = p.key.family;
	struct vip_meta *vip = bpf_map_lookup_elem(&vips, &vk);
	if (!vip) {
		count(ST_PASS);
		return XDP_PASS;
	}
	__u32 svc = vip->id;

	/* Established flows keep their real through table changes; a SYN
	 * starts a new flow, so it always asks the table. */
	__u32 real_id = 0;
	struct real *r = NULL;
	int new_flow = 0;
	if (!p.syn) {
		struct flow *f = bpf_map_lookup_elem(&flows, &p.key);
		if (f) {
			real_id = f->real;
			r = bpf_map_lookup_elem(&reals, &real_id);
			if (r && (!r->family || r->gen != f->gen))
				r = NULL;
		}
	}
	if (!r) {
		void *ring = bpf_map_lookup_elem(&rings, &svc);
		if (!ring) {
			count(ST_NO_REAL);
			return XDP_DROP;
		}
		__u32 slot = flow_hash(&p.key);
		__u32 *id = bpf_map_lookup_elem(ring, &slot);
		if (!id) {
			count(ST_NO_REAL);
			return XDP_DROP;
		}
		real_id = *id;
		r = bpf_map_lookup_elem(&reals, &real_id);
		if (!r || !r->family) {
			count(ST_NO_REAL);
			return XDP_DROP;
		}
		if (!p.icmp) {
			struct flow nf = {.real = real_id, .gen = r->gen};
			bpf_map_update_elem(&flows, &p.key, &nf, BPF_ANY);
			new_flow = 1;
		}
	}

	add(bpf_map_lookup_elem(&svc_stats, &svc), p.len, new_flow);
	add(bpf_map_lookup_elem(&real_stats, &real_id), p.len, new_flow);
	if (p.icmp)
		count(ST_ICMP_FWD);

	if (vip->mode == MODE_TUNNEL) {
		int act = encap(ctx, r, &p);
		if (act < 0) {
			count(ST_ENCAP_FAIL);
			return XDP_DROP;
		}
		return act;
	}
	/* DR: the real holds the VIP too, so only the frame's destination
	 * changes; the frame leaves by the port it came in on, from the MAC
	 * the client sent it to. */
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, r->mac, ETH_ALEN);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
