//! The aggregator thread: once a tick it collects every worker's tally, merges them into the
//! [`Aggregate`] and publishes an immutable `Arc<Snapshot>` on the feed.
//!
//! It does no work per packet. Each tick it bumps the epoch that workers check after every
//! block, waits briefly for every live worker to hand over its tally for the tick, then builds
//! the snapshot. Merged tallies go straight back to their worker's pool, so steady-state
//! counting allocates nothing, and each tick's work is bounded by the table sizes.
//!
//! Snapshot times come from a [`Clock`]: the wall clock for live capture, the capture's own
//! timestamps for a replay, which drives the ticks itself ([`Aggregator::close_tick`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use crate::aggregate::Aggregate;
use crate::config::RingGeometry;
use crate::counters::Tally;
use crate::feed::Publisher;
use crate::groups::GroupTotals;
use crate::snapshot::{FanoutInfo, FilterStatus, Snapshot, Source, Totals};
use crate::stats::{ParseErrors, WorkerStats};
use crate::worker::Message;
use crate::{CaptureError, PacketFilter};

/// How long the aggregator waits for workers to acknowledge a new tick.
pub(crate) const ACK_WAIT: Duration = Duration::from_millis(250);

/// What is fixed for the whole capture.
pub(crate) struct Setup {
    pub(crate) interface: String,
    pub(crate) fanout: FanoutInfo,
    pub(crate) ring: RingGeometry,
    pub(crate) max_talkers: usize,
    pub(crate) max_flows: usize,
    pub(crate) flows: bool,
    pub(crate) tick: Duration,
    pub(crate) filter: Option<Arc<dyn PacketFilter>>,
    pub(crate) groups: Vec<GroupTotals>,
    pub(crate) link: crate::iface::LinkInfo,
    /// Where the frames come from.
    pub(crate) source: Source,
}

/// Where a snapshot's times come from.
pub(crate) enum Clock {
    /// Live capture: the wall clock, from when the aggregator was made.
    Wall {
        started_at: SystemTime,
        started: Instant,
    },
    /// Replay: the capture's timestamps, moved on by the replay as it reads them. Until the
    /// first packet, the wall clock's start.
    Capture {
        started_at: SystemTime,
        now: SystemTime,
    },
}

impl Clock {
    /// The wall clock, starting now.
    pub(crate) fn wall() -> Self {
        Self::Wall {
            started_at: SystemTime::now(),
            started: Instant::now(),
        }
    }

    /// A capture-time clock, to be started by the first packet.
    pub(crate) fn capture() -> Self {
        let now = SystemTime::now();
        Self::Capture {
            started_at: now,
            now,
        }
    }

    /// When capture started, now, and the time between.
    fn read(&self) -> (SystemTime, SystemTime, Duration) {
        match self {
            Self::Wall {
                started_at,
                started,
            } => (*started_at, SystemTime::now(), started.elapsed()),
            Self::Capture { started_at, now } => (
                *started_at,
                *now,
                now.duration_since(*started_at).unwrap_or_default(),
            ),
        }
    }
}

/// What the aggregator knows of one worker.
pub(crate) struct WorkerSlot {
    /// Its latest cumulative stats.
    pub(crate) stats: WorkerStats,
    /// Where its emptied tallies go back to.
    pub(crate) pool: Sender<Box<Tally>>,
    packets_at_last_tick: u64,
    acked_epoch: u64,
    exited: bool,
}

impl WorkerSlot {
    pub(crate) fn new(stats: WorkerStats, pool: Sender<Box<Tally>>) -> Self {
        Self {
            stats,
            pool,
            packets_at_last_tick: 0,
            acked_epoch: 0,
            exited: false,
        }
    }

    /// Takes the worker's latest stats, keeping the rate the aggregator computes.
    fn update(&mut self, stats: WorkerStats) {
        let rate = self.stats.packets_per_sec;
        self.stats = stats;
        self.stats.packets_per_sec = rate;
    }
}

/// The aggregator's state.
pub(crate) struct Aggregator {
    setup: Setup,
    clock: Clock,
    aggregate: Aggregate,
    /// Named groups' totals, counted exactly by the workers.
    groups: Vec<GroupTotals>,
    workers: Vec<WorkerSlot>,
    feed: Publisher,
    failure: Option<CaptureError>,
}

impl Aggregator {
    pub(crate) fn new(
        setup: Setup,
        clock: Clock,
        workers: Vec<WorkerSlot>,
        feed: Publisher,
    ) -> Self {
        Self {
            aggregate: Aggregate::new(setup.max_talkers, setup.flows.then_some(setup.max_flows)),
            groups: setup.groups.clone(),
            setup,
            clock,
            workers,
            feed,
            failure: None,
        }
    }

