//! Names end to end with a real resolver: dnsmasq in the capture namespace answers PTR records
//! for test addresses, `/etc/netns/NS/resolv.conf` points the monitor at it, and the names
//! must appear in the terminal UI (tmux), in a `w` snapshot and in a headless snapshot file;
//! with `-n` dnsmasq must log no query at all; and a resolver that never answers must not
//! hold up the UI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use testlab::corpus;
use testlab::dns::{Dnsmasq, ResolvConf, Silent};
use testlab::process::Running;
use testlab::tmux::Tmux;
use testlab::{COUNT_DEADLINE, Lab, ScratchDir, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_traffic-counter");
/// Where dnsmasq listens inside the capture namespace.
const DNS: &str = "127.0.0.1";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The corpus's DNS server and one IPv6 host get names; every other address has none.
fn records() -> [(IpAddr, &'static str); 2] {
    [
        (ip("198.18.0.1"), "ns1.lab.example"),
        (ip("2001:db8::1"), "v6-one.lab.example"),
    ]
}

/// The UI in tmux, in the capture namespace, writing `w` snapshots to `dir`.
fn ui(lab: &Lab, dir: &Path, extra: &str) -> Tmux {
    let command = format!(
        "ip netns exec {} {BIN} -i tc0 --workers 1 --flows --tick 200 --snapshot-dir {} {extra}; \
         sleep 30",
        lab.capture_ns,
        dir.display()
    );
    let tmux = Tmux::start(&command, (120, 30));
    tmux.wait_for("the header", |s| s.contains("traffic-counter  tc0"));
    tmux
}

/// The talkers table's rows: from its header to a blank line, the evicted remainder's line
/// or the status line.
fn table_rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .skip_while(|l| !l.starts_with("Address"))
        .skip(1)
        .take_while(|l| {
            !l.trim().is_empty() && !l.starts_with("other (") && !l.starts_with("q quit")
        })
        .collect()
}

/// Presses `w` and returns the JSON file it wrote (the only one in `dir`).
fn write_snapshot(tmux: &Tmux, dir: &Path) -> Value {
    tmux.keys(&["w"]);
    tmux.wait_for("the write", |s| s.contains("wrote "));
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let doc = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    std::fs::remove_file(&files[0]).unwrap();
    doc
}

/// Each talker's `name`, by address (`None` when the file gives none).
fn names_in(doc: &Value) -> Vec<(IpAddr, Option<String>)> {
    doc["talkers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let name = t.get("name").map(|n| n.as_str().unwrap().to_owned());
            (ip(t["ip"].as_str().unwrap()), name)
        })
        .collect()
}

#[test]
fn names_come_from_the_resolver_and_not_with_no_dns() {
    let lab = Lab::new("names");
    let scratch = ScratchDir::new("names");
    let server = Dnsmasq::start(&lab.capture_ns, ip(DNS), &records(), scratch.path());
    let _conf = ResolvConf::nameserver(&lab.capture_ns, ip(DNS));
    let corpus = corpus::standard();
    let talkers = corpus.talkers.len();

    // First with -n: the same server and traffic, and not one query.
    let tmux = ui(&lab, scratch.path(), "-n");
    lab.send(&corpus.frames);
    tmux.wait_for("every talker", |s| {
        s.contains(&format!("Talkers 1/{talkers}"))
    });
    let doc = write_snapshot(&tmux, scratch.path());
    assert!(names_in(&doc).iter().all(|(_, n)| n.is_none()), "{doc}");
    tmux.keys(&["n"]);
    tmux.wait_for("the reason names are off", |s| {
        s.contains("no host names: started with -n")
    });
    tmux.keys(&["q"]);
    drop(tmux);
    assert_eq!(server.ptr_queries(), Vec::<String>::new());

    // Then with names: the talkers on screen are looked up and named.
    let tmux = ui(&lab, scratch.path(), "");
    lab.send(&corpus.frames);
    let screen = tmux.wait_for("both names", |s| {
        s.contains("ns1.lab.example") && s.contains("v6-one.lab.example")
    });
    let rows = table_rows(&screen);
    assert_eq!(rows.len(), talkers, "{screen}");
    assert!(
        rows.iter().any(|r| r.starts_with("ns1.lab.example ")),
        "{screen}"
    );
    assert!(
        rows.iter().any(|r| r.starts_with("v6-one.lab.example ")),
        "{screen}"
    );
    // Named addresses show their names instead; unnamed ones stay addresses.
    assert!(
        !rows.iter().any(|r| r.starts_with("198.18.0.1 ")),
        "{screen}"
    );
    assert!(
        rows.iter().any(|r| r.starts_with("198.18.0.2 ")),
        "{screen}"
    );
    // Every talker on screen was asked about exactly once (answers, NXDOMAIN included, are
    // cached for their TTLs), and nothing else was.
    let wait_all = |n| {
        wait_for(
            "one query per talker",
            COUNT_DEADLINE,
            || server.ptr_queries(),
            |q| q.len() >= n,
        )
    };
    let queried = wait_all(talkers).unwrap();
    let mut asked: Vec<String> = queried
        .iter()
        .map(|q| q.split_whitespace().nth(5).unwrap_or_default().to_owned())
        .collect();
    asked.sort();
    let mut want: Vec<String> = corpus
        .talkers
        .keys()
        .map(|a| testlab::dns::arpa(*a))
        .collect();
    want.sort();
    assert_eq!(asked, want, "{queried:#?}");

    let doc = write_snapshot(&tmux, scratch.path());
    let mut named: Vec<(IpAddr, String)> = names_in(&doc)
        .into_iter()
        .filter_map(|(ip, n)| Some((ip, n?)))
        .collect();
    named.sort();
    let mut want: Vec<(IpAddr, String)> = records()
        .iter()
        .map(|(ip, n)| (*ip, (*n).to_owned()))
        .collect();
    want.sort();
    assert_eq!(named, want, "{doc}");

    // The filter matches names; `n` shows addresses again; the flows view names the port.
    tmux.keys(&["/", "lab.example", "Enter"]);
    tmux.wait_for("the filter on names", |s| s.contains("Talkers 1/2"));
    tmux.keys(&["n"]);
    tmux.wait_for("names off: the filter matches nothing", |s| {
        s.contains("Talkers 0/0")
    });
    tmux.keys(&["Escape", "n", "2"]);
    tmux.wait_for("a named endpoint with its service", |s| {
        s.contains("ns1.lab.example:domain")
    });
    tmux.keys(&["q"]);
}

