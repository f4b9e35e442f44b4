//! The aggregate: cumulative per-address and per-flow tables with rate history, fed once a
//! tick with each worker's [`Tally`], and turned into snapshot rows.
//!
//! Its work per tick is bounded by table sizes, never by packets: merging reads at most every
//! worker's tally tables, and building rows reads the aggregate tables once. What a tally
//! evicted inside its worker is added to the aggregate's evicted sums, so table sums plus
//! evicted sums equal the totals at every tick.
//!
//! A full table admits a new key only when its delta for the tick carries at least
//! [`ADMIT_WHEN_FULL`] packets; a smaller one goes straight to the evicted sums. Under a flood
//! of one-packet sources that is what CLOCK would do a moment later anyway (a new entry starts
//! unreferenced), without the insert and eviction, and a heavy talker that is merged once a
//! tick is not swept out by the tick's thousands of newcomers.

use std::time::Duration;

use crate::counters::{Direction, FlowDelta, FlowKey, TalkerDelta, Tally};
use crate::history::{History, WINDOWS};
use crate::parse::Addr;
use crate::snapshot::{EvictedFlows, EvictedTalkers, Flow, Talker, Timestamp, WindowRates};
use crate::table::{ClockTable, Evict};

/// Packets a new key's delta needs in one tick to enter a full table.
pub const ADMIT_WHEN_FULL: u64 = 2;

/// One address, aggregated.
#[derive(Clone, Debug)]
pub(crate) struct TalkerEntry {
    counts: TalkerDelta,
    /// Bytes sent (series 0) and received (series 1) per tick.
    history: History<2>,
}

impl TalkerEntry {
    /// An entry with nothing counted yet, first seen with `delta`.
    fn new(delta: &TalkerDelta) -> Self {
        Self {
            counts: TalkerDelta {
                first_ns: delta.first_ns,
                ..TalkerDelta::default()
            },
            history: History::new(),
        }
    }

    fn merge(&mut self, delta: &TalkerDelta, tick: u32) {
        self.counts.add(delta);
        self.history.add(tick, 0, delta.bytes_sent);
        self.history.add(tick, 1, delta.bytes_received);
    }
}

impl Evict for TalkerEntry {
    type Sums = EvictedTalkers;
    fn evict_into(&self, sums: &mut EvictedTalkers) {
        self.counts.evict_into(sums);
    }
}

/// One flow, aggregated, in its key's canonical (lo, hi) orientation.
#[derive(Clone, Debug)]
pub(crate) struct FlowEntry {
    counts: FlowDelta,
    /// Bytes per direction index per tick.
    history: History<2>,
}

impl FlowEntry {
    /// An entry with nothing counted yet, first seen with `delta`.
    fn new(delta: &FlowDelta) -> Self {
        Self {
            counts: FlowDelta {
                first_ns: delta.first_ns,
                first_dir: delta.first_dir,
                ..FlowDelta::default()
            },
            history: History::new(),
        }
    }

    fn merge(&mut self, delta: &FlowDelta, tick: u32) {
        let c = &mut self.counts;
        for i in [Direction::LoToHi.index(), Direction::HiToLo.index()] {
            c.packets[i] += delta.packets[i];
            c.bytes[i] += delta.bytes[i];
            self.history.add(tick, i, delta.bytes[i]);
        }
        if delta.first_ns < c.first_ns {
            c.first_ns = delta.first_ns;
            c.first_dir = delta.first_dir;
        }
        c.last_ns = c.last_ns.max(delta.last_ns);
    }
}

impl Evict for FlowEntry {
    type Sums = EvictedFlows;
    fn evict_into(&self, sums: &mut EvictedFlows) {
        self.counts.evict_into(sums);
    }
}

