//! The capture library of traffic-counter: `AF_PACKET` `TPACKET_V3` rings in one
//! `PACKET_FANOUT` group, one pinned worker per ring, zero-copy parsing, lock-free per-worker
//! counting, and an aggregator that publishes immutable snapshots.
//!
//! Data flows one way: ring → worker ([`parse`], [`counters`] into a bounded per-tick
//! [`Tally`]) → aggregator (once a tick: [`Aggregate`] tables with rate history) →
//! `Arc<`[`Snapshot`]`>` on a latest-wins [`Feed`] → whoever renders, writes or exports it.
//! Only the workers do work per packet. [`Capture::replay`] counts a pcap or pcapng file
//! through the same parse, tally and aggregate code, in capture time ([`replay`]).

pub mod affinity;
pub mod aggregate;
mod aggregator;
pub mod config;
pub mod counters;
mod engine;
mod error;
pub mod fanout_choice;
pub mod fanout_diag;
pub mod feed;
pub mod filter;
pub mod groups;
mod history;
pub mod iface;
pub mod parse;
mod prefetch;
pub mod replay;
mod ring;
pub mod snapshot;
pub mod spill;
pub mod stats;
pub mod table;
mod worker;

pub use aggregate::Aggregate;
pub use config::{CaptureConfig, FanoutConfig, FanoutMode, RingGeometry, RingOptions};
pub use counters::Tally;
pub use engine::{Capture, Finished, MAX_WORKERS, Opened};
pub use error::CaptureError;
pub use feed::{Feed, Latest};
pub use filter::PacketFilter;
pub use replay::{ReplayError, ReplayInput};
#[doc(hidden)]
pub use ring::walk_block;
pub use ring::{Frame as RingFrame, FrameWalker, Walked};
pub use snapshot::Snapshot;
