//! One start and one finish for a capture session, shared by the terminal UI and headless mode.
//!
//! Starting is an order that matters: the stop signals are installed first, so none is lost;
//! whom to become and who may read the files are resolved (a typo fails before anything is
//! opened); the filter is chosen; the exporter binds before capture (a busy port fails before
//! any ring exists, and it takes the interface's counters as its coverage baseline); the
//! rings are opened, joined and filtered; privileges are dropped while the process still has
//! one thread ([`privilege`](crate::privilege)); and only then do the workers start, as does
//! everything that opens files later. Finishing stops the
//! capture, drains the rings, hands the final snapshot to the mode and turns what went wrong
//! into an exit code.

use anyhow::Context;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{Signal, SignalKind, signal};
use traffic_counter_capture::snapshot::FilterKind;
use traffic_counter_capture::{Capture, CaptureConfig, Feed, ReplayInput, Snapshot};

use traffic_counter_capture::filter::FrameFilter;
use traffic_counter_ebpf::{FilterRules, Selected, UserspaceFilter};

use crate::cli::Args;
use crate::metrics::server::Server;
use crate::privilege::{self, Dropped, Identity, Target};
use crate::snapshot_file::FileAccess;

/// A running capture with everything around it: filter, exporter, stop signals.
pub struct Session {
    /// What the capture was started with.
    pub config: CaptureConfig,
    /// The filter in use; its eBPF handle serves the UI's live exclude.
    pub filter: Selected,
    /// The exporter, when `--metrics` was given; it serves until the session is dropped.
    pub metrics: Option<Server>,
    /// The capture's latest-wins snapshot feed.
    pub feed: Feed,
    /// SIGINT, SIGTERM and SIGHUP: each asks the session to finish.
    pub stops: Stops,
    /// Whether this is a replay of a file, which ends by itself.
    pub replay: bool,
    /// Who may read the files the session writes.
    pub files: FileAccess,
    /// Whom the process runs as since setup, and what it kept.
    pub privileges: Dropped,
    capture: Capture,
    forward: tokio::task::JoinHandle<()>,
}

impl Session {
    /// Sets up the capture on `interface` (with `--read`, the file's name) as `args` ask and
    /// starts it. A replay has no socket filter: with VLAN or prefix rules it gets their
    /// verdicts in userspace. Its session ends by itself when the file does, which readers of
    /// the feed see as the feed closing.
    pub async fn start(args: &Args, interface: String) -> anyhow::Result<Self> {
        let stops = Stops::install()?;
        let config = args.capture_config(interface);
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let target = privilege::target(args.user.as_deref(), privilege::sudo_ids()?, uid)?;
        let files = file_access(args.file_group.as_deref(), &target)?;
        let rules = args.filter_rules();
        let mut verdicts = None;
        let mut filter = Selected::default();
        if args.read.is_none() {
            let (mode, link_notice) = args.filter_mode(&config.interface);
            filter = traffic_counter_ebpf::select(mode, &rules)?;
            filter.notice = filter.notice.or(link_notice);
        } else if rules != FilterRules::default() {
            let userspace = Arc::new(UserspaceFilter::new(&rules));
            filter.filter = Some(userspace.clone());
            verdicts = Some(userspace as Arc<dyn FrameFilter>);
        }
        let (metrics_feed, metrics_rx) = tokio::sync::watch::channel(None);
        let metrics = crate::metrics::start(args, &config.interface, metrics_rx).await?;
        let keep = privilege::running_kernel_needs(filter.ebpf.is_some());
        // A replay needs no privilege at all: it drops before opening the file, which the user
        // it runs as must be able to read, and before its threads start.
        let (capture, privileges) = if let Some(file) = &args.read {
            let privileges = privilege::drop_to(&target, None).context("dropping privileges")?;
            let input = ReplayInput::from_arg(file);
            (Capture::replay(&config, &input, verdicts)?, privileges)
        } else {
            let opened = Capture::open(&config, filter.filter.clone())?;
            let privileges = privilege::drop_to(&target, keep).context("dropping privileges")?;
            (opened.run()?, privileges)
        };
        let feed = capture.feed();
        let forward = crate::metrics::forward(capture.feed(), metrics_feed);
        Ok(Self {
            config,
            filter,
            metrics,
            feed,
            stops,
            replay: args.read.is_some(),
            files,
            privileges,
            capture,
            forward,
        })
    }

    /// One line saying what is being captured and how.
    pub fn describe(&self) -> String {
        let filter = self
            .filter
            .filter
            .as_ref()
            .map_or("none", |f| match f.kind() {
                FilterKind::None => "none",
                FilterKind::Ebpf => "ebpf",
                FilterKind::Classic => "classic (reject counts unknown)",
                FilterKind::Userspace => "userspace",
            });
        if self.replay {
            let file = match self.config.interface.as_str() {
                "-" => "standard input",
                path => path,
            };
            return format!(
                "replaying {file} in capture time, ticks of {} ms, filter {filter}, {}",
                self.config.tick.as_millis(),
                self.privileges
            );
        }
        let fanout = self.capture.fanout();
        let why = fanout
            .chosen_because
            .map_or_else(String::new, |why| format!(" (auto: {why})"));
        format!(
            "capturing on {} with {} workers on CPUs {:?}, fanout {} group {}{why}, {} MiB \
             ring each, filter {filter}, {}",
            self.config.interface,
            self.config.workers,
            self.config.cpus,
            fanout.mode.name(),
            fanout.group,
            self.capture.geometry().bytes() >> 20,
            self.privileges,
        )
    }

    /// Stops the capture, drains its rings and hands the final snapshot to `last` (which
    /// reports its own errors and says whether it succeeded). The exit code is a failure when
    /// `last` failed, the capture failed (`failure`, as the feed reported it), or stopping did.
    pub async fn finish(
        self,
        failure: Option<String>,
        last: impl FnOnce(&Snapshot) -> bool,
    ) -> anyhow::Result<ExitCode> {
        let Self {
            capture, forward, ..
        } = self;
        let finished = tokio::task::spawn_blocking(move || capture.stop())
            .await
            .context("waiting for capture to stop")??;
        drop(forward);
        let mut code = ExitCode::SUCCESS;
        if !last(&finished.snapshot) {
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
}

/// Who may read the files written: `--file-group NAME` must be a group of the user the process
/// will run as, because without capabilities it can give its files only such a group.
fn file_access(group: Option<&str>, target: &Target) -> anyhow::Result<FileAccess> {
    let Some(name) = group else {
        return Ok(FileAccess::default());
    };
    let gid = privilege::group_id(name).with_context(|| format!("--file-group {name}"))?;
    let user = match target {
        Target::Switch(identity) => identity.clone(),
        Target::Keep => Identity::current()?,
    };
    if !user.in_group(gid) {
        anyhow::bail!(
            "--file-group {name}: {} is not a member, so files could not be given that group",
            user.label()
        );
    }
    Ok(FileAccess { group: Some(gid) })
}

/// The signals that end a session. SIGHUP counts as one: a closed terminal or a supervisor's
/// reload must still leave the final snapshot behind, not kill the process mid-write.
pub struct Stops {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Stops {
    fn install() -> anyhow::Result<Self> {
        let install =
            |kind, name| signal(kind).with_context(|| format!("installing the {name} handler"));
        Ok(Self {
            interrupt: install(SignalKind::interrupt(), "SIGINT")?,
            terminate: install(SignalKind::terminate(), "SIGTERM")?,
            hangup: install(SignalKind::hangup(), "SIGHUP")?,
        })
    }

    /// Waits for any of the stop signals.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
        }
    }
}
