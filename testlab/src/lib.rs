//! Test-only helpers shared by the capture library's and the binary's privileged tests.
//!
//! They build network namespaces joined by a veth pair, craft exact frames, and send them from
//! the generator side with an `AF_PACKET` socket. Addresses stay in 198.18.0.0/15 and
//! 2001:db8::/32, and frames go to a MAC nobody owns, so the receiving stack answers nothing.
//!
//! Two rules every privileged test follows, with the helpers that make them easy:
//! - scratch files live in a [`ScratchDir`] (mode 0700, unpredictable name), never at a
//!   guessable path under `/tmp`;
//! - a test waits for what it will assert on with [`wait::wait_for`] (an interface counter
//!   such as [`Lab::capture_rx_packets`], a snapshot's totals, a file), never a fixed sleep.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod capture_file;
pub mod corpus;
pub mod dns;
pub mod frames;
pub mod http;
pub mod links;
pub mod netns;
pub mod process;
pub mod scratch;
pub mod tmux;
pub mod wait;

pub use frames::{Frame, L4};
pub use netns::Lab;
pub use scratch::ScratchDir;
pub use wait::{COUNT_DEADLINE, wait_for, wait_for_count};