#[test]
fn a_resolver_that_never_answers_does_not_hold_up_the_ui() {
    let lab = Lab::new("names-silent");
    let scratch = ScratchDir::new("names-silent");
    let silent = Silent::bind(&lab.capture_ns, ip("127.0.0.2"));
    let _conf = ResolvConf::nameserver(&lab.capture_ns, ip("127.0.0.2"));
    let tmux = ui(&lab, scratch.path(), "");
    let corpus = corpus::standard();
    lab.send(&corpus.frames);
    let talkers = corpus.talkers.len();
    tmux.wait_for("every talker", |s| {
        s.contains(&format!("Talkers 1/{talkers}"))
    });
    // The resolver is stuck on real queries...
    let mut asked = wait_for(
        "queries at the silent server",
        COUNT_DEADLINE,
        || silent.take_queries(),
        |&n| n > 0,
    )
    .unwrap();
    // ...while the UI goes on: keys answer, new traffic shows, the clock runs.
    tmux.keys(&["2"]);
    tmux.wait_for("the flows view", |s| s.contains(" Flows 1/"));
    tmux.keys(&["1", "/", "2001:db8", "Enter"]);
    let v6 = corpus.talkers.keys().filter(|ip| ip.is_ipv6()).count();
    tmux.wait_for("the filter", |s| s.contains(&format!("Talkers 1/{v6}")));
    tmux.keys(&["Escape"]);
    let more = corpus::many_sources(30);
    lab.send(&more.frames);
    let all: std::collections::BTreeSet<IpAddr> = corpus
        .talkers
        .keys()
        .chain(more.talkers.keys())
        .copied()
        .collect();
    let screen = tmux.wait_for("the new talkers", |s| {
        s.contains(&format!("Talkers 1/{}", all.len()))
    });
    let uptime = |s: &str| s.lines().next().unwrap_or_default().to_owned();
    let before = uptime(&screen);
    tmux.wait_for("the header's clock to move", |s| uptime(s) != before);
    asked += silent.take_queries();
    assert!(asked > 0);
    // No name, and addresses throughout.
    let screen = tmux.screen();
    assert!(!table_rows(&screen).is_empty(), "{screen}");
    assert!(
        table_rows(&screen)
            .iter()
            .all(|r| r.starts_with("198.") || r.starts_with("2001:"))
    );
    tmux.keys(&["q"]);
}

/// The binary headless on tc0 with one worker, writing `file` every 0.2 s, plus `extra`.
fn headless_to(lab: &Lab, file: &Path, extra: &[&str]) -> Running {
    let mut cmd = lab.command_in_capture_ns(BIN);
    cmd.args([
        "--headless",
        "-i",
        "tc0",
        "--workers",
        "1",
        "--interval",
        "0.2",
    ])
    .args(extra)
    .arg("--snapshot-file")
    .arg(file);
    Running::start(cmd, "capturing on tc0")
}

#[test]
fn headless_names_the_top_rows_of_its_snapshot_file() {
    let lab = Lab::new("names-headless");
    let scratch = ScratchDir::new("names-headless");
    let server = Dnsmasq::start(&lab.capture_ns, ip(DNS), &records(), scratch.path());
    let _conf = ResolvConf::nameserver(&lab.capture_ns, ip(DNS));
    let file = scratch.join("snap.json");
    let running = headless_to(&lab, &file, &[]);
    let corpus = corpus::standard();
    lab.send(&corpus.frames);
    let read = || -> Vec<(IpAddr, Option<String>)> {
        std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .map(|doc| names_in(&doc))
            .unwrap_or_default()
    };
    let rows = wait_for("both names in the file", COUNT_DEADLINE, read, |rows| {
        rows.len() == corpus.talkers.len() && rows.iter().filter(|(_, n)| n.is_some()).count() == 2
    })
    .unwrap();
    for (addr, name) in records() {
        assert!(rows.contains(&(addr, Some(name.to_owned()))), "{rows:?}");
    }
    running.signal(libc::SIGTERM);
    let (code, _, stderr) = running.finish();
    assert_eq!(code, Some(0), "{stderr}");
    // Every address of the file was asked about once (answers are cached).
    let asked = server.ptr_queries().len();
    assert_eq!(asked, corpus.talkers.len(), "{:#?}", server.ptr_queries());
    // With -n, the file has no names and the server hears nothing more.
    std::fs::remove_file(&file).unwrap();
    let running = headless_to(&lab, &file, &["-n"]);
    lab.send(&corpus.frames);
    let rows = wait_for("every talker in the file", COUNT_DEADLINE, read, |rows| {
        rows.len() == corpus.talkers.len()
    })
    .unwrap();
    running.signal(libc::SIGTERM);
    let (code, _, stderr) = running.finish();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(rows.iter().all(|(_, n)| n.is_none()), "{rows:?}");
    assert_eq!(server.ptr_queries().len(), asked);
}
