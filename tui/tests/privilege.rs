//! Privileged end-to-end tests of least privilege and hostile conditions: the real binary, in
//! fresh network namespaces, drops to `--user nobody` or to the user that ran `sudo` (real
//! sudo), keeps counting exactly, writes private files and still excludes live; it refuses a
//! fanout group someone else holds; and headless mode survives a closed stdout and SIGHUP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

#[path = "support/corpus_json.rs"]
mod corpus_json;

use serde_json::Value;
use testlab::corpus::{self, Corpus};
use testlab::process::Running;
use testlab::scratch::read_no_follow;
use testlab::tmux::Tmux;
use testlab::{COUNT_DEADLINE, Lab, ScratchDir, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_traffic-counter");
const NOBODY: u32 = 65534;

/// The fields of `/proc/PID/task/TID/status` a privilege drop must have set, for every thread.
fn assert_dropped(pid: u32, uid: u32, gid: u32) {
    assert_dropped_keeping_bounds(pid, uid, gid, false);
}

/// [`assert_dropped`]; with `setcap` (started as a user with file capabilities, by `setpriv
/// --clear-groups`) there are no supplementary groups, and the bounding set stays (no
/// `CAP_SETPCAP` to shrink it).
fn assert_dropped_keeping_bounds(pid: u32, uid: u32, gid: u32, setcap: bool) {
    let tasks: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|t| t.unwrap().path())
        .collect();
    // The main thread, two workers and the aggregator at least: the drop covers all of them.
    assert!(tasks.len() >= 4, "{tasks:?}");
    for task in tasks {
        let status = std::fs::read_to_string(task.join("status")).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .unwrap_or_else(|| panic!("no {name} in {status}"))
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(field("Uid"), vec![uid.to_string(); 4], "{}", task.display());
        assert_eq!(field("Gid"), vec![gid.to_string(); 4], "{}", task.display());
        let groups = if setcap {
            vec![]
        } else {
            vec![gid.to_string()]
        };
        assert_eq!(field("Groups"), groups, "{}", task.display());
        for caps in ["CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"] {
            if caps == "CapBnd" && setcap {
                continue;
            }
            assert_eq!(
                field(caps),
                ["0000000000000000"],
                "{caps} of {}",
                task.display()
            );
        }
        assert_eq!(field("NoNewPrivs"), ["1"], "{}", task.display());
    }
}

/// The pid of the traffic-counter process `pid` is or has as its only child (under sudo).
fn binary_pid(pid: u32) -> u32 {
    let comm = |p: u32| std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
    if comm(pid).starts_with("traffic-counte") {
        return pid;
    }
    wait_for(
        "the binary as sudo's child",
        COUNT_DEADLINE,
        || {
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
                .find(|&c| comm(c).starts_with("traffic-counte"))
        },
        Option::is_some,
    )
    .unwrap()
    .unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&read_no_follow(path).expect("snapshot file exists")).expect("valid JSON")
}

/// Waits until the snapshot file at `path` counts `packets` IP packets.
fn wait_for_totals(path: &Path, packets: u64) -> Value {
    wait_for(
        &format!("{packets} packets in {}", path.display()),
        COUNT_DEADLINE,
        || {
            read_no_follow(path)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        },
        |doc| {
            doc.as_ref()
                .is_some_and(|d| d["totals"]["packets"] == packets)
        },
    )
    .unwrap()
    .unwrap()
}

/// The corpus's exact counts, per talker too, under the eBPF filter.
fn assert_corpus(doc: &Value, corpus: &Corpus) {
    assert_eq!(doc["filter"]["kind"], "ebpf");
    assert_eq!(doc["totals"]["packets"], corpus.packets);
    assert_eq!(doc["totals"]["bytes"], corpus.bytes);
    assert_eq!(doc["filter"]["rejects"]["non_ip"], corpus.non_ip);
    assert_eq!(doc["parse_errors"]["truncated"], corpus.truncated);
    assert_eq!(doc["parse_errors"]["bad_header"], corpus.bad_header);
    corpus_json::assert_talkers(doc, corpus);
}

/// A file written by the program: mode 0600 (or `mode`), owned by `uid`, a regular file.
fn assert_private(path: &Path, uid: u32, mode: u32) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    assert!(meta.is_file(), "{}", path.display());
    assert_eq!(meta.mode() & 0o7777, mode, "{}", path.display());
    assert_eq!(meta.uid(), uid, "{}", path.display());
}

fn headless_args(snapshot: &Path) -> Vec<String> {
    headless_every(snapshot, "0.2")
}

