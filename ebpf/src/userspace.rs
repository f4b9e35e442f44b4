//! The filter's verdicts computed in userspace, for frames that reach no socket: a replayed
//! capture file. Same rules, same order, same "too short passes" as `filter.bpf.c` (see
//! docs/filter.md), and every reject counted per reason as the eBPF program counts them.
//!
//! VLAN tags in a file are in-band (libpcap puts the offloaded tag back), so the outermost tag
//! is the first in-band one, as the eBPF program reads it when no tag is offloaded. Prefix
//! lists are scanned linearly: a replay runs at file speed, not line rate, and the lists are
//! those an operator types.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use traffic_counter_capture::PacketFilter;
use traffic_counter_capture::filter::FrameFilter;
use traffic_counter_capture::parse::{
    ETH_P_8021AD, ETH_P_8021Q, ETH_P_IPV4, ETH_P_IPV6, ETH_P_QINQ_LEGACY,
};
use traffic_counter_capture::snapshot::{FilterKind, Rejects};

use crate::consts::{TC_REASON_EXCLUDED, TC_REASON_NON_IP, TC_REASON_NOT_ALLOWED, TC_REASON_VLAN};
use crate::rules::{FilterRules, canonical};

/// One family's prefixes of one list.
#[derive(Debug, Default)]
struct Prefixes {
    v4: Vec<Ipv4Net>,
    v6: Vec<Ipv6Net>,
}

impl Prefixes {
    fn new(nets: &[IpNet]) -> Self {
        let mut out = Self::default();
        for net in nets.iter().copied().map(canonical) {
            match net {
                IpNet::V4(v4) => out.v4.push(v4),
                IpNet::V6(v6) => out.v6.push(v6),
            }
        }
        out
    }

    fn has_v4(&self, addr: [u8; 4]) -> bool {
        let addr = Ipv4Addr::from(addr);
        self.v4.iter().any(|net| net.contains(&addr))
    }

    /// An IPv4-mapped address is judged as the IPv4 address it carries.
    fn has_v6(&self, addr: [u8; 16]) -> bool {
        let addr = Ipv6Addr::from(addr);
        match addr.to_ipv4_mapped() {
            Some(v4) => self.has_v4(v4.octets()),
            None => self.v6.iter().any(|net| net.contains(&addr)),
        }
    }
}

/// The filter in userspace: judges each frame and counts each reject per reason.
#[derive(Debug)]
pub struct UserspaceFilter {
    /// Listed VLAN ids (index = id), when a VLAN list was given.
    vlans: Option<Box<[bool; 4096]>>,
    untagged: bool,
    exclude: Prefixes,
    /// The allow list, when it restricts anything.
    allow: Option<Prefixes>,
    rejects: [AtomicU64; 4],
}

impl UserspaceFilter {
    /// The filter enforcing `rules`.
    pub fn new(rules: &FilterRules) -> Self {
        let vlans = rules.vlans.as_ref().map(|list| {
            let mut ids = Box::new([false; 4096]);
            for &id in &list.ids {
                if let Some(slot) = ids.get_mut(usize::from(id)) {
                    *slot = true;
                }
            }
            ids
        });
        Self {
            vlans,
            untagged: rules.vlans.as_ref().is_some_and(|l| l.untagged),
            exclude: Prefixes::new(&rules.exclude),
            allow: rules.allow_list().map(Prefixes::new),
            rejects: Default::default(),
        }
    }

    /// Why `frame` (from its Ethernet header) is rejected, as a `TC_REASON_*` index, or `None`
    /// when it passes.
    pub fn verdict(&self, frame: &[u8]) -> Option<u32> {
        // Too short to read what a check needs: passes, to be counted as truncated.
        let mut ethertype = read_u16(frame, 12)?;
        if let Some(listed) = &self.vlans {
            if is_vlan(ethertype) {
                let tci = read_u16(frame, 14)?;
                if !listed[usize::from(tci & 0x0fff)] {
                    return Some(TC_REASON_VLAN);
                }
            } else if !self.untagged {
                return Some(TC_REASON_VLAN);
            }
        }
        let mut l3 = 14;
        for _ in 0..2 {
            if !is_vlan(ethertype) {
                break;
            }
            ethertype = read_u16(frame, l3 + 2)?;
            l3 += 4;
        }
        if ethertype != ETH_P_IPV4 && ethertype != ETH_P_IPV6 {
            return Some(TC_REASON_NON_IP);
        }
        if self.exclude.v4.is_empty() && self.exclude.v6.is_empty() && self.allow.is_none() {
            return None;
        }
        let either = |list: &Prefixes| -> Option<bool> {
            if ethertype == ETH_P_IPV4 {
                let (src, dst) = (read::<4>(frame, l3 + 12)?, read::<4>(frame, l3 + 16)?);
                Some(list.has_v4(src) || list.has_v4(dst))
            } else {
                let (src, dst) = (read::<16>(frame, l3 + 8)?, read::<16>(frame, l3 + 24)?);
                Some(list.has_v6(src) || list.has_v6(dst))
            }
        };
        if either(&self.exclude)? {
            return Some(TC_REASON_EXCLUDED);
        }
        match &self.allow {
            Some(allow) if !either(allow)? => Some(TC_REASON_NOT_ALLOWED),
            _ => None,
        }
    }
}

