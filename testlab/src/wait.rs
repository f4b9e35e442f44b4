//! Waiting for something observable instead of sleeping.
//!
//! A fixed `sleep` after sending frames is a guess about how busy the machine is: on a loaded
//! CI runner the guess is wrong and an exact-count test fails (or, worse, passes by luck). Tests
//! instead poll the thing they are about to assert on (an interface counter, a snapshot's
//! totals, a file appearing) until it reaches the expected state, with a generous deadline, and
//! fail with a message naming what they waited for and the last value they saw.
//!
//! ```no_run
//! use testlab::wait::{wait_for, COUNT_DEADLINE};
//! # let lab = testlab::Lab::new("doc");
//! let rx = wait_for("120 frames on the capture interface", COUNT_DEADLINE,
//!     || lab.capture_rx_packets(), |&n| n >= 120).unwrap();
//! ```

use std::fmt::{self, Debug};
use std::time::{Duration, Instant};

/// How long a test waits for counts to arrive: far longer than they take on an idle machine
/// (milliseconds), so that only a real loss, not CI load, makes the test fail.
pub const COUNT_DEADLINE: Duration = Duration::from_secs(20);

/// First and longest pause between two probes; the pause doubles from the first to the second.
const FIRST_PAUSE: Duration = Duration::from_millis(2);
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// A wait that ran out: what was awaited, for how long, and the last value seen.
pub struct WaitTimeout {
    what: String,
    deadline: Duration,
    probes: u64,
    last: String,
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for {}; last seen (probe {}): {}",
            self.deadline, self.what, self.probes, self.last
        )
    }
}

/// The same text as `Display`, so that `.unwrap()` on a wait prints a readable message.
impl Debug for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for WaitTimeout {}

/// Calls `read` until `done` accepts its value, and returns that value; gives up after
/// `deadline` with a [`WaitTimeout`] naming `what` and the last value read.
///
/// `what` says what is awaited, as it should read in a failure ("all 180 frames in the
/// snapshot"). Probes start 2 ms apart and back off to 100 ms, so a fast result is seen fast
/// and a slow one costs little CPU. `read` is called at least once, even with a zero deadline.
pub fn wait_for<T: Debug>(
    what: &str,
    deadline: Duration,
    mut read: impl FnMut() -> T,
    mut done: impl FnMut(&T) -> bool,
) -> Result<T, WaitTimeout> {
    let started = Instant::now();
    let mut pause = FIRST_PAUSE;
    let mut probes = 0;
    loop {
        let value = read();
        probes += 1;
        if done(&value) {
            return Ok(value);
        }
        let left = deadline.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(WaitTimeout {
                what: what.to_owned(),
                deadline,
                probes,
                last: format!("{value:?}"),
            });
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// Waits until the counter `read` returns reaches at least `target`, and returns its value
/// then, for the caller to compare exactly (an overshoot is the caller's failure to report).
pub fn wait_for_count(
    what: &str,
    deadline: Duration,
    target: u64,
    read: impl FnMut() -> u64,
) -> Result<u64, WaitTimeout> {
    wait_for(&format!("{what} to reach {target}"), deadline, read, |&n| {
        n >= target
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_accepted_value() {
        let mut n = 0u64;
        let got = wait_for_count("a counter", Duration::from_secs(5), 3, || {
            n += 1;
            n
        });
        assert_eq!(got.unwrap(), 3);
    }

    #[test]
    fn a_timeout_names_what_was_awaited_and_the_last_value() {
        let mut n = 0u64;
        let started = Instant::now();
        let err = wait_for_count("rx_packets on tc0", Duration::from_millis(50), 1000, || {
            n += 1;
            n
        })
        .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(50));
        let text = err.to_string();
        assert!(
            text.starts_with("timed out after 50ms waiting for rx_packets on tc0 to reach 1000;"),
            "{text}"
        );
        assert!(text.ends_with(&format!("(probe {n}): {n}")), "{text}");
    }
}
