//! Driving the real terminal UI in a real terminal: a private tmux server with one session of
//! a fixed size, keys sent as a person types them, and the screen read back as text.
//!
//! Each [`Tmux`] runs its own server (a socket named for the process and a counter), so tests
//! in parallel never see each other's sessions, and dropping it kills the server and whatever
//! still runs in it.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::wait::wait_for;

/// How long a test waits for the screen to show something.
pub const SCREEN_DEADLINE: Duration = Duration::from_secs(10);

/// One tmux server running one session named `ui`; killed on drop.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `command` (run by the shell) in a detached `width` x `height` session.
    pub fn start(command: &str, (width, height): (u16, u16)) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let tmux = Self {
            socket: format!(
                "tc-lab-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
        };
        let (width, height) = (width.to_string(), height.to_string());
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "ui",
            "-x",
            &width,
            "-y",
            &height,
            command,
        ]);
        tmux
    }

    /// Runs one tmux command against this server; panics with its stderr if it fails.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("running tmux (make setup installs it)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen's text, one line per row.
    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "ui"])
    }

    /// Sends keys in tmux's names (`Enter`, `Escape`, `q`, or text).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "ui"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Waits up to [`SCREEN_DEADLINE`] for the screen to satisfy `ok` and returns it; panics
    /// naming `what` with the last screen seen.
    #[track_caller]
    pub fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        match wait_for(what, SCREEN_DEADLINE, || self.screen(), |s| ok(s)) {
            Ok(screen) => screen,
            Err(timeout) => panic!("{timeout}"),
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}
