//! Per-worker delta tables: what one worker counted since it last handed its tables over.
//!
//! A worker owns its [`Tally`] outright, so counting takes no lock. Both maps are allocated
//! once with a fixed capacity and the worker checks [`Tally::has_room`] before each packet, so
//! counting never allocates either: when a map is full the worker hands the tally to the
//! aggregator and continues with an empty one from its pool.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use crate::groups::GroupCounts;
use crate::parse::{Addr, Packet};

/// Addresses a worker's tally holds before the worker hands it over.
pub const TALLY_TALKERS: usize = 2048;
/// Flows a worker's tally holds before the worker hands it over.
pub const TALLY_FLOWS: usize = 2048;

/// The hasher for every table keyed by packet data: fast, and seeded per process.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One side of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// The address.
    pub ip: Addr,
    /// The port, or 0 when the flow has none.
    pub port: u16,
}

/// A conversation: protocol plus both endpoints, in canonical (sorted) order so that both
/// directions share one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    /// IP protocol number.
    pub proto: u8,
    /// Whether the ports are real (first fragment of TCP/UDP/UDP-Lite/SCTP).
    pub has_ports: bool,
    /// The lower endpoint.
    pub lo: Endpoint,
    /// The higher endpoint.
    pub hi: Endpoint,
}

/// Which way a packet went relative to a [`FlowKey`]'s canonical order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    /// From `lo` to `hi`.
    #[default]
    LoToHi,
    /// From `hi` to `lo`.
    HiToLo,
}

impl Direction {
    /// 0 for lo→hi, 1 for hi→lo: the index into per-direction arrays.
    pub fn index(self) -> usize {
        match self {
            Self::LoToHi => 0,
            Self::HiToLo => 1,
        }
    }
}

impl Hash for FlowKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Three word-sized writes instead of the derived field-by-field walk.
        state.write_u128(self.lo.ip.0);
        state.write_u128(self.hi.ip.0);
        state.write_u64(
            u64::from(self.lo.port)
                | u64::from(self.hi.port) << 16
                | u64::from(self.proto) << 32
                | u64::from(self.has_ports) << 40,
        );
    }
}

impl FlowKey {
    /// The canonical key of a packet's flow and the packet's direction within it.
    pub fn of(packet: &Packet) -> (Self, Direction) {
        let (sport, dport) = packet.ports.unwrap_or((0, 0));
        let src = Endpoint {
            ip: packet.src,
            port: sport,
        };
        let dst = Endpoint {
            ip: packet.dst,
            port: dport,
        };
        let (lo, hi, dir) = if src <= dst {
            (src, dst, Direction::LoToHi)
        } else {
            (dst, src, Direction::HiToLo)
        };
        let key = Self {
            proto: packet.proto,
            has_ports: packet.ports.is_some(),
            lo,
            hi,
        };
        (key, dir)
    }
}

/// What one worker counted for one address since the last hand-over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TalkerDelta {
    /// Packets with this address as source.
    pub packets_sent: u64,
    /// Bytes with this address as source.
    pub bytes_sent: u64,
    /// Packets with this address as destination.
    pub packets_received: u64,
    /// Bytes with this address as destination.
    pub bytes_received: u64,
    /// Earliest packet timestamp, ns since the epoch.
    pub first_ns: u64,
    /// Latest packet timestamp, ns since the epoch.
    pub last_ns: u64,
}

/// What one worker counted for one flow since the last hand-over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowDelta {
    /// Packets per [`Direction::index`].
    pub packets: [u64; 2],
    /// Bytes per [`Direction::index`].
    pub bytes: [u64; 2],
    /// Earliest packet timestamp, ns since the epoch.
    pub first_ns: u64,
    /// Latest packet timestamp, ns since the epoch.
    pub last_ns: u64,
    /// Direction of the earliest packet: its source is the flow's "a" side.
    pub first_dir: Direction,
}

/// One worker's counts since its last hand-over.
pub struct Tally {
    /// Per-address deltas.
    pub talkers: FastMap<Addr, TalkerDelta>,
    /// Per-flow deltas; empty when flows are off.
    pub flows: FastMap<FlowKey, FlowDelta>,
    /// IP packets counted into this tally.
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
    /// Per-group counts of those packets (empty when no groups are configured).
    pub groups: GroupCounts,
    talker_room: usize,
    flow_room: Option<usize>,
}

