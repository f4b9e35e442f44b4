//! Interface facts: which exist, which one carries the default route, how fast a link is,
//! whether it is up and what kind of link-layer header its frames carry.
//!
//! Lookups go through the kernel in the calling thread's network namespace (`if_nametoindex`,
//! `ioctl`s on a socket that thread opens, `/proc/net/route`), so they agree with the sockets
//! that thread opens.

use std::ffi::CStr;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use serde::Serialize;

use crate::parse::LinkKind;

/// How capture treats a link, decided from its hardware type (`ARPHRD_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LinkInfo {
    /// Where a frame's parsing starts: at an Ethernet header, or at the IP header on links
    /// that have no link-layer header.
    #[serde(rename = "type")]
    pub kind: LinkKind,
    /// The kernel's hardware type (`/sys/class/net/IF/type`).
    pub arphrd: u16,
    /// Loopback hands every packet to packet sockets twice, going out and coming back in; the
    /// outgoing copy is skipped (as libpcap does), so each packet counts once.
    #[serde(skip)]
    pub skip_outgoing: bool,
}

impl Default for LinkInfo {
    fn default() -> Self {
        Self {
            kind: LinkKind::Ethernet,
            arphrd: libc::ARPHRD_ETHER,
            skip_outgoing: false,
        }
    }
}

/// `ARPHRD_SIT`: IPv6-in-IPv4 (sit) tunnels.
const ARPHRD_SIT: u16 = 776;
/// `ARPHRD_TUNNEL6`: IPv6 tunnels (ip6tnl).
const ARPHRD_TUNNEL6: u16 = 769;

impl LinkInfo {
    /// The treatment of a link of hardware type `arphrd`, or `None` for a type whose frames
    /// capture cannot parse (it refuses those rather than misparse them).
    pub fn for_arphrd(arphrd: u16) -> Option<Self> {
        let kind = match arphrd {
            libc::ARPHRD_ETHER | libc::ARPHRD_LOOPBACK => LinkKind::Ethernet,
            // No link-layer header: packet sockets see the IP header first.
            libc::ARPHRD_NONE | libc::ARPHRD_TUNNEL | ARPHRD_TUNNEL6 | ARPHRD_SIT => LinkKind::Ip,
            _ => return None,
        };
        Some(Self {
            kind,
            arphrd,
            skip_outgoing: arphrd == libc::ARPHRD_LOOPBACK,
        })
    }
}

/// An interface's hardware type and whether it is administratively up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkState {
    /// `ARPHRD_*`.
    pub arphrd: u16,
    /// `IFF_UP`.
    pub up: bool,
}

/// A socket to ask the kernel about interface `name` with `ioctl`s, and the request naming it.
struct Ask {
    sock: OwnedFd,
    req: libc::ifreq,
}

impl Ask {
    fn new(name: &str) -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the descriptor is owned below.
        let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let sock = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: ifreq is plain data; all-zero is valid.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        let bytes = name.as_bytes();
        if bytes.len() >= req.ifr_name.len() || bytes.contains(&0) {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
            *dst = src as libc::c_char;
        }
        Ok(Self { sock, req })
    }

    /// Issues `request`, which reads or writes only the request's union.
    fn ioctl(&mut self, request: libc::c_ulong) -> io::Result<()> {
        // SAFETY: `req` is a valid ifreq that outlives the call; the requests used here only
        // write into it, or into the buffer its data pointer names.
        let rc = unsafe { libc::ioctl(self.sock.as_raw_fd(), request as _, &raw mut self.req) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Issues the `SIOCETHTOOL` command whose buffer is `data` (its first word is the command).
    fn ethtool<T>(&mut self, data: &mut T) -> io::Result<()> {
        self.req.ifr_ifru.ifru_data = (&raw mut *data).cast();
        self.ioctl(libc::SIOCETHTOOL)
    }
}

/// Reads an interface's hardware type and up flag (`SIOCGIFHWADDR`, `SIOCGIFFLAGS`).
pub fn link_state(name: &str) -> io::Result<LinkState> {
    let mut ask = Ask::new(name)?;
    ask.ioctl(libc::SIOCGIFHWADDR)?;
    // SAFETY: SIOCGIFHWADDR filled in the hwaddr member of the union.
    let arphrd = unsafe { ask.req.ifr_ifru.ifru_hwaddr.sa_family };
    ask.ioctl(libc::SIOCGIFFLAGS)?;
    // SAFETY: SIOCGIFFLAGS filled in the flags member of the union.
    let flags = unsafe { ask.req.ifr_ifru.ifru_flags };
    Ok(LinkState {
        arphrd,
        up: i32::from(flags) & libc::IFF_UP != 0,
    })
}

/// `ETHTOOL_GDRVINFO`.
const ETHTOOL_GDRVINFO: u32 = 0x03;
/// `ETHTOOL_GCHANNELS`.
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// `struct ethtool_drvinfo`.
#[repr(C)]
#[derive(Default)]
struct DrvInfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// `struct ethtool_channels`: maxima, then current counts.
#[repr(C)]
#[derive(Default)]
struct Channels {
    cmd: u32,
    max: [u32; 4],
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// The name of an interface's driver (`ETHTOOL_GDRVINFO`: "veth", "virtio_net", "ixgbe"...),
/// or `None` when the device tells none (loopback).
pub fn driver(name: &str) -> Option<String> {
    let mut info = DrvInfo {
        cmd: ETHTOOL_GDRVINFO,
        ..DrvInfo::default()
    };
    Ask::new(name).ok()?.ethtool(&mut info).ok()?;
    let driver = CStr::from_bytes_until_nul(&info.driver).ok()?;
    Some(driver.to_string_lossy().into_owned()).filter(|d| !d.is_empty())
}

/// How many receive queues an interface uses (`ETHTOOL_GCHANNELS`: receive-only plus combined
/// channels), or `None` when the driver does not say.
pub fn rx_queues(name: &str) -> Option<u32> {
    let mut channels = Channels {
        cmd: ETHTOOL_GCHANNELS,
        ..Channels::default()
    };
    Ask::new(name).ok()?.ethtool(&mut channels).ok()?;
    Some(channels.rx_count + channels.combined_count).filter(|&n| n > 0)
}

/// Whether Receive Packet Steering spreads any of the interface's receive queues over more
/// than one CPU (a `rps_cpus` mask with two bits or more).
///
/// Read from sysfs, which shows the network namespace it was mounted in: only trusted when
/// its `ifindex` for `name` is `ifindex`, else `false`.
pub fn rps_spreads(name: &str, ifindex: u32) -> bool {
    let dir = format!("/sys/class/net/{name}");
    let same = fs::read_to_string(format!("{dir}/ifindex"))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        == Some(ifindex);
    if !same {
        return false;
    }
    let Ok(queues) = fs::read_dir(format!("{dir}/queues")) else {
        return false;
    };
    queues.flatten().any(|queue| {
        fs::read_to_string(queue.path().join("rps_cpus")).is_ok_and(|mask| {
            let cpus: u32 = mask
                .trim()
                .split(',')
                .filter_map(|word| u32::from_str_radix(word, 16).ok())
                .map(u32::count_ones)
                .sum();
            cpus >= 2
        })
    })
}

/// Names of every interface in this namespace, in index order.
pub fn interface_names() -> Vec<String> {
    let mut names = Vec::new();
    // SAFETY: if_nameindex returns null or an array ended by a zero entry, freed below.
    let list = unsafe { libc::if_nameindex() };
    if list.is_null() {
        return names;
    }
    let mut entry = list;
    // SAFETY: walks the array up to its terminating zero entry; names are C strings.
    unsafe {
        while (*entry).if_index != 0 && !(*entry).if_name.is_null() {
            names.push(
                CStr::from_ptr((*entry).if_name)
                    .to_string_lossy()
                    .into_owned(),
            );
            entry = entry.add(1);
        }
        libc::if_freenameindex(list);
    }
    names
}

/// Whether an interface with this index still exists.
pub fn index_exists(ifindex: u32) -> bool {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE bytes if_indextoname may write.
    !unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) }.is_null()
}