    /// Runs until every worker has exited; returns the final snapshot and the first failure.
    pub(crate) fn run(
        mut self,
        messages: &Receiver<Message>,
        epoch: &AtomicU64,
    ) -> (Arc<Snapshot>, Option<CaptureError>) {
        let mut next_tick = Instant::now() + self.setup.tick;
        let mut awaiting: Option<(u64, Instant)> = None;
        while self.workers.iter().any(|w| !w.exited) {
            let deadline = awaiting.map_or(next_tick, |(_, d)| d);
            match messages.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(message) => self.receive(message),
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
                    self.feed.snapshot(Arc::new(self.snapshot()));
                    self.end_tick();
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

    /// Replay: merges every batch waiting on `messages`, publishes the tick's snapshot as of
    /// capture time `at` when `publish` says so, and starts the next tick.
    pub(crate) fn close_tick(
        &mut self,
        messages: &Receiver<Message>,
        at: SystemTime,
        publish: bool,
    ) {
        self.merge_waiting(messages);
        self.advance_clock(at);
        if publish {
            self.feed.snapshot(Arc::new(self.snapshot()));
        }
        self.end_tick();
    }

    /// Replay: an idle tick, with nothing to merge.
    pub(crate) fn skip_tick(&mut self) {
        self.end_tick();
    }

    /// Replay: the first packet's time starts the capture clock.
    pub(crate) fn start_clock(&mut self, at: SystemTime) {
        if let Clock::Capture { started_at, now } = &mut self.clock {
            *started_at = at;
            *now = at;
        }
    }

    /// Replay: capture time has reached `at`.
    pub(crate) fn advance_clock(&mut self, at: SystemTime) {
        if let Clock::Capture { now, .. } = &mut self.clock {
            *now = (*now).max(at);
        }
    }

    /// Replay: merges what is waiting, publishes the final snapshot and returns it with the
    /// first failure.
    pub(crate) fn finish(
        mut self,
        messages: &Receiver<Message>,
    ) -> (Arc<Snapshot>, Option<CaptureError>) {
        self.merge_waiting(messages);
        let last = Arc::new(self.snapshot());
        self.feed.snapshot(last.clone());
        (last, self.failure)
    }

    fn merge_waiting(&mut self, messages: &Receiver<Message>) {
        while let Ok(message) = messages.try_recv() {
            self.receive(message);
        }
    }

    fn all_acked(&self, epoch: u64) -> bool {
        self.workers
            .iter()
            .all(|w| w.exited || w.acked_epoch >= epoch)
    }

    fn receive(&mut self, message: Message) {
        match message {
            Message::Batch {
                worker,
                epoch,
                tally,
                stats,
            } => {
                if let Some(mut tally) = tally {
                    self.aggregate.merge(&tally);
                    tally.groups.drain_into(&mut self.groups);
                    tally.clear();
                    if let Some(slot) = self.workers.get(worker) {
                        let _ = slot.pool.send(tally);
                    }
                }
                if let Some(slot) = self.workers.get_mut(worker) {
                    slot.update(stats);
                    slot.acked_epoch = slot.acked_epoch.max(epoch);
                }
            }
            Message::Exit {
                worker,
                stats,
                error,
            } => {
                if let Some(slot) = self.workers.get_mut(worker) {
                    if let Some(stats) = stats {
                        slot.update(stats);
                    }
                    slot.exited = true;
                }
                if let Some(error) = error {
                    self.feed.failure(error.to_string());
                    self.failure.get_or_insert(error);
                }
            }
        }
    }

    /// Ends the current tick: per-worker packet rates, and the next history slot.
    fn end_tick(&mut self) {
        let secs = self.setup.tick.as_secs_f64();
        for w in &mut self.workers {
            w.stats.packets_per_sec = (w.stats.packets - w.packets_at_last_tick) as f64 / secs;
            w.packets_at_last_tick = w.stats.packets;
        }
        self.aggregate.end_tick();
    }

    fn snapshot(&self) -> Snapshot {
        let (started_at, taken_at, duration) = self.clock.read();
        let rows = self.aggregate.rows(self.setup.tick);
        let mut parse_errors = ParseErrors::default();
        for w in &self.workers {
            parse_errors.add(&w.stats.parse_errors);
        }
        Snapshot {
            interface: self.setup.interface.clone(),
            source: self.setup.source,
            taken_at,
            started_at,
            duration,
            tick: self.aggregate.tick(),
            totals: Totals {
                packets: rows.packets,
                bytes: rows.bytes,
                packets_per_sec: rows.packets_per_sec,
                bytes_per_sec: rows.bytes_per_sec,
            },
            workers: self.workers.iter().map(|w| w.stats).collect(),
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
            link: self.setup.link,
            ring: self.setup.ring,
            max_talkers: self.setup.max_talkers,
            max_flows: self.setup.max_flows,
            flows_enabled: self.setup.flows,
            talkers: rows.talkers,
            evicted_talkers: rows.evicted_talkers,
            flows: rows.flows,
            evicted_flows: rows.evicted_flows,
            groups: self.groups.clone(),
        }
    }
}
