//! Named CIDR groups, counted exactly on every packet.
//!
//! The talker table is bounded and evicts, so a sum over it is only as good as what it still
//! holds. An operator who asks "how much traffic did the storage network send" needs a number
//! that is exact whatever the table did, so each worker also counts every packet into a small
//! fixed array, one slot per named group. [`Group`] is the configuration (`NAME=CIDR[,CIDR...]`
//! on the command line), [`GroupSet`] the compiled matcher that maps an address to a bitmask of
//! groups without allocating, [`GroupCounts`] a worker's per-tick counts and [`GroupTotals`] one
//! group's running totals as the snapshot carries them.
//!
//! A packet from an address in group G counts as G sent; a packet to an address in G counts as
//! G received. Traffic inside G (both ends in it) counts as both. Groups may overlap: a packet
//! counts once in every group that matches.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::Serialize;

use crate::parse::Addr;

/// Most groups one capture counts: the matcher's bitmask is a `u64`.
pub const MAX_GROUPS: usize = 64;
/// Longest group name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// One named group of prefixes, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The name: letters, digits, `_`, `-` and `.`, starting with a letter or digit.
    pub name: String,
    /// The prefixes; an address in any of them is in the group.
    pub prefixes: Vec<IpNet>,
}

/// Why a group could not be parsed or compiled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The text has no `=` between the name and the prefixes.
    #[error("{text:?} is not NAME=CIDR[,CIDR...]")]
    Syntax {
        /// The whole text given.
        text: String,
    },
    /// The name is empty, too long or has a character outside `[A-Za-z0-9_.-]`.
    #[error(
        "group name {name:?} must be 1 to {MAX_NAME_LEN} letters, digits, '_', '-' or '.', \
         starting with a letter or digit"
    )]
    Name {
        /// The name given.
        name: String,
    },
    /// One of the prefixes is not a CIDR.
    #[error("{cidr:?} in group {name:?} is not a CIDR prefix (e.g. 198.18.0.0/15, 2001:db8::/32)")]
    Cidr {
        /// The group's name.
        name: String,
        /// The offending prefix text.
        cidr: String,
    },
    /// Two groups share a name.
    #[error("group name {name:?} is given twice")]
    Duplicate {
        /// The repeated name.
        name: String,
    },
    /// More groups than the matcher holds.
    #[error("{count} groups given; at most {MAX_GROUPS} are supported")]
    TooMany {
        /// How many were given.
        count: usize,
    },
}

