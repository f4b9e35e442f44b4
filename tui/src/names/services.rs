//! Service names for ports, from the system's services database (`/etc/services`).
//!
//! The file is read once at start, never per draw, and bounded: at most [`MAX_FILE`] bytes,
//! names of at most [`MAX_SERVICE`] characters, one name per protocol and port (the first
//! listed, as `getservbyport` answers), lowercase as the `/` filter compares. Only ports
//! below [`EPHEMERAL`] get a name: above it a port is far more likely a client's ephemeral
//! port than the service the database happens to list there (Linux hands out 32768-60999 by
//! default), and naming it would mislead. A missing or unreadable file means numbers
//! everywhere.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use traffic_counter_capture::parse::proto;

/// Where the system keeps its services database.
pub const SYSTEM_PATH: &str = "/etc/services";
/// Most bytes read from the file (Debian's is 13 KB, IANA's full registry about 2 MB in a
/// different format).
pub const MAX_FILE: u64 = 1 << 20;
/// Longest service name kept.
pub const MAX_SERVICE: usize = 32;
/// Ports from here up are shown as numbers: the start of Linux's default ephemeral range.
pub const EPHEMERAL: u16 = 32768;

/// Port names per transport protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Services {
    names: HashMap<(u8, u16), Box<str>>,
}

impl Services {
    /// Reads the database at `path`; a file that cannot be read gives no names, and the
    /// error says why, for the status line.
    pub fn load(path: &Path) -> (Self, Option<String>) {
        let mut text = String::new();
        let read =
            std::fs::File::open(path).and_then(|f| f.take(MAX_FILE).read_to_string(&mut text));
        match read {
            Ok(_) => (Self::parse(&text), None),
            Err(err) => (
                Self::default(),
                Some(format!(
                    "no service names: reading {}: {err}",
                    path.display()
                )),
            ),
        }
    }

    /// Parses services-file text: `name port/protocol [aliases...] [# comment]` per line;
    /// lines that do not fit are skipped.
    pub fn parse(text: &str) -> Self {
        let mut names = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let (Some(name), Some(port_proto)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Some((port, protocol)) = port_proto.split_once('/') else {
                continue;
            };
            let (Ok(port), Some(number)) = (port.parse::<u16>(), protocol_number(protocol)) else {
                continue;
            };
            let printable = name.chars().all(|c| c.is_ascii_graphic());
            if port < EPHEMERAL && printable && name.len() <= MAX_SERVICE {
                names
                    .entry((number, port))
                    .or_insert_with(|| name.to_ascii_lowercase().into());
            }
        }
        Self { names }
    }

    /// The service name of `port` under protocol number `proto`, if the database has one.
    pub fn name(&self, proto: u8, port: u16) -> Option<&str> {
        self.names.get(&(proto, port)).map(AsRef::as_ref)
    }

    /// Ports named.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no port has a name.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The IP protocol number of a services-file protocol (`tcp`, `udp`, `sctp`...), spelled as
/// the capture library names protocols.
fn protocol_number(name: &str) -> Option<u8> {
    (0..=255u8).find(|&p| proto::name(p).is_some_and(|n| n.eq_ignore_ascii_case(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# Network services, Internet style
tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer
domain\t\t53/tcp\t\t\t\t# Domain Name Server
domain\t\t53/udp
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
www-alt\t\t80/tcp
https\t\t443/tcp
https\t\t443/udp\t\t\t\t# HTTP/3
sctp-thing\t9/sctp
fido\t\t60179/tcp\t\t\t# fidonet EMSI over TCP
broken\t\tnot-a-port/tcp
broken2\t\t70000/tcp
unknown\t\t7/ddp
lonely
esc\x1bname\t99/tcp
";

    #[test]
    fn parses_names_per_protocol_and_port() {
        let s = Services::parse(TEXT);
        assert_eq!(s.name(6, 53), Some("domain"));
        assert_eq!(s.name(17, 53), Some("domain"));
        assert_eq!(s.name(6, 443), Some("https"));
        assert_eq!(s.name(17, 443), Some("https"));
        assert_eq!(s.name(132, 9), Some("sctp-thing"));
        // The first name listed wins, as getservbyport answers.
        assert_eq!(s.name(6, 80), Some("http"));
        assert_eq!(s.name(17, 80), None);
        // Ephemeral-range ports, unknown protocols, bad lines and control characters: none.
        assert_eq!(s.name(6, 60179), None);
        assert_eq!(s.name(6, 99), None);
        assert_eq!(s.len(), 7);
    }

    #[test]
    fn a_missing_file_means_numbers_and_says_why() {
        let (s, why) = Services::load(Path::new("/proc/tc-no-such/services"));
        assert!(s.is_empty());
        assert!(why.unwrap().contains("/proc/tc-no-such/services"));
    }

    #[test]
    fn the_system_database_parses() {
        // Debian's netbase provides it (make setup installs it).
        let (s, why) = Services::load(Path::new(SYSTEM_PATH));
        assert_eq!(why, None);
        // Every services database names the DNS port.
        assert_eq!(s.name(17, 53), Some("domain"));
    }
}