/// Everything counted since capture started, in tables bounded by `max_talkers`/`max_flows`.
pub struct Aggregate {
    talkers: ClockTable<Addr, TalkerEntry>,
    flows: Option<ClockTable<FlowKey, FlowEntry>>,
    /// What tallies evicted inside their workers, and deltas a full table did not admit.
    tally_evicted_talkers: EvictedTalkers,
    tally_evicted_flows: EvictedFlows,
    packets: u64,
    bytes: u64,
    /// Packets (series 0) and bytes (series 1) per tick.
    totals_history: History<2>,
    tick: u32,
}

/// The rows of one snapshot, built from the aggregate.
pub struct Rows {
    /// IP packets counted.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Packets per second over each window.
    pub packets_per_sec: WindowRates,
    /// Bytes per second over each window.
    pub bytes_per_sec: WindowRates,
    /// Every tracked address.
    pub talkers: Vec<Talker>,
    /// Every tracked flow (empty when flows are off).
    pub flows: Vec<Flow>,
    /// What was evicted from the talker tables, here and in the workers.
    pub evicted_talkers: EvictedTalkers,
    /// What was evicted from the flow tables, here and in the workers.
    pub evicted_flows: EvictedFlows,
}

impl Aggregate {
    /// An empty aggregate holding up to `max_talkers` addresses and, when flows are on,
    /// `max_flows` flows.
    pub fn new(max_talkers: usize, max_flows: Option<usize>) -> Self {
        Self {
            talkers: ClockTable::with_capacity(max_talkers),
            flows: max_flows.map(ClockTable::with_capacity),
            tally_evicted_talkers: EvictedTalkers::default(),
            tally_evicted_flows: EvictedFlows::default(),
            packets: 0,
            bytes: 0,
            totals_history: History::new(),
            tick: 0,
        }
    }

    /// The tick counts are being merged into; rate windows count in ticks.
    pub fn tick(&self) -> u32 {
        self.tick
    }

    /// Adds one worker's tally to the current tick: each conversation to both its addresses
    /// and, with flows on, to its flow. The tally is left as it was; the caller clears it.
    pub fn merge(&mut self, tally: &Tally) {
        let tick = self.tick;
        self.packets += tally.packets();
        self.bytes += tally.bytes();
        self.totals_history.add(tick, 0, tally.packets());
        self.totals_history.add(tick, 1, tally.bytes());
        let conversations = tally.conversations();
        let spilled = tally.spilled();
        self.tally_evicted_talkers.add(spilled.evicted());
        let flows = self.flows.as_mut().filter(|_| tally.flows());
        if let Some(flows) = flows {
            self.tally_evicted_flows.add(conversations.evicted());
            let mut ahead = Lookahead::new(conversations.iter());
            while let Some(((key, delta), hash)) = ahead.next(flows, tick, |(key, _)| **key) {
                let heavy = delta.packets[0] + delta.packets[1] >= ADMIT_WHEN_FULL;
                match flows.upsert_admitting_hashed(hash, *key, || FlowEntry::new(delta), heavy) {
                    Some(entry) => entry.merge(delta, tick),
                    None => delta.evict_into(&mut self.tally_evicted_flows),
                }
            }
        }
        let talkers = &mut self.talkers;
        let mut ahead = Lookahead::new(talker_deltas(tally));
        while let Some(((ip, talker), hash)) = ahead.next(talkers, tick, |(ip, _)| *ip) {
            let heavy = talker.packets_sent + talker.packets_received >= ADMIT_WHEN_FULL;
            match talkers.upsert_admitting_hashed(hash, ip, || TalkerEntry::new(&talker), heavy) {
                Some(entry) => entry.merge(&talker, tick),
                None => talker.evict_into(&mut self.tally_evicted_talkers),
            }
        }
    }

    /// Ends the current tick: later merges count towards the next one.
    pub fn end_tick(&mut self) {
        self.tick += 1;
    }

    /// Entries in the talker table.
    pub fn talker_count(&self) -> usize {
        self.talkers.len()
    }

    /// Entries in the flow table.
    pub fn flow_count(&self) -> usize {
        self.flows.as_ref().map_or(0, ClockTable::len)
    }

