//! Driving the real terminal UI in a real terminal: a private tmux server with one session of
//! a fixed size, keys sent as a person types them, and the screen read back as text.
//!
//! Each [`Tmux`] runs its own server, its socket inside a private [`ScratchDir`], so tests in
//! parallel never see each other's sessions and nobody else can reach them; dropping it kills
//! the server and whatever still runs in it. [`after_exit`] and [`Tmux::assert_restored`]
//! check that the binary gave the terminal back: out of the alternate screen and out of raw
//! mode, so typed text echoes and the shell reads a line again.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::scratch::ScratchDir;
use crate::wait::wait_for;

/// How long a test waits for the screen to show something: generous, so that a loaded
/// machine makes a test slower, never failed.
pub const SCREEN_DEADLINE: Duration = Duration::from_secs(20);

/// The text [`Tmux::assert_restored`] types into the shell after the binary has exited.
const PROBE: &str = "tc-echo-probe";

/// What the session's shell runs after the binary under test: records the binary's exit status
/// in `exit_file` (read it with [`exit_status`]), then reads one line and prints it back, for
/// [`Tmux::assert_restored`]. Append it after `; ` to the session's command.
///
/// With the terminal restored the typed line echoes as it is typed and Enter completes the
/// read; left in raw mode nothing echoes and Enter (a bare carriage return) never ends the
/// line. The final `sleep` only keeps the pane open for the checks; the server is killed on
/// drop.
pub fn after_exit(exit_file: &Path) -> String {
    format!(
        "echo $? > {}; read line; echo \"typed:$line\"; sleep 30",
        exit_file.display()
    )
}

/// The exit status the session's shell wrote to `exit_file` (see [`after_exit`]), once the
/// binary has exited; panics if it has not within [`SCREEN_DEADLINE`].
#[track_caller]
pub fn exit_status(exit_file: &Path) -> String {
    match wait_for(
        "the binary to exit and its shell to record the status",
        SCREEN_DEADLINE,
        || std::fs::read_to_string(exit_file).unwrap_or_default(),
        |text| text.ends_with('\n'),
    ) {
        Ok(text) => text.trim().to_owned(),
        Err(timeout) => panic!("{timeout}"),
    }
}

/// A screen as tmux shows it, printed as its lines in a failure message.
struct Screen(String);

impl fmt::Debug for Screen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\n{}", self.0)
    }
}

/// One tmux server running one session named `ui`; killed on drop.
pub struct Tmux {
    socket: PathBuf,
    _dir: ScratchDir,
}

impl Tmux {
    /// Starts `command` (run by the shell) in a detached `width` x `height` session.
    pub fn start(command: &str, (width, height): (u16, u16)) -> Self {
        let dir = ScratchDir::new("tmux");
        let tmux = Self {
            socket: dir.join("socket"),
            _dir: dir,
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
            .arg("-S")
            .arg(&self.socket)
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
        match wait_for(
            what,
            SCREEN_DEADLINE,
            || Screen(self.screen()),
            |s| ok(&s.0),
        ) {
            Ok(screen) => screen.0,
            Err(timeout) => panic!("{timeout}"),
        }
    }

    /// Whether the pane shows the alternate screen (a full-screen program is drawing).
    pub fn alternate_on(&self) -> bool {
        self.run(&["display-message", "-p", "-t", "ui", "#{alternate_on}"])
            .trim()
            == "1"
    }

    /// Asserts the terminal is usable after the binary exited (`how`: "q", "SIGTERM"...): the
    /// primary screen is back, and a line typed into the shell echoes and is read on Enter, so
    /// no raw mode was left behind. The session's command must end with [`after_exit`].
    #[track_caller]
    pub fn assert_restored(&self, how: &str) {
        assert!(!self.alternate_on(), "{how}: still on the alternate screen");
        self.keys(&["-l", PROBE]);
        self.keys(&["Enter"]);
        self.wait_for(
            &format!("{how}: the typed line to echo and be read (raw mode left behind?)"),
            |s| {
                let echoed = s
                    .lines()
                    .any(|l| l.trim_end().ends_with(PROBE) && !l.contains("typed:"));
                echoed && s.contains(&format!("typed:{PROBE}"))
            },
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .status();
    }
}
