//! The aggregator: merges worker tallies into the bounded tables and builds a [`Snapshot`]
//! every tick.
//!
//! It is the only owner of the aggregated state. Each tick it bumps the epoch that workers
//! watch, waits briefly for every live worker to hand over what it counted before the tick,
//! then publishes an immutable `Arc<Snapshot>`. Emptied tallies go back to their worker's pool,
//! so steady-state counting allocates nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use crate::config::RingGeometry;
use crate::counters::{Direction, FlowKey, Tally};
use crate::groups::GroupTotals;
use crate::history::{History, WINDOWS};
use crate::parse::Addr;
use crate::snapshot::{
    FanoutInfo, FilterStatus, Flow, Snapshot, Talker, Timestamp, Totals, WindowRates,
};
use crate::stats::{ParseErrors, WorkerStats};
use crate::table::{BoundedTable, FlowEntry, TalkerEntry};
use crate::worker::Message;
use crate::{CaptureError, PacketFilter};

/// How long the aggregator waits for workers to acknowledge a new tick.
const ACK_WAIT: Duration = Duration::from_millis(250);

/// What the capture reports while it runs.
#[derive(Clone, Debug)]
pub enum Update {
    /// A new snapshot.
    Snapshot(Arc<Snapshot>),
    /// Capture failed (e.g. the interface vanished); stop it to get the final snapshot.
    Failed(String),
}

/// What is fixed for the whole capture.
pub(crate) struct Setup {
    pub(crate) interface: String,
    pub(crate) fanout: FanoutInfo,
    pub(crate) ring: RingGeometry,
    pub(crate) max_talkers: usize,
    pub(crate) max_flows: usize,
    pub(crate) flows: bool,
    pub(crate) tick: Duration,
    pub(crate) workers: Vec<WorkerStats>,
    pub(crate) filter: Option<Arc<dyn PacketFilter>>,
    pub(crate) groups: Vec<GroupTotals>,
}

/// The aggregated state.
pub(crate) struct Aggregator {
    setup: Setup,
    started_at: SystemTime,
    started: Instant,
    talkers: BoundedTable<TalkerEntry>,
    flows: Option<BoundedTable<FlowEntry>>,
    packets: u64,
    bytes: u64,
    groups: Vec<GroupTotals>,
    /// Packets (series 0) and bytes (series 1) per tick.
    totals_history: History<2>,
    workers: Vec<WorkerStats>,
    worker_packets_at_last_tick: Vec<u64>,
    exited: Vec<bool>,
    acked: Vec<u64>,
    tick: u32,
    pools: Vec<Sender<Tally>>,
    failure: Option<CaptureError>,
}

impl Aggregator {
    pub(crate) fn new(setup: Setup, pools: Vec<Sender<Tally>>) -> Self {
        let n = setup.workers.len();
        Self {
            talkers: BoundedTable::new(setup.max_talkers),
            flows: setup.flows.then(|| BoundedTable::new(setup.max_flows)),
            workers: setup.workers.clone(),
            groups: setup.groups.clone(),
            setup,
            started_at: SystemTime::now(),
            started: Instant::now(),
            packets: 0,
            bytes: 0,
            totals_history: History::new(),
            worker_packets_at_last_tick: vec![0; n],
            exited: vec![false; n],
            acked: vec![0; n],
            tick: 0,
            pools,
            failure: None,
        }
    }

    /// Runs until every worker has exited; returns the final snapshot and the first failure.
    pub(crate) fn run(
        mut self,
        messages: &Receiver<Message>,
        epoch: &AtomicU64,
        publish: &mut dyn FnMut(Update),
    ) -> (Arc<Snapshot>, Option<CaptureError>) {
        let mut next_tick = self.started + self.setup.tick;
        let mut awaiting: Option<(u64, Instant)> = None;
        while self.exited.iter().any(|e| !e) {
            let deadline = awaiting.map_or(next_tick, |(_, d)| d);
            match messages.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(message) => self.receive(message, publish),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            match awaiting {
                None if now >= next_tick => {
                    let e = epoch.fetch_add(1, Ordering::AcqRel) + 1;
                    awaiting = Some((e, now + ACK_WAIT));
                }
                Some((e, until)) if now >= until || self.all_acked(e) => {
                    publish(Update::Snapshot(Arc::new(self.snapshot())));
                    self.close_tick();
                    awaiting = None;
                    next_tick += self.setup.tick;
                    if next_tick < now {
                        next_tick = now + self.setup.tick;
                    }
                }
                _ => {}
            }
        }
        let last = Arc::new(self.snapshot());
        (last, self.failure)
    }

