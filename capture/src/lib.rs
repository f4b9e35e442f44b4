//! The capture library of traffic-counter: `AF_PACKET` `TPACKET_V3` rings in one
//! `PACKET_FANOUT` group, one pinned worker per ring, zero-copy parsing, lock-free per-worker
//! counting, and an aggregator that publishes immutable snapshots.
//!
//! Data flows one way: ring → worker ([`parse`], [`counters`]) → aggregator (bounded tables,
//! rate history) → `Arc<`[`Snapshot`]`>` → whoever renders or writes it.

pub mod affinity;
mod aggregator;
pub mod config;
pub mod counters;
mod engine;
mod error;
pub mod filter;
pub mod groups;
pub mod history;
pub mod iface;
pub mod parse;
pub mod ring;
pub mod snapshot;
pub mod stats;
mod table;
mod worker;

pub use aggregator::Update;
pub use config::{CaptureConfig, FanoutConfig, FanoutMode, RingGeometry, RingOptions};
pub use engine::{Capture, Finished, MAX_WORKERS};
pub use error::CaptureError;
pub use filter::PacketFilter;
pub use snapshot::Snapshot;
