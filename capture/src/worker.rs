//! One capture worker: a pinned thread that walks its ring block by block, parses each frame
//! and counts it into its own [`Tally`].
//!
//! The worker takes no lock and allocates nothing per frame, and it is the only stage that
//! does work per frame. After every block it checks the stop flag and the tick epoch, so even a
//! ring that is never empty cannot keep it from answering: on a new epoch it refreshes its ring
//! statistics and hands its tally to the aggregator, continuing with the emptied one the
//! aggregator sent back last tick. On stop it drains at most one lap of the ring, waits at most
//! [`EXIT_WAIT_MS`] for the partly filled block, and hands over a last time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};

use crate::CaptureError;
use crate::counters::Tally;
use crate::iface::{self, LinkInfo};
use crate::parse::{VLAN_TAG_LEN, parse_link_frame};
use crate::ring::{Frame, Ring, Wait, Walked};
use crate::stats::{RingCounters, WorkerStats};

/// How long a worker blocks in `poll` before checking for stop and new ticks.
const POLL_MS: i32 = 100;
/// The longest a stopping worker waits for the kernel to retire a partly filled block, however
/// long the block timeout.
pub(crate) const EXIT_WAIT_MS: i32 = 500;

/// Where a worker's frames come from: its ring, or a stand-in in tests.
pub(crate) trait FrameSource {
    /// Waits up to `timeout_ms` for a ready block.
    fn wait(&self, timeout_ms: i32) -> Wait;
    /// Hands every frame of the next ready block to `each`, then releases the block; returns
    /// how the walk ended, or `None` when no block is ready.
    fn next_block(&mut self, each: impl FnMut(Frame<'_>)) -> Option<Walked>;
    /// Reads, and thereby resets, the kernel's drop and freeze counters.
    fn take_stats(&self) -> Result<libc::tpacket_stats_v3, CaptureError>;
    /// Blocks in the ring: one lap.
    fn block_count(&self) -> u32;
}

impl FrameSource for Ring {
    fn wait(&self, timeout_ms: i32) -> Wait {
        Ring::wait(self, timeout_ms)
    }

    #[inline]
    fn next_block(&mut self, mut each: impl FnMut(Frame<'_>)) -> Option<Walked> {
        let mut block = Ring::next_block(self)?;
        while let Some(frame) = block.next_frame() {
            each(frame);
        }
        Some(block.walked())
    }

    fn take_stats(&self) -> Result<libc::tpacket_stats_v3, CaptureError> {
        Ring::take_stats(self)
    }

    fn block_count(&self) -> u32 {
        self.geometry().block_count
    }
}

/// What workers tell the aggregator.
pub(crate) enum Message {
    /// The tick's counts (if any could be handed over), with cumulative stats.
    Batch {
        worker: usize,
        /// The newest tick epoch the worker had seen when it sent this.
        epoch: u64,
        tally: Option<Box<Tally>>,
        stats: WorkerStats,
    },
    /// The worker has stopped; this is its last message. `stats` is `None` after a panic.
    Exit {
        worker: usize,
        stats: Option<WorkerStats>,
        error: Option<CaptureError>,
    },
}

/// The shared signals a worker watches.
pub(crate) struct Signals {
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) epoch: Arc<AtomicU64>,
}

/// Everything a worker owns except its frame source.
pub(crate) struct Counting {
    pub(crate) stats: WorkerStats,
    pub(crate) ring_counters: RingCounters,
    pub(crate) tally: Box<Tally>,
    pub(crate) to_aggregator: Sender<Message>,
    pub(crate) pool: Receiver<Box<Tally>>,
    pub(crate) seen_epoch: u64,
    /// How the link's frames are parsed, and whether its outgoing copies are skipped.
    pub(crate) link: LinkInfo,
}

/// A worker: its frame source plus its counting state.
pub(crate) struct Worker<S> {
    pub(crate) source: S,
    pub(crate) ifindex: u32,
    pub(crate) interface: String,
    pub(crate) block_timeout_ms: u32,
    pub(crate) counting: Counting,
}

impl<S: FrameSource> Worker<S> {
    /// Runs the worker; should it panic, reports that to the aggregator as a capture failure
    /// instead of leaving the aggregator waiting for an exit that never comes.
    pub(crate) fn run_guarded(self, signals: &Signals) {
        let id = self.counting.stats.id;
        let to_aggregator = self.counting.to_aggregator.clone();
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run(signals)));
        if let Err(payload) = ran {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".to_owned());
            let _ = to_aggregator.send(Message::Exit {
                worker: id,
                stats: None,
                error: Some(CaptureError::Thread {
                    name: format!("tc-worker-{id}"),
                    message: format!("panicked: {what}"),
                }),
            });
        }
    }

    /// Runs until stopped or the interface vanishes, then sends [`Message::Exit`].
    pub(crate) fn run(mut self, signals: &Signals) {
        let error = self.capture(signals).err();
        // Whatever ended the loop, count what the kernel already handed over, one lap at most,
        // then what it retires within a bounded wait.
        let lap = self.source.block_count();
        let drained = self.drain(lap);
        if drained < lap {
            let wait = (self.block_timeout_ms as i32)
                .saturating_mul(2)
                .saturating_add(10)
                .min(EXIT_WAIT_MS);
            if matches!(self.source.wait(wait), Wait::Ready) {
                self.drain(lap - drained);
            }
        }
        let c = &mut self.counting;
        refresh_ring_stats(&self.source, c);
        let last = (!c.tally.is_empty())
            .then(|| std::mem::replace(&mut c.tally, Box::new(Tally::new(1, false))));
        let _ = c.to_aggregator.send(Message::Batch {
            worker: c.stats.id,
            epoch: c.seen_epoch,
            tally: last,
            stats: c.stats,
        });
        let _ = c.to_aggregator.send(Message::Exit {
            worker: c.stats.id,
            stats: Some(c.stats),
            error,
        });
    }

