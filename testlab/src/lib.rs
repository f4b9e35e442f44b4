//! Test-only helpers shared by the capture library's and the binary's privileged tests.
//!
//! They build network namespaces joined by a veth pair, craft exact frames, and send them from
//! the generator side with an `AF_PACKET` socket. Addresses stay in 198.18.0.0/15 and
//! 2001:db8::/32, and frames go to a MAC nobody owns, so the receiving stack answers nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod corpus;
pub mod frames;
pub mod http;
pub mod netns;
pub mod process;

pub use frames::{Frame, L4};
pub use netns::Lab;
