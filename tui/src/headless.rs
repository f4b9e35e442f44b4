//! Headless mode: capture with no terminal UI, print a summary line and rewrite the snapshot
//! file every interval, and write it once more after the rings are drained.
//!
//! It stops on `--duration`, SIGINT, SIGTERM, SIGHUP, or a capture failure such as the
//! interface vanishing; in every case the final snapshot is still written. Standard output
//! may go away (`| head -1`): the summary lines then stop and everything else goes on.
//! With a snapshot file (and not `-n`), its first [`NAMED_ROWS`] talkers are named by
//! reverse DNS as answers arrive.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::time::{Instant, MissedTickBehavior};
use traffic_counter_capture::Snapshot;

use crate::cli::Args;
use crate::names::{NameMap, Resolver};
use crate::session::Session;
use crate::{snapshot_file, summary};

/// Talkers of a snapshot file named by reverse DNS: the top of the file, where an operator
/// looks, without a lookup for each of its (by default) thousand rows.
pub const NAMED_ROWS: usize = 100;

/// Runs headless capture until told to stop; the exit code says whether it failed.
pub async fn run(args: Args, interface: String) -> anyhow::Result<ExitCode> {
    let mut session = Session::start(&args, interface).await?;
    if let Some(notice) = &session.filter.notice {
        eprintln!("traffic-counter: {notice}");
    }
    eprintln!("traffic-counter: {}", session.describe());
    if let Some(server) = &session.metrics {
        eprintln!(
            "traffic-counter: serving metrics on http://{}/metrics",
            server.addr()
        );
    }

    let mut out = Summaries::default();
    let file_names = FileNames::start(&args);
    let mut ticker = tokio::time::interval_at(Instant::now() + args.interval, args.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let deadline = args.duration.map(|d| Instant::now() + d);
    let mut failure = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                // Latest wins: whatever the capture published last, however long the previous
                // write took; nothing queues behind a slow disk or stdout.
                let latest: Option<Arc<Snapshot>> = session.feed.borrow().snapshot.clone();
                if let Some(s) = &latest {
                    out.print(s);
                    if let Some(path) = &args.snapshot_file
                        && let Err(err) =
                            snapshot_file::write_snapshot(path, s, args.top.0, &file_names.of(s), session.files)
                    {
                        eprintln!("traffic-counter: {err:#}; capture continues");
                    }
                }
            }
            changed = session.feed.changed() => {
                if changed.is_err() {
                    break;
                }
                if let Some(message) = session.feed.borrow_and_update().failure.clone() {
                    failure = Some(message);
                    break;
                }
            }
            () = session.stops.recv() => break,
            () = sleep_until(deadline), if deadline.is_some() => break,
        }
    }

    let files = session.files;
    session
        .finish(failure, |last| {
            out.print(last);
            match &args.snapshot_file {
                Some(path) => match snapshot_file::write_snapshot(
                    path,
                    last,
                    args.top.0,
                    &file_names.of(last),
                    files,
                ) {
                    Ok(()) => true,
                    Err(err) => {
                        eprintln!("traffic-counter: {err:#}");
                        false
                    }
                },
                None => true,
            }
        })
        .await
}

/// The summary lines on standard output, which may be closed under us: the first failed write
/// is reported once on stderr and the lines stop, while capture and snapshot files go on.
#[derive(Default)]
struct Summaries {
    closed: bool,
}

impl Summaries {
    fn print(&mut self, snapshot: &Snapshot) {
        if self.closed {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        let written = writeln!(stdout, "{}", summary::line(snapshot)).and_then(|()| stdout.flush());
        if let Err(err) = written {
            self.closed = true;
            eprintln!(
                "traffic-counter: standard output: {err}; summary lines stop, capture goes on"
            );
        }
    }
}

/// Host names for a snapshot file's first rows: looked up only with a file and without `-n`.
struct FileNames {
    resolver: Resolver,
    rows: usize,
}

impl FileNames {
    fn start(args: &Args) -> Self {
        let (resolver, notice) = Resolver::system(args.snapshot_file.is_some() && !args.no_dns);
        if let Some(notice) = notice {
            eprintln!("traffic-counter: {notice}");
        }
        Self {
            resolver,
            rows: args.top.0.map_or(NAMED_ROWS, |top| top.min(NAMED_ROWS)),
        }
    }

    /// Asks for the names of `s`'s first rows and returns every name known so far.
    fn of(&self, s: &Snapshot) -> Arc<NameMap> {
        if self.resolver.is_on() {
            self.resolver
                .want(snapshot_file::top_addresses(s, self.rows));
        }
        self.resolver.names()
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
