// SPDX-License-Identifier: MIT OR GPL-2.0
/* traffic-counter's socket filter.
 *
 * Attached with SO_ATTACH_BPF to every fanout member's AF_PACKET socket, before bind. It lets
 * through only the IPv4/IPv6 frames the operator wants and counts every reject per reason in
 * a per-CPU array, because the kernel counts none of them. Verdicts, first failing check wins:
 *   1. VLAN list: the outermost VLAN id (offloaded into skb metadata, else the first in-band
 *      tag) must be listed, or the frame untagged with "untagged" listed.      -> vlan
 *   2. After skipping up to two in-band tags, the frame must be IPv4 or IPv6.  -> non_ip
 *   3. Neither source nor destination may be in an excluded prefix.           -> excluded
 *   4. With an allow list, the source or the destination must be in it.       -> not_allowed
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is judged as the IPv4 address it carries: the
 * IPv4 lists apply to it and the IPv6 lists do not, as userspace counts it as that IPv4 host.
 * A frame too short to read what a check needs passes, so userspace counts it as malformed
 * and nothing vanishes unseen. The classic-BPF fallback (classic.rs) gives the same verdicts.
 *
 * A passing frame keeps only its first snap-length bytes (the config array's second word, 0
 * for the whole frame): the program's return value is how many bytes the kernel copies into
 * the ring, and userspace reads nothing past the headers. The frame's length on the wire
 * still reaches the ring header, so byte counts stay exact.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "filter.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define ETH_P_QINQ_LEGACY 0x9100

struct lpm_v4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TC_CONFIG_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
} TC_MAP_CONFIG SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TC_VLAN_IDS);
	__type(key, __u32);
	__type(value, __u8);
} TC_MAP_VLANS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TC_REASON_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} TC_MAP_REJECTS SEC(".maps");

#define LPM_MAP(name, key_type)                                                                  \
	struct {                                                                                 \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);                                             \
		__uint(max_entries, TC_MAX_PREFIXES);                                            \
		__uint(map_flags, BPF_F_NO_PREALLOC);                                            \
		__type(key, key_type);                                                           \
		__type(value, __u8);                                                             \
	} name SEC(".maps")

LPM_MAP(TC_MAP_EXCLUDE_V4, struct lpm_v4);
LPM_MAP(TC_MAP_EXCLUDE_V6, struct lpm_v6);
LPM_MAP(TC_MAP_ALLOW_V4, struct lpm_v4);
LPM_MAP(TC_MAP_ALLOW_V6, struct lpm_v6);

static __always_inline int reject(__u32 reason)
{
	__u64 *count = bpf_map_lookup_elem(&TC_MAP_REJECTS, &reason);

	/* Per-CPU: no other CPU writes this slot, so a plain increment is exact. */
	if (count)
		*count += 1;
	return 0;
}

static __always_inline int is_vlan(__u16 ethertype)
{
	return ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD ||
	       ethertype == ETH_P_QINQ_LEGACY;
}

/* Whether the source or the destination is in the trie. */
static __always_inline int either_in(void *trie, void *src, void *dst)
{
	return bpf_map_lookup_elem(trie, src) || bpf_map_lookup_elem(trie, dst);
}

/* Whether an IPv6 address is IPv4-mapped (::ffff:a.b.c.d). */
static __always_inline int is_v4_mapped(const struct lpm_v6 *addr)
{
	__u32 words[3];

	__builtin_memcpy(words, addr->addr, sizeof(words));
	return words[0] == 0 && words[1] == 0 && words[2] == bpf_htonl(0x0000ffff);
}

/* Whether an IPv6 address is in a list: an IPv4-mapped one in the list's IPv4 trie, any other
 * in its IPv6 trie. */
static __always_inline int v6_in(void *trie_v4, void *trie_v6, const struct lpm_v6 *addr)
{
	if (is_v4_mapped(addr)) {
		struct lpm_v4 key = { .prefixlen = 32 };

		__builtin_memcpy(key.addr, &addr->addr[12], 4);
		return bpf_map_lookup_elem(trie_v4, &key) != NULL;
	}
	return bpf_map_lookup_elem(trie_v6, addr) != NULL;
}