    /// Every row with its rates, for a tick `tick_len` long.
    pub fn rows(&self, tick_len: Duration) -> Rows {
        let rates = RateScale::new(self.tick, tick_len);
        let totals = self.totals_history.window_sums(self.tick);
        let mut evicted_talkers = self.tally_evicted_talkers;
        evicted_talkers.add(self.talkers.evicted());
        let mut evicted_flows = self.tally_evicted_flows;
        if let Some(flows) = &self.flows {
            evicted_flows.add(flows.evicted());
        }
        Rows {
            packets: self.packets,
            bytes: self.bytes,
            packets_per_sec: rates.apply(totals, 0),
            bytes_per_sec: rates.apply(totals, 1),
            talkers: self
                .talkers
                .iter()
                .map(|(ip, e)| talker(*ip, e, &rates))
                .collect(),
            flows: self.flows.as_ref().map_or_else(Vec::new, |table| {
                table.iter().map(|(key, e)| flow(key, e, &rates)).collect()
            }),
            evicted_talkers,
            evicted_flows,
        }
    }
}

/// Every address delta a tally carries: both sides of each conversation, then the spill table.
fn talker_deltas(tally: &Tally) -> impl Iterator<Item = (Addr, TalkerDelta)> {
    let sides = tally.conversations().iter().flat_map(|(key, delta)| {
        [
            (key.lo.ip, delta.talker(Direction::LoToHi)),
            (key.hi.ip, delta.talker(Direction::HiToLo)),
        ]
    });
    sides.chain(tally.spilled().iter().map(|(ip, d)| (ip, *d)))
}

/// An entry with rate history, whose history the merge can ask to be loaded ahead.
trait Historic {
    fn history(&self) -> &History<2>;
}

impl Historic for TalkerEntry {
    fn history(&self) -> &History<2> {
        &self.history
    }
}

impl Historic for FlowEntry {
    fn history(&self) -> &History<2> {
        &self.history
    }
}

/// How many items ahead of the one being merged [`Lookahead`] asks for the index bucket, the
/// slot, and the history of each.
///
/// Each stage needs the previous one's line to have arrived (the slot's number is in the
/// bucket, the history's address in the slot), and a merge step that finds its lines loaded
/// takes a fraction of a memory latency: 12, 6 and 3 left every stage waiting (perf: 35% of
/// the merge on reading the slot for the history prefetch, 19% on the bucket for the slot's).
const INDEX_AHEAD: usize = 32;
const SLOT_AHEAD: usize = 16;
const HISTORY_AHEAD: usize = 8;
/// Items the lookahead holds: a power of two above [`INDEX_AHEAD`].
const QUEUE: usize = 64;

/// The items a merge takes, each with its key's hash, hashed [`INDEX_AHEAD`] items before it
/// is merged, so that each key's index bucket, then its slot, then its history are loading
/// while earlier items are merged: the tables are far larger than the caches, and one merge
/// after another would each wait for memory in turn. Each key is hashed once.
struct Lookahead<T, I> {
    items: I,
    queue: [Option<(T, u64)>; QUEUE],
    /// Items taken from `items` so far, and items handed out.
    queued: usize,
    taken: usize,
}

impl<T: Copy, I: Iterator<Item = T>> Lookahead<T, I> {
    fn new(items: I) -> Self {
        Self {
            items,
            queue: [None; QUEUE],
            queued: 0,
            taken: 0,
        }
    }

