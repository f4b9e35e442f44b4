//! Waiting for a capture to account for every frame sent, shared by the filter tests.

use traffic_counter_capture::Capture;
use traffic_counter_capture::snapshot::{Rejects, Snapshot};

use testlab::{COUNT_DEADLINE, wait_for};

/// Frames the capture's workers read from their rings.
pub fn frames_read(snap: &Snapshot) -> u64 {
    snap.workers.iter().map(|w| w.packets).sum()
}

/// Every reject the filter counted, whatever the reason; 0 when it cannot count (classic).
pub fn rejected(rejects: Option<Rejects>) -> u64 {
    rejects.map_or(0, |r| r.vlan + r.non_ip + r.excluded + r.not_allowed)
}

/// Waits until every frame sent so far is accounted for: read by the capture or rejected by
/// the filter, `read + rejected_total` in all, or `read` read when the filter cannot count its
/// rejects (classic). Later sends and list changes then cannot overtake frames still on their
/// way; the caller asserts how they split.
pub fn wait_for_counts(capture: &Capture, read: u64, rejected_total: u64) {
    let feed = capture.feed();
    let what = format!("{read} frames read and {rejected_total} rejected (read, rejected)");
    wait_for(
        &what,
        COUNT_DEADLINE,
        || {
            let latest = feed.borrow().snapshot.clone();
            latest.map(|snap| {
                let known = snap.filter.rejects.is_some();
                (frames_read(&snap), rejected(snap.filter.rejects), known)
            })
        },
        |seen| match *seen {
            Some((r, j, true)) => r + j >= read + rejected_total,
            Some((r, _, false)) => r >= read,
            None => false,
        },
    )
    .unwrap();
}
