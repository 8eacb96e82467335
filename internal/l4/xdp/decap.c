//go:build ignore

// decap.c is "strata decap": an XDP program for a real server behind a
// balancer in tunnel mode whose kernel has no ipip module. It strips the
// outer IPv4 or IPv6 header of an IP-in-IP packet and hands the inner
// packet, addressed to the VIP the real server holds on lo, to the stack.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum {
	DST_DECAP = 0, /* packets decapsulated */
	DST_PASS,      /* anything else, handed on untouched */
	DST_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} decap_stats SEC(".maps");

static __always_inline int pass(void)
{
	__u32 k = DST_PASS;
	__u64 *v = bpf_map_lookup_elem(&decap_stats, &k);
	if (v)
		*v += 1;
	return XDP_PASS;
}

SEC("xdp")
int xdp_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return pass();
	__u8 inner;
	int outer_len;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->ihl != 5)
			return pass();
		if (ip->frag_off & bpf_htons(0x3fff))
			return pass();
		inner = ip->protocol;
		outer_len = sizeof(struct iphdr);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return pass();
		inner = ip6->nexthdr;
		outer_len = sizeof(struct ipv6hdr);
	} else {
		return pass();
	}
	if (inner != IPPROTO_IPIP && inner != IPPROTO_IPV6)
		return pass();

	struct ethhdr e;
	__builtin_memcpy(&e, eth, sizeof(e));
	e.h_proto = bpf_htons(inner == IPPROTO_IPIP ? ETH_P_IP : ETH_P_IPV6);
	if (bpf_xdp_adjust_head(ctx, outer_len))
		return pass();
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	__builtin_memcpy(eth, &e, sizeof(e));
	__u32 k = DST_DECAP;
	__u64 *v = bpf_map_lookup_elem(&decap_stats, &k);
	if (v)
		*v += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