    /// The next item with its key's hash in `table`, after asking for what later items need.
    #[inline]
    fn next<K: Copy + Eq + std::hash::Hash, V: Evict + Historic>(
        &mut self,
        table: &ClockTable<K, V>,
        tick: u32,
        key: impl Fn(&T) -> K,
    ) -> Option<(T, u64)> {
        while self.queued <= self.taken + INDEX_AHEAD {
            let Some(item) = self.items.next() else {
                break;
            };
            let hash = table.hash(&key(&item));
            table.prefetch_index(hash);
            self.queue[self.queued % QUEUE] = Some((item, hash));
            self.queued += 1;
        }
        if let Some((_, hash)) = self.ahead(SLOT_AHEAD) {
            table.prefetch_slot(hash);
        }
        if let Some(entry) = self
            .ahead(HISTORY_AHEAD)
            .and_then(|(_, hash)| table.probable(hash))
        {
            entry.history().prefetch(tick);
        }
        let next = self.queue[self.taken % QUEUE].take()?;
        self.taken += 1;
        Some(next)
    }

    fn ahead(&self, n: usize) -> Option<(T, u64)> {
        self.queue[(self.taken + n) % QUEUE].filter(|_| self.taken + n < self.queued)
    }
}

/// Turns per-window byte sums into per-second rates.
struct RateScale {
    now: u32,
    seconds: [f64; 3],
}

impl RateScale {
    fn new(now: u32, tick: Duration) -> Self {
        // Early on, divide by the time actually covered rather than the whole window.
        let covered = now + 1;
        let seconds = WINDOWS.map(|w| f64::from(w.min(covered)) * tick.as_secs_f64());
        Self { now, seconds }
    }

    fn apply(&self, sums: [[u64; 2]; 3], series: usize) -> WindowRates {
        WindowRates(std::array::from_fn(|w| {
            (sums[w][series] as f64 / self.seconds[w]) as f32
        }))
    }

    fn of(&self, history: &History<2>) -> (WindowRates, WindowRates) {
        let sums = history.window_sums(self.now);
        (self.apply(sums, 0), self.apply(sums, 1))
    }
}

fn talker(ip: Addr, e: &TalkerEntry, rates: &RateScale) -> Talker {
    let (sent, received) = rates.of(&e.history);
    let c = &e.counts;
    Talker {
        ip: ip.into(),
        packets_sent: c.packets_sent,
        bytes_sent: c.bytes_sent,
        packets_received: c.packets_received,
        bytes_received: c.bytes_received,
        first_seen: Timestamp(c.first_ns),
        last_seen: Timestamp(c.last_ns),
        sent_bytes_per_sec: sent,
        received_bytes_per_sec: received,
    }
}

