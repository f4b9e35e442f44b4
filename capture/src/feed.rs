//! How snapshots leave the capture: a "latest wins" feed.
//!
//! The aggregator replaces the value every tick and readers take whatever is newest when they
//! are ready, so a stalled terminal, a slow disk or a blocked stdout can never make snapshots
//! queue up: at most one published snapshot is alive beyond the ones readers hold. A failure is
//! sticky: once set, later snapshots do not hide it.

use std::sync::Arc;

use tokio::sync::watch;

use crate::Snapshot;

/// What a capture has published so far.
#[derive(Clone, Debug, Default)]
pub struct Latest {
    /// The newest snapshot, once the first tick has passed.
    pub snapshot: Option<Arc<Snapshot>>,
    /// The first failure (e.g. the interface vanished); stop the capture to get the final
    /// snapshot.
    pub failure: Option<String>,
}

/// A reader's end of the feed: `changed().await`, then `borrow_and_update()`.
pub type Feed = watch::Receiver<Latest>;

/// The aggregator's end of the feed.
pub(crate) struct Publisher {
    tx: watch::Sender<Latest>,
}

impl Publisher {
    /// A feed with nothing published yet.
    pub(crate) fn new() -> Self {
        Self {
            tx: watch::Sender::new(Latest::default()),
        }
    }

    /// A new reader's end.
    pub(crate) fn subscribe(&self) -> Feed {
        self.tx.subscribe()
    }

    /// Replaces the newest snapshot, whether or not anyone reads it.
    pub(crate) fn snapshot(&self, snapshot: Arc<Snapshot>) {
        self.tx
            .send_modify(|latest| latest.snapshot = Some(snapshot));
    }

    /// Records a failure; the first one stays.
    pub(crate) fn failure(&self, message: String) {
        self.tx.send_modify(|latest| {
            latest.failure.get_or_insert(message);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Weak;

    use super::*;
    use crate::snapshot::tests::empty_snapshot;

    #[test]
    fn snapshots_published_without_a_reader_leave_one_alive() {
        let publisher = Publisher::new();
        let idle_reader = publisher.subscribe();
        let weak: Vec<Weak<Snapshot>> = (0..1000)
            .map(|i| {
                let mut s = empty_snapshot();
                s.tick = i;
                let s = Arc::new(s);
                let w = Arc::downgrade(&s);
                publisher.snapshot(s);
                w
            })
            .collect();
        let alive: Vec<u32> = weak
            .iter()
            .filter_map(Weak::upgrade)
            .map(|s| s.tick)
            .collect();
        assert_eq!(alive, vec![999]);
        let latest = idle_reader.borrow();
        assert_eq!(latest.snapshot.as_ref().map(|s| s.tick), Some(999));
    }

    #[test]
    fn the_first_failure_stays_through_later_snapshots() {
        let publisher = Publisher::new();
        let mut reader = publisher.subscribe();
        publisher.failure("eth9 vanished".into());
        publisher.failure("a later error".into());
        publisher.snapshot(Arc::new(empty_snapshot()));
        assert!(reader.has_changed().unwrap());
        let latest = reader.borrow_and_update();
        assert_eq!(latest.failure.as_deref(), Some("eth9 vanished"));
        assert!(latest.snapshot.is_some());
    }
}
