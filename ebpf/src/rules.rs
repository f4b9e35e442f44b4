//! What the operator asked the filter to enforce: a VLAN list and CIDR allow/exclude lists.
//!
//! The parsers here back the `--vlan`, `--allow` and `--exclude` flags, so a bad item is
//! reported by clap with the flag's name and this message naming the item.

use std::collections::BTreeSet;
use std::str::FromStr;

use ipnet::IpNet;

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

/// Parses one prefix (`198.18.0.0/15`) or address (`2001:db8::1`), normalised.
pub fn parse_cidr(item: &str) -> Result<IpNet, String> {
    item.parse::<IpNet>()
        .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{item:?} is not an IPv4 or IPv6 prefix (e.g. 198.18.0.0/15)"))
}

/// Everything the filter enforces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterRules {
    /// The VLAN list; `None` lets every VLAN through.
    pub vlans: Option<VlanList>,
    /// Prefixes whose traffic (as source or destination) is rejected.
    pub exclude: Vec<IpNet>,
    /// When given, only traffic from or to these prefixes passes.
    pub allow: Option<Vec<IpNet>>,
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
        assert!("".parse::<CidrList>().is_err());
    }
}
