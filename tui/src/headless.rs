//! Headless mode: capture with no terminal UI, print a summary line and rewrite the snapshot
//! file every interval, and write it once more after the rings are drained.
//!
//! It stops on `--duration`, SIGINT, SIGTERM, or a capture failure such as the interface
//! vanishing; in every case the final snapshot is still written.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::{Instant, MissedTickBehavior};
use traffic_counter_capture::{Capture, Snapshot};

use crate::cli::Args;
use crate::{snapshot_file, summary};

/// Runs headless capture until told to stop; the exit code says whether it failed.
pub async fn run(args: Args, interface: String) -> anyhow::Result<ExitCode> {
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let config = args.capture_config(interface);
    let selected = traffic_counter_ebpf::select(args.filter.into(), &args.filter_rules())?;
    if let Some(notice) = &selected.notice {
        eprintln!("traffic-counter: {notice}");
    }
    // The exporter starts first: it takes the interface's counters as its coverage baseline,
    // and a busy port fails before capture begins.
    let (metrics_feed, metrics_rx) = tokio::sync::watch::channel(None);
    let metrics = crate::metrics::start(&args, &config.interface, metrics_rx).await?;
    let capture = Capture::start(&config, selected.filter.clone())?;
    let mut feed = capture.feed();
    let _forward = crate::metrics::forward(capture.feed(), metrics_feed);
    let fanout = capture.fanout();
    eprintln!(
        "traffic-counter: capturing on {} with {} workers on CPUs {:?}, fanout {} group {}, \
         {} MiB ring each, filter {}",
        config.interface,
        config.workers,
        config.cpus,
        fanout.mode.name(),
        fanout.group,
        capture.geometry().bytes() >> 20,
        selected
            .filter
            .as_ref()
            .map_or("none", |f| filter_name(f.kind())),
    );

    if let Some(server) = &metrics {
        eprintln!(
            "traffic-counter: serving metrics on http://{}/metrics",
            server.addr()
        );
    }

    let mut ticker = tokio::time::interval_at(Instant::now() + args.interval, args.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let deadline = args.duration.map(|d| Instant::now() + d);
    let mut failure = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                // Latest wins: whatever the capture published last, however long the previous
                // write took; nothing queues behind a slow disk or stdout.
                let latest: Option<Arc<Snapshot>> = feed.borrow().snapshot.clone();
                if let Some(s) = &latest {
                    println!("{}", summary::line(s));
                    if let Some(path) = &args.snapshot_file
                        && let Err(err) = snapshot_file::write_snapshot(path, s, args.top.0)
                    {
                        eprintln!("traffic-counter: {err:#}; capture continues");
                    }
                }
            }
            changed = feed.changed() => {
                if changed.is_err() {
                    break;
                }
                if let Some(message) = feed.borrow_and_update().failure.clone() {
                    failure = Some(message);
                    break;
                }
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            () = sleep_until(deadline), if deadline.is_some() => break,
        }
    }

    let finished = tokio::task::spawn_blocking(move || capture.stop())
        .await
        .context("waiting for capture to stop")??;
    println!("{}", summary::line(&finished.snapshot));
    let mut code = ExitCode::SUCCESS;
    if let Some(path) = &args.snapshot_file
        && let Err(err) = snapshot_file::write_snapshot(path, &finished.snapshot, args.top.0)
    {
        eprintln!("traffic-counter: {err:#}");
        code = ExitCode::FAILURE;
    }
    if let Some(err) = finished.error {
        eprintln!("traffic-counter: {err}");
        code = ExitCode::FAILURE;
    } else if let Some(message) = failure {
        eprintln!("traffic-counter: {message}");
        code = ExitCode::FAILURE;
    }
    Ok(code)
}

fn filter_name(kind: traffic_counter_capture::snapshot::FilterKind) -> &'static str {
    use traffic_counter_capture::snapshot::FilterKind;
    match kind {
        FilterKind::None => "none",
        FilterKind::Ebpf => "ebpf",
        FilterKind::Classic => "classic (reject counts unknown)",
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
