//! A two-namespace lab: a capture namespace and a generator namespace joined by a veth pair.
//!
//! Every lab gets fresh, uniquely named namespaces (so tests run in parallel), IPv6 is disabled
//! on both ends (so the kernel sends nothing of its own), and both namespaces are deleted on
//! drop, even when the test panics.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::Frame;

/// Interface name of the capture end, inside the capture namespace.
pub const CAPTURE_IF: &str = "tc0";
/// Interface name of the generator end, inside the generator namespace.
pub const GENERATOR_IF: &str = "tg0";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Two namespaces joined by a veth pair, removed on drop.
pub struct Lab {
    /// The namespace holding [`CAPTURE_IF`].
    pub capture_ns: String,
    /// The namespace holding [`GENERATOR_IF`].
    pub generator_ns: String,
}

impl Lab {
    /// Creates the namespaces and the veth pair, both ends up, with no addresses.
    ///
    /// Panics with a clear message when not run as root.
    pub fn new(tag: &str) -> Self {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(euid, 0, "privileged test: run as root (make test does)");
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{tag}-{}-{n}", std::process::id());
        let lab = Self {
            capture_ns: format!("tcc-{id}"),
            generator_ns: format!("tcg-{id}"),
        };
        ip(&["netns", "add", &lab.capture_ns]);
        ip(&["netns", "add", &lab.generator_ns]);
        ip(&[
            "link",
            "add",
            CAPTURE_IF,
            "netns",
            &lab.capture_ns,
            "type",
            "veth",
            "peer",
            "name",
            GENERATOR_IF,
            "netns",
            &lab.generator_ns,
        ]);
        for (ns, dev) in [
            (&lab.capture_ns, CAPTURE_IF),
            (&lab.generator_ns, GENERATOR_IF),
        ] {
            ip_in(ns, &["link", "set", "lo", "up"]);
            sysctl_in(ns, &format!("net.ipv6.conf.{dev}.disable_ipv6=1"));
            ip_in(ns, &["link", "set", dev, "up"]);
        }
        lab
    }

