//! End-to-end test of the terminal UI in a real terminal: the binary runs in tmux inside a
//! fresh network namespace, traffic arrives, and keys are sent the way a person would type.
//! Whatever way the binary leaves (`q`, Ctrl-C, SIGTERM), the terminal must be usable again:
//! out of the alternate screen and out of raw mode, so typed text echoes and a line is read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use testlab::corpus;
use testlab::tmux::{Tmux, after_exit, exit_status};
use testlab::wait::{COUNT_DEADLINE, wait_for};
use testlab::{Lab, ScratchDir};

const BIN: &str = env!("CARGO_BIN_EXE_traffic-counter");
/// The session's size.
const SIZE: (u16, u16) = (120, 30);

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
        after_exit(&exit_file)
    );
    let tmux = Tmux::start(&command, SIZE);
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
            after_exit(&exit_file)
        );
        let tmux = Tmux::start(&command, SIZE);
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
        after_exit(&exit_file)
    );
    let tmux = Tmux::start(&command, SIZE);
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
