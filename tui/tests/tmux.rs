//! End-to-end test of the terminal UI in a real terminal: the binary runs in tmux inside a
//! fresh network namespace, traffic arrives, and keys are sent the way a person would type.
//! Whatever way the binary leaves (`q`, Ctrl-C, SIGTERM), the terminal must be usable again:
//! out of the alternate screen and out of raw mode, so typed text echoes and a line is read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use testlab::corpus;
use testlab::wait::{COUNT_DEADLINE, wait_for};
use testlab::{Lab, ScratchDir};

const BIN: &str = env!("CARGO_BIN_EXE_traffic-counter");

/// What the session's shell runs once the binary has exited: records its exit status in
/// `exit_file`, then reads one line and prints it back. With the terminal restored the typed
/// line echoes as it is typed and Enter completes the read; left in raw mode, nothing echoes
/// and Enter (a bare carriage return) never ends the line. The final `sleep` only keeps the
/// pane open for the checks; the tmux server is killed on drop.
fn then_probe_the_terminal(exit_file: &Path) -> String {
    format!(
        "echo $? > {}; read line; echo \"typed:$line\"; sleep 30",
        exit_file.display()
    )
}

/// The text typed into the shell after the binary has exited.
const PROBE: &str = "tc-echo-probe";

/// A screen as tmux shows it, printed as lines in a failure message.
struct Screen(String);

impl fmt::Debug for Screen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\n{}", self.0)
    }
}

/// A private tmux server (its socket in a private directory) running one session, killed on
/// drop.
struct Tmux {
    socket: PathBuf,
    _dir: ScratchDir,
}