static __always_inline int v6_either_in(void *trie_v4, void *trie_v6, const struct lpm_v6 *src,
					const struct lpm_v6 *dst)
{
	return v6_in(trie_v4, trie_v6, src) || v6_in(trie_v4, trie_v6, dst);
}

SEC("socket")
int TC_PROGRAM(struct __sk_buff *skb)
{
	__u32 flags_key = TC_CONFIG_FLAGS, snap_key = TC_CONFIG_SNAP_LEN;
	__u32 *config = bpf_map_lookup_elem(&TC_MAP_CONFIG, &flags_key);
	__u32 *snap = bpf_map_lookup_elem(&TC_MAP_CONFIG, &snap_key);
	__u32 flags = config ? *config : 0;
	__u32 pass = skb->len;
	__u32 l3 = 14;
	__u16 ethertype;

	if (snap && *snap && *snap < pass)
		pass = *snap;
	if (bpf_skb_load_bytes(skb, 12, &ethertype, 2) < 0)
		return pass;
	ethertype = bpf_ntohs(ethertype);

	if (flags & TC_CFG_VLAN) {
		int tagged = 0;
		__u32 vid = 0;

		if (skb->vlan_present) {
			tagged = 1;
			vid = skb->vlan_tci & 0x0fff;
		} else if (is_vlan(ethertype)) {
			__u16 tci;

			if (bpf_skb_load_bytes(skb, 14, &tci, 2) < 0)
				return pass;
			tagged = 1;
			vid = bpf_ntohs(tci) & 0x0fff;
		}
		if (tagged) {
			__u8 *listed = bpf_map_lookup_elem(&TC_MAP_VLANS, &vid);

			if (!listed || !*listed)
				return reject(TC_REASON_VLAN);
		} else if (!(flags & TC_CFG_UNTAGGED)) {
			return reject(TC_REASON_VLAN);
		}
	}

#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (!is_vlan(ethertype))
			break;
		if (bpf_skb_load_bytes(skb, l3 + 2, &ethertype, 2) < 0)
			return pass;
		ethertype = bpf_ntohs(ethertype);
		l3 += 4;
	}
	if (ethertype != ETH_P_IP && ethertype != ETH_P_IPV6)
		return reject(TC_REASON_NON_IP);
	if (!(flags & (TC_CFG_EXCLUDE | TC_CFG_ALLOW)))
		return pass;

	if (ethertype == ETH_P_IP) {
		struct lpm_v4 src = { .prefixlen = 32 }, dst = { .prefixlen = 32 };

		if (bpf_skb_load_bytes(skb, l3 + 12, src.addr, 4) < 0 ||
		    bpf_skb_load_bytes(skb, l3 + 16, dst.addr, 4) < 0)
			return pass;
		if ((flags & TC_CFG_EXCLUDE) && either_in(&TC_MAP_EXCLUDE_V4, &src, &dst))
			return reject(TC_REASON_EXCLUDED);
		if ((flags & TC_CFG_ALLOW) && !either_in(&TC_MAP_ALLOW_V4, &src, &dst))
			return reject(TC_REASON_NOT_ALLOWED);
	} else {
		struct lpm_v6 src = { .prefixlen = 128 }, dst = { .prefixlen = 128 };

		if (bpf_skb_load_bytes(skb, l3 + 8, src.addr, 16) < 0 ||
		    bpf_skb_load_bytes(skb, l3 + 24, dst.addr, 16) < 0)
			return pass;
		if ((flags & TC_CFG_EXCLUDE) &&
		    v6_either_in(&TC_MAP_EXCLUDE_V4, &TC_MAP_EXCLUDE_V6, &src, &dst))
			return reject(TC_REASON_EXCLUDED);
		if ((flags & TC_CFG_ALLOW) &&
		    !v6_either_in(&TC_MAP_ALLOW_V4, &TC_MAP_ALLOW_V6, &src, &dst))
			return reject(TC_REASON_NOT_ALLOWED);
	}
	return pass;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
