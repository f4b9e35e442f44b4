//! A worker driven by a stand-in ring that always has a ready block: the overload case in
//! which a worker that only looked at its signals between drains would never answer.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use testlab::{Frame as TestFrame, L4};

use super::*;
use crate::aggregator::ACK_WAIT;
use crate::ring::FrameWalker;
use crate::ring::testing::{TestFrame as RingFrame, block};

/// Kernel ring statistics of a ring that dropped nothing.
fn no_drops() -> libc::tpacket_stats_v3 {
    libc::tpacket_stats_v3 {
        tp_packets: 0,
        tp_drops: 0,
        tp_freeze_q_cnt: 0,
    }
}

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

    fn next_block(&mut self, mut each: impl FnMut(Frame<'_>)) -> Option<Walked> {
        self.blocks += 1;
        assert!(Some(self.blocks) != self.panic_at_block, "a corrupt block");
        for _ in 0..self.frames_per_block {
            each(Frame {
                data: &self.frame,
                wire_len: self.frame.len() as u32,
                ts_ns: 1,
                offloaded: None,
                gso: None,
                outgoing: false,
            });
        }
        Some(Walked::default())
    }

    fn take_stats(&self) -> Result<libc::tpacket_stats_v3, CaptureError> {
        Ok(no_drops())
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
            link: LinkInfo::default(),
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

/// Blocks laid out as the kernel writes them, each walked once by the real walker.
struct Blocks {
    blocks: std::collections::VecDeque<Vec<u8>>,
    vnet: bool,
}

impl FrameSource for Blocks {
    fn wait(&self, _timeout_ms: i32) -> Wait {
        Wait::Timeout
    }

    fn next_block(&mut self, mut each: impl FnMut(Frame<'_>)) -> Option<Walked> {
        let block = self.blocks.pop_front()?;
        let mut walker = FrameWalker::over_block(&block, self.vnet);
        while let Some(frame) = walker.next_frame() {
            each(frame);
        }
        Some(walker.walked())
    }

    fn take_stats(&self) -> Result<libc::tpacket_stats_v3, CaptureError> {
        Ok(no_drops())
    }

    fn block_count(&self) -> u32 {
        8
    }
}

/// Runs a worker over `blocks` until it has drained them, and returns its final stats and
/// the packets its tallies counted.
fn run_over(blocks: Vec<Vec<u8>>, vnet: bool, link: LinkInfo) -> (WorkerStats, u64) {
    let (to_aggregator, messages) = mpsc::channel();
    let (_pool, pool_rx) = mpsc::channel();
    let worker = Worker {
        source: Blocks {
            blocks: blocks.into(),
            vnet,
        },
        ifindex: 1,
        interface: "fake0".into(),
        block_timeout_ms: 10,
        counting: Counting {
            stats: WorkerStats::default(),
            ring_counters: RingCounters::default(),
            tally: Box::new(Tally::new(16, true)),
            to_aggregator,
            pool: pool_rx,
            seen_epoch: 0,
            link,
        },
    };
    let signals = Signals {
        stop: Arc::new(AtomicBool::new(true)),
        epoch: Arc::new(AtomicU64::new(0)),
    };
    worker.run(&signals);
    let mut counted = 0;
    loop {
        match messages.recv_timeout(Duration::from_secs(5)).unwrap() {
            Message::Batch { tally, .. } => counted += tally.map_or(0, |t| t.packets()),
            Message::Exit { stats, error, .. } => {
                assert!(error.is_none(), "{error:?}");
                return (stats.unwrap(), counted);
            }
        }
    }
}

fn udp_frame() -> Vec<u8> {
    testlab::Frame::ip(
        "198.18.0.1".parse().unwrap(),
        "198.18.0.2".parse().unwrap(),
        L4::Udp(4000, 53),
        18,
    )
    .bytes
}

#[test]
fn a_corrupt_block_is_counted_per_worker_and_the_rest_still_counts() {
    let data = udp_frame();
    let frames: Vec<_> = (0..4).map(|_| RingFrame::plain(&data)).collect();
    let good = block(4096, &frames, false);
    let mut corrupt = good.clone();
    // The descriptor announces 9 frames; the block holds 4.
    corrupt[12..16].copy_from_slice(&9u32.to_ne_bytes());
    let (stats, counted) = run_over(
        vec![good.clone(), corrupt, good],
        false,
        LinkInfo::default(),
    );
    assert_eq!((stats.packets, counted), (12, 12));
    assert_eq!((stats.corrupt_blocks, stats.unreadable_frames), (1, 5));
}

#[test]
fn super_frames_count_as_their_segments_and_loopback_echoes_once() {
    // One TCP super-frame: 14 + 20 + 20 header bytes and 4000 bytes of payload in segments of
    // 1448: 3 packets on the wire, 4054 + 2 * 54 bytes.
    let mut tcp = testlab::Frame::ip(
        "198.18.0.1".parse().unwrap(),
        "198.18.0.2".parse().unwrap(),
        L4::Tcp(40000, 80),
        4000,
    )
    .bytes;
    assert_eq!(tcp.len(), 4054);
    tcp[14 + 20 + 12] = 5 << 4;
    let mut sup = RingFrame::plain(&tcp);
    sup.vnet = (1, 1448);
    let (stats, counted) = run_over(
        vec![block(1 << 14, &[sup], true)],
        true,
        LinkInfo::default(),
    );
    assert_eq!((stats.packets, counted, stats.super_frames), (3, 3, 1));
    assert_eq!(stats.bytes, 4054 + 2 * 54);

    // On loopback every packet shows up going out and coming back in; it counts once.
    let udp = udp_frame();
    let mut out = RingFrame::plain(&udp);
    out.pkttype = libc::PACKET_OUTGOING;
    let lo = LinkInfo::for_arphrd(libc::ARPHRD_LOOPBACK).unwrap();
    let blocks = vec![block(4096, &[out, RingFrame::plain(&udp)], false)];
    let (stats, counted) = run_over(blocks.clone(), false, lo);
    assert_eq!((stats.packets, counted), (1, 1));
    let (stats, _) = run_over(blocks, false, LinkInfo::default());
    assert_eq!(
        stats.packets, 2,
        "on other links an outgoing frame is a packet of its own"
    );
}