impl FromStr for Group {
    type Err = GroupError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, list) = text.split_once('=').ok_or_else(|| GroupError::Syntax {
            text: text.to_owned(),
        })?;
        let name = name.trim();
        let valid_name = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid_name {
            return Err(GroupError::Name {
                name: name.to_owned(),
            });
        }
        let prefixes = list
            .split(',')
            .map(|cidr| {
                cidr.trim()
                    .parse::<IpNet>()
                    .map(|net| net.trunc())
                    .map_err(|_| GroupError::Cidr {
                        name: name.to_owned(),
                        cidr: cidr.trim().to_owned(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            name: name.to_owned(),
            prefixes,
        })
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=", self.name)?;
        for (i, p) in self.prefixes.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// All prefixes of one length: the networks (sorted) and the groups each belongs to.
#[derive(Clone, Debug)]
struct Level {
    mask: u128,
    /// Whether the prefixes are IPv4 ones: a level matches addresses of its own family only.
    v4: bool,
    networks: Vec<(u128, u64)>,
}

/// The compiled groups: maps an address to the bitmask of groups it is in.
///
/// Prefixes are bucketed by length; within a length they are sorted, so a lookup costs one
/// binary search per distinct prefix length and allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct GroupSet {
    names: Vec<String>,
    levels: Vec<Level>,
}

/// A prefix as a (network, mask, IPv4) triple in [`Addr`] space (IPv4 mapped into
/// `::ffff:0:0/96`).
///
/// Families stay apart, as in the socket filter: an IPv6 prefix never matches an IPv4 packet,
/// even one as wide as `::/0` that spans the mapped range, except that an IPv4-mapped IPv6
/// prefix of /96 or longer is the IPv4 prefix it carries.
fn addr_prefix(net: &IpNet) -> (u128, u128, bool) {
    let (network, len, v4) = match net {
        IpNet::V4(v4) => (
            Addr::v4(v4.network().octets()).to_bits(),
            96 + u32::from(v4.prefix_len()),
            true,
        ),
        IpNet::V6(v6) => {
            let network = v6.network().to_bits();
            let len = u32::from(v6.prefix_len());
            let mapped = len >= 96 && network >> 32 == 0xffff;
            (network, len, mapped)
        }
    };
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    (network & mask, mask, v4)
}

impl GroupSet {
    /// Compiles `groups`; names must be unique and there may be at most [`MAX_GROUPS`].
    pub fn new(groups: &[Group]) -> Result<Self, GroupError> {
        if groups.len() > MAX_GROUPS {
            return Err(GroupError::TooMany {
                count: groups.len(),
            });
        }
        let mut names: Vec<String> = Vec::with_capacity(groups.len());
        let mut levels: Vec<Level> = Vec::new();
        for (bit, group) in groups.iter().enumerate() {
            if names.contains(&group.name) {
                return Err(GroupError::Duplicate {
                    name: group.name.clone(),
                });
            }
            names.push(group.name.clone());
            for prefix in &group.prefixes {
                let (network, mask, v4) = addr_prefix(prefix);
                let index =
                    if let Some(i) = levels.iter().position(|l| l.mask == mask && l.v4 == v4) {
                        i
                    } else {
                        levels.push(Level {
                            mask,
                            v4,
                            networks: Vec::new(),
                        });
                        levels.len() - 1
                    };
                let level = &mut levels[index];
                match level.networks.iter_mut().find(|(n, _)| *n == network) {
                    Some((_, bits)) => *bits |= 1 << bit,
                    None => level.networks.push((network, 1 << bit)),
                }
            }
        }
        for level in &mut levels {
            level.networks.sort_unstable_by_key(|&(n, _)| n);
        }
        // Longer prefixes are rarer; shorter ones first keeps the common lookups early.
        levels.sort_unstable_by_key(|l| l.mask.count_ones());
        Ok(Self { names, levels })
    }

    /// The group names, in bit order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// How many groups there are.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no groups.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The groups `addr` is in: bit `i` is set for the `i`-th group.
    #[inline]
    pub fn matches(&self, addr: Addr) -> u64 {
        let mut bits = 0;
        let v4 = addr.to_bits() >> 32 == 0xffff;
        for level in &self.levels {
            if level.v4 != v4 {
                continue;
            }
            let key = addr.to_bits() & level.mask;
            // Skips a whole level at once when the address is outside its span (an IPv4
            // address against IPv6 prefixes and the other way round, above all).
            let outside = level.networks.first().is_none_or(|&(lo, _)| key < lo)
                || level.networks.last().is_none_or(|&(hi, _)| key > hi);
            if outside {
                continue;
            }
            if let Ok(i) = level.networks.binary_search_by_key(&key, |&(n, _)| n) {
                bits |= level.networks[i].1;
            }
        }
        bits
    }
}

/// Packets and bytes sent and received, the four counters every group keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCounters {
    /// Packets from an address in the group.
    pub packets_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Packets to an address in the group.
    pub packets_received: u64,
    /// Their bytes.
    pub bytes_received: u64,
}

/// One worker's group counts since its last hand-over: a fixed slot per group.
///
/// The slots are allocated once, when the counts are made; counting writes into them and
/// never allocates.
#[derive(Clone, Debug, Default)]
pub struct GroupCounts {
    set: Arc<GroupSet>,
    slots: Vec<GroupCounters>,
}

impl GroupCounts {
    /// Empty counts for the groups of `set`.
    pub fn new(set: Arc<GroupSet>) -> Self {
        let slots = vec![GroupCounters::default(); set.len()];
        Self { set, slots }
    }

    /// Counts `packets` on the wire (1, or a super-frame's segments) from `src` to `dst` of
    /// `bytes` into every group either side is in.
    #[inline]
    pub fn count(&mut self, src: Addr, dst: Addr, packets: u32, bytes: u64) {
        if self.set.is_empty() {
            return;
        }
        let mut sent = self.set.matches(src);
        while sent != 0 {
            if let Some(slot) = self.slots.get_mut(sent.trailing_zeros() as usize) {
                slot.packets_sent += u64::from(packets);
                slot.bytes_sent += bytes;
            }
            sent &= sent - 1;
        }
        let mut received = self.set.matches(dst);
        while received != 0 {
            if let Some(slot) = self.slots.get_mut(received.trailing_zeros() as usize) {
                slot.packets_received += u64::from(packets);
                slot.bytes_received += bytes;
            }
            received &= received - 1;
        }
    }

    /// The counts per group, in the set's order.
    pub fn slots(&self) -> &[GroupCounters] {
        &self.slots
    }

    /// Adds these counts into `totals` (same groups, same order) and zeroes them for reuse.
    pub fn drain_into(&mut self, totals: &mut [GroupTotals]) {
        for (slot, total) in self.slots.iter_mut().zip(totals) {
            total.packets_sent += slot.packets_sent;
            total.bytes_sent += slot.bytes_sent;
            total.packets_received += slot.packets_received;
            total.bytes_received += slot.bytes_received;
            *slot = GroupCounters::default();
        }
    }
}

/// One group's totals since capture started, as the snapshot carries them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GroupTotals {
    /// The group's name.
    pub name: String,
    /// Packets from an address in the group.
    pub packets_sent: u64,
    /// Their bytes on the wire.
    pub bytes_sent: u64,
    /// Packets to an address in the group.
    pub packets_received: u64,
    /// Their bytes on the wire.
    pub bytes_received: u64,
}