impl Tally {
    /// A tally that holds up to `talkers` addresses and, when flows are on, `flows` flows.
    pub fn with_capacity(talkers: usize, flows: Option<usize>) -> Self {
        let talker_room = talkers.max(2);
        let flow_room = flows.map(|f| f.max(1));
        Self {
            talkers: FastMap::with_capacity_and_hasher(
                talker_room,
                foldhash::fast::RandomState::default(),
            ),
            flows: FastMap::with_capacity_and_hasher(
                flow_room.unwrap_or(0),
                foldhash::fast::RandomState::default(),
            ),
            packets: 0,
            bytes: 0,
            groups: GroupCounts::default(),
            talker_room,
            flow_room,
        }
    }

    /// Whether one more packet fits without growing either map.
    #[inline]
    pub fn has_room(&self) -> bool {
        self.talkers.len() + 2 <= self.talker_room
            && self.flow_room.is_none_or(|room| self.flows.len() < room)
    }

    /// The same tally, also counting into `groups`.
    #[must_use]
    pub fn with_groups(mut self, groups: GroupCounts) -> Self {
        self.groups = groups;
        self
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.packets == 0
    }

    /// Counts one parsed packet of `bytes` on the wire, seen at `ts_ns`.
    ///
    /// The caller checks [`Self::has_room`] first; then no insert can grow a map.
    #[inline]
    pub fn count(&mut self, packet: &Packet, bytes: u64, ts_ns: u64) {
        self.packets += 1;
        self.bytes += bytes;
        self.groups.count(packet.src, packet.dst, bytes);
        let src = self.talkers.entry(packet.src).or_insert(TalkerDelta {
            first_ns: ts_ns,
            ..TalkerDelta::default()
        });
        src.packets_sent += 1;
        src.bytes_sent += bytes;
        src.last_ns = src.last_ns.max(ts_ns);
        let dst = self.talkers.entry(packet.dst).or_insert(TalkerDelta {
            first_ns: ts_ns,
            ..TalkerDelta::default()
        });
        dst.packets_received += 1;
        dst.bytes_received += bytes;
        dst.last_ns = dst.last_ns.max(ts_ns);
        if self.flow_room.is_some() {
            let (key, dir) = FlowKey::of(packet);
            let flow = self.flows.entry(key).or_insert(FlowDelta {
                first_ns: ts_ns,
                first_dir: dir,
                ..FlowDelta::default()
            });
            flow.packets[dir.index()] += 1;
            flow.bytes[dir.index()] += bytes;
            flow.last_ns = flow.last_ns.max(ts_ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::proto;

    fn addr(s: &str) -> Addr {
        s.parse::<std::net::IpAddr>().unwrap().into()
    }

    fn packet(src: &str, sport: u16, dst: &str, dport: u16) -> Packet {
        Packet {
            src: addr(src),
            dst: addr(dst),
            proto: proto::UDP,
            ports: Some((sport, dport)),
            vlan: None,
            tags: 0,
        }
    }

    #[test]
    fn both_directions_share_a_flow() {
        let mut t = Tally::with_capacity(8, Some(8));
        t.count(&packet("198.18.0.2", 4000, "198.18.0.1", 53), 100, 10);
        t.count(&packet("198.18.0.1", 53, "198.18.0.2", 4000), 60, 20);
        t.count(&packet("198.18.0.2", 4000, "198.18.0.1", 53), 100, 30);
        assert_eq!(t.flows.len(), 1);
        let flow = t.flows.values().next().unwrap();
        // 198.18.0.1:53 sorts first, so the client's packets go hi -> lo.
        assert_eq!(flow.packets, [1, 2]);
        assert_eq!(flow.bytes, [60, 200]);
        assert_eq!(
            (flow.first_ns, flow.last_ns, flow.first_dir),
            (10, 30, Direction::HiToLo)
        );
        let client = t.talkers[&addr("198.18.0.2")];
        assert_eq!(
            (
                client.packets_sent,
                client.bytes_sent,
                client.packets_received,
                client.bytes_received
            ),
            (2, 200, 1, 60)
        );
        assert_eq!((t.packets, t.bytes), (3, 260));
    }

    #[test]
    fn room_is_checked_before_the_maps_would_grow() {
        let mut t = Tally::with_capacity(4, Some(2));
        let cap = (t.talkers.capacity(), t.flows.capacity());
        let mut counted = 0;
        for i in 0..100u16 {
            if !t.has_room() {
                break;
            }
            t.count(
                &packet(&format!("198.18.1.{}", i % 250), i, "198.18.0.1", 1),
                64,
                1,
            );
            counted += 1;
        }
        assert_eq!(counted, 2);
        assert_eq!((t.talkers.capacity(), t.flows.capacity()), cap);
        let without_flows = Tally::with_capacity(4, None);
        assert!(without_flows.has_room());
    }
}
