//! One capture worker: a pinned thread that walks its ring block by block, parses each frame
//! and counts it into its own [`Tally`].
//!
//! The worker takes no lock and allocates nothing per frame. It hands its tally to the
//! aggregator when the aggregator starts a new tick (an epoch counter it checks after every
//! block and poll timeout) or when the tally is full, and continues with an empty one from its
//! pool. On stop it drains whatever the kernel has handed over, waits one block timeout for the
//! partly filled block, drains again, and hands over a last time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};

use crate::CaptureError;
use crate::counters::Tally;
use crate::iface;
use crate::parse::{VLAN_TAG_LEN, parse_frame};
use crate::ring::{Ring, Wait};
use crate::stats::{RingCounters, WorkerStats};

/// How long a worker blocks in `poll` before checking for stop and new ticks.
const POLL_MS: i32 = 100;

/// What workers tell the aggregator.
pub(crate) enum Message {
    /// Counts since the last hand-over, with cumulative stats.
    Batch {
        worker: usize,
        /// The newest tick epoch the worker had seen when it sent this.
        epoch: u64,
        tally: Option<Tally>,
        stats: WorkerStats,
    },
    /// The worker has stopped; this is its last message.
    Exit {
        worker: usize,
        stats: WorkerStats,
        error: Option<CaptureError>,
    },
}

/// The shared signals a worker watches.
pub(crate) struct Signals {
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) epoch: Arc<AtomicU64>,
}

/// Everything a worker owns except its ring.
pub(crate) struct Counting {
    pub(crate) stats: WorkerStats,
    pub(crate) ring_counters: RingCounters,
    pub(crate) tally: Tally,
    pub(crate) to_aggregator: Sender<Message>,
    pub(crate) pool: Receiver<Tally>,
    pub(crate) seen_epoch: u64,
}

/// A worker: its ring plus its counting state.
pub(crate) struct Worker {
    pub(crate) ring: Ring,
    pub(crate) ifindex: u32,
    pub(crate) interface: String,
    pub(crate) block_timeout_ms: u32,
    pub(crate) counting: Counting,
}

impl Worker {
    /// Runs until stopped or the interface vanishes, then sends [`Message::Exit`].
    pub(crate) fn run(mut self, signals: &Signals) {
        let error = self.capture(signals).err();
        // Whatever ended the loop, count what the kernel already handed over.
        self.drain();
        self.ring.wait(self.block_timeout_ms as i32 * 2 + 10);
        self.drain();
        let c = &mut self.counting;
        refresh_ring_stats(&self.ring, c);
        let final_tally = std::mem::replace(&mut c.tally, Tally::with_capacity(0, None));
        let _ = c.to_aggregator.send(Message::Batch {
            worker: c.stats.id,
            epoch: c.seen_epoch,
            tally: (!final_tally.is_empty()).then_some(final_tally),
            stats: c.stats,
        });
        let _ = c.to_aggregator.send(Message::Exit {
            worker: c.stats.id,
            stats: c.stats,
            error,
        });
    }

    fn capture(&mut self, signals: &Signals) -> Result<(), CaptureError> {
        while !signals.stop.load(Ordering::Acquire) {
            match self.ring.wait(POLL_MS) {
                Wait::Ready => self.drain(),
                Wait::Timeout => {}
                Wait::SocketError(err) => {
                    if !iface::index_exists(self.ifindex) {
                        return Err(CaptureError::InterfaceGone {
                            interface: self.interface.clone(),
                        });
                    }
                    log::warn!("capture socket on {}: {err}", self.interface);
                }
            }
            let epoch = signals.epoch.load(Ordering::Acquire);
            if epoch != self.counting.seen_epoch {
                self.counting.seen_epoch = epoch;
                refresh_ring_stats(&self.ring, &mut self.counting);
                self.counting.hand_over()?;
            }
        }
        Ok(())
    }

    /// Counts every block the kernel has handed over, without waiting.
    fn drain(&mut self) {
        let c = &mut self.counting;
        while let Some(mut block) = self.ring.next_block() {
            while let Some(frame) = block.next_frame() {
                let bytes = u64::from(frame.wire_len)
                    + frame.offloaded.map_or(0, |_| u64::from(VLAN_TAG_LEN));
                c.stats.packets += 1;
                c.stats.bytes += bytes;
                match parse_frame(frame.data, frame.wire_len, frame.offloaded) {
                    Ok(packet) => {
                        if !c.tally.has_room() && c.hand_over().is_err() {
                            // The aggregator is gone; nothing more can be counted.
                            return;
                        }
                        c.tally.count(&packet, bytes, frame.ts_ns);
                    }
                    Err(error) => c.stats.parse_errors.record(error),
                }
            }
        }
    }
}

impl Counting {
    /// Sends the tally (if any) and stats to the aggregator, continuing with a pooled tally.
    fn hand_over(&mut self) -> Result<(), CaptureError> {
        let tally = if self.tally.is_empty() {
            None
        } else {
            let fresh = self.pool.recv().map_err(|_| CaptureError::Thread {
                name: format!("worker-{}", self.stats.id),
                message: "the aggregator stopped".into(),
            })?;
            Some(std::mem::replace(&mut self.tally, fresh))
        };
        self.to_aggregator
            .send(Message::Batch {
                worker: self.stats.id,
                epoch: self.seen_epoch,
                tally,
                stats: self.stats,
            })
            .map_err(|_| CaptureError::Thread {
                name: format!("worker-{}", self.stats.id),
                message: "the aggregator stopped".into(),
            })
    }
}

fn refresh_ring_stats(ring: &Ring, c: &mut Counting) {
    match ring.take_stats() {
        Ok(read) => {
            c.ring_counters.accumulate(read);
            c.stats.ring_drops = c.ring_counters.drops;
            c.stats.ring_freezes = c.ring_counters.freezes;
        }
        Err(err) => log::debug!("reading ring statistics: {err}"),
    }
}
