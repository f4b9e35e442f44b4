//! Interface facts: which exist, which one carries the default route, how fast a link is.
//!
//! Lookups go through the kernel in the calling thread's network namespace (`if_nametoindex`,
//! `/proc/net/route`), so they agree with the sockets that thread opens.

use std::ffi::CStr;
use std::fs;

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
    fn loopback_exists() {
        assert!(interface_names().iter().any(|n| n == "lo"));
        assert!(index_exists(1));
        assert_eq!(crate::ring::interface_index("lo"), Some(1));
        assert_eq!(link_speed_mbps("lo"), None);
    }
}
