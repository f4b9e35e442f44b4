/* Constants shared by the eBPF program (filter.bpf.c) and its Rust loader.
 *
 * This file is the single definition: build.rs turns every `#define NAME VALUE` below into a
 * Rust constant (numbers stay numbers, identifiers become their names as strings). Keep each
 * definition on one line.
 */
#ifndef TC_FILTER_H
#define TC_FILTER_H

/* Reject reasons: indexes into the per-CPU reject counters. */
#define TC_REASON_VLAN 0
#define TC_REASON_NON_IP 1
#define TC_REASON_EXCLUDED 2
#define TC_REASON_NOT_ALLOWED 3
#define TC_REASON_COUNT 4

/* The config array: the word of bits below, and the snap length (0: the whole frame). */
#define TC_CONFIG_FLAGS 0
#define TC_CONFIG_SNAP_LEN 1
#define TC_CONFIG_ENTRIES 2

/* Bits of the config word. */
#define TC_CFG_VLAN 1
#define TC_CFG_UNTAGGED 2
#define TC_CFG_EXCLUDE 4
#define TC_CFG_ALLOW 8

/* Capacity of each prefix trie. */
#define TC_MAX_PREFIXES 16384
/* VLAN ids are 12 bits. */
#define TC_VLAN_IDS 4096

/* Program and map names. */
#define TC_PROGRAM tc_filter
#define TC_MAP_CONFIG tc_config
#define TC_MAP_VLANS tc_vlans
#define TC_MAP_REJECTS tc_rejects
#define TC_MAP_EXCLUDE_V4 tc_exclude_v4
#define TC_MAP_EXCLUDE_V6 tc_exclude_v6
#define TC_MAP_ALLOW_V4 tc_allow_v4
#define TC_MAP_ALLOW_V6 tc_allow_v6

#endif