    /// Runs `f` on a thread that has entered the capture namespace; threads it spawns stay there.
    pub fn in_capture_ns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        in_netns(&self.capture_ns, f)
    }

    /// Sends `frames` out of the generator end, in order, each once.
    pub fn send(&self, frames: &[Frame]) {
        self.send_on(None, frames);
    }

    /// As [`Lab::send`], from a thread pinned to `cpu`: on veth the capture end takes each frame
    /// in on the CPU that sent it, which is what `cpu` fanout steers by.
    pub fn send_from_cpu(&self, cpu: usize, frames: &[Frame]) {
        self.send_on(Some(cpu), frames);
    }

    fn send_on(&self, cpu: Option<usize>, frames: &[Frame]) {
        in_netns(&self.generator_ns, || {
            if let Some(cpu) = cpu {
                pin_current_thread(cpu);
            }
            let sock = PacketSender::open(GENERATOR_IF);
            for (i, frame) in frames.iter().enumerate() {
                sock.send(&frame.bytes);
                // Pacing, not waiting: stay well inside the receiver's backlog (1000 frames)
                // so the kernel drops nothing; nothing observable says when it has drained.
                if i % 200 == 199 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
    }

    /// A command that runs `program` inside the capture namespace.
    pub fn command_in_capture_ns(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.capture_ns, program]);
        cmd
    }

    /// The capture interface's `rx_packets`: every frame the kernel has taken in on
    /// [`CAPTURE_IF`] since the lab was created, including any the kernel itself sent.
    ///
    /// On veth the counter moves when the frame is queued for receive, just before packet
    /// sockets see it; so it tells how many frames arrived, and a test that needs the program
    /// to have counted them still waits for the program's own totals (see [`crate::wait`]).
    pub fn capture_rx_packets(&self) -> u64 {
        rx_packets(&self.capture_ns, CAPTURE_IF)
    }

    /// Deletes the capture end of the veth pair (and with it the peer).
    pub fn delete_capture_interface(&self) {
        ip_in(&self.capture_ns, &["link", "del", CAPTURE_IF]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.capture_ns, &self.generator_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Pins the calling thread to `cpu`; panics if the CPU cannot be used.
fn pin_current_thread(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    assert!(
        cpu < 8 * size_of::<libc::cpu_set_t>(),
        "CPU {cpu} out of range"
    );
    // SAFETY: CPU_SET writes one bit inside `set`; cpu was checked against its size above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size given; 0 names the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const set) };
    assert_eq!(
        rc,
        0,
        "pinning to CPU {cpu}: {}",
        std::io::Error::last_os_error()
    );
}

/// Runs `f` on a fresh thread inside the named network namespace.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
                // SAFETY: the fd is a valid namespace file; setns only affects this thread.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// The `rx_packets` counter of interface `ifname` in namespace `ns`.
pub fn rx_packets(ns: &str, ifname: &str) -> u64 {
    link_counter(ns, ifname, LinkCounter::RxPackets)
}

/// A column of `/proc/net/dev`.
#[derive(Clone, Copy, Debug)]
pub enum LinkCounter {
    /// Frames the interface took in.
    RxPackets,
    /// Frames the driver dropped on their way out: on veth, those the peer's receive queue had
    /// no room for, which no packet socket on the peer ever sees.
    TxDropped,
}

impl LinkCounter {
    /// The column after the interface name: rx bytes, packets, errs, drop, fifo, frame,
    /// compressed, multicast, then tx bytes, packets, errs, drop, ...
    fn column(self) -> usize {
        match self {
            Self::RxPackets => 1,
            Self::TxDropped => 11,
        }
    }
}

/// One counter of interface `ifname` in namespace `ns`.
///
/// Read from `/proc/thread-self/net/dev` on a thread inside the namespace (`/sys/class/net`
/// shows the namespace sysfs was mounted in, not the caller's). Panics if there is no such
/// interface.
pub fn link_counter(ns: &str, ifname: &str, counter: LinkCounter) -> u64 {
    let table = in_netns(ns, || {
        std::fs::read_to_string("/proc/thread-self/net/dev")
            .unwrap_or_else(|e| panic!("reading net/dev in {ns}: {e}"))
    });
    table
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim() == ifname)
        .and_then(|(_, fields)| {
            fields
                .split_whitespace()
                .nth(counter.column())?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {counter:?} for {ifname} in {ns}:\n{table}"))
}

/// A raw `AF_PACKET` socket bound to one interface, for sending crafted frames.
pub struct PacketSender {
    fd: std::os::fd::OwnedFd,
}

impl PacketSender {
    /// Opens the socket on `ifname` in the calling thread's namespace.
    pub fn open(ifname: &str) -> Self {
        Self {
            fd: packet_socket(ifname, 0, |_| {}),
        }
    }

    /// Sends one frame, exactly as given.
    pub fn send(&self, frame: &[u8]) {
        // SAFETY: the pointer and length describe `frame`.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            n,
            frame.len() as isize,
            "send: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// A plain (ring-less) `AF_PACKET` socket that receives what its filter lets through.
pub struct PacketReceiver {
    fd: std::os::fd::OwnedFd,
}

impl PacketReceiver {
    /// Opens a socket on `ifname` in the calling thread's namespace, lets `attach` put a filter
    /// on it while it still receives nothing, then binds it.
    pub fn open(ifname: &str, attach: impl FnOnce(std::os::fd::BorrowedFd<'_>)) -> Self {
        Self {
            fd: packet_socket(ifname, libc::ETH_P_ALL as u16, attach),
        }
    }

    /// Frames waiting on the socket, without blocking.
    pub fn drain(&self) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            // SAFETY: the pointer and length describe `buf`.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                return frames;
            }
            frames.push(buf[..n as usize].to_vec());
        }
    }
}

/// An `AF_PACKET` raw socket bound to `ifname` for `protocol` (0: send only), with `attach`
/// run on it before the bind.
fn packet_socket(
    ifname: &str,
    protocol: u16,
    attach: impl FnOnce(std::os::fd::BorrowedFd<'_>),
) -> std::os::fd::OwnedFd {
    use std::os::fd::{AsFd, FromRawFd};
    // SAFETY: plain socket(2) call; protocol 0 receives nothing until bind.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    assert!(raw >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: `raw` is a fresh, owned descriptor.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
    attach(fd.as_fd());
    let name = std::ffi::CString::new(ifname).unwrap();
    // SAFETY: `name` is a valid C string.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    assert!(ifindex > 0, "no interface {ifname}");
    // SAFETY: sockaddr_ll is plain data; zero is valid.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol.to_be();
    addr.sll_ifindex = ifindex as i32;
    // SAFETY: the pointer and length describe `addr`.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
    fd
}

fn ip(args: &[&str]) {
    run("ip", args);
}

/// Runs `ip ARGS` inside namespace `ns`.
pub fn ip_in(ns: &str, args: &[&str]) {
    let mut full = vec!["netns", "exec", ns, "ip"];
    full.extend_from_slice(args);
    run("ip", &full);
}

/// Sets one sysctl inside namespace `ns`, e.g. `net.ipv4.tcp_sack=0`.
pub fn sysctl_in(ns: &str, setting: &str) {
    run("ip", &["netns", "exec", ns, "sysctl", "-qw", setting]);
}

/// Runs `program ARGS`, failing with its stderr when it fails.
pub(crate) fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait::{COUNT_DEADLINE, wait_for_count};

    #[test]
    fn capture_rx_packets_counts_frames_sent_across_the_pair() {
        let lab = Lab::new("rxcount");
        let before = lab.capture_rx_packets();
        let frames = crate::corpus::standard().frames;
        lab.send(&frames);
        let n = frames.len() as u64;
        let got = wait_for_count("rx_packets on tc0", COUNT_DEADLINE, before + n, || {
            lab.capture_rx_packets()
        })
        .unwrap();
        assert_eq!(got, before + n);
    }
}