fn headless_every(snapshot: &Path, interval: &str) -> Vec<String> {
    [
        "--headless",
        "-i",
        "tc0",
        "--workers",
        "2",
        "--interval",
        interval,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain(["--snapshot-file".to_owned(), snapshot.display().to_string()])
    .collect()
}

/// A sudoers file that lets `nobody` run the binary as root, bind-mounted over /etc/sudoers
/// in a mount namespace of the command's own: the system's sudo configuration is untouched.
fn through_sudo(lab: &Lab, scratch: &ScratchDir, args: &[String]) -> Command {
    let sudoers = scratch.join("sudoers");
    std::fs::write(
        &sudoers,
        format!("Defaults !use_pty, !syslog, !lecture\nnobody ALL=(root) NOPASSWD: {BIN}\n"),
    )
    .unwrap();
    std::fs::set_permissions(
        &sudoers,
        std::os::unix::fs::PermissionsExt::from_mode(0o440),
    )
    .unwrap();
    let mut cmd = lab.command_in_capture_ns("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"]);
    cmd.arg(format!(
        "mount --bind {} /etc/sudoers && exec setpriv --reuid={NOBODY} --regid={NOBODY} \
         --clear-groups sudo -n \"$@\"",
        sudoers.display()
    ));
    cmd.arg("sh").arg(BIN).args(args);
    cmd
}

#[test]
fn as_user_nobody_every_thread_drops_everything_and_counts_exactly() {
    let lab = Lab::new("privu");
    let scratch = ScratchDir::new("privu");
    let dir = scratch.subdir_owned_by("out", NOBODY, NOBODY);
    let snapshot = dir.join("snap.json");
    let mut cmd = lab.command_in_capture_ns(BIN);
    cmd.args(headless_args(&snapshot))
        .args(["--user", "nobody"]);
    let run = Running::start(cmd, "capturing on");
    counts_exactly_as_nobody(&lab, run, &snapshot);
}

/// With `run` started headless on `snapshot`: every thread of the binary is nobody with no
/// capability; the corpus counts exactly; SIGTERM (relayed by sudo when it is the parent)
/// ends it with 0 and a final file private to nobody.
fn counts_exactly_as_nobody(lab: &Lab, run: Running, snapshot: &Path) {
    assert_dropped(binary_pid(run.id()), NOBODY, NOBODY);
    let corpus = corpus::standard();
    lab.send(&corpus.frames);
    wait_for_totals(snapshot, corpus.packets);
    run.signal(libc::SIGTERM);
    let (code, _) = run.wait(COUNT_DEADLINE);
    assert_eq!(code, 0);
    assert_corpus(&read_json(snapshot), &corpus);
    assert_private(snapshot, NOBODY, 0o600);
}

#[test]
fn through_real_sudo_it_becomes_the_invoking_user() {
    let lab = Lab::new("privs");
    let scratch = ScratchDir::new("privs");
    let dir = scratch.subdir_owned_by("out", NOBODY, NOBODY);
    let snapshot = dir.join("snap.json");
    let run = Running::start(
        through_sudo(&lab, &scratch, &headless_args(&snapshot)),
        "capturing on",
    );
    counts_exactly_as_nobody(&lab, run, &snapshot);
}

#[test]
fn a_setcap_install_keeps_its_user_and_drops_the_file_capabilities() {
    let lab = Lab::new("privcap");
    let scratch = ScratchDir::new("privcap");
    let dir = scratch.subdir_owned_by("out", NOBODY, NOBODY);
    // The binary, copied where nobody can reach it, with the file capabilities of a setcap
    // install; nobody runs it with no capability of its own.
    let bin = scratch.join("traffic-counter");
    std::fs::copy(BIN, &bin).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let status = Command::new("setcap")
        .args(["cap_net_raw,cap_bpf+ep"])
        .arg(&bin)
        .status()
        .expect("setcap runs (libcap2-bin)");
    assert!(status.success());
    let snapshot = dir.join("snap.json");
    let mut cmd = lab.command_in_capture_ns("setpriv");
    cmd.args([
        format!("--reuid={NOBODY}"),
        format!("--regid={NOBODY}"),
        "--clear-groups".to_owned(),
    ])
    .arg(&bin)
    .args(headless_args(&snapshot))
    .args(["--filter", "ebpf"]);
    let run = Running::start(cmd, "capturing on");
    // setpriv execs the binary: same pid. Its bounding set stays (it holds no CAP_SETPCAP);
    // no_new_privs makes that moot.
    assert_dropped_keeping_bounds(binary_pid(run.id()), NOBODY, NOBODY, true);
    let corpus = corpus::standard();
    lab.send(&corpus.frames);
    wait_for_totals(&snapshot, corpus.packets);
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait(COUNT_DEADLINE).0, 0);
    assert_corpus(&read_json(&snapshot), &corpus);
    assert_private(&snapshot, NOBODY, 0o600);
}