    fn all_acked(&self, epoch: u64) -> bool {
        self.acked
            .iter()
            .zip(&self.exited)
            .all(|(&acked, &exited)| exited || acked >= epoch)
    }

    fn receive(&mut self, message: Message, publish: &mut dyn FnMut(Update)) {
        match message {
            Message::Batch {
                worker,
                epoch,
                tally,
                stats,
            } => {
                if let Some(mut tally) = tally {
                    self.merge(&mut tally);
                    if let Some(pool) = self.pools.get(worker) {
                        let _ = pool.send(tally);
                    }
                }
                self.set_worker(worker, stats);
                if let Some(acked) = self.acked.get_mut(worker) {
                    *acked = (*acked).max(epoch);
                }
            }
            Message::Exit {
                worker,
                stats,
                error,
            } => {
                self.set_worker(worker, stats);
                if let Some(exited) = self.exited.get_mut(worker) {
                    *exited = true;
                }
                if let Some(error) = error {
                    publish(Update::Failed(error.to_string()));
                    self.failure.get_or_insert(error);
                }
            }
        }
    }

    fn set_worker(&mut self, worker: usize, stats: WorkerStats) {
        if let Some(slot) = self.workers.get_mut(worker) {
            let rate = slot.packets_per_sec;
            *slot = stats;
            slot.packets_per_sec = rate;
        }
    }

    /// Merges one tally into the tables and totals, leaving it empty for reuse.
    fn merge(&mut self, tally: &mut Tally) {
        let tick = self.tick;
        self.packets += tally.packets;
        self.bytes += tally.bytes;
        self.totals_history.add(tick, 0, tally.packets);
        self.totals_history.add(tick, 1, tally.bytes);
        tally.packets = 0;
        tally.bytes = 0;
        tally.groups.drain_into(&mut self.groups);
        for (ip, delta) in tally.talkers.drain() {
            self.talkers.merge(ip, &delta, tick);
        }
        match &mut self.flows {
            Some(flows) => {
                for (key, delta) in tally.flows.drain() {
                    flows.merge(key, &delta, tick);
                }
            }
            None => tally.flows.clear(),
        }
    }

    /// Ends the current tick: per-worker packet rates, and the next history slot.
    fn close_tick(&mut self) {
        let secs = self.setup.tick.as_secs_f64();
        for (stats, last) in self
            .workers
            .iter_mut()
            .zip(&mut self.worker_packets_at_last_tick)
        {
            stats.packets_per_sec = (stats.packets - *last) as f64 / secs;
            *last = stats.packets;
        }
        self.tick += 1;
    }

    fn snapshot(&self) -> Snapshot {
        let taken_at = SystemTime::now();
        let rates = RateScale::new(self.tick, self.setup.tick);
        let totals_sums = self.totals_history.window_sums(self.tick);
        let mut parse_errors = ParseErrors::default();
        for w in &self.workers {
            parse_errors.add(&w.parse_errors);
        }
        let talkers = self
            .talkers
            .entries()
            .map(|(ip, e)| talker(*ip, e, &rates))
            .collect();
        let flows = self.flows.as_ref().map_or_else(Vec::new, |table| {
            table
                .entries()
                .map(|(key, e)| flow(key, e, &rates))
                .collect()
        });
        Snapshot {
            interface: self.setup.interface.clone(),
            taken_at,
            started_at: self.started_at,
            duration: self.started.elapsed(),
            tick: self.tick,
            totals: Totals {
                packets: self.packets,
                bytes: self.bytes,
                packets_per_sec: rates.apply(totals_sums, 0),
                bytes_per_sec: rates.apply(totals_sums, 1),
            },
            workers: self.workers.clone(),
            parse_errors,
            filter: self
                .setup
                .filter
                .as_ref()
                .map_or_else(FilterStatus::default, |f| FilterStatus {
                    kind: f.kind(),
                    rejects: f.rejects(),
                }),
            fanout: self.setup.fanout,
            ring: self.setup.ring,
            max_talkers: self.setup.max_talkers,
            max_flows: self.setup.max_flows,
            flows_enabled: self.setup.flows,
            talkers,
            evicted_talkers: self.talkers.evicted,
            flows,
            evicted_flows: self.flows.as_ref().map(|t| t.evicted).unwrap_or_default(),
            groups: self.groups.clone(),
        }
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
