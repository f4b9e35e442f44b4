//! End-to-end test of the terminal UI in a real terminal: the binary runs in tmux inside a
//! fresh network namespace, traffic arrives, and keys are sent the way a person would type.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use testlab::Lab;
use testlab::corpus;

const BIN: &str = env!("CARGO_BIN_EXE_traffic-counter");

/// A private tmux server running one session, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmux = Self {
            socket: format!("tc-test-{}-{n}", std::process::id()),
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
            .args(["-L", &self.socket])
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

    /// Waits until the screen satisfies `ok`, up to `limit`; returns that screen.
    fn wait_for(&self, what: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < until,
                "waited {limit:?} for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
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

fn scratch() -> PathBuf {
    scratch_named("ui")
}

fn scratch_named(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tc-tmux-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
    let dir = scratch();
    let exit_file = dir.join("exit-status");
    let command = format!(
        "ip netns exec {} {BIN} -i tc0 --workers 2 --flows --tick 200 --snapshot-dir {}; \
         echo $? > {}; sleep 30",
        lab.capture_ns,
        dir.display(),
        exit_file.display()
    );
    let tmux = Tmux::start(&command);
    tmux.wait_for("the header", Duration::from_secs(10), |s| {
        s.contains("traffic-counter  tc0")
    });

    let corpus = corpus::standard();
    lab.send(&corpus.frames);
    let screen = tmux.wait_for("IPv4 and IPv6 talkers", Duration::from_secs(5), |s| {
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
    tmux.wait_for("the help overlay", Duration::from_secs(2), |s| {
        s.contains("Help: keys")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("the help to close", Duration::from_secs(2), |s| {
        !s.contains("Help: keys")
    });

    let v6 = corpus.talkers.keys().filter(|ip| ip.is_ipv6()).count();
    tmux.keys(&["/", "2001:db8", "Enter"]);
    let screen = tmux.wait_for("the filter", Duration::from_secs(2), |s| {
        s.contains(&format!("Talkers 1/{v6}"))
    });
    let rows = table_rows(&screen);
    assert_eq!(rows.len(), v6, "{screen}");
    assert!(rows.iter().all(|r| r.starts_with("2001:db8:")), "{screen}");

    tmux.keys(&["w"]);
    tmux.wait_for("the write", Duration::from_secs(2), |s| {
        s.contains("wrote ")
    });
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
    assert_eq!(
        tmux.run(&["display-message", "-p", "-t", "ui", "#{alternate_on}"])
            .trim(),
        "0"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The exit status the session's shell wrote, once it has written it.
fn exit_status(file: &Path) -> String {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.ends_with('\n') {
            return text.trim().to_owned();
        }
        assert!(Instant::now() < until, "the UI did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ctrl_c_and_sigterm_under_load_restore_the_terminal() {
    let lab = Lab::new("tmuxsig");
    let dir = scratch_named("sig");
    for how in ["ctrl-c", "sigterm"] {
        let exit_file = dir.join(format!("exit-{how}"));
        let pid_file = dir.join(format!("pid-{how}"));
        let command = format!(
            "ip netns exec {} sh -c 'echo $$ > {}; exec {BIN} -i tc0 --tick 200'; echo $? > {}; sleep 30",
            lab.capture_ns,
            pid_file.display(),
            exit_file.display()
        );
        let tmux = Tmux::start(&command);
        tmux.wait_for("the header", Duration::from_secs(10), |s| {
            s.contains("traffic-counter  tc0")
        });
        assert_eq!(
            tmux.run(&["display-message", "-p", "-t", "ui", "#{alternate_on}"])
                .trim(),
            "1"
        );
        // Under load: frames keep arriving (bounded: 20 rounds of the standard corpus) while
        // the signal lands.
        let corpus = corpus::standard();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for _ in 0..20 {
                    lab.send(&corpus.frames);
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
            std::thread::sleep(Duration::from_millis(200));
            if how == "ctrl-c" {
                tmux.keys(&["C-c"]);
            } else {
                let pid = std::fs::read_to_string(&pid_file).unwrap();
                let pid: i32 = pid.trim().parse().unwrap();
                // SAFETY: kill(2) on the UI's pid, which this test started.
                assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
            }
        });
        assert_eq!(exit_status(&exit_file), "0", "{how}");
        assert_eq!(
            tmux.run(&["display-message", "-p", "-t", "ui", "#{alternate_on}"])
                .trim(),
            "0",
            "{how}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_ui_serves_metrics_beside_the_screen() {
    let lab = Lab::new("tmuxprom");
    let dir = scratch_named("metrics");
    let exit_file = dir.join("exit-status");
    let metrics = "127.0.0.1:9848";
    let command = format!(
        "ip netns exec {} {BIN} -i tc0 --workers 2 --tick 200 --metrics {metrics} \
         --group lab=198.18.0.0/15; echo $? > {}; sleep 30",
        lab.capture_ns,
        exit_file.display()
    );
    let tmux = Tmux::start(&command);
    tmux.wait_for("the header", Duration::from_secs(10), |s| {
        s.contains("traffic-counter  tc0")
    });
    let corpus = corpus::standard();
    lab.send(&corpus.frames);
    tmux.wait_for("the talkers", Duration::from_secs(5), |s| {
        s.contains(&format!("Talkers 1/{}", corpus.talkers.len()))
    });
    let want = format!(
        "traffic_counter_packets_total{{interface=\"tc0\"}} {}\n",
        corpus.packets
    );
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let scrape = testlab::http::get(&lab.capture_ns, metrics, "/metrics", None);
        if scrape.body.contains(&want) {
            break;
        }
        assert!(Instant::now() < until, "{}", scrape.body);
        std::thread::sleep(Duration::from_millis(100));
    }
    let health = testlab::http::get(&lab.capture_ns, metrics, "/healthz", None);
    assert_eq!(health.status, 200, "{}", health.body);
    // Nothing about the exporter was printed over the UI.
    assert!(!tmux.screen().contains("metrics"), "{}", tmux.screen());
    tmux.keys(&["q"]);
    assert_eq!(exit_status(&exit_file), "0");
    let _ = std::fs::remove_dir_all(&dir);
}
