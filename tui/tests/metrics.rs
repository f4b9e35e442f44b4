//! Privileged end-to-end tests of the Prometheus exporter: the real binary in a fresh network
//! namespace, scraped by a real Prometheus server (Debian's `prometheus`) in the same
//! namespace, checked by `promtool`, and flooded with random sources to hold the series budget.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// Counts come back as decimal strings of whole numbers, which f64 holds exactly below 2^53.
#![allow(clippy::float_cmp)]

use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testlab::corpus::{self, Corpus, FILTER_ALLOW, FILTER_EXCLUDE, FILTER_VLANS};
use testlab::http::get;
use testlab::process::Running;
use testlab::wait::{COUNT_DEADLINE, wait_for};
use testlab::{Frame, L4, Lab, ScratchDir};
use traffic_counter::metrics::collector::budget;

const BIN: &str = env!("CARGO_BIN_EXE_traffic-counter");
/// Where the monitor serves metrics inside each test's private namespace.
const METRICS: &str = "127.0.0.1:9848";
/// Where Prometheus listens inside the same namespace.
const PROMETHEUS: &str = "127.0.0.1:9090";

/// The binary, headless in the lab's capture namespace, serving metrics.
fn monitor(lab: &Lab, extra: &[&str]) -> Running {
    let mut cmd = lab.command_in_capture_ns(BIN);
    cmd.args([
        "--headless",
        "-i",
        "tc0",
        "--workers",
        "2",
        "--interval",
        "0.5",
        "--metrics",
        METRICS,
    ]);
    cmd.args(extra);
    Running::start(cmd, "serving metrics on")
}

/// Series in a text-format exposition: its non-comment lines.
fn series(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The value of the one sample named exactly `sample` (name plus labels) in a scrape.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// Scrapes `/metrics` until the text contains `line`, and returns that scrape.
fn scrape_until_contains(ns: &str, line: &str) -> String {
    wait_for(
        &format!("a scrape containing {line:?}"),
        COUNT_DEADLINE,
        || get(ns, METRICS, "/metrics", None).body,
        |text| text.contains(line),
    )
    .unwrap()
}

/// A Prometheus server in the lab's capture namespace scraping the monitor every second.
struct Prometheus {
    ns: String,
    // Field order: the server stops before its storage directory is removed.
    _server: Running,
    _dir: ScratchDir,
}

impl Prometheus {
    fn start(lab: &Lab) -> Self {
        let found = Command::new("prometheus")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(
            found.is_ok_and(|s| s.success()),
            "the `prometheus` binary is missing: `make setup` installs the Debian package"
        );
        let dir = ScratchDir::new("prometheus");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  \
                 - job_name: traffic-counter\n    static_configs:\n      \
                 - targets: ['{METRICS}']\n"
            ),
        )
        .unwrap();
        let mut cmd = lab.command_in_capture_ns("prometheus");
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={PROMETHEUS}"));
        let server = Running::start(cmd, "Server is ready to receive web requests");
        Self {
            ns: lab.capture_ns.clone(),
            _server: server,
            _dir: dir,
        }
    }

    /// The values of an instant query, one per series, with their labels.
    fn query(&self, promql: &str) -> Vec<(Value, f64)> {
        let response = get(
            &self.ns,
            PROMETHEUS,
            &format!("/api/v1/query?query={}", url_encode(promql)),
            None,
        );
        assert_eq!(response.status, 200, "{promql}: {}", response.body);
        let doc: Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(doc["status"], "success", "{}", response.body);
        doc["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let value = r["value"][1].as_str().unwrap().parse().unwrap();
                (r["metric"].clone(), value)
            })
            .collect()
    }

    /// Polls `promql` until its result satisfies `done`, for at most 30 s; returns it.
    fn poll(&self, promql: &str, done: impl Fn(&[(Value, f64)]) -> bool) -> Vec<(Value, f64)> {
        wait_for(
            &format!("Prometheus to answer {promql}"),
            Duration::from_secs(30),
            || self.query(promql),
            |got| done(got),
        )
        .unwrap()
    }

    /// Polls `promql` until it yields exactly one series equal to `want`.
    fn wait_for(&self, promql: &str, want: u64) {
        self.poll(promql, |got| got.len() == 1 && got[0].1 == want as f64);
    }
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Packets and bytes sent and received by the corpus's addresses inside `prefix`: a group's
/// exact totals, computed from the corpus rather than by the code under test.
fn group_bytes(corpus: &Corpus, within: impl Fn(IpAddr) -> bool) -> (u64, u64) {
    corpus
        .talkers
        .iter()
        .filter(|(ip, _)| within(**ip))
        .fold((0, 0), |(s, r), (_, t)| {
            (s + t.bytes_sent, r + t.bytes_received)
        })
}

