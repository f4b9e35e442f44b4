//! Offline replay: counting a pcap or pcapng file (or standard input) through the same parse,
//! tally and aggregate code as live capture, with ticks in capture time.
//!
//! One thread reads the records ([`reader`]), turns each into the Ethernet frame live capture
//! would have seen ([`link`]) and counts it with a worker's own counting state. Ticks follow
//! the capture's timestamps, not the wall clock: the first packet starts tick 0, and a packet
//! stamped at or after the end of the current tick first hands the tally to the aggregator,
//! which merges it, takes the tick's snapshot as of that capture time and starts the next tick,
//! exactly as a live tick ends. Rates are therefore per second of capture time, however fast the
//! file is read. The file is read as fast as it can be; snapshots are published at most every
//! [`PUBLISH_EVERY`] of wall time (each tick still ends in capture time), and once more, final,
//! when the input ends. Then the feed closes, which is how readers learn the replay is done.
//!
//! A malformed record stops the replay with an error naming the input and the record's byte
//! offset; what was counted before it is kept. A record that the end of the input cuts short is
//! counted as one truncated frame.

mod link;
mod reader;

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant, SystemTime};

use crate::aggregator::{Aggregator, Clock, Setup, WorkerSlot};
use crate::config::{FanoutMode, RingGeometry};
use crate::counters::new_tally;
use crate::engine::{Capture, Finished};
use crate::feed::Publisher;
use crate::filter::FrameFilter;
use crate::groups::{GroupSet, GroupTotals};
use crate::iface::LinkInfo;
use crate::parse::ParseError;
use crate::snapshot::{FanoutInfo, Source};
use crate::stats::{RingCounters, WorkerStats};
use crate::worker::{Counting, Message};
use crate::{CaptureConfig, CaptureError, PacketFilter};

pub use reader::Format;

use link::Scratch;
use reader::{Next, Reader};

/// The least wall time between two published snapshots of a replay.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// The most idle ticks one gap in the capture's timestamps ends one by one; a longer gap (a
/// clock jump) advances the tick count by this much only. Every rate window is long empty by
/// then.
pub const MAX_IDLE_TICKS: u64 = 86_400;

/// What to replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayInput {
    /// A file.
    File(PathBuf),
    /// Standard input.
    Stdin,
}

impl ReplayInput {
    /// `-` is standard input; anything else a path.
    pub fn from_arg(arg: &str) -> Self {
        if arg == "-" {
            Self::Stdin
        } else {
            Self::File(arg.into())
        }
    }

    /// What snapshots and errors call it: the path as given, or `-`.
    pub fn name(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Stdin => "-".to_owned(),
        }
    }
}

/// Why a replay could not start or could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be opened.
    #[error("opening {file}: {source}")]
    Open {
        /// The path.
        file: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading failed.
    #[error("reading {file} at byte offset {offset}: {source}")]
    Read {
        /// The input.
        file: String,
        /// Where the read was to go on.
        offset: u64,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The input starts with neither a pcap header nor a pcapng section header.
    #[error("{file} is not a pcap or pcapng file: {found}")]
    NotACapture {
        /// The input.
        file: String,
        /// What is there instead.
        found: String,
    },
    /// A link-layer header type replay cannot read.
    #[error(
        "{file}: link type {linktype} (declared at byte offset {offset}) is not supported; \
         Ethernet (1), Linux cooked SLL (113) and SLL2 (276) are"
    )]
    LinkType {
        /// The input.
        file: String,
        /// Where the link type is declared.
        offset: u64,
        /// The `LINKTYPE_*` number.
        linktype: i32,
    },
    /// A record that cannot be what it claims.
    #[error("{file}: malformed {what} at byte offset {offset}")]
    Malformed {
        /// The input.
        file: String,
        /// Where the record starts.
        offset: u64,
        /// What was wrong.
        what: String,
    },
}

