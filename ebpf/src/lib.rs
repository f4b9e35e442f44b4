//! The socket filter of traffic-counter: an eBPF program in C (`filter.bpf.c`) loaded with
//! aya, and a classic-BPF program generated in Rust that gives the same verdicts where eBPF
//! cannot load.
//!
//! Both let only IPv4/IPv6 frames through, enforce the optional VLAN list and CIDR
//! allow/exclude lists, and are attached to each fanout member's socket before it is bound.
//! Neither hooks XDP or tc. The eBPF program counts every reject per reason.

pub mod classic;
pub mod consts;
pub mod loader;
pub mod rules;
pub mod select;
pub mod userspace;

pub use classic::ClassicFilter;
pub use loader::{EbpfError, EbpfFilter, PrefixList};
pub use rules::{CidrList, FilterRules, VlanList};
pub use select::{FilterMode, Selected, select};
pub use userspace::UserspaceFilter;