#[test]
fn user_root_keeps_root_but_no_capabilities_and_file_group_gives_0640() {
    let lab = Lab::new("privr");
    let scratch = ScratchDir::new("privr");
    let snapshot = scratch.join("snap.json");
    let mut cmd = lab.command_in_capture_ns(BIN);
    cmd.args(headless_args(&snapshot))
        .args(["--user", "root", "--file-group", "root"])
        .env("SUDO_UID", NOBODY.to_string())
        .env("SUDO_GID", NOBODY.to_string());
    let run = Running::start(cmd, "capturing on");
    assert_dropped(binary_pid(run.id()), 0, 0);
    let corpus = corpus::standard();
    lab.send(&corpus.frames);
    wait_for_totals(&snapshot, corpus.packets);
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait(COUNT_DEADLINE).0, 0);
    assert_private(&snapshot, 0, 0o640);
    assert_eq!(std::fs::metadata(&snapshot).unwrap().gid(), 0);

    // A group the user is not in is refused before capture starts.
    let mut cmd = lab.command_in_capture_ns(BIN);
    cmd.args(headless_args(&snapshot))
        .args(["--user", "nobody", "--file-group", "root"]);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--file-group root: nobody is not a member"),
        "{stderr}"
    );
}

/// A packet socket on tc0 in fanout group `group` (hash mode), as another program would hold.
fn foreign_fanout_member(lab: &Lab, group: u16) -> OwnedFd {
    lab.in_capture_ns(|| {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: socket(2); the fd is owned right below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
        assert!(fd >= 0, "{}", std::io::Error::last_os_error());
        // SAFETY: a fresh fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
        // SAFETY: all-zero is a valid sockaddr_ll, filled in below.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto;
        // SAFETY: a NUL-terminated name.
        addr.sll_ifindex = unsafe { libc::if_nametoindex(c"tc0".as_ptr()) } as i32;
        // SAFETY: the address is a valid sockaddr_ll of the size given.
        let rc = unsafe {
            libc::bind(
                raw,
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        let arg: u32 = u32::from(group) | (libc::PACKET_FANOUT_HASH << 16);
        // SAFETY: the option value is a u32 of the size given.
        let rc = unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_PACKET,
                libc::PACKET_FANOUT,
                (&raw const arg).cast(),
                4,
            )
        };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        fd
    })
}

