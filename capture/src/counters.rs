//! What a worker counts: conversation keys, per-address and per-conversation deltas, and the
//! [`Tally`] that holds them for one tick.
//!
//! A packet costs one table lookup: the worker counts it under its conversation (protocol,
//! ports and both addresses with `--flows`; the two addresses without), per direction. Each
//! address's sent and received counts follow exactly from its conversations, so they are
//! derived once a tick when the tally is merged, not per packet. A conversation evicted within
//! the tick spills its two addresses' deltas into a per-address table instead, so a server
//! that a flood of one-packet conversations hits still gets every one of them counted: that
//! costs two more lookups, only when a conversation is evicted.
//!
//! A worker owns its tally outright, so counting takes no lock. The tally's table is a bounded
//! [`ClockTable`] allocated once, so counting never allocates either: when more distinct keys
//! arrive within a tick than it holds, the idlest entry is evicted into the tally's evicted
//! sums, inside the worker. What crosses to the aggregator once a tick is therefore at most
//! one table's worth of keys per worker, however many packets or keys the tick carried.

use std::hash::{Hash, Hasher};

use std::sync::Arc;

use crate::config::CaptureConfig;
use crate::groups::{GroupCounts, GroupSet};
use crate::parse::{Addr, Packet};
use crate::snapshot::{EvictedFlows, EvictedTalkers};
use crate::spill::HotTalkers;
use crate::table::{ClockTable, Evict};

/// Smallest per-worker tally table, so small bounds with many workers still batch well.
const MIN_TALLY_ENTRIES: usize = 4096;

/// Entries one worker's tally table holds for a table bound of `max` shared by `workers`;
/// `together` when every frame of a conversation reaches the same worker (`hash` fanout).
///
/// With `hash` a worker sees about `max / workers` of a table's worth of keys; more only makes
/// a flood cost more to merge. With another mode a conversation reaches more than one worker:
/// with `cpu`, each direction reaches the worker of the CPU that took it in (the sender's on
/// veth, the one RSS picked on a NIC), so a conversation usually reaches two, and on veth a
/// conversation sent from every CPU reaches all of them. A tally of a share would then evict,
/// within the tick, conversations the tables have room for, and their counts would reach only
/// the evicted sums; so it holds twice a share (the whole bound with two workers), which keeps
/// all workers' tallies together at four tables' worth however many workers there are. Never
/// more than `max`, never less than a few thousand.
pub fn tally_capacity(max: usize, workers: usize, together: bool) -> usize {
    let reach = if together { 1 } else { 2 };
    max.div_ceil(workers.max(1))
        .saturating_mul(reach)
        .max(MIN_TALLY_ENTRIES)
        .min(max)
        .max(1)
}

/// An empty tally for one of `workers` workers counting for `config`, sized by
/// [`tally_capacity`] for its table bound (flows with `--flows`, else talkers), with a slot
/// per named group.
pub(crate) fn new_tally(
    config: &CaptureConfig,
    workers: usize,
    together: bool,
    groups: &Arc<GroupSet>,
) -> Box<Tally> {
    let bound = if config.flows {
        config.max_flows
    } else {
        config.max_talkers
    };
    let capacity = tally_capacity(bound, workers, together);
    Box::new(Tally::new(capacity, config.flows).with_groups(GroupCounts::new(groups.clone())))
}

/// One side of a flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// The address.
    pub ip: Addr,
    /// The port, or 0 when the flow has none.
    pub port: u16,
}

/// A conversation: protocol plus both endpoints, in canonical (sorted) order so that both
/// directions share one key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
        state.write_u128(self.lo.ip.to_bits());
        state.write_u128(self.hi.ip.to_bits());
        state.write_u64(
            u64::from(self.lo.port)
                | u64::from(self.hi.port) << 16
                | u64::from(self.proto) << 32
                | u64::from(self.has_ports) << 40,
        );
    }
}

