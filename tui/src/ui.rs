//! The terminal UI's event loop: one channel carries keys, resizes, snapshots and capture
//! failures; ticks redraw. The terminal is restored on quit, on error, on panic (ratatui's
//! hook), and on SIGTERM, SIGINT or SIGHUP, which arrive as quit events.

pub mod keys;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use ratatui::crossterm::event::{self, Event as TermEvent};
use tokio::sync::mpsc;
use traffic_counter_ebpf::PrefixList;

use crate::app::rollup::Rolled;
use crate::app::{Action, App, Effect};
use crate::cli::Args;
use crate::export;
use crate::names::{Naming, Resolver, Services, services};
use crate::session::Session;

/// What arrives on the UI's one channel.
enum Event {
    /// A key press or release.
    Key(event::KeyEvent),
    /// Anything that is already an action: resizes, snapshots, capture failures.
    Action(Action),
}
/// Restores the terminal when dropped, whatever path leaves the UI.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Runs the terminal UI until the user quits or the capture fails.
pub async fn run(args: Args, interface: String) -> anyhow::Result<ExitCode> {
    let mut session = Session::start(&args, interface).await?;
    let (tx, mut events) = mpsc::unbounded_channel::<Event>();
    let mut capture_running = true;

    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    let restore = Restore;
    let size = terminal.size().context("reading the terminal size")?;
    let (mut resolver, naming, names_notice) = start_names(&args);
    let mut app = App::new((size.width, size.height)).with_names(naming);
    app.rolled = Rolled::new(args.rollup_lens(), args.groups.clone());
    for notice in [&session.filter.notice, &names_notice]
        .into_iter()
        .flatten()
    {
        app.update(Action::Status(notice.clone(), true));
    }
    let stop_input = Arc::new(AtomicBool::new(false));
    let input = spawn_input(tx, stop_input.clone());
    let mut ticker = tokio::time::interval(Duration::from_millis(args.tick));
    let mut failure = None;

    loop {
        resolver.want(app.on_screen());
        terminal
            .draw(|frame| frame.render_widget(&app, frame.area()))
            .context("drawing")?;
        let action = tokio::select! {
            _ = ticker.tick() => continue,
            // Latest wins: a terminal that draws slowly skips snapshots instead of queueing them.
            changed = session.feed.changed(), if capture_running => {
                if changed.is_err() {
                    capture_running = false;
                    // A replay's feed closes when its file is done; the tables stay.
                    if !session.replay {
                        continue;
                    }
                    Action::CaptureEnded
                } else {
                    let latest = session.feed.borrow_and_update();
                    match (&latest.failure, &latest.snapshot) {
                        (Some(message), _) => Action::CaptureFailed(message.clone()),
                        (None, Some(s)) => Action::Snapshot(s.clone()),
                        (None, None) => continue,
                    }
                }
            }
            event = events.recv() => match event {
                Some(Event::Action(action)) => action,
                Some(Event::Key(key)) => match keys::action(key, app.prompt.is_some()) {
                    Some(action) => action,
                    None => continue,
                },
                None => break,
            },
            hosts = resolver.changed() => Action::Names(hosts),
            () = session.stops.recv() => Action::Quit,
        };
        if let Action::CaptureFailed(message) = &action {
            failure = Some(message.clone());
        }
        match app.update(action) {
            Effect::None => {}
            Effect::Quit => break,
            Effect::WriteSnapshot => {
                let status = match export::write_view(
                    &app,
                    &args.snapshot_dir,
                    args.snapshot_format,
                    session.files,
                ) {
                    Ok(path) => (format!("wrote {}", path.display()), false),
                    Err(err) => (format!("{err:#}"), true),
                };
                app.update(Action::Status(status.0, status.1));
            }
            Effect::Exclude(ip) => {
                let status = match &session.filter.ebpf {
                    Some(filter) => match filter.add(PrefixList::Exclude, ip.into()) {
                        Ok(()) => (
                            format!("excluded {ip}: the filter now rejects its traffic"),
                            false,
                        ),
                        Err(err) => (format!("excluding {ip}: {err}"), true),
                    },
                    None => ("cannot exclude: no eBPF filter".to_owned(), true),
                };
                app.update(Action::Status(status.0, status.1));
            }
        }
    }

    stop_input.store(true, Ordering::Relaxed);
    drop(restore);
    let _ = input.join();
    session.finish(failure, |_| true).await
}

