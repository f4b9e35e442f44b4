//! What the operator asked the filter to enforce: a VLAN list and CIDR allow/exclude lists.
//!
//! The parsers here back the `--vlan`, `--allow` and `--exclude` flags, so a bad item is
//! reported by clap with the flag's name and this message naming the item.

use std::collections::BTreeSet;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};

/// Outermost VLAN ids a frame may carry, and whether untagged frames may pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VlanList {
    /// Listed VLAN ids, 0 to 4095.
    pub ids: BTreeSet<u16>,
    /// Whether untagged frames pass.
    pub untagged: bool,
}

impl FromStr for VlanList {
    type Err = String;

    /// Parses `100,200,untagged`; ranges such as `100-110` are allowed.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut list = Self::default();
        for item in text.split(',').map(str::trim) {
            if item.eq_ignore_ascii_case("untagged") {
                list.untagged = true;
                continue;
            }
            let (lo, hi) = match item.split_once('-') {
                Some((lo, hi)) => (vlan_id(lo)?, vlan_id(hi)?),
                None => (vlan_id(item)?, vlan_id(item)?),
            };
            if lo > hi {
                return Err(format!("VLAN range {item:?} runs backwards"));
            }
            list.ids.extend(lo..=hi);
        }
        Ok(list)
    }
}

fn vlan_id(item: &str) -> Result<u16, String> {
    match item.trim().parse::<u16>() {
        Ok(id) if id < 4096 => Ok(id),
        _ => Err(format!(
            "{item:?} is not a VLAN id (0-4095) or \"untagged\""
        )),
    }
}

/// A list of IPv4/IPv6 prefixes, each normalised to its network address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CidrList(pub Vec<IpNet>);

impl FromStr for CidrList {
    type Err = String;

    /// Parses `198.18.0.0/15,2001:db8::/32`; a bare address is a host prefix.
    fn from_str(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .map(parse_cidr)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

/// Parses one prefix (`198.18.0.0/15`) or address (`2001:db8::1`), normalised by [`canonical`].
pub fn parse_cidr(item: &str) -> Result<IpNet, String> {
    item.parse::<IpNet>()
        .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
        .map(canonical)
        .map_err(|_| format!("{item:?} is not an IPv4 or IPv6 prefix (e.g. 198.18.0.0/15)"))
}

/// A prefix as both filters hold it: truncated to its network address, and an IPv6 prefix
/// inside `::ffff:0:0/96` turned into the IPv4 prefix it spans (`::ffff:198.18.0.0/111` is
/// `198.18.0.0/15`).
///
/// Both filters judge an IPv4-mapped address in an IPv6 header as the IPv4 address it
/// carries, as capture counts it, so an IPv4 prefix also matches `::ffff:` plus that prefix
/// and an IPv6 prefix never matches a mapped address; a mapped prefix is therefore an IPv4
/// rule. IPv6 prefixes shorter than /96 stay IPv6 rules.
pub fn canonical(net: IpNet) -> IpNet {
    match net.trunc() {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net.trunc(), IpNet::V4),
            None => IpNet::V6(v6),
        },
        other => other,
    }
}

/// Everything the filter enforces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterRules {
    /// The VLAN list; `None` lets every VLAN through.
    pub vlans: Option<VlanList>,
    /// Prefixes whose traffic (as source or destination) is rejected.
    pub exclude: Vec<IpNet>,
    /// When given and not empty, only traffic from or to these prefixes passes. An empty list
    /// restricts nothing, as `None` does: removing the last allowed prefix opens the filter
    /// rather than closing it to everything.
    pub allow: Option<Vec<IpNet>>,
}

impl FilterRules {
    /// The allow list when it restricts anything: `None` for no list and for an empty one.
    pub fn allow_list(&self) -> Option<&[IpNet]> {
        self.allow.as_deref().filter(|list| !list.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_lists() {
        let list: VlanList = "100, 200-202,untagged".parse().unwrap();
        assert_eq!(
            list.ids.iter().copied().collect::<Vec<_>>(),
            vec![100, 200, 201, 202]
        );
        assert!(list.untagged);
        for bad in ["4096", "x", "", "5-3", "-1"] {
            assert!(bad.parse::<VlanList>().is_err(), "{bad}");
        }
        let err = "100,abc".parse::<VlanList>().unwrap_err();
        assert!(err.contains("\"abc\""), "{err}");
    }

    #[test]
    fn cidr_lists_normalise() {
        let list: CidrList = "198.18.7.9/16, 2001:db8::1, 2001:db8:1:2::/48"
            .parse()
            .unwrap();
        let shown: Vec<String> = list.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["198.18.0.0/16", "2001:db8::1/128", "2001:db8:1::/48"]
        );
        let err = "198.18.0.0/33".parse::<CidrList>().unwrap_err();
        assert!(err.contains("198.18.0.0/33"), "{err}");
        let err = "::ffff:198.18.0.0/129".parse::<CidrList>().unwrap_err();
        assert!(err.contains("::ffff:198.18.0.0/129"), "{err}");
        assert!("".parse::<CidrList>().is_err());
    }

    #[test]
    fn mapped_prefixes_are_ipv4_rules() {
        let list: CidrList =
            "::ffff:198.18.7.9/111, ::ffff:198.19.0.1, ::ffff:0:0/96, ::ffff:0:0/95, ::/0, \
             2001:db8::ffff:0:0/96, ::198.18.0.1"
                .parse()
                .unwrap();
        let shown: Vec<String> = list.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "198.18.0.0/15",
                "198.19.0.1/32",
                "0.0.0.0/0",
                "::fffe:0:0/95",
                "::/0",
                "2001:db8::ffff:0:0/96",
                "::c612:1/128",
            ]
        );
    }

    #[test]
    fn an_empty_allow_list_restricts_nothing() {
        let mut rules = FilterRules::default();
        assert_eq!(rules.allow_list(), None);
        rules.allow = Some(Vec::new());
        assert_eq!(rules.allow_list(), None);
        rules.allow = Some(vec![parse_cidr("198.18.0.0/15").unwrap()]);
        assert_eq!(rules.allow_list().map(<[IpNet]>::len), Some(1));
    }
}