#[test]
fn prometheus_scrapes_exact_counts_rejects_top_talker_and_groups() {
    let lab = Lab::new("prom");
    let corpus = corpus::filtered();
    let run = monitor(
        &lab,
        &[
            "--filter",
            "ebpf",
            "--vlan",
            FILTER_VLANS,
            "--exclude",
            FILTER_EXCLUDE,
            "--allow",
            FILTER_ALLOW,
            "--group",
            "lab4=198.18.0.0/24",
            "--group",
            "lab6=2001:db8::/48",
            "--metrics-top",
            "3",
        ],
    );
    let prometheus = Prometheus::start(&lab);
    lab.send(&corpus.frames);

    let iface = r#"interface="tc0""#;
    prometheus.wait_for(
        &format!("traffic_counter_packets_total{{{iface}}}"),
        corpus.packets,
    );
    prometheus.wait_for(
        &format!("traffic_counter_bytes_total{{{iface}}}"),
        corpus.bytes,
    );
    // The interface's counters also saw the rejected and non-IP frames, so coverage is below
    // 1. (The ratio covers 10 s; this runs well within 10 s of the burst.)
    let coverage = prometheus.poll(&format!("traffic_counter_coverage_ratio{{{iface}}}"), |r| {
        r.len() == 1
    });
    assert!(coverage[0].1 > 0.0 && coverage[0].1 < 1.0, "{coverage:?}");
    for reason in ["vlan", "non_ip", "excluded", "not_allowed"] {
        prometheus.wait_for(
            &format!(r#"traffic_counter_filter_rejects_total{{{iface},reason="{reason}"}}"#),
            corpus.rejected(reason),
        );
    }
    prometheus.wait_for(
        &format!(r#"traffic_counter_parse_errors_total{{{iface},reason="truncated"}}"#),
        corpus.truncated,
    );
    // The top talker by bytes, and what it received.
    let (top_ip, top) = corpus
        .talkers
        .iter()
        .max_by_key(|(ip, t)| (t.bytes_sent + t.bytes_received, std::cmp::Reverse(**ip)))
        .unwrap();
    prometheus.wait_for(
        &format!(
            r#"traffic_counter_talker_bytes_total{{{iface},ip="{top_ip}",direction="received"}}"#
        ),
        top.bytes_received,
    );
    let v4_group = "198.18.0.0/24".parse::<ipnet::IpNet>().unwrap();
    let (sent, received) = group_bytes(&corpus, |ip| v4_group.contains(&ip));
    assert!(sent > 0 && received > 0);
    prometheus.wait_for(
        &format!(r#"traffic_counter_group_bytes_total{{{iface},group="lab4",direction="sent"}}"#),
        sent,
    );
    prometheus.wait_for(
        &format!(
            r#"traffic_counter_group_bytes_total{{{iface},group="lab4",direction="received"}}"#
        ),
        received,
    );
    let v6_group = "2001:db8::/48".parse::<ipnet::IpNet>().unwrap();
    let (sent6, _) = group_bytes(&corpus, |ip| v6_group.contains(&ip));
    prometheus.wait_for(
        &format!(r#"traffic_counter_group_bytes_total{{{iface},group="lab6",direction="sent"}}"#),
        sent6,
    );
    prometheus.wait_for(
        &format!(r#"traffic_counter_filter_info{{{iface},kind="ebpf"}}"#),
        1,
    );
    // Exactly three talkers are exported (of six), two directions each.
    let talkers = prometheus.poll(
        &format!("traffic_counter_talker_bytes_total{{{iface}}}"),
        |r| r.len() == 6,
    );
    let ips: BTreeSet<String> = talkers
        .iter()
        .map(|(m, _)| m["ip"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ips.len(), 3, "{ips:?}");
    assert!(ips.contains(&top_ip.to_string()), "{ips:?}");
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait(Duration::from_secs(5)).0, 0);
}

#[test]
fn the_text_scrape_passes_promtool_and_accept_selects_openmetrics() {
    let lab = Lab::new("promtool");
    let corpus = corpus::standard();
    let run = monitor(&lab, &["--flows", "--group", "lab=198.18.0.0/15"]);
    lab.send(&corpus.frames);
    let want = format!(
        "traffic_counter_packets_total{{interface=\"tc0\"}} {}",
        corpus.packets
    );
    let text = scrape_until_contains(&lab.capture_ns, &want);

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; `make setup` installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // promtool's linter flags any metric name containing a type name, and the product's name
    // (hence every metric's prefix, traffic_counter_) contains "counter". That one finding is
    // inherent to the required names; anything else (a parse error, a counter without _total,
    // missing help, a non-snake-case name...) fails the test.
    let name_lint = |line: &str| {
        line.strip_suffix(" metric name should not include type 'counter'")
            .is_some_and(|name| name.starts_with("traffic_counter_") && !name.contains(' '))
    };
    let other: Vec<&str> = report.lines().filter(|l| !name_lint(l)).collect();
    assert!(
        other.is_empty(),
        "promtool found problems: {other:#?}\n{text}"
    );
    let expected_code = if report.trim().is_empty() { 0 } else { 3 };
    assert_eq!(checked.status.code(), Some(expected_code), "{report}");

    let plain = get(&lab.capture_ns, METRICS, "/metrics", None);
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(!plain.body.contains("# EOF"));
    assert!(
        plain
            .body
            .contains("# TYPE traffic_counter_packets_total counter\n")
    );

    let open = get(
        &lab.capture_ns,
        METRICS,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert_eq!(open.status, 200);
    assert_eq!(
        open.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(open.body.ends_with("# EOF\n"), "{}", open.body);
    assert!(
        open.body
            .contains("# TYPE traffic_counter_packets counter\n")
    );
    assert!(open.body.contains(&want));
    assert!(open.body.contains("# TYPE traffic_counter_build info\n"));
    // Both formats carry the same series.
    assert_eq!(series(&open.body).len(), series(&plain.body).len());

    let health = get(&lab.capture_ns, METRICS, "/healthz", None);
    assert_eq!(health.status, 200, "{}", health.body);
    assert!(health.body.starts_with("ok"), "{}", health.body);
    assert_eq!(get(&lab.capture_ns, METRICS, "/nope", None).status, 404);
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait(Duration::from_secs(5)).0, 0);
}

/// `count` UDP frames from distinct sources in 2001:db8::/32 (each its own /64).
fn v6_sources(count: u16) -> Vec<Frame> {
    let dst: IpAddr = "2001:db8:ffff::1".parse().unwrap();
    (0..count)
        .map(|i| {
            let src = IpAddr::from([0x2001, 0xdb8, 0x7000 | (i >> 8), i & 0xff, 0, 0, 0, 1]);
            Frame::ip(src, dst, L4::Udp(1024 + i, 9), 18)
        })
        .collect()
}

#[test]
fn a_random_source_flood_stays_within_the_series_budget() {
    const WORKERS: usize = 2;
    const TOP: usize = 20;
    const GROUPS: usize = 2;
    let limit = budget(WORKERS, TOP, GROUPS);
    assert_eq!(
        limit, 115,
        "the README states this figure for this configuration"
    );
    let lab = Lab::new("flood");
    let run = monitor(
        &lab,
        &[
            "--flows",
            "--max-talkers",
            "2000",
            "--max-flows",
            "2000",
            "--group",
            "v4=198.18.0.0/15",
            "--group",
            "v6=2001:db8::/32",
        ],
    );
    let v4 = corpus::many_sources(16_000);
    let v6 = v6_sources(4_000);
    let sent = v4.frames.len() + v6.len();
    let mut counts = Vec::new();
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            lab.send(&v4.frames);
            lab.send(&v6);
        });
        // Scrape throughout the flood: every scrape must stay within the budget.
        let until = Instant::now() + Duration::from_secs(30);
        while !sender.is_finished() && Instant::now() < until {
            let text = get(&lab.capture_ns, METRICS, "/metrics", None).body;
            counts.push(series(&text).len());
            assert!(
                series(&text).len() <= limit,
                "{}\n{text}",
                series(&text).len()
            );
            // Pacing, not waiting: a scrape every 100 ms samples the whole flood without
            // competing with it for the CPU.
            std::thread::sleep(Duration::from_millis(100));
        }
        sender.join().unwrap();
    });
    let text = scrape_until_contains(
        &lab.capture_ns,
        &format!("traffic_counter_packets_total{{interface=\"tc0\"}} {sent}"),
    );
    let n = series(&text).len();
    assert!(n <= limit, "{n} series > budget {limit}\n{text}");
    // Every place is taken: exactly TOP talkers, two metrics, two directions.
    let talker_series = text
        .lines()
        .filter(|l| l.starts_with("traffic_counter_talker_"))
        .count();
    assert_eq!(talker_series, 4 * TOP, "{text}");
    // The groups are exact although the talker table evicted most sources.
    assert!(
        sample(
            &text,
            r#"traffic_counter_evicted_total{interface="tc0",table="talkers"}"#
        )
        .unwrap()
            > 0.0
    );
    assert_eq!(
        sample(
            &text,
            r#"traffic_counter_group_packets_total{interface="tc0",group="v4",direction="sent"}"#
        ),
        Some(v4.frames.len() as f64)
    );
    assert_eq!(
        sample(
            &text,
            r#"traffic_counter_group_packets_total{interface="tc0",group="v6",direction="sent"}"#
        ),
        Some(v6.len() as f64)
    );
    assert!(!counts.is_empty());
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait(Duration::from_secs(5)).0, 0);
}

#[test]
fn a_busy_metrics_port_is_named_and_capture_does_not_start() {
    let lab = Lab::new("busy");
    let first = monitor(&lab, &[]);
    let out = lab
        .command_in_capture_ns(BIN)
        .args(["--headless", "-i", "tc0", "--metrics", METRICS])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("--metrics: listening on {METRICS}")) && err.contains("in use"),
        "{err}"
    );
    assert!(!err.contains("capturing on"), "{err}");
    first.signal(libc::SIGTERM);
    assert_eq!(first.wait(Duration::from_secs(5)).0, 0);
}

#[test]
fn group_and_top_mistakes_are_usage_errors_naming_the_flag() {
    for args in [
        &["--group", "a=198.18.0.0/15", "--group", "a=2001:db8::/32"][..],
        &["--group", "a=198.18.0.0/15,2001:db8::/129"][..],
        &["--metrics-top", "500"][..],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(args[args.len() - 2]), "{args:?}: {err}");
    }
    let out = Command::new(BIN)
        .args(["--group", "a=198.18.0.0/15", "--group", "a=2001:db8::/32"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("group name \"a\" is given twice"));
}