/// The link speed in Mbit/s from sysfs, or `None` when unknown (virtual links, link down).
pub fn link_speed_mbps(name: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/sys/class/net/{name}/speed")).ok()?;
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|&s| s > 0)
        .map(|s| s as u64)
}

/// The interface that carries the default IPv4 route, else the first non-loopback one that
/// is up.
pub fn default_interface() -> Option<String> {
    if let Ok(routes) = fs::read_to_string("/proc/net/route")
        && let Some(name) = default_route_interface(&routes)
    {
        return Some(name);
    }
    interface_names()
        .into_iter()
        .find(|name| name != "lo" && is_up(name))
}

fn default_route_interface(routes: &str) -> Option<String> {
    routes.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let name = fields.next()?;
        let destination = fields.next()?;
        let mask = fields.nth(5)?;
        (destination == "00000000" && mask == "00000000").then(|| name.to_owned())
    })
}

fn is_up(name: &str) -> bool {
    fs::read_to_string(format!("/sys/class/net/{name}/flags"))
        .ok()
        .and_then(|flags| u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).ok())
        .is_some_and(|flags| flags & libc::IFF_UP as u32 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_default_route() {
        let table = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
            eth1\t0012A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";
        assert_eq!(default_route_interface(table).as_deref(), Some("eth0"));
        assert_eq!(default_route_interface("Iface\tDestination\n"), None);
    }

    #[test]
    fn link_kinds_follow_the_hardware_type() {
        let ether = LinkInfo::for_arphrd(libc::ARPHRD_ETHER).unwrap();
        assert_eq!(
            (ether.kind, ether.skip_outgoing),
            (LinkKind::Ethernet, false)
        );
        let lo = LinkInfo::for_arphrd(libc::ARPHRD_LOOPBACK).unwrap();
        assert_eq!((lo.kind, lo.skip_outgoing), (LinkKind::Ethernet, true));
        for l3 in [libc::ARPHRD_NONE, libc::ARPHRD_TUNNEL, 769, 776] {
            assert_eq!(LinkInfo::for_arphrd(l3).unwrap().kind, LinkKind::Ip, "{l3}");
        }
        // IP GRE (its "link-layer header" is the outer IP and GRE headers), InfiniBand,
        // 802.11 radiotap, CAN: refused, never misparsed.
        for other in [778, 32, 803, 280] {
            assert_eq!(LinkInfo::for_arphrd(other), None, "{other}");
        }
    }

    #[test]
    fn loopback_state_is_read_from_the_kernel() {
        let lo = link_state("lo").unwrap();
        assert_eq!(lo.arphrd, libc::ARPHRD_LOOPBACK);
        assert!(link_state("nope-not-here0").is_err());
    }

    #[test]
    fn loopback_exists() {
        assert!(interface_names().iter().any(|n| n == "lo"));
        assert!(index_exists(1));
        assert_eq!(crate::ring::interface_index("lo"), Some(1));
        assert_eq!(link_speed_mbps("lo"), None);
    }
}