impl Capture {
    /// Starts replaying `input`: counts every packet in it with `config`'s table bounds, flows
    /// setting, tick and groups (its interface, workers, CPUs, fanout and ring are not used)
    /// and ends by itself when the input does, closing the feed after the final snapshot.
    ///
    /// The file header is read before this returns, so a file that is not a capture is
    /// refused here.
    ///
    /// `filter`, when given, judges every frame before it is counted, as a socket filter
    /// would; the frames it rejects are counted per reason and nowhere else.
    pub fn replay(
        config: &CaptureConfig,
        input: &ReplayInput,
        filter: Option<Arc<dyn FrameFilter>>,
    ) -> Result<Self, CaptureError> {
        let name = input.name();
        let source: Box<dyn Read + Send> = match input {
            ReplayInput::File(path) => {
                Box::new(File::open(path).map_err(|source| ReplayError::Open {
                    file: name.clone(),
                    source,
                })?)
            }
            ReplayInput::Stdin => Box::new(std::io::stdin()),
        };
        let reader = Reader::new(source, &name)?;
        let groups = Arc::new(GroupSet::new(&config.groups)?);
        let tally = || new_tally(config, 1, true, &groups);
        let (to_aggregator, messages) = mpsc::channel();
        let (pool_tx, pool) = mpsc::channel();
        let _ = pool_tx.send(tally());
        let stats = WorkerStats::default();
        let counting = Counting {
            stats,
            ring_counters: RingCounters::default(),
            tally: tally(),
            to_aggregator,
            pool,
            seen_epoch: 0,
            link: LinkInfo::default(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let setup = Setup {
            interface: name,
            fanout: NO_FANOUT,
            ring: NO_RING,
            max_talkers: config.max_talkers,
            max_flows: config.max_flows,
            flows: config.flows,
            tick: config.tick,
            filter: filter.clone().map(|f| f as Arc<dyn PacketFilter>),
            groups: GroupTotals::for_set(&groups),
            link: LinkInfo::default(),
            source: match reader.format() {
                Format::Pcap => Source::Pcap,
                Format::Pcapng => Source::Pcapng,
            },
        };
        let publisher = Publisher::new();
        let feed = publisher.subscribe();
        let aggregator = Aggregator::new(
            setup,
            Clock::capture(),
            vec![WorkerSlot::new(stats, pool_tx)],
            publisher,
        );
        let replayer = Replayer {
            reader,
            scratch: Scratch::new(),
            filter,
            counting,
            ticks: Ticks {
                aggregator,
                messages,
                tick_ns: u64::try_from(config.tick.as_nanos())
                    .unwrap_or(u64::MAX)
                    .max(1),
                end_ns: None,
                last_ns: 0,
                published: None,
            },
        };
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tc-replay".into())
            .spawn(move || replayer.run(&thread_stop))
            .map_err(|e| CaptureError::Thread {
                name: "tc-replay".into(),
                message: e.to_string(),
            })?;
        Ok(Self::single(stop, thread, feed, NO_FANOUT, NO_RING))
    }
}

/// What a replay reports as its fanout group: none (group 0).
const NO_FANOUT: FanoutInfo = FanoutInfo {
    mode: FanoutMode::Hash,
    group: 0,
    rollover: false,
    chosen_because: None,
};

/// What a replay reports as its ring: none (all zeros).
const NO_RING: RingGeometry = RingGeometry {
    block_size: 0,
    block_count: 0,
    frame_size: 0,
    block_timeout_ms: 0,
    snap_len: 0,
};

/// The replay thread's state.
struct Replayer<R> {
    reader: Reader<R>,
    scratch: Scratch,
    filter: Option<Arc<dyn FrameFilter>>,
    /// The one worker's counting state, as a live worker has it.
    counting: Counting,
    ticks: Ticks,
}

impl<R: Read> Replayer<R> {
    /// Counts the whole input (or until `stop`), then hands over the last tick and builds the
    /// final snapshot.
    fn run(mut self, stop: &AtomicBool) -> Finished {
        let failure = self.count_all(stop).err();
        let c = &mut self.counting;
        c.tally.flush();
        let handed = c.hand_over();
        let error = failure.or(handed.err());
        if let Some(error) = error {
            // Reported as a worker that stopped with an error, as live capture reports one.
            let _ = c.to_aggregator.send(Message::Exit {
                worker: 0,
                stats: Some(c.stats),
                error: Some(error),
            });
        }
        let Ticks {
            mut aggregator,
            messages,
            last_ns,
            end_ns,
            ..
        } = self.ticks;
        if end_ns.is_some() {
            aggregator.advance_clock(time(last_ns));
        }
        let (snapshot, error) = aggregator.finish(&messages);
        Finished { snapshot, error }
    }

    fn count_all(&mut self, stop: &AtomicBool) -> Result<(), CaptureError> {
        let Self {
            reader,
            scratch,
            filter,
            counting,
            ticks,
        } = self;
        while !stop.load(Ordering::Relaxed) {
            match reader.next()? {
                Next::Packet(record) => {
                    ticks.reach(record.ts_ns, counting)?;
                    let frame =
                        scratch.frame(record.link, record.data, record.orig_len, record.ts_ns);
                    if filter.as_ref().is_none_or(|f| f.pass(frame.data)) {
                        counting.count(frame);
                    }
                }
                Next::Truncated(header) => {
                    // Nothing of a cut record is trusted as traffic: one truncated frame.
                    let s = &mut counting.stats;
                    s.packets += 1;
                    s.bytes +=
                        header.map_or(0, |(len, link)| u64::from(Scratch::wire_len(link, len)));
                    s.parse_errors.record(ParseError::Truncated);
                    return Ok(());
                }
                Next::End => return Ok(()),
            }
        }
        Ok(())
    }
}

/// Ticks in capture time.
struct Ticks {
    aggregator: Aggregator,
    messages: Receiver<Message>,
    tick_ns: u64,
    /// When the current tick ends, in capture time; `None` before the first packet.
    end_ns: Option<u64>,
    /// The latest packet time seen.
    last_ns: u64,
    /// When a snapshot was last published, in wall time.
    published: Option<Instant>,
}

impl Ticks {
    /// Before a packet stamped `ts_ns` is counted: ends every tick that ended before it.
    fn reach(&mut self, ts_ns: u64, counting: &mut Counting) -> Result<(), CaptureError> {
        self.last_ns = self.last_ns.max(ts_ns);
        let Some(end) = self.end_ns else {
            self.end_ns = Some(ts_ns.saturating_add(self.tick_ns));
            self.aggregator.start_clock(time(ts_ns));
            return Ok(());
        };
        if ts_ns < end {
            return Ok(());
        }
        let ended = (ts_ns - end) / self.tick_ns + 1;
        counting.tally.flush();
        counting.hand_over()?;
        let publish = self
            .published
            .is_none_or(|at| at.elapsed() >= PUBLISH_EVERY);
        self.aggregator
            .close_tick(&self.messages, time(end), publish);
        if publish {
            self.published = Some(Instant::now());
        }
        for _ in 1..ended.min(MAX_IDLE_TICKS) {
            self.aggregator.skip_tick();
        }
        self.end_ns = Some(end.saturating_add(ended.saturating_mul(self.tick_ns)));
        Ok(())
    }
}

/// A packet time as a `SystemTime`.
fn time(ns: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(ns)
}

#[cfg(test)]
#[path = "replay/tests.rs"]
mod tests;
