//! Real DNS for name tests: dnsmasq answering the PTR records a test gives it inside the
//! test's namespace and logging every query it receives, a server that never answers, and
//! the `/etc/netns/NS/resolv.conf` through which `ip netns exec NS` points a program's
//! resolver at either.

use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::netns::in_netns;
use crate::wait::{COUNT_DEADLINE, wait_for};

/// The reverse-lookup name of an address: `1.0.18.198.in-addr.arpa`, or 32 nibbles and
/// `ip6.arpa` for IPv6.
pub fn arpa(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::new();
            for byte in v6.octets().iter().rev() {
                let _ = write!(name, "{:x}.{:x}.", byte & 0xf, byte >> 4);
            }
            name + "ip6.arpa"
        }
    }
}

/// dnsmasq serving PTR records on one loopback address of a namespace, killed on drop.
pub struct Dnsmasq {
    child: Child,
    log: PathBuf,
}

impl Dnsmasq {
    /// Starts dnsmasq in `ns` on `listen` port 53 answering each `(address, name)` as a PTR
    /// record and NXDOMAIN for any other address (no upstream, no hosts file), logging
    /// queries to a file in
    /// `dir`; returns once it serves. Panics naming the package when dnsmasq is missing.
    pub fn start(ns: &str, listen: IpAddr, records: &[(IpAddr, &str)], dir: &Path) -> Self {
        let log = dir.join("dnsmasq.log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, "dnsmasq", "--keep-in-foreground"])
            .args(["--conf-file=/dev/null", "--no-resolv", "--no-hosts"])
            // Authoritative for reverse names: an address without a record is NXDOMAIN,
            // as a real reverse zone answers, not a refusal.
            .args(["--local=/in-addr.arpa/", "--local=/ip6.arpa/"])
            .arg(format!("--listen-address={listen}"))
            .args([
                "--bind-interfaces",
                "--port=53",
                "--user=root",
                "--group=root",
            ])
            .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
            .arg("--log-queries")
            .arg(format!("--log-facility={}", log.display()));
        for (ip, name) in records {
            cmd.arg(format!("--ptr-record={},{name}", arpa(*ip)));
        }
        assert!(
            Command::new("dnsmasq").arg("--version").output().is_ok(),
            "dnsmasq is missing: install the Debian package dnsmasq (make setup does)"
        );
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq starts");
        let server = Self { child, log };
        // dnsmasq logs "started" once its sockets are bound.
        wait_for(
            "dnsmasq to start",
            COUNT_DEADLINE,
            || server.log(),
            |log| log.contains("started, version"),
        )
        .unwrap();
        server
    }

    /// Everything dnsmasq logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The PTR queries received so far, as logged: `query[PTR] 1.0.18.198.in-addr.arpa from
    /// 127.0.0.1`.
    pub fn ptr_queries(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("query[PTR]"))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A DNS server that never answers: a UDP socket bound to port 53 of a loopback address in a
/// namespace that takes queries and replies to none.
pub struct Silent {
    socket: UdpSocket,
}

impl Silent {
    /// Binds `listen`:53 inside `ns`.
    pub fn bind(ns: &str, listen: IpAddr) -> Self {
        let socket = in_netns(ns, || UdpSocket::bind(SocketAddr::new(listen, 53)).unwrap());
        socket.set_nonblocking(true).unwrap();
        Self { socket }
    }

    /// Queries received since the last call (read and dropped, never answered).
    pub fn take_queries(&self) -> usize {
        let mut buf = [0u8; 2048];
        let mut n = 0;
        while self.socket.recv(&mut buf).is_ok() {
            n += 1;
        }
        n
    }
}

/// `/etc/netns/NS/resolv.conf`, which `ip netns exec NS` bind-mounts over `/etc/resolv.conf`
/// for the programs it runs; the directory is removed on drop.
pub struct ResolvConf {
    dir: PathBuf,
}

impl ResolvConf {
    /// Points namespace `ns`'s resolver at `server` alone.
    pub fn nameserver(ns: &str, server: IpAddr) -> Self {
        let dir = Path::new("/etc/netns").join(ns);
        fs::create_dir_all(&dir).unwrap();
        let conf = Self { dir };
        fs::write(
            conf.dir.join("resolv.conf"),
            format!("nameserver {server}\n"),
        )
        .unwrap();
        conf
    }
}

impl Drop for ResolvConf {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arpa_names() {
        assert_eq!(
            arpa("198.18.0.1".parse().unwrap()),
            "1.0.18.198.in-addr.arpa"
        );
        assert_eq!(
            arpa("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }
}