impl FlowKey {
    /// The canonical key of a packet's address pair (no protocol, no ports) and the packet's
    /// direction within it.
    #[inline]
    pub fn pair(packet: &Packet) -> (Self, Direction) {
        let (lo, hi, dir) = if packet.src <= packet.dst {
            (packet.src, packet.dst, Direction::LoToHi)
        } else {
            (packet.dst, packet.src, Direction::HiToLo)
        };
        let key = Self {
            proto: 0,
            has_ports: false,
            lo: Endpoint { ip: lo, port: 0 },
            hi: Endpoint { ip: hi, port: 0 },
        };
        (key, dir)
    }

    /// The canonical key of a packet's flow and the packet's direction within it.
    #[inline]
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

impl TalkerDelta {
    /// Adds another delta for the same address.
    pub fn add(&mut self, other: &Self) {
        self.packets_sent += other.packets_sent;
        self.bytes_sent += other.bytes_sent;
        self.packets_received += other.packets_received;
        self.bytes_received += other.bytes_received;
        self.first_ns = self.first_ns.min(other.first_ns);
        self.last_ns = self.last_ns.max(other.last_ns);
    }
}

impl Evict for TalkerDelta {
    type Sums = EvictedTalkers;
    fn evict_into(&self, sums: &mut EvictedTalkers) {
        sums.entries += 1;
        sums.packets_sent += self.packets_sent;
        sums.bytes_sent += self.bytes_sent;
        sums.packets_received += self.packets_received;
        sums.bytes_received += self.bytes_received;
    }
}

impl Evict for FlowDelta {
    type Sums = EvictedFlows;
    fn evict_into(&self, sums: &mut EvictedFlows) {
        sums.entries += 1;
        sums.packets += self.packets[0] + self.packets[1];
        sums.bytes += self.bytes[0] + self.bytes[1];
    }
}

/// Packets a worker holds queued before counting them, so that their table lookups wait for
/// memory while later frames are parsed rather than one after another.
pub const BATCH: usize = 32;
/// Pushes after its own that a queued packet's slot is prefetched: by then its index bucket,
/// prefetched when it was queued, has arrived, and its slot has as long again to arrive
/// before it is counted.
const SLOT_LAG: usize = BATCH / 2;

/// A packet queued for counting, with its key and hash worked out.
#[derive(Clone, Copy, Default)]
struct Pending {
    key: FlowKey,
    dir: Direction,
    /// Packets on the wire: 1, or a super-frame's segments.
    packets: u32,
    hash: u64,
    bytes: u64,
    ts_ns: u64,
}

/// One worker's counts for one tick, in a bounded table of conversations.
pub struct Tally {
    conversations: ClockTable<FlowKey, FlowDelta>,
    /// A ring of queued packets: `queued` of them, the oldest at `head`.
    pending: [Pending; BATCH],
    head: usize,
    queued: usize,
    /// Per-address deltas of conversations evicted within the tick.
    spilled: HotTalkers,
    /// Per-group counts of the packets (empty when no groups are configured).
    pub groups: GroupCounts,
    flows: bool,
    packets: u64,
    bytes: u64,
}

impl Tally {
    /// A tally of up to `capacity` conversations; with `flows` they are flows (protocol and
    /// ports in the key), without they are address pairs.
    pub fn new(capacity: usize, flows: bool) -> Self {
        Self {
            conversations: ClockTable::with_capacity(capacity),
            pending: [Pending::default(); BATCH],
            head: 0,
            queued: 0,
            spilled: HotTalkers::new(),
            groups: GroupCounts::default(),
            flows,
            packets: 0,
            bytes: 0,
        }
    }

    /// The same tally, also counting into `groups`.
    #[must_use]
    pub fn with_groups(mut self, groups: GroupCounts) -> Self {
        self.groups = groups;
        self
    }

    /// Counts one parsed packet of `bytes` on the wire, seen at `ts_ns`, at once.
    #[inline]
    pub fn count(&mut self, packet: &Packet, bytes: u64, ts_ns: u64) {
        self.groups
            .count(packet.src, packet.dst, packet.segments, bytes);
        let pending = self.pending_of(packet, bytes, ts_ns);
        self.apply(pending);
    }