impl PacketFilter for UserspaceFilter {
    fn kind(&self) -> FilterKind {
        FilterKind::Userspace
    }

    fn attach(&self, _socket: BorrowedFd<'_>, _snap_len: u32) -> Result<(), String> {
        Err("the userspace filter judges replayed frames; it attaches to no socket".into())
    }

    fn rejects(&self) -> Option<Rejects> {
        let count = |reason: u32| self.rejects[reason as usize].load(Ordering::Relaxed);
        Some(Rejects {
            vlan: count(TC_REASON_VLAN),
            non_ip: count(TC_REASON_NON_IP),
            excluded: count(TC_REASON_EXCLUDED),
            not_allowed: count(TC_REASON_NOT_ALLOWED),
        })
    }
}

impl FrameFilter for UserspaceFilter {
    fn pass(&self, frame: &[u8]) -> bool {
        match self.verdict(frame) {
            None => true,
            Some(reason) => {
                if let Some(count) = self.rejects.get(reason as usize) {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                false
            }
        }
    }
}

fn is_vlan(ethertype: u16) -> bool {
    matches!(ethertype, ETH_P_8021Q | ETH_P_8021AD | ETH_P_QINQ_LEGACY)
}

fn read_u16(frame: &[u8], at: usize) -> Option<u16> {
    read::<2>(frame, at).map(u16::from_be_bytes)
}

fn read<const N: usize>(frame: &[u8], at: usize) -> Option<[u8; N]> {
    frame.get(at..at.checked_add(N)?)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use testlab::corpus::{self, FILTER_ALLOW, FILTER_EXCLUDE, FILTER_VLANS};
    use testlab::{Frame, L4};

    use super::*;
    use crate::classic::{generate, interpret};

    fn rules(vlans: &str, exclude: &str, allow: &str) -> FilterRules {
        FilterRules {
            vlans: (!vlans.is_empty()).then(|| vlans.parse().unwrap()),
            exclude: if exclude.is_empty() {
                Vec::new()
            } else {
                exclude.parse::<crate::CidrList>().unwrap().0
            },
            allow: (!allow.is_empty()).then(|| allow.parse::<crate::CidrList>().unwrap().0),
        }
    }

    #[test]
    fn the_filtered_corpus_gets_the_live_filters_rejects_per_reason() {
        let c = corpus::filtered();
        let filter = UserspaceFilter::new(&rules(FILTER_VLANS, FILTER_EXCLUDE, FILTER_ALLOW));
        let passed = c.frames.iter().filter(|f| filter.pass(&f.bytes)).count() as u64;
        assert_eq!(passed, c.packets + c.truncated + c.non_ip + c.bad_header);
        let r = filter.rejects().unwrap();
        assert_eq!(
            (r.vlan, r.non_ip, r.excluded, r.not_allowed),
            (
                c.rejected("vlan"),
                c.rejected("non_ip"),
                c.rejected("excluded"),
                c.rejected("not_allowed")
            )
        );
    }

    #[test]
    fn verdicts_match_the_classic_program_frame_for_frame() {
        let ip = |s: &str| s.parse().unwrap();
        let mut frames: Vec<Frame> = corpus::filtered().frames;
        frames.extend(corpus::standard().frames);
        for (src, dst) in [
            ("::ffff:198.18.5.7", "2001:db8::1"),
            ("::ffff:198.19.0.1", "::ffff:198.19.0.2"),
            ("::ffff:198.18.0.1", "2001:db8:1::9"),
            ("2001:db8:0:5::1", "::ffff:198.18.0.1"),
        ] {
            frames.push(Frame::ip(ip(src), ip(dst), L4::Udp(1, 2), 10));
        }
        for len in [0, 5, 13, 14, 16, 20, 30, 40] {
            let mut cut = corpus::filtered().frames[4].bytes.clone();
            cut.truncate(len);
            frames.push(Frame { bytes: cut });
        }
        for (vlans, exclude, allow) in [
            (FILTER_VLANS, FILTER_EXCLUDE, FILTER_ALLOW),
            ("", FILTER_EXCLUDE, ""),
            ("", "", FILTER_ALLOW),
            ("300,untagged", "", ""),
            ("", "::ffff:198.18.5.0/120", "198.18.0.0/16"),
        ] {
            let rules = rules(vlans, exclude, allow);
            let program = generate(&rules).unwrap();
            let filter = UserspaceFilter::new(&rules);
            for frame in &frames {
                let classic = interpret::run(
                    &program,
                    interpret::Input {
                        bytes: &frame.bytes,
                        offloaded_tci: None,
                    },
                )
                .unwrap();
                assert_eq!(
                    filter.verdict(&frame.bytes).is_none(),
                    classic != 0,
                    "{rules:?} on {:02x?}",
                    frame.bytes
                );
            }
        }
    }
}