#[test]
fn a_fanout_group_someone_else_holds_is_refused_unless_joining_is_asked_for() {
    let lab = Lab::new("fanout");
    let scratch = ScratchDir::new("fanout");
    let snapshot = scratch.join("snap.json");
    let run_with = |extra: &[&str]| {
        let mut cmd = lab.command_in_capture_ns(BIN);
        cmd.args(headless_args(&snapshot))
            .args(["--fanout-group", "4242", "--duration", "0.5"])
            .args(extra);
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Nobody holds it: the capture creates it.
    let (code, stderr) = run_with(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    // Chosen for veth, which takes each frame in on the CPU that sent it.
    assert!(stderr.contains("fanout cpu group 4242"), "{stderr}");

    let other = foreign_fanout_member(&lab, 4242);
    let (code, stderr) = run_with(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("fanout group 4242 is already in use by 1 packet socket(s) of uid 0"),
        "{stderr}"
    );
    assert!(stderr.contains("--fanout-join"), "{stderr}");
    assert!(!stderr.contains("capturing on"), "{stderr}");

    // Joining takes the mode the member uses: the kernel refuses a member of another mode.
    let (code, stderr) = run_with(&["--fanout-join"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("fanout hash group 4242"), "{stderr}");
    drop(other);
}

/// Starts headless mode with its stdout piped; returns the child and its stderr lines.
fn spawn_piped(cmd: &mut Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

fn wait_line(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    wait_for(
        &format!("a stderr line with {needle:?}"),
        COUNT_DEADLINE,
        || lines.try_recv().ok(),
        |line| line.as_ref().is_some_and(|l| l.contains(needle)),
    )
    .unwrap()
    .unwrap()
}

fn exit_code(mut child: Child) -> Option<i32> {
    wait_for(
        "the process to exit",
        COUNT_DEADLINE,
        || child.try_wait().unwrap(),
        Option::is_some,
    )
    .unwrap()
    .unwrap()
    .code()
}

#[test]
fn headless_outlives_a_closed_stdout_and_still_writes_the_final_snapshot() {
    let lab = Lab::new("epipe");
    let scratch = ScratchDir::new("epipe");
    let snapshot = scratch.join("snap.json");
    let mut cmd = lab.command_in_capture_ns(BIN);
    cmd.args(headless_args(&snapshot));
    let (mut child, lines) = spawn_piped(&mut cmd);
    wait_line(&lines, "capturing on");
    // `| head -1`: read one summary line, then close the pipe.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("pkts"), "{first}");
    drop(stdout);
    wait_line(&lines, "standard output");
    let corpus = corpus::standard();
    lab.send(&corpus.frames);
    wait_for_totals(&snapshot, corpus.packets);
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert_eq!(exit_code(child), Some(0));
    assert_corpus(&read_json(&snapshot), &corpus);
}

#[test]
fn sighup_stops_headless_like_sigterm_with_a_final_snapshot() {
    let lab = Lab::new("hup");
    let scratch = ScratchDir::new("hup");
    let snapshot = scratch.join("snap.json");
    // A long interval: only the final write can have the counts; the exporter says when
    // capture has counted them.
    let mut cmd = lab.command_in_capture_ns(BIN);
    cmd.args(headless_every(&snapshot, "3600"))
        .args(["--metrics", "127.0.0.1:9848"]);
    let (child, lines) = spawn_piped(&mut cmd);
    wait_line(&lines, "capturing on");
    let corpus = corpus::standard();
    lab.send(&corpus.frames);
    let counted = format!(
        "traffic_counter_packets_total{{interface=\"tc0\"}} {}\n",
        corpus.packets
    );
    wait_for(
        "the exporter to count the corpus",
        COUNT_DEADLINE,
        || testlab::http::get(&lab.capture_ns, "127.0.0.1:9848", "/metrics", None).body,
        |body| body.contains(&counted),
    )
    .unwrap();
    assert!(!snapshot.exists());
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGHUP) }, 0);
    assert_eq!(exit_code(child), Some(0));
    assert_corpus(&read_json(&snapshot), &corpus);
}

/// The pid of the pane's shell.
fn pane_pid(tmux: &Tmux) -> u32 {
    tmux.run(&["display-message", "-p", "-t", "ui", "#{pane_pid}"])
        .trim()
        .parse()
        .unwrap()
}

/// `cmd` as one line for `sh`, each word single-quoted.
fn shell_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|w| format!("'{}'", w.to_string_lossy().replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The value of the metric line starting with `series` in an exposition.
fn metric(body: &str, series: &str) -> Option<u64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// The UI running as `nobody` in tmux, `how` it got there ("user": `--user nobody`; "sudo":
/// real sudo run by nobody), with its output directory.
struct NobodyUi {
    lab: Lab,
    dir: PathBuf,
    exit_file: PathBuf,
    tmux: Tmux,
    _scratch: ScratchDir,
}

impl NobodyUi {
    fn start(how: &str) -> Self {
        let lab = Lab::new(&format!("privui{how}"));
        let scratch = ScratchDir::new("privui");
        let dir = scratch.subdir_owned_by("out", NOBODY, NOBODY);
        let exit_file = scratch.join("exit-status");
        let args: Vec<String> = [
            "-i",
            "tc0",
            "--workers",
            "2",
            "--tick",
            "200",
            "--metrics",
            "127.0.0.1:9848",
            "--snapshot-dir",
            &dir.display().to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let cmd = if how == "user" {
            let mut cmd = lab.command_in_capture_ns(BIN);
            cmd.args(&args).args(["--user", "nobody"]);
            cmd
        } else {
            through_sudo(&lab, &scratch, &args)
        };
        let tmux = Tmux::start(
            &format!(
                "{}; echo $? > '{}'; sleep 30",
                shell_line(&cmd),
                exit_file.display()
            ),
            (120, 30),
        );
        tmux.wait_for("the header", |s| s.contains("traffic-counter  tc0"));
        Self {
            lab,
            dir,
            exit_file,
            tmux,
            _scratch: scratch,
        }
    }

    /// The binary's pid: the pane shell's child, or sudo's child under it.
    fn binary_pid(&self) -> u32 {
        let shell = pane_pid(&self.tmux);
        let child = wait_for(
            "the pane's command",
            COUNT_DEADLINE,
            || {
                std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .next()
                    .and_then(|c| c.parse::<u32>().ok())
            },
            Option::is_some,
        )
        .unwrap()
        .unwrap();
        binary_pid(child)
    }

    /// Selects `ip`'s row and presses `x`: the exclude goes through the eBPF map fd opened
    /// before the drop.
    fn exclude(&self, ip: std::net::IpAddr, screen: &str) {
        let row = screen
            .lines()
            .skip_while(|l| !l.starts_with("Address"))
            .skip(1)
            .position(|l| l.starts_with(&format!("{ip} ")))
            .unwrap_or_else(|| panic!("no row for {ip} in\n{screen}"));
        for _ in 0..row {
            self.tmux.keys(&["j"]);
        }
        self.tmux.keys(&["x"]);
        self.tmux
            .wait_for("the exclude", |s| s.contains(&format!("excluded {ip}")));
    }

    /// Presses `w` and returns the one file written, checked to be nobody's and 0600.
    fn write(&self) -> Value {
        self.tmux.keys(&["w"]);
        self.tmux.wait_for("the write", |s| s.contains("wrote "));
        let files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_private(&files[0], NOBODY, 0o600);
        read_json(&files[0])
    }

    /// Presses `q` and returns the exit status.
    fn quit(self) -> String {
        self.tmux.keys(&["q"]);
        wait_for(
            "the exit status",
            COUNT_DEADLINE,
            || std::fs::read_to_string(&self.exit_file).unwrap_or_default(),
            |t| t.ends_with('\n'),
        )
        .unwrap()
        .trim()
        .to_owned()
    }
}

/// Drops privileges, counts exactly, excludes 198.18.0.2 live with `x` (no malformed frame
/// names it, so every frame rejected for it is one of its IP packets), writes a private file
/// with `w`, and quits cleanly.
fn ui_as_nobody(how: &str) {
    let ui = NobodyUi::start(how);
    assert_dropped(ui.binary_pid(), NOBODY, NOBODY);
    let corpus = corpus::standard();
    ui.lab.send(&corpus.frames);
    let screen = ui.tmux.wait_for("every talker", |s| {
        s.contains(&format!("Talkers 1/{}", corpus.talkers.len()))
    });
    let ip: std::net::IpAddr = "198.18.0.2".parse().unwrap();
    ui.exclude(ip, &screen);

    // A second round: the excluded address's frames are rejected in the kernel, counted as
    // `excluded`, and everything else is counted again.
    let once = &corpus.talkers[&ip];
    let excluded = once.packets_sent + once.packets_received;
    ui.lab.send(&corpus.frames);
    let counted = 2 * corpus.packets - excluded;
    wait_for(
        &format!("{counted} packets and {excluded} excluded"),
        COUNT_DEADLINE,
        || testlab::http::get(&ui.lab.capture_ns, "127.0.0.1:9848", "/metrics", None).body,
        |b| {
            metric(b, r#"traffic_counter_packets_total{interface="tc0"}"#) == Some(counted)
                && metric(
                    b,
                    r#"traffic_counter_filter_rejects_total{interface="tc0",reason="excluded"}"#,
                ) == Some(excluded)
        },
    )
    .unwrap();

    // Per talker: both rounds, less the second round's flows with the excluded address.
    let mut want: std::collections::BTreeMap<_, _> = corpus
        .talkers
        .iter()
        .map(|(a, t)| (*a, (2 * t.packets_sent, 2 * t.packets_received)))
        .collect();
    for f in corpus.flows.iter().filter(|f| f.a.0 == ip || f.b.0 == ip) {
        let a = want.get_mut(&f.a.0).unwrap();
        a.0 -= f.packets_a_to_b;
        a.1 -= f.packets_b_to_a;
        let b = want.get_mut(&f.b.0).unwrap();
        b.0 -= f.packets_b_to_a;
        b.1 -= f.packets_a_to_b;
    }
    assert_eq!(want[&ip], (once.packets_sent, once.packets_received));
    let doc = ui.write();
    assert_eq!(doc["totals"]["packets"], counted);
    let talkers = doc["talkers"].as_array().unwrap();
    assert_eq!(talkers.len(), want.len());
    for t in talkers {
        let addr: std::net::IpAddr = t["ip"].as_str().unwrap().parse().unwrap();
        let got = (
            t["packets_sent"].as_u64().unwrap(),
            t["packets_received"].as_u64().unwrap(),
        );
        assert_eq!(got, want[&addr], "{addr}");
    }
    assert_eq!(ui.quit(), "0", "{how}");
}

#[test]
fn the_ui_as_user_nobody_writes_private_files_and_still_excludes_live() {
    ui_as_nobody("user");
}

#[test]
fn the_ui_through_sudo_writes_private_files_and_still_excludes_live() {
    ui_as_nobody("sudo");
}
