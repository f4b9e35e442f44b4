//! The Prometheus exporter (`--metrics ADDR:PORT`): `/metrics` and `/healthz`, in headless mode
//! and beside the terminal UI.
//!
//! It exists so a fleet can be watched by the monitoring it already has. It is decoupled from
//! how snapshots arrive: it reads a `watch` channel whose value is the latest snapshot (latest
//! wins, nothing queues), and encodes that snapshot when a scraper asks. So the exporter costs
//! nothing per packet and nothing between scrapes except the coverage bookkeeping, one sysfs
//! read per snapshot.
//!
//! Parts: [`collector`] (snapshot to metric families), [`top`] (which talkers get series, with
//! hysteresis), [`coverage`] (bytes counted versus the interface's counters), [`family`] (the
//! model and both text encodings), [`server`] (HTTP).

pub mod collector;
pub mod coverage;
pub mod family;
pub mod server;
pub mod top;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio::sync::watch;
use traffic_counter_capture::Snapshot;

use crate::cli::Args;
use collector::Extras;
use coverage::Coverage;
use top::TopTalkers;

/// The latest snapshot, as the exporter receives it.
pub type Feed = watch::Receiver<Option<Arc<Snapshot>>>;

/// A snapshot older than this makes `/healthz` fail: capture has stalled.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// What a scrape reads: the feed, plus the state that outlives one scrape.
pub struct Exporter {
    feed: Feed,
    interface: String,
    top: Mutex<TopTalkers>,
    coverage: Arc<Mutex<Coverage>>,
}

impl Exporter {
    /// An exporter for `interface` that exports `top` talkers (IPv6 rolled up to `v6_prefix`
    /// bits when given).
    ///
    /// Call it before capture starts: it reads the interface's counters as the coverage
    /// baseline (nothing counted yet), so traffic before the first snapshot is covered too.
    pub fn new(feed: Feed, interface: &str, top: usize, v6_prefix: Option<u8>) -> Self {
        let mut coverage = Coverage::default();
        if let Some(seen) = coverage::interface_bytes(interface) {
            coverage.observe(SystemTime::now(), 0, seen);
        }
        Self {
            feed,
            interface: interface.to_owned(),
            top: Mutex::new(TopTalkers::new(top, v6_prefix)),
            coverage: Arc::new(Mutex::new(coverage)),
        }
    }

    /// The metric families of the latest snapshot, as seen at `now`.
    pub fn families(&self, now: SystemTime) -> Vec<family::Family> {
        let snapshot = self.feed.borrow().clone();
        let coverage = self
            .coverage
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ratio();
        let mut top = self.top.lock().unwrap_or_else(PoisonError::into_inner);
        let rows = snapshot.as_deref().map_or(&[][..], |s| top.rows(s));
        collector::families(
            snapshot.as_deref(),
            &Extras {
                interface: &self.interface,
                top: rows,
                coverage,
                now,
            },
        )
    }

    /// The body of one scrape and its content type: OpenMetrics when asked for, else the
    /// Prometheus text format 0.0.4.
    pub fn scrape(
        &self,
        openmetrics: bool,
        now: SystemTime,
    ) -> Result<(&'static str, String), std::fmt::Error> {
        let families = self.families(now);
        if openmetrics {
            Ok((
                family::OPENMETRICS_CONTENT_TYPE,
                family::encode_openmetrics(families)?,
            ))
        } else {
            Ok((family::TEXT_CONTENT_TYPE, family::encode_text(&families)))
        }
    }

    /// `Ok` with a status line while snapshots are fresh; `Err` saying why not.
    pub fn health(&self, now: SystemTime) -> Result<String, String> {
        let Some(taken_at) = self.feed.borrow().as_ref().map(|s| s.taken_at) else {
            return Err("no snapshot yet".into());
        };
        let age = now.duration_since(taken_at).unwrap_or_default();
        if age > STALE_AFTER {
            Err(format!(
                "the latest snapshot is {:.1} s old: capture has stalled",
                age.as_secs_f64()
            ))
        } else {
            Ok(format!("ok: snapshot {:.1} s old", age.as_secs_f64()))
        }
    }

    /// Follows the feed and records each snapshot's bytes beside the interface's own count.
    fn follow_coverage(&self) -> impl Future<Output = ()> + use<> {
        let mut feed = self.feed.clone();
        let coverage = self.coverage.clone();
        async move {
            while feed.changed().await.is_ok() {
                let Some(s) = feed.borrow_and_update().clone() else {
                    continue;
                };
                if let Some(seen) = coverage::interface_bytes(&s.interface) {
                    coverage
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .observe(s.taken_at, s.totals.bytes, seen);
                }
            }
        }
    }
}

/// Copies each snapshot from the capture's feed to the exporter's until capture ends: once a
/// tick, latest wins on both sides.
pub fn forward(
    mut capture: traffic_counter_capture::Feed,
    exporter: watch::Sender<Option<Arc<Snapshot>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while capture.changed().await.is_ok() {
            let latest = capture.borrow_and_update().snapshot.clone();
            if latest.is_some() {
                exporter.send_replace(latest);
            }
        }
    })
}

/// Starts the exporter when `--metrics` was given; it serves until the result is dropped.
pub async fn start(
    args: &Args,
    interface: &str,
    feed: Feed,
) -> anyhow::Result<Option<server::Server>> {
    let Some(addr) = args.metrics else {
        return Ok(None);
    };
    let exporter = Arc::new(Exporter::new(
        feed,
        interface,
        args.metrics_top,
        args.metrics_v6_prefix,
    ));
    let mut server = server::serve(addr, exporter.clone())
        .await
        .with_context(|| format!("--metrics: listening on {addr}"))?;
    server.own(tokio::spawn(exporter.follow_coverage()));
    Ok(Some(server))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn health_follows_the_feed_and_scrapes_pick_their_format() {
        let (feed, rx) = watch::channel(None);
        let exporter = Exporter::new(rx, "lo", 20, None);
        let now = SystemTime::now();
        assert_eq!(exporter.health(now), Err("no snapshot yet".into()));
        let (kind, body) = exporter.scrape(false, now).unwrap();
        assert_eq!(kind, family::TEXT_CONTENT_TYPE);
        assert!(
            body.contains("traffic_counter_build_info{interface=\"lo\","),
            "{body}"
        );

        let mut s = fixture::small();
        s.taken_at = now;
        feed.send_replace(Some(Arc::new(s)));
        assert!(exporter.health(now + Duration::from_secs(1)).is_ok());
        let stale = exporter.health(now + STALE_AFTER + Duration::from_secs(1));
        assert!(stale.is_err_and(|e| e.contains("stalled")));

        let (kind, body) = exporter.scrape(true, now).unwrap();
        assert_eq!(kind, family::OPENMETRICS_CONTENT_TYPE);
        assert!(body.ends_with("# EOF\n"));
        assert!(
            body.contains("traffic_counter_talker_bytes_total{"),
            "{body}"
        );
    }
}
