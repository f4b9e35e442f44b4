//! Host and service names for what the tables show, as iftop gives them: reverse DNS for the
//! addresses on screen (and a snapshot file's top rows), service names for well-known ports.
//!
//! Nothing here runs on the capture path or the UI thread's draw: lookups happen on the
//! [`resolver`] thread, which publishes an immutable [`NameMap`]; the services database is
//! read once at start ([`services`]). The UI keeps what it shows in [`Naming`], which views,
//! the `/` filter and snapshot files read.

pub mod cache;
pub mod lookup;
pub mod resolver;
pub mod services;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

pub use self::resolver::Resolver;
pub use self::services::Services;

/// Names known for addresses: lowercase, printable, without the trailing dot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameMap(HashMap<IpAddr, Arc<str>>);

impl NameMap {
    /// The name of `ip`, if one is known.
    pub fn get(&self, ip: IpAddr) -> Option<&str> {
        self.0.get(&ip).map(AsRef::as_ref)
    }

    /// Addresses named.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no address is named.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(IpAddr, Arc<str>)> for NameMap {
    fn from_iter<I: IntoIterator<Item = (IpAddr, Arc<str>)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// The names a table shows: the resolver's latest host names and the services database,
/// each switched on or off (`n`, `N`).
#[derive(Clone, Debug, Default)]
pub struct Naming {
    hosts: Arc<NameMap>,
    services: Arc<Services>,
    /// Host names are looked up at all (not `-n`).
    pub dns: bool,
    /// Host names are shown in place of addresses.
    pub show_hosts: bool,
    /// Service names are shown in place of port numbers.
    pub show_services: bool,
}

impl Naming {
    /// Names as the command line asks: host names when `dns`, service names from `services`
    /// when given (not `-N`).
    pub fn new(dns: bool, services: Option<Services>) -> Self {
        Self {
            hosts: Arc::default(),
            dns,
            show_hosts: dns,
            show_services: services.is_some(),
            services: Arc::new(services.unwrap_or_default()),
        }
    }

    /// Takes the resolver's latest names.
    pub fn set_hosts(&mut self, hosts: Arc<NameMap>) {
        self.hosts = hosts;
    }

    /// Every host name known, shown or not (snapshot files carry them).
    pub fn hosts(&self) -> &NameMap {
        &self.hosts
    }

    /// The host name shown for `ip`, if names are on and one is known.
    pub fn host(&self, ip: IpAddr) -> Option<&str> {
        if self.show_hosts {
            self.hosts.get(ip)
        } else {
            None
        }
    }

    /// The service name shown for `port` under IP protocol `proto`, if port names are on
    /// and the database has one.
    pub fn service(&self, proto: u8, port: u16) -> Option<&str> {
        if self.show_services {
            self.services.name(proto, port)
        } else {
            None
        }
    }

    /// Shows host names or addresses (`n`); an error says why there are no names to show.
    pub fn toggle_hosts(&mut self) -> Result<(), &'static str> {
        if !self.dns {
            return Err("no host names: started with -n/--no-dns, or no resolver");
        }
        self.show_hosts = !self.show_hosts;
        Ok(())
    }

    /// Shows service names or port numbers (`N`); an error says why there are no names.
    pub fn toggle_services(&mut self) -> Result<(), &'static str> {
        if self.services.is_empty() {
            return Err("no service names: started with -N/--no-port-names, or no /etc/services");
        }
        self.show_services = !self.show_services;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_show_only_when_switched_on() {
        let ip: IpAddr = "198.18.0.1".parse().unwrap();
        let mut naming = Naming::new(true, Some(Services::parse("domain 53/udp\n")));
        let hosts: NameMap = [(ip, Arc::from("one.lab"))].into_iter().collect();
        naming.set_hosts(Arc::new(hosts));
        assert_eq!(naming.host(ip), Some("one.lab"));
        assert_eq!(naming.service(17, 53), Some("domain"));
        naming.show_hosts = false;
        naming.show_services = false;
        assert_eq!((naming.host(ip), naming.service(17, 53)), (None, None));
        assert_eq!(naming.hosts().get(ip), Some("one.lab"));
        assert_eq!(naming.toggle_hosts(), Ok(()));
        assert_eq!(naming.host(ip), Some("one.lab"));
        let mut off = Naming::new(false, None);
        assert!(!off.show_hosts && !off.show_services);
        assert!(off.toggle_hosts().is_err() && off.toggle_services().is_err());
        assert!(!off.show_hosts && !off.show_services);
    }
}