impl Tmux {
    fn start(command: &str) -> Self {
        let dir = ScratchDir::new("tmux-server");
        let tmux = Self {
            socket: dir.join("socket"),
            _dir: dir,
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "ui",
            "-x",
            "120",
            "-y",
            "30",
            command,
        ]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs (make setup installs it)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "ui"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "ui"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Waits until the screen satisfies `ok` (for at most [`COUNT_DEADLINE`], so a loaded
    /// machine only makes it slower); returns that screen.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        wait_for(what, COUNT_DEADLINE, || Screen(self.screen()), |s| ok(&s.0))
            .unwrap()
            .0
    }

    /// Whether the pane shows the alternate screen.
    fn alternate_on(&self) -> bool {
        self.run(&["display-message", "-p", "-t", "ui", "#{alternate_on}"])
            .trim()
            == "1"
    }

    /// Asserts the terminal is usable after the binary exited (`how`): the primary screen is
    /// back, and a line typed into the shell echoes and is read on Enter (no raw mode left).
    fn assert_restored(&self, how: &str) {
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

fn table_rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .skip_while(|l| !l.starts_with("Address"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect()
}

fn written_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn a_person_can_watch_filter_write_and_quit() {
    let lab = Lab::new("tmux");
    let scratch = ScratchDir::new("tmux");
    let dir = scratch.join("snapshots");
    std::fs::create_dir(&dir).unwrap();
    let exit_file = scratch.join("exit-status");
    let command = format!(
        "ip netns exec {} {BIN} -i tc0 --workers 2 --flows --tick 200 --snapshot-dir {}; {}",
        lab.capture_ns,
        dir.display(),
        then_probe_the_terminal(&exit_file)
    );
    let tmux = Tmux::start(&command);
    tmux.wait_for("the header", |s| s.contains("traffic-counter  tc0"));

    let corpus = corpus::standard();
    lab.send(&corpus.frames);
    let screen = tmux.wait_for("IPv4 and IPv6 talkers", |s| {
        s.contains(&format!("Talkers 1/{}", corpus.talkers.len()))
    });
    let rows = table_rows(&screen);
    assert!(
        rows.iter().any(|r| r.starts_with("198.18.0.2 ")),
        "{screen}"
    );
    assert!(
        rows.iter().any(|r| r.starts_with("2001:db8::2 ")),
        "{screen}"
    );

    tmux.keys(&["?"]);
    tmux.wait_for("the help overlay", |s| s.contains("Help: keys"));
    tmux.keys(&["Escape"]);
    tmux.wait_for("the help to close", |s| !s.contains("Help: keys"));

    let v6 = corpus.talkers.keys().filter(|ip| ip.is_ipv6()).count();
    tmux.keys(&["/", "2001:db8", "Enter"]);
    let screen = tmux.wait_for("the filter", |s| s.contains(&format!("Talkers 1/{v6}")));
    let rows = table_rows(&screen);
    assert_eq!(rows.len(), v6, "{screen}");
    assert!(rows.iter().all(|r| r.starts_with("2001:db8:")), "{screen}");

    tmux.keys(&["w"]);
    tmux.wait_for("the write", |s| s.contains("wrote "));
    let doc: Value = serde_json::from_slice(&std::fs::read(written_file(&dir)).unwrap()).unwrap();
    let talkers = doc["talkers"].as_array().unwrap();
    assert_eq!(talkers.len(), v6);
    for t in talkers {
        let ip: std::net::IpAddr = t["ip"].as_str().unwrap().parse().unwrap();
        assert!(ip.is_ipv6());
        assert_eq!(t["packets_sent"], corpus.talkers[&ip].packets_sent, "{ip}");
        assert_eq!(
            t["bytes_received"], corpus.talkers[&ip].bytes_received,
            "{ip}"
        );
    }
    // The file lists the rows in the table's order: bytes, largest first.
    let bytes: Vec<u64> = talkers
        .iter()
        .map(|t| t["bytes_sent"].as_u64().unwrap() + t["bytes_received"].as_u64().unwrap())
        .collect();
    assert!(bytes.windows(2).all(|w| w[0] >= w[1]), "{bytes:?}");

    tmux.keys(&["q"]);
    assert_eq!(exit_status(&exit_file), "0");
    tmux.assert_restored("q");
}

/// The exit status the session's shell wrote, once it has written it.
fn exit_status(file: &Path) -> String {
    wait_for(
        "the UI to exit and its shell to record the status",
        COUNT_DEADLINE,
        || std::fs::read_to_string(file).unwrap_or_default(),
        |text| text.ends_with('\n'),
    )
    .unwrap()
    .trim()
    .to_owned()
}

#[test]
fn ctrl_c_and_sigterm_under_load_restore_the_terminal() {
    let lab = Lab::new("tmuxsig");
    let dir = ScratchDir::new("tmux");
    for how in ["ctrl-c", "sigterm"] {
        let exit_file = dir.join(format!("exit-{how}"));
        let pid_file = dir.join(format!("pid-{how}"));
        let command = format!(
            "ip netns exec {} sh -c 'echo $$ > {}; exec {BIN} -i tc0 --tick 200'; {}",
            lab.capture_ns,
            pid_file.display(),
            then_probe_the_terminal(&exit_file)
        );
        let tmux = Tmux::start(&command);
        tmux.wait_for("the header", |s| s.contains("traffic-counter  tc0"));
        assert!(
            tmux.alternate_on(),
            "{how}: the UI is on the alternate screen"
        );
        // Under load: frames keep arriving (bounded: at most 1000 rounds of the standard
        // corpus, about 20 s) until the signal has landed.
        let corpus = corpus::standard();
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let sender = scope.spawn(|| {
                for _ in 0..1000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    lab.send(&corpus.frames);
                    // Pacing, not waiting: a steady trickle rather than one burst.
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
            tmux.wait_for("the UI to count arriving frames", |s| {
                s.contains(&format!("Talkers 1/{}", corpus.talkers.len()))
            });
            assert!(
                !sender.is_finished(),
                "{how}: frames stopped before the signal"
            );
            if how == "ctrl-c" {
                tmux.keys(&["C-c"]);
            } else {
                let pid = std::fs::read_to_string(&pid_file).unwrap();
                let pid: i32 = pid.trim().parse().unwrap();
                // SAFETY: kill(2) on the UI's pid, which this test started.
                assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
            }
            assert_eq!(exit_status(&exit_file), "0", "{how}");
            stop.store(true, Ordering::Relaxed);
        });
        tmux.assert_restored(how);
    }
}

#[test]
fn the_ui_serves_metrics_beside_the_screen() {
    let lab = Lab::new("tmuxprom");
    let dir = ScratchDir::new("tmux");
    let exit_file = dir.join("exit-status");
    let metrics = "127.0.0.1:9848";
    let command = format!(
        "ip netns exec {} {BIN} -i tc0 --workers 2 --tick 200 --metrics {metrics} \
         --group lab=198.18.0.0/15; {}",
        lab.capture_ns,
        then_probe_the_terminal(&exit_file)
    );
    let tmux = Tmux::start(&command);
    tmux.wait_for("the header", |s| s.contains("traffic-counter  tc0"));
    let corpus = corpus::standard();
    lab.send(&corpus.frames);
    tmux.wait_for("the talkers", |s| {
        s.contains(&format!("Talkers 1/{}", corpus.talkers.len()))
    });
    let want = format!(
        "traffic_counter_packets_total{{interface=\"tc0\"}} {}\n",
        corpus.packets
    );
    wait_for(
        &format!("a scrape containing {want:?}"),
        COUNT_DEADLINE,
        || testlab::http::get(&lab.capture_ns, metrics, "/metrics", None).body,
        |body| body.contains(&want),
    )
    .unwrap();
    let health = testlab::http::get(&lab.capture_ns, metrics, "/healthz", None);
    assert_eq!(health.status, 200, "{}", health.body);
    // Nothing about the exporter was printed over the UI.
    assert!(!tmux.screen().contains("metrics"), "{}", tmux.screen());
    tmux.keys(&["q"]);
    assert_eq!(exit_status(&exit_file), "0");
    tmux.assert_restored("q with metrics");
}