    /// Queues one parsed packet and starts loading what counting it will read: its index
    /// bucket now, its slot [`SLOT_LAG`] pushes later, and counts it [`BATCH`] pushes later,
    /// so each load overlaps the parsing of the frames after it. Call [`Self::flush`] before
    /// reading the tally.
    #[inline]
    pub fn push(&mut self, packet: &Packet, bytes: u64, ts_ns: u64) {
        self.groups
            .count(packet.src, packet.dst, packet.segments, bytes);
        let pending = self.pending_of(packet, bytes, ts_ns);
        self.conversations.prefetch_index(pending.hash);
        if self.queued == BATCH {
            let oldest = self.pending[self.head];
            self.head = (self.head + 1) % BATCH;
            self.queued -= 1;
            self.apply(oldest);
        }
        self.pending[(self.head + self.queued) % BATCH] = pending;
        self.queued += 1;
        if self.queued > SLOT_LAG {
            let lagging = self.pending[(self.head + self.queued - 1 - SLOT_LAG) % BATCH];
            self.conversations.prefetch_slot(lagging.hash);
        }
    }

    /// Counts every queued packet, oldest first, after starting to load the slots of those
    /// whose slots [`Self::push`] has not asked for yet.
    #[inline]
    pub fn flush(&mut self) {
        let queued = self.queued.min(BATCH);
        for n in queued.saturating_sub(SLOT_LAG)..queued {
            let p = self.pending[(self.head + n) % BATCH];
            self.conversations.prefetch_slot(p.hash);
        }
        for n in 0..queued {
            let p = self.pending[(self.head + n) % BATCH];
            self.apply(p);
        }
        self.head = 0;
        self.queued = 0;
    }

    #[inline]
    fn pending_of(&self, packet: &Packet, bytes: u64, ts_ns: u64) -> Pending {
        let (key, dir) = if self.flows {
            FlowKey::of(packet)
        } else {
            FlowKey::pair(packet)
        };
        Pending {
            key,
            dir,
            packets: packet.segments,
            hash: self.conversations.hash(&key),
            bytes,
            ts_ns,
        }
    }

    #[inline]
    fn apply(&mut self, p: Pending) {
        self.packets += u64::from(p.packets);
        self.bytes += p.bytes;
        let spilled = &mut self.spilled;
        let delta = self.conversations.upsert_hashed(
            p.hash,
            p.key,
            || FlowDelta {
                first_ns: p.ts_ns,
                first_dir: p.dir,
                ..FlowDelta::default()
            },
            |old_key, old| {
                for (ip, side) in [
                    (old_key.lo.ip, Direction::LoToHi),
                    (old_key.hi.ip, Direction::HiToLo),
                ] {
                    spilled.add(ip, &old.talker(side));
                }
            },
        );
        delta.packets[p.dir.index()] += u64::from(p.packets);
        delta.bytes[p.dir.index()] += p.bytes;
        delta.last_ns = delta.last_ns.max(p.ts_ns);
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.packets == 0
    }

    /// IP packets counted.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Their bytes on the wire.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether the conversations are flows (with protocol and ports) or address pairs.
    pub fn flows(&self) -> bool {
        self.flows
    }

    /// The conversations counted, with what the tally itself evicted.
    pub fn conversations(&self) -> &ClockTable<FlowKey, FlowDelta> {
        &self.conversations
    }

    /// Per-address deltas of the conversations evicted within the tick, with what that table
    /// evicted in turn.
    pub fn spilled(&self) -> &HotTalkers {
        &self.spilled
    }

    /// Empties the tally for the next tick, keeping its allocation.
    pub fn clear(&mut self) {
        self.head = 0;
        self.queued = 0;
        self.conversations.clear();
        self.spilled.clear();
        self.packets = 0;
        self.bytes = 0;
    }
}

impl FlowDelta {
    /// What this conversation means for its `lo` (`Direction::LoToHi`) or `hi` address.
    pub fn talker(&self, side: Direction) -> TalkerDelta {
        let (out, back) = match side {
            Direction::LoToHi => (0, 1),
            Direction::HiToLo => (1, 0),
        };
        TalkerDelta {
            packets_sent: self.packets[out],
            bytes_sent: self.bytes[out],
            packets_received: self.packets[back],
            bytes_received: self.bytes[back],
            first_ns: self.first_ns,
            last_ns: self.last_ns,
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
            segments: 1,
            bytes: 0,
        }
    }