/// The names the command line asks for: the resolver thread unless `-n`, the services
/// database unless `-N`, and a notice when either could not be had.
fn start_names(args: &Args) -> (Resolver, Naming, Option<String>) {
    let (resolver, dns_notice) = Resolver::system(!args.no_dns);
    let mut notices: Vec<String> = dns_notice.into_iter().collect();
    let services = (!args.no_port_names).then(|| {
        let (db, why) = Services::load(std::path::Path::new(services::SYSTEM_PATH));
        notices.extend(why);
        db
    });
    let naming = Naming::new(resolver.is_on(), services);
    let notice = (!notices.is_empty()).then(|| notices.join("; "));
    (resolver, naming, notice)
}

/// Reads terminal events on a thread of its own and forwards them.
///
/// The terminal is watched with `poll(2)` before crossterm reads it: crossterm's reader loops
/// for ever on a terminal that hung up (every read returns 0 at once), so a closed tmux pane or
/// SSH session would leave the process spinning. A hang-up or a read error is a quit.
fn spawn_input(
    tx: mpsc::UnboundedSender<Event>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(tty) = Tty::open() else {
            let _ = tx.send(Event::Action(Action::Quit));
            return;
        };
        while !stop.load(Ordering::Relaxed) {
            match tty.wait(100) {
                TtyState::Idle => continue,
                TtyState::HungUp => {
                    let _ = tx.send(Event::Action(Action::Quit));
                    break;
                }
                TtyState::Readable => {}
            }
            // Everything crossterm has parsed, then back to watching the terminal.
            while event::poll(Duration::ZERO).unwrap_or(false) {
                let forwarded = match event::read() {
                    Ok(TermEvent::Key(key)) => Event::Key(key),
                    Ok(TermEvent::Resize(w, h)) => Event::Action(Action::Resize(w, h)),
                    Ok(_) => continue,
                    Err(_) => Event::Action(Action::Quit),
                };
                if tx.send(forwarded).is_err() {
                    return;
                }
            }
        }
    })
}

/// The terminal crossterm reads: standard input when it is one, else `/dev/tty`.
struct Tty {
    fd: std::os::fd::RawFd,
    _owned: Option<std::fs::File>,
}

/// What `poll(2)` said of the terminal.
enum TtyState {
    Idle,
    Readable,
    HungUp,
}

impl Tty {
    fn open() -> std::io::Result<Self> {
        use std::os::fd::AsRawFd;
        // SAFETY: isatty only inspects the descriptor.
        if unsafe { libc::isatty(libc::STDIN_FILENO) } == 1 {
            return Ok(Self {
                fd: libc::STDIN_FILENO,
                _owned: None,
            });
        }
        let file = std::fs::File::open("/dev/tty")?;
        Ok(Self {
            fd: file.as_raw_fd(),
            _owned: Some(file),
        })
    }

    fn wait(&self, timeout_ms: i32) -> TtyState {
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, owned by this frame, for the duration of the call.
        let n = unsafe { libc::poll(&raw mut pfd, 1, timeout_ms) };
        if n < 0 {
            return match std::io::Error::last_os_error().kind() {
                std::io::ErrorKind::Interrupted => TtyState::Idle,
                _ => TtyState::HungUp,
            };
        }
        if pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            TtyState::HungUp
        } else if pfd.revents & libc::POLLIN != 0 {
            TtyState::Readable
        } else {
            TtyState::Idle
        }
    }
}
