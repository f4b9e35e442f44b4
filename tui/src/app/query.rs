//! The `/` filter: text that matches a substring of an address or of a host or service name
//! shown, a CIDR, a port or a protocol name. A row passes when any reading of the text
//! matches; checking a row allocates nothing.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use traffic_counter_capture::parse::proto;
use traffic_counter_capture::snapshot::{Flow, Talker};

use crate::names::Naming;

/// A parsed `/` filter: the text matches a substring of an address, a CIDR, a port or a
/// protocol name; a row passes when any reading of the text matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    text: String,
    cidr: Option<Prefix>,
    port: Option<u16>,
    proto: Option<u8>,
}

/// A CIDR as a family and a (network, mask) pair of words, so testing a row is two
/// instructions rather than `IpNet::contains` on an enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Prefix {
    v6: bool,
    network: u128,
    mask: u128,
}

impl Prefix {
    fn new(net: IpNet) -> Self {
        let (v6, bits, len, width) = match net {
            IpNet::V4(n) => (false, u128::from(n.network().to_bits()), n.prefix_len(), 32),
            IpNet::V6(n) => (true, n.network().to_bits(), n.prefix_len(), 128),
        };
        let host_bits = u32::from(width - len);
        let mask = if host_bits >= 128 {
            0
        } else {
            (u128::MAX << host_bits) & (u128::MAX >> (128 - u32::from(width)))
        };
        Self {
            v6,
            network: bits & mask,
            mask,
        }
    }

    fn contains(self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => !self.v6 && u128::from(v4.to_bits()) & self.mask == self.network,
            IpAddr::V6(v6) => self.v6 && v6.to_bits() & self.mask == self.network,
        }
    }
}

impl Query {
    /// Parses filter text; empty text matches everything.
    pub fn new(text: &str) -> Self {
        let text = text.trim().to_ascii_lowercase();
        let cidr = text
            .contains('/')
            .then(|| text.parse::<IpNet>().ok())
            .flatten()
            .map(Prefix::new);
        let port = text.parse::<u16>().ok();
        let proto = (0..=255u8).find(|&p| proto::name(p) == Some(text.as_str()));
        Self {
            text,
            cidr,
            port,
            proto,
        }
    }

    /// The text as typed (lowercased).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the filter is empty.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    fn address(&self, ip: IpAddr, names: &Naming) -> bool {
        if let Some(prefix) = self.cidr {
            return prefix.contains(ip);
        }
        let mut buf = StackText::default();
        let _ = write!(buf, "{ip}");
        buf.as_str().contains(self.text.as_str()) || self.named(names.host(ip))
    }

    /// Whether a name shown (names are kept lowercase) contains the text.
    fn named(&self, name: Option<&str>) -> bool {
        name.is_some_and(|n| n.contains(self.text.as_str()))
    }

    /// Whether a talker passes; `names` are the host names shown.
    pub fn talker(&self, t: &Talker, names: &Naming) -> bool {
        self.is_empty() || self.address(t.ip, names)
    }

    /// Whether a flow passes; `names` are the host and service names shown.
    pub fn flow(&self, f: &Flow, names: &Naming) -> bool {
        let service = |port: Option<u16>| port.and_then(|p| names.service(f.proto, p));
        self.is_empty()
            || self.address(f.a_ip, names)
            || self.address(f.b_ip, names)
            || self
                .port
                .is_some_and(|p| f.a_port == Some(p) || f.b_port == Some(p))
            || self.proto == Some(f.proto)
            || self.named(service(f.a_port))
            || self.named(service(f.b_port))
    }
}

/// A fixed buffer for formatting an address without allocating.
struct StackText {
    buf: [u8; 64],
    len: usize,
}

impl Default for StackText {
    fn default() -> Self {
        Self {
            buf: [0; 64],
            len: 0,
        }
    }
}

