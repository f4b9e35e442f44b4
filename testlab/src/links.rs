//! Links beyond the lab's veth pair, and the kernel's own view of them, for tests of how
//! capture treats real-world links: tun devices (no link-layer header, any hardware type),
//! offload limits (GSO / BIG TCP sizes), link state, addresses and TCP segment counters.
//!
//! Everything acts in the calling thread's network namespace unless it names one, so call it
//! inside [`crate::netns::in_netns`] or [`crate::Lab::in_capture_ns`].

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

use crate::netns::run;
pub use crate::netns::{ip_in, sysctl_in};
use crate::wait::wait_for;

/// `TUNSETIFF`: `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// `TUNSETLINK`: `_IOW('T', 205, int)`.
const TUNSETLINK: libc::c_ulong = 0x4004_54cd;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
/// `IFLA_GSO_MAX_SIZE`.
const IFLA_GSO_MAX_SIZE: u16 = 41;
/// `IFLA_GSO_IPV4_MAX_SIZE` (kernel 6.3 and later; iproute2 6.1 cannot set it).
const IFLA_GSO_IPV4_MAX_SIZE: u16 = 63;

/// A tun device that lives as long as this value: packets written to it arrive on the
/// device as if received, starting at their IP header.
pub struct Tun {
    file: File,
}

impl Tun {
    /// Creates tun device `name` (no packet-information header) in the calling thread's
    /// namespace; `hardware_type` changes its `ARPHRD_*` type (`TUNSETLINK`) from
    /// `ARPHRD_NONE`. The device is down.
    pub fn create(name: &str, hardware_type: Option<u16>) -> Self {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .unwrap_or_else(|e| panic!("opening /dev/net/tun: {e}"));
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_flags = IFF_TUN | IFF_NO_PI;
        // SAFETY: `req` is a valid ifreq; TUNSETIFF reads it.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &raw mut req) };
        assert_eq!(
            rc,
            0,
            "TUNSETIFF {name}: {}",
            std::io::Error::last_os_error()
        );
        if let Some(kind) = hardware_type {
            // SAFETY: TUNSETLINK takes the type by value.
            let rc = unsafe {
                libc::ioctl(file.as_raw_fd(), TUNSETLINK as _, libc::c_ulong::from(kind))
            };
            assert_eq!(
                rc,
                0,
                "TUNSETLINK {kind}: {}",
                std::io::Error::last_os_error()
            );
        }
        Self { file }
    }

    /// Hands one IP packet to the device as received.
    pub fn inject(&mut self, packet: &[u8]) {
        let n = self
            .file
            .write(packet)
            .unwrap_or_else(|e| panic!("writing to the tun device: {e}"));
        assert_eq!(n, packet.len());
    }
}

/// Runs `ethtool ARGS` inside namespace `ns` (offload features: `-K DEV gro on`); fails naming
/// the Debian package when ethtool is missing (`make setup` installs it).
pub fn ethtool_in(ns: &str, args: &[&str]) {
    let found = Command::new("ethtool").arg("--version").output().is_ok();
    assert!(
        found,
        "ethtool is missing: install the Debian package ethtool (make setup)"
    );
    let mut full = vec!["netns", "exec", ns, "ethtool"];
    full.extend_from_slice(args);
    run("ip", &full);
}

/// Raises an interface's GSO limits (`IFLA_GSO_MAX_SIZE`, and `IFLA_GSO_IPV4_MAX_SIZE` for
/// IPv4 BIG TCP) through rtnetlink, in the calling thread's namespace.
pub fn set_gso_max_size(ifname: &str, bytes: u32) {
    let name = std::ffi::CString::new(ifname).unwrap();
    // SAFETY: `name` is a valid C string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    assert!(index > 0, "no interface {ifname}");
    // SAFETY: plain socket(2) call; owned below.
    let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    assert!(
        raw >= 0,
        "netlink socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a fresh descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut msg = Vec::with_capacity(48);
    msg.extend_from_slice(&48u32.to_ne_bytes()); // nlmsg_len: 16 + 16 + 2 * 8
    msg.extend_from_slice(&libc::RTM_NEWLINK.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id
    msg.extend_from_slice(&[0, 0, 0, 0]); // ifi_family, pad, ifi_type
    msg.extend_from_slice(&(index as i32).to_ne_bytes());
    msg.extend_from_slice(&[0; 8]); // ifi_flags, ifi_change
    for attr in [IFLA_GSO_MAX_SIZE, IFLA_GSO_IPV4_MAX_SIZE] {
        msg.extend_from_slice(&8u16.to_ne_bytes());
        msg.extend_from_slice(&attr.to_ne_bytes());
        msg.extend_from_slice(&bytes.to_ne_bytes());
    }
    // SAFETY: sockaddr_nl is plain data; zero addresses the kernel.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: the pointers and lengths describe `msg` and `kernel`.
    let sent = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&raw const kernel).cast(),
            size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    assert_eq!(sent, msg.len() as isize, "netlink send");
    let mut reply = [0u8; 1024];
    // SAFETY: the pointer and length describe `reply`.
    let n = unsafe { libc::recv(sock.as_raw_fd(), reply.as_mut_ptr().cast(), reply.len(), 0) };
    assert!(
        n >= 20,
        "netlink reply: {}",
        std::io::Error::last_os_error()
    );
    let error = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
    assert_eq!(error, 0, "RTM_NEWLINK on {ifname}: errno {}", -error);
}

/// Waits until interface `ifname` in the calling thread's namespace is up and running
/// (`IFF_RUNNING`: carrier and operational state), for at most `limit`.
pub fn wait_running(ifname: &str, limit: Duration) {
    let up_and_running = libc::IFF_UP | libc::IFF_RUNNING;
    wait_for(
        &format!("{ifname} to be up and running (flags {up_and_running:#x})"),
        limit,
        || interface_flags(ifname),
        |&flags| flags & up_and_running == up_and_running,
    )
    .unwrap();
}

fn interface_flags(ifname: &str) -> i32 {
    // SAFETY: plain socket(2) call; owned below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    assert!(raw >= 0);
    // SAFETY: a fresh descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut req = ifreq(ifname);
    // SAFETY: `req` is a valid ifreq the call fills in.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &raw mut req) };
    assert_eq!(
        rc,
        0,
        "SIOCGIFFLAGS {ifname}: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: SIOCGIFFLAGS filled in the flags.
    i32::from(unsafe { req.ifr_ifru.ifru_flags }) & 0xffff
}

/// TCP segments the calling thread's namespace has sent, new and retransmitted
/// (`OutSegs + RetransSegs` in `/proc/thread-self/net/snmp`; `OutSegs` leaves retransmissions
/// out).
pub fn tcp_segments_sent() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/net/snmp").unwrap();
    let mut lines = text.lines().filter(|l| l.starts_with("Tcp:"));
    let names: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let values: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let field = |name: &str| -> u64 {
        let i = names.iter().position(|n| *n == name).unwrap();
        values[i].parse().unwrap()
    };
    field("OutSegs") + field("RetransSegs")
}

fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain data; all-zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    assert!(name.len() < req.ifr_name.len());
    for (dst, &src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = src as libc::c_char;
    }
    req
}
