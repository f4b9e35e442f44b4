//! A worker driven by a stand-in ring that always has a ready block: the overload case in
//! which a worker that only looked at its signals between drains would never answer.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use testlab::{Frame as TestFrame, L4};

use super::*;
use crate::aggregator::ACK_WAIT;

/// A ring that is never empty; optionally panics on one block.
struct AlwaysReady {
    frame: Vec<u8>,
    frames_per_block: u64,
    blocks: u64,
    panic_at_block: Option<u64>,
}

impl FrameSource for AlwaysReady {
    fn wait(&self, _timeout_ms: i32) -> Wait {
        Wait::Ready
    }

    fn next_block(&mut self, mut each: impl FnMut(Frame<'_>)) -> bool {
        self.blocks += 1;
        assert!(Some(self.blocks) != self.panic_at_block, "a corrupt block");
        for _ in 0..self.frames_per_block {
            each(Frame {
                data: &self.frame,
                wire_len: self.frame.len() as u32,
                ts_ns: 1,
                offloaded: None,
            });
        }
        true
    }

    fn take_stats(&self) -> Result<libc::tpacket_stats_v3, CaptureError> {
        Ok(libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        })
    }

    fn block_count(&self) -> u32 {
        8
    }
}

struct Harness {
    signals: Signals,
    messages: Receiver<Message>,
    pool: Sender<Box<Tally>>,
    thread: std::thread::JoinHandle<()>,
}

fn start(panic_at_block: Option<u64>) -> Harness {
    let frame = TestFrame::ip(
        "198.18.0.1".parse().unwrap(),
        "198.18.0.2".parse().unwrap(),
        L4::Udp(4000, 53),
        18,
    )
    .bytes;
    let (to_aggregator, messages) = mpsc::channel();
    let (pool, pool_rx) = mpsc::channel();
    pool.send(Box::new(Tally::new(16, true))).unwrap();
    let signals = Signals {
        stop: Arc::new(AtomicBool::new(false)),
        epoch: Arc::new(AtomicU64::new(0)),
    };
    let worker = Worker {
        source: AlwaysReady {
            frame,
            frames_per_block: 64,
            blocks: 0,
            panic_at_block,
        },
        ifindex: 1,
        interface: "fake0".into(),
        // A block timeout far longer than the exit wait cap.
        block_timeout_ms: 60_000,
        counting: Counting {
            stats: WorkerStats::default(),
            ring_counters: RingCounters::default(),
            tally: Box::new(Tally::new(16, true)),
            to_aggregator,
            pool: pool_rx,
            seen_epoch: 0,
        },
    };
    let worker_signals = Signals {
        stop: signals.stop.clone(),
        epoch: signals.epoch.clone(),
    };
    let thread = std::thread::spawn(move || worker.run_guarded(&worker_signals));
    Harness {
        signals,
        messages,
        pool,
        thread,
    }
}

#[test]
fn a_ring_that_is_never_empty_still_acks_every_tick_and_stops_promptly() {
    let h = start(None);
    let mut counted = 0;
    for epoch in 1..=5u64 {
        h.signals.epoch.store(epoch, Ordering::Release);
        let since = Instant::now();
        loop {
            let left = ACK_WAIT.saturating_sub(since.elapsed());
            match h.messages.recv_timeout(left) {
                Ok(Message::Batch {
                    epoch: acked,
                    tally,
                    ..
                }) => {
                    if let Some(mut tally) = tally {
                        counted += tally.packets();
                        tally.clear();
                        h.pool.send(tally).unwrap();
                    }
                    if acked >= epoch {
                        break;
                    }
                }
                Ok(Message::Exit { .. }) => panic!("the worker exited early"),
                Err(e) => panic!("tick {epoch} not acknowledged within {ACK_WAIT:?}: {e}"),
            }
        }
    }
    h.signals.stop.store(true, Ordering::Release);
    let stopped = Instant::now();
    let exit_stats = loop {
        match h.messages.recv_timeout(Duration::from_secs(5)) {
            Ok(Message::Batch { tally, .. }) => counted += tally.map_or(0, |t| t.packets()),
            Ok(Message::Exit { stats, error, .. }) => {
                assert!(error.is_none(), "{error:?}");
                break stats.unwrap();
            }
            Err(e) => panic!("no exit within 5 s of stop: {e}"),
        }
    };
    let took = stopped.elapsed();
    assert!(took <= Duration::from_millis(200), "exit took {took:?}");
    h.thread.join().unwrap();
    // Every frame read was counted and handed over: nothing lost between tallies.
    assert!(exit_stats.packets > 0);
    assert_eq!(counted, exit_stats.packets);
}

#[test]
fn a_panicking_worker_is_reported_as_a_capture_failure() {
    let h = start(Some(3));
    let error = loop {
        match h.messages.recv_timeout(Duration::from_secs(5)) {
            Ok(Message::Batch { .. }) => {}
            Ok(Message::Exit { error, stats, .. }) => {
                assert!(stats.is_none());
                break error;
            }
            Err(e) => panic!("the panic was swallowed: no exit message: {e}"),
        }
    };
    let text = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.contains("tc-worker-0") && text.contains("panicked: a corrupt block"),
        "{text}"
    );
    h.thread.join().unwrap();
}