    #[test]
    fn both_directions_share_a_flow() {
        let mut t = Tally::new(8, true);
        t.count(&packet("198.18.0.2", 4000, "198.18.0.1", 53), 100, 10);
        t.count(&packet("198.18.0.1", 53, "198.18.0.2", 4000), 60, 20);
        t.count(&packet("198.18.0.2", 4000, "198.18.0.1", 53), 100, 30);
        assert_eq!(t.conversations().len(), 1);
        let (key, flow) = t.conversations().iter().next().unwrap();
        assert_eq!((key.proto, key.lo.port, key.hi.port), (17, 53, 4000));
        // 198.18.0.1:53 sorts first, so the client's packets go hi -> lo.
        assert_eq!(flow.packets, [1, 2]);
        assert_eq!(flow.bytes, [60, 200]);
        assert_eq!(
            (flow.first_ns, flow.last_ns, flow.first_dir),
            (10, 30, Direction::HiToLo)
        );
        let client = flow.talker(Direction::HiToLo);
        assert_eq!(
            (
                client.packets_sent,
                client.bytes_sent,
                client.packets_received,
                client.bytes_received
            ),
            (2, 200, 1, 60)
        );
        assert_eq!((t.packets(), t.bytes()), (3, 260));
    }

    #[test]
    fn without_flows_ports_and_protocols_share_one_address_pair() {
        let mut t = Tally::new(8, false);
        t.count(&packet("198.18.0.2", 4000, "198.18.0.1", 53), 100, 10);
        t.count(&packet("198.18.0.2", 4001, "198.18.0.1", 443), 100, 20);
        assert_eq!(t.conversations().len(), 1);
        let (key, pair) = t.conversations().iter().next().unwrap();
        assert_eq!((key.proto, key.has_ports, key.hi.port), (0, false, 0));
        assert_eq!(pair.packets, [0, 2]);
    }

    #[test]
    fn a_full_tally_evicts_inside_the_worker_and_keeps_exact_sums() {
        let mut t = Tally::new(8, true);
        for i in 0..1000u16 {
            let src = format!("198.18.{}.{}", i / 250, i % 250);
            t.count(&packet(&src, i, "198.19.0.1", 53), 100, u64::from(i));
        }
        let c = t.conversations();
        assert_eq!(c.len(), 8);
        let kept: u64 = c.iter().map(|(_, f)| f.packets[0] + f.packets[1]).sum();
        assert_eq!(kept + c.evicted().packets, 1000);
        assert_eq!(c.evicted().entries, 1000 - 8);
        // Every address's deltas are in a kept conversation, in the spill table, or in what the
        // spill table evicted; the server, hit by every packet, stays whole in the spill table.
        let sides = |f: &FlowDelta| [f.talker(Direction::LoToHi), f.talker(Direction::HiToLo)];
        let kept_sent: u64 = c
            .iter()
            .flat_map(|(_, f)| sides(f))
            .map(|d| d.bytes_sent)
            .sum();
        let spilled = t.spilled();
        let spilled_sent: u64 = spilled.iter().map(|(_, d)| d.bytes_sent).sum();
        assert_eq!(
            kept_sent + spilled_sent + spilled.evicted().bytes_sent,
            100_000
        );
        let server = spilled.get(addr("198.19.0.1")).unwrap();
        let server_in_kept: u64 = c.iter().map(|(_, f)| f.packets[0] + f.packets[1]).sum();
        assert_eq!(server.packets_received + server_in_kept, 1000);
        t.clear();
        assert!(t.is_empty() && t.conversations().is_empty());
        assert_eq!(t.conversations().evicted().entries, 0);
    }

    #[test]
    fn tally_tables_scale_with_the_bound_shared_by_workers() {
        assert_eq!(tally_capacity(100_000, 2, true), 50_000);
        assert_eq!(tally_capacity(100_000, 16, true), 6250);
        assert_eq!(tally_capacity(100_000, 256, true), MIN_TALLY_ENTRIES);
        assert_eq!(tally_capacity(64, 8, true), 64);
        assert_eq!(tally_capacity(100_000, 2, false), 100_000);
        assert_eq!(tally_capacity(100_000, 16, false), 12_500);
        assert_eq!(tally_capacity(64, 8, false), 64);
    }
}