impl StackText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use std::sync::Arc;

    use traffic_counter_capture::snapshot::{Timestamp, WindowRates};

    use super::*;
    use crate::names::{NameMap, Services};

    fn talker(ip: &str) -> Talker {
        Talker {
            ip: ip.parse().unwrap(),
            packets_sent: 1,
            bytes_sent: 1,
            packets_received: 0,
            bytes_received: 0,
            first_seen: Timestamp(0),
            last_seen: Timestamp::from(SystemTime::UNIX_EPOCH),
            sent_bytes_per_sec: WindowRates::default(),
            received_bytes_per_sec: WindowRates::default(),
        }
    }

    #[test]
    fn queries_match_addresses_cidrs_ports_and_protocols() {
        let t4 = talker("198.18.0.2");
        let t6 = talker("2001:db8::7");
        let none = Naming::default();
        assert!(Query::new("").talker(&t4, &none));
        assert!(Query::new("0.2").talker(&t4, &none) && !Query::new("0.2").talker(&t6, &none));
        assert!(Query::new("198.18.0.0/24").talker(&t4, &none));
        assert!(!Query::new("198.18.1.0/24").talker(&t4, &none));
        assert!(
            Query::new("0.0.0.0/0").talker(&t4, &none)
                && !Query::new("0.0.0.0/0").talker(&t6, &none)
        );
        assert!(
            Query::new("::/0").talker(&t6, &none)
                && Query::new("2001:db8::7/128").talker(&t6, &none)
        );
        assert!(
            Query::new("198.18.0.2/32").talker(&t4, &none)
                && !Query::new("198.18.0.3/32").talker(&t4, &none)
        );
        assert!(
            Query::new("2001:db8::/33").talker(&t6, &none)
                && !Query::new("2001:db9::/32").talker(&t6, &none)
        );
        assert!(Query::new("DB8::7").talker(&t6, &none));
        let flow = flow();
        for text in ["udp", "53", "4000", "198.18.0.1", "198.18.0.0/30"] {
            assert!(Query::new(text).flow(&flow, &none), "{text}");
        }
        for text in ["tcp", "54", "198.18.0.9", "2001:db8::/32", "198.18.0.4/30"] {
            assert!(!Query::new(text).flow(&flow, &none), "{text}");
        }
    }

    #[test]
    fn queries_match_the_names_shown() {
        let ns1: IpAddr = "198.18.0.1".parse().unwrap();
        let mut names = Naming::new(true, Some(Services::parse("domain 53/udp\n")));
        let hosts: NameMap = [(ns1, Arc::from("ns1.lab.example"))].into_iter().collect();
        names.set_hosts(Arc::new(hosts));
        let (t, flow) = (talker("198.18.0.1"), flow());
        assert!(Query::new("NS1.lab").talker(&t, &names));
        assert!(!Query::new("ns2").talker(&t, &names));
        // The flow's responder is ns1, on the domain port.
        assert!(Query::new("lab.example").flow(&flow, &names));
        assert!(Query::new("domain").flow(&flow, &names));
        names.show_hosts = false;
        names.show_services = false;
        assert!(!Query::new("ns1").talker(&t, &names));
        assert!(!Query::new("lab.example").flow(&flow, &names));
        assert!(!Query::new("domain").flow(&flow, &names));
    }

    fn flow() -> Flow {
        Flow {
            proto: 17,
            a_ip: "198.18.0.2".parse().unwrap(),
            a_port: Some(4000),
            b_ip: "198.18.0.1".parse().unwrap(),
            b_port: Some(53),
            packets_a_to_b: 1,
            bytes_a_to_b: 1,
            packets_b_to_a: 0,
            bytes_b_to_a: 0,
            first_seen: Timestamp(0),
            last_seen: Timestamp(0),
            a_to_b_bytes_per_sec: WindowRates::default(),
            b_to_a_bytes_per_sec: WindowRates::default(),
        }
    }
}