impl GroupTotals {
    /// Zeroed totals for every group of `set`, in its order.
    pub fn for_set(set: &GroupSet) -> Vec<Self> {
        set.names()
            .iter()
            .map(|name| Self {
                name: name.clone(),
                ..Self::default()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Addr {
        s.parse::<std::net::IpAddr>().unwrap().into()
    }

    fn set(specs: &[&str]) -> GroupSet {
        let groups: Vec<Group> = specs.iter().map(|s| s.parse().unwrap()).collect();
        GroupSet::new(&groups).unwrap()
    }

    #[test]
    fn parses_names_and_prefixes_and_normalises_them() {
        let g: Group = "lab=198.18.0.1/24, 2001:db8::5/32".parse().unwrap();
        assert_eq!(g.name, "lab");
        assert_eq!(g.to_string(), "lab=198.18.0.0/24,2001:db8::/32");
    }

    #[test]
    fn bad_groups_name_the_bad_part() {
        let err = |s: &str| s.parse::<Group>().unwrap_err().to_string();
        assert!(err("lab").contains("NAME=CIDR"));
        assert!(err("=198.18.0.0/15").contains("group name \"\""));
        assert!(err("la b=198.18.0.0/15").contains("\"la b\""));
        assert!(err("-x=198.18.0.0/15").contains("\"-x\""));
        let e = err("lab=198.18.0.0/15,198.18.0.0/33");
        assert!(
            e.contains("\"198.18.0.0/33\"") && e.contains("\"lab\""),
            "{e}"
        );
        assert!(err("lab=").contains("\"\""));
        let twice = [
            "a=198.18.0.0/15".parse().unwrap(),
            "a=2001:db8::/32".parse().unwrap(),
        ];
        assert!(matches!(
            GroupSet::new(&twice),
            Err(GroupError::Duplicate { .. })
        ));
        let many: Vec<Group> = (0..=MAX_GROUPS)
            .map(|i| format!("g{i}=198.18.0.0/15").parse().unwrap())
            .collect();
        assert_eq!(
            GroupSet::new(&many).unwrap_err(),
            GroupError::TooMany {
                count: MAX_GROUPS + 1
            }
        );
        assert!(GroupSet::new(&many[..MAX_GROUPS]).is_ok());
    }

    #[test]
    fn addresses_map_to_every_matching_group() {
        let s = set(&[
            "a=198.18.0.0/24",
            "b=198.18.0.0/15,2001:db8:1::/48",
            "c=2001:db8::/32",
            "d=198.19.255.255/32",
            "all4=0.0.0.0/0",
        ]);
        assert_eq!(s.matches(addr("198.18.0.7")), 0b10011);
        assert_eq!(s.matches(addr("198.18.1.7")), 0b10010);
        assert_eq!(s.matches(addr("198.19.255.255")), 0b11010);
        assert_eq!(s.matches(addr("198.20.0.1")), 0b10000);
        assert_eq!(s.matches(addr("2001:db8:1::9")), 0b00110);
        assert_eq!(s.matches(addr("2001:db8:2::9")), 0b00100);
        assert_eq!(s.matches(addr("2001:db9::1")), 0);
        // IPv4 prefixes never match IPv6 addresses that merely share low bits.
        assert_eq!(s.matches(addr("::c612:7")), 0);
        assert_eq!(GroupSet::default().matches(addr("198.18.0.1")), 0);
    }

    #[test]
    fn ipv6_prefixes_match_ipv6_addresses_only_as_the_filter_judges_them() {
        let s = set(&[
            "all6=::/0",
            "low6=::/1",
            "mapped=::ffff:198.18.0.0/112",
            "all4=0.0.0.0/0",
        ]);
        // `::/0` and `::/1` span the mapped range, yet an IPv4 address is not IPv6 traffic.
        assert_eq!(s.matches(addr("198.18.0.7")), 0b1100);
        assert_eq!(s.matches(addr("198.19.0.7")), 0b1000);
        assert_eq!(s.matches(addr("2001:db8::1")), 0b0011);
        assert_eq!(s.matches(addr("fe80::1")), 0b0001);
        assert_eq!(s.matches(addr("::1")), 0b0011);
    }

    #[test]
    fn counts_sent_and_received_per_group_and_drains() {
        let s = Arc::new(set(&["a=198.18.0.0/24", "b=198.18.1.0/24"]));
        let mut counts = GroupCounts::new(s.clone());
        let cap = counts.slots.capacity();
        counts.count(addr("198.18.0.1"), addr("198.18.1.1"), 1, 100);
        counts.count(addr("198.18.1.1"), addr("198.18.0.1"), 1, 60);
        counts.count(addr("198.18.0.1"), addr("198.18.0.2"), 1, 10);
        counts.count(addr("198.19.0.1"), addr("2001:db8::1"), 1, 1000);
        assert_eq!(counts.slots.capacity(), cap);
        assert_eq!(
            counts.slots()[0],
            GroupCounters {
                packets_sent: 2,
                bytes_sent: 110,
                packets_received: 2,
                bytes_received: 70,
            }
        );
        assert_eq!(
            counts.slots()[1],
            GroupCounters {
                packets_sent: 1,
                bytes_sent: 60,
                packets_received: 1,
                bytes_received: 100,
            }
        );
        let mut totals = GroupTotals::for_set(&s);
        counts.drain_into(&mut totals);
        counts.drain_into(&mut totals);
        assert_eq!(totals[0].name, "a");
        assert_eq!((totals[0].bytes_sent, totals[1].bytes_received), (110, 100));
        assert!(
            counts
                .slots()
                .iter()
                .all(|c| *c == GroupCounters::default())
        );
    }
}
