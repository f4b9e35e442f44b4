//! The capture library of traffic-counter.
pub mod affinity;
pub mod config;
mod error;
pub mod parse;
pub use error::CaptureError;