    fn capture(&mut self, signals: &Signals) -> Result<(), CaptureError> {
        loop {
            // Stop and the tick epoch are checked before every block, so a ring that is never
            // empty still lets the worker answer.
            loop {
                if signals.stop.load(Ordering::Acquire) {
                    return Ok(());
                }
                self.check_epoch(signals)?;
                let c = &mut self.counting;
                let Some(walked) = self.source.next_block(|frame| c.count(frame)) else {
                    break;
                };
                c.block_done(walked);
            }
            match self.source.wait(POLL_MS) {
                Wait::Ready | Wait::Timeout => {}
                Wait::SocketError(err) => {
                    if !iface::index_exists(self.ifindex) {
                        return Err(CaptureError::InterfaceGone {
                            interface: self.interface.clone(),
                        });
                    }
                    if err.raw_os_error() == Some(libc::ENETDOWN) {
                        // The kernel takes the socket out of the fanout group while the link
                        // is down and puts it back when it comes up; counting resumes then.
                        self.counting.stats.link_down += 1;
                        log::warn!(
                            "{} went down; counting resumes when it comes back up",
                            self.interface
                        );
                    } else {
                        log::warn!("capture socket on {}: {err}", self.interface);
                    }
                }
            }
        }
    }

    /// On a new tick epoch: refreshes ring statistics and hands the tally over.
    fn check_epoch(&mut self, signals: &Signals) -> Result<(), CaptureError> {
        let epoch = signals.epoch.load(Ordering::Acquire);
        if epoch != self.counting.seen_epoch {
            self.counting.seen_epoch = epoch;
            refresh_ring_stats(&self.source, &mut self.counting);
            self.counting.hand_over()?;
        }
        Ok(())
    }

    /// Counts up to `max_blocks` blocks the kernel has handed over, without waiting; returns
    /// how many there were.
    fn drain(&mut self, max_blocks: u32) -> u32 {
        let mut blocks = 0;
        while blocks < max_blocks {
            let c = &mut self.counting;
            let Some(walked) = self.source.next_block(|frame| c.count(frame)) else {
                break;
            };
            c.block_done(walked);
            blocks += 1;
        }
        blocks
    }
}

impl Counting {
    /// Parses one frame and counts it as traffic (a super-frame as the packets it stands
    /// for) or as a parse error.
    #[inline]
    pub(crate) fn count(&mut self, frame: Frame<'_>) {
        if frame.outgoing && self.link.skip_outgoing {
            return;
        }
        match parse_link_frame(
            self.link.kind,
            frame.data,
            frame.wire_len,
            frame.offloaded,
            frame.gso,
        ) {
            Ok(packet) => {
                self.stats.packets += u64::from(packet.segments);
                self.stats.bytes += packet.bytes;
                self.stats.super_frames += u64::from(packet.segments > 1);
                self.tally.push(&packet, packet.bytes, frame.ts_ns);
            }
            Err(error) => {
                self.stats.packets += 1;
                self.stats.bytes += u64::from(frame.wire_len)
                    + frame.offloaded.map_or(0, |_| u64::from(VLAN_TAG_LEN));
                self.stats.parse_errors.record(error);
            }
        }
    }

    /// After a block: counts what is queued, and the block if its walk ran past it.
    #[inline]
    fn block_done(&mut self, walked: Walked) {
        self.tally.flush();
        if walked.unreadable > 0 {
            self.stats.corrupt_blocks += 1;
            self.stats.unreadable_frames += u64::from(walked.unreadable);
        }
    }

    /// Sends the tally (when there is one and a spare to continue with) and stats.
    ///
    /// The spare is the tally the aggregator merged and sent back last tick. Should it not be
    /// back yet, the worker keeps counting into the current tally, which then goes with the
    /// next tick: late, never lost.
    pub(crate) fn hand_over(&mut self) -> Result<(), CaptureError> {
        let gone = || CaptureError::Thread {
            name: format!("tc-worker-{}", self.stats.id),
            message: "the aggregator stopped".into(),
        };
        let tally = if self.tally.is_empty() {
            None
        } else {
            match self.pool.try_recv() {
                Ok(fresh) => Some(std::mem::replace(&mut self.tally, fresh)),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return Err(gone()),
            }
        };
        self.to_aggregator
            .send(Message::Batch {
                worker: self.stats.id,
                epoch: self.seen_epoch,
                tally,
                stats: self.stats,
            })
            .map_err(|_| gone())
    }
}

fn refresh_ring_stats(source: &impl FrameSource, c: &mut Counting) {
    match source.take_stats() {
        Ok(read) => {
            c.ring_counters.accumulate(read);
            c.stats.ring_drops = c.ring_counters.drops;
            c.stats.ring_freezes = c.ring_counters.freezes;
        }
        Err(err) => log::debug!("reading ring statistics: {err}"),
    }
}

#[cfg(test)]
#[path = "worker/tests.rs"]
mod tests;