fn flow(key: &FlowKey, e: &FlowEntry, rates: &RateScale) -> Flow {
    let (lo_to_hi, hi_to_lo) = rates.of(&e.history);
    let c = &e.counts;
    let port = |p: u16| key.has_ports.then_some(p);
    // "a" is the side that sent the earliest packet seen.
    let (a, b, ab, ba, ab_rate, ba_rate) = match c.first_dir {
        Direction::LoToHi => (key.lo, key.hi, 0, 1, lo_to_hi, hi_to_lo),
        Direction::HiToLo => (key.hi, key.lo, 1, 0, hi_to_lo, lo_to_hi),
    };
    Flow {
        proto: key.proto,
        a_ip: a.ip.into(),
        a_port: port(a.port),
        b_ip: b.ip.into(),
        b_port: port(b.port),
        packets_a_to_b: c.packets[ab],
        bytes_a_to_b: c.bytes[ab],
        packets_b_to_a: c.packets[ba],
        bytes_b_to_a: c.bytes[ba],
        first_seen: Timestamp(c.first_ns),
        last_seen: Timestamp(c.last_ns),
        a_to_b_bytes_per_sec: ab_rate,
        b_to_a_bytes_per_sec: ba_rate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Packet, proto};

    fn packet(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Packet {
        Packet {
            src: Addr::v4(src),
            dst: Addr::v4(dst),
            proto: proto::UDP,
            ports: Some((sport, dport)),
            vlan: None,
            tags: 0,
            segments: 1,
            bytes: 0,
        }
    }

    #[test]
    fn flows_keep_the_earliest_direction_across_workers() {
        let mut agg = Aggregate::new(8, Some(8));
        let mut later = Tally::new(8, true);
        later.count(&packet([198, 18, 0, 1], 53, [198, 18, 0, 2], 4000), 60, 20);
        let mut earlier = Tally::new(8, true);
        earlier.count(&packet([198, 18, 0, 2], 4000, [198, 18, 0, 1], 53), 100, 10);
        earlier.count(&packet([198, 18, 0, 2], 4000, [198, 18, 0, 1], 53), 100, 30);
        agg.merge(&later);
        agg.merge(&earlier);
        let rows = agg.rows(Duration::from_secs(1));
        assert_eq!(rows.flows.len(), 1);
        let f = &rows.flows[0];
        assert_eq!(f.a_ip.to_string(), "198.18.0.2");
        assert_eq!((f.packets_a_to_b, f.bytes_a_to_b), (2, 200));
        assert_eq!((f.packets_b_to_a, f.bytes_b_to_a), (1, 60));
        assert_eq!((f.first_seen, f.last_seen), (Timestamp(10), Timestamp(30)));
        assert_eq!((rows.packets, rows.bytes), (3, 260));
    }

    #[test]
    fn evictions_here_and_in_workers_keep_the_sums_exact() {
        let mut agg = Aggregate::new(32, Some(16));
        let mut tally = Tally::new(12, true);
        let mut sent = 0u64;
        for tick in 0..5u32 {
            for i in 0..300u32 {
                let n = tick * 300 + i;
                let src = [198, 18, (n >> 8) as u8, n as u8];
                tally.count(
                    &packet(src, 1000, [198, 19, 0, 1], 53),
                    64 + u64::from(i),
                    1,
                );
                sent += 64 + u64::from(i);
            }
            agg.merge(&tally);
            tally.clear();
            agg.end_tick();
        }
        let rows = agg.rows(Duration::from_secs(1));
        assert_eq!(rows.bytes, sent);
        let table_sent: u64 = rows.talkers.iter().map(|t| t.bytes_sent).sum();
        let table_received: u64 = rows.talkers.iter().map(|t| t.bytes_received).sum();
        assert_eq!(table_sent + rows.evicted_talkers.bytes_sent, sent);
        assert_eq!(table_received + rows.evicted_talkers.bytes_received, sent);
        let flow_bytes: u64 = rows
            .flows
            .iter()
            .map(|f| f.bytes_a_to_b + f.bytes_b_to_a)
            .sum();
        assert_eq!(flow_bytes + rows.evicted_flows.bytes, sent);
        assert!(rows.talkers.len() <= 32 && rows.flows.len() <= 16);
        // The one server is hit by every packet and survives every eviction.
        let server = rows
            .talkers
            .iter()
            .find(|t| t.ip.to_string() == "198.19.0.1");
        assert_eq!(server.map(|t| t.packets_received), Some(1500));
    }

    #[test]
    fn rates_cover_the_ticks_counted() {
        let mut agg = Aggregate::new(8, None);
        let mut tally = Tally::new(8, false);
        for tick in 0..4u32 {
            for _ in 0..=tick {
                tally.count(&packet([198, 18, 0, 1], 1, [198, 18, 0, 2], 2), 1000, 1);
            }
            agg.merge(&tally);
            tally.clear();
            if tick < 3 {
                agg.end_tick();
            }
        }
        // Ticks 0..=3 carried 1, 2, 3, 4 packets of 1000 bytes; at tick 3 the 2 s window
        // holds ticks 2 and 3, the 10 s window all four (4 s covered so far).
        let rows = agg.rows(Duration::from_secs(1));
        // Small integers and halves are exact in f32.
        let exact = |r: WindowRates| r.0.map(f32::to_bits);
        assert_eq!(
            exact(rows.bytes_per_sec),
            [3500.0f32, 2500.0, 2500.0].map(f32::to_bits)
        );
        assert_eq!(
            exact(rows.packets_per_sec),
            [3.5f32, 2.5, 2.5].map(f32::to_bits)
        );
    }
}
