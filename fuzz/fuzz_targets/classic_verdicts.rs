//! Differential: random rules and frames; the generated classic-BPF program, run in the
//! interpreter (`classic::interpret`), must give the verdict of a reference built from the
//! frame parser and plain 128-bit prefix matching, as `docs/filter.md` states the rules:
//!
//! 1. VLAN list: the outermost tag (offloaded, else the first in-band one) listed, or the frame
//!    untagged with `untagged` listed;
//! 2. after up to two in-band tags, IPv4 or IPv6;
//! 3. neither address in an excluded prefix; 4. with a non-empty allow list, one address in it;
//!
//! a frame too short for a check passes; an IPv4-mapped IPv6 address is the IPv4 address.
//! Where the parser accepts the frame, its VLAN and addresses must be the reference's.
#![no_main]

use std::net::Ipv6Addr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use traffic_counter_capture::parse::{Addr, OffloadedTag, parse_frame};
use traffic_counter_ebpf::classic::interpret::{Input, run};
use traffic_counter_ebpf::classic::{ClassicError, generate};
use traffic_counter_ebpf::rules::canonical;
use traffic_counter_ebpf::{FilterRules, VlanList};

const VLAN_TPIDS: [u16; 3] = [0x8100, 0x88a8, 0x9100];

/// An address from a small pool around the prefixes, so rules and frames meet often.
fn address(u: &mut Unstructured<'_>, v6: bool) -> Result<[u8; 16]> {
    let (p, q): (u8, u8) = (*u.choose(&[0, 1, 5, 7, 255])?, u.arbitrary()?);
    let mut bytes = [0u8; 16];
    match (v6, u.int_in_range(0..=3u8)?) {
        (false, _) | (true, 0) => {
            // IPv4, or IPv4-mapped in an IPv6 header.
            bytes[10..12].copy_from_slice(&[0xff, 0xff]);
            bytes[12..].copy_from_slice(&[198, 18 + (p & 1), p, q]);
        }
        (true, 1) => {
            bytes[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            bytes[7] = p;
            bytes[15] = q;
        }
        (true, 2) => {
            // IPv4-compatible (::a.b.c.d) or one bit off the mapped prefix.
            bytes[11] = *u.choose(&[0, 0xfe, 0xff])?;
            bytes[12..].copy_from_slice(&[198, 18, p, q]);
        }
        (true, _) => u.fill_buffer(&mut bytes)?,
    }
    Ok(bytes)
}

/// A prefix around a pool address, in any of the forms an operator may write.
fn prefix(u: &mut Unstructured<'_>) -> Result<IpNet> {
    let v6 = u.arbitrary()?;
    let bytes = address(u, v6)?;
    let mapped = Ipv6Addr::from(bytes).to_ipv4_mapped();
    Ok(match (v6, mapped) {
        (false, Some(v4)) => {
            IpNet::V4(Ipv4Net::new(v4, u.int_in_range(0..=32)?).map_err(|_| arbitrary_error())?)
        }
        _ => IpNet::V6(
            Ipv6Net::new(Ipv6Addr::from(bytes), u.int_in_range(0..=128)?)
                .map_err(|_| arbitrary_error())?,
        ),
    })
}

fn arbitrary_error() -> libfuzzer_sys::arbitrary::Error {
    libfuzzer_sys::arbitrary::Error::IncorrectFormat
}

fn rules(u: &mut Unstructured<'_>) -> Result<FilterRules> {
    let vlans = if u.arbitrary()? {
        let mut list = VlanList {
            untagged: u.arbitrary()?,
            ..VlanList::default()
        };
        for _ in 0..u.int_in_range(0..=3)? {
            list.ids.insert(*u.choose(&[0, 1, 100, 200, 4095])?);
        }
        Some(list)
    } else {
        None
    };
    let list = |u: &mut Unstructured<'_>| -> Result<Vec<IpNet>> {
        (0..u.int_in_range(0..=4)?).map(|_| prefix(u)).collect()
    };
    let exclude = list(u)?;
    let allow = if u.arbitrary()? { Some(list(u)?) } else { None };
    Ok(FilterRules {
        vlans,
        exclude,
        allow,
    })
}

/// A frame: tags, an EtherType, an IP header with pool addresses, cut at a random length.
fn frame(u: &mut Unstructured<'_>) -> Result<(Vec<u8>, Option<u16>)> {
    let offloaded = if u.arbitrary()? {
        Some(u.arbitrary::<u16>()?)
    } else {
        None
    };
    let mut bytes = vec![0x02, 0, 0, 0, 0, 0xfe, 0x02, 0, 0, 0, 0, 0x01];
    for _ in 0..u.int_in_range(0..=3)? {
        bytes.extend_from_slice(&u.choose(&VLAN_TPIDS)?.to_be_bytes());
        bytes.extend_from_slice(&u.arbitrary::<u16>()?.to_be_bytes());
    }
    let ethertype = *u.choose(&[0x0800, 0x86dd, 0x0806, 0x8100, 0x0040])?;
    bytes.extend_from_slice(&u16::to_be_bytes(ethertype));
    let v6 = if ethertype == 0x0800 {
        false
    } else if ethertype == 0x86dd {
        true
    } else {
        u.arbitrary()?
    };
    if v6 {
        bytes.extend_from_slice(&[0x60, 0, 0, 0, 0, 8, 17, 64]);
        bytes.extend_from_slice(&address(u, true)?);
        bytes.extend_from_slice(&address(u, true)?);
    } else {
        bytes.extend_from_slice(&[0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0]);
        bytes.extend_from_slice(&address(u, false)?[12..]);
        bytes.extend_from_slice(&address(u, false)?[12..]);
    }
    bytes.extend_from_slice(&[0, 53, 0, 53, 0, 8, 0, 0]);
    let keep = u.int_in_range(0..=bytes.len())?;
    if u.ratio(1, 3)? {
        bytes.truncate(keep);
    }
    Ok((bytes, offloaded))
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

/// Whether `addr` lies in `net` in [`Addr`]'s 128-bit space, where IPv4 is `::ffff:a.b.c.d`:
/// an IPv4 prefix covers its mapped range, an IPv6 prefix only addresses that are not mapped.
fn covers(net: &IpNet, addr: Addr) -> bool {
    let (network, len, v4) = match canonical(*net) {
        IpNet::V4(n) => (
            Addr::v4(n.network().octets()).to_bits(),
            96 + u32::from(n.prefix_len()),
            true,
        ),
        IpNet::V6(n) => (n.network().to_bits(), u32::from(n.prefix_len()), false),
    };
    let mapped = Ipv6Addr::from_bits(addr.to_bits()).to_ipv4_mapped().is_some();
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    v4 == mapped && addr.to_bits() & mask == network & mask
}

/// The verdict the rules ask for, or where the reference disagrees with the parser, a panic.
fn reference(rules: &FilterRules, bytes: &[u8], offloaded: Option<u16>) -> bool {
    let Some(mut ethertype) = read_u16(bytes, 12) else {
        return true;
    };
    if let Some(list) = &rules.vlans {
        let vid = match offloaded {
            Some(tci) => Some(tci & 0x0fff),
            None if VLAN_TPIDS.contains(&ethertype) => match read_u16(bytes, 14) {
                Some(tci) => Some(tci & 0x0fff),
                None => return true,
            },
            None => None,
        };
        let listed = vid.map_or(list.untagged, |v| list.ids.contains(&v));
        if !listed {
            return false;
        }
    }
    let mut l3 = 14;
    for _ in 0..2 {
        if !VLAN_TPIDS.contains(&ethertype) {
            break;
        }
        let Some(next) = read_u16(bytes, l3 + 2) else {
            return true;
        };
        ethertype = next;
        l3 += 4;
    }
    let (src, dst) = match ethertype {
        0x0800 => match bytes.get(l3 + 12..l3 + 20) {
            Some(a) => (
                Addr::v4(a[..4].try_into().unwrap_or_default()),
                Addr::v4(a[4..].try_into().unwrap_or_default()),
            ),
            None => return true,
        },
        0x86dd => match bytes.get(l3 + 8..l3 + 40) {
            Some(a) => (
                Addr::v6(a[..16].try_into().unwrap_or_default()),
                Addr::v6(a[16..].try_into().unwrap_or_default()),
            ),
            None => return true,
        },
        _ => return false,
    };
    // Where the parser accepts the frame, it must see the same addresses and VLAN.
    let wire_len = bytes.len() as u32;
    if let Ok(packet) = parse_frame(bytes, wire_len, offloaded.map(|tci| OffloadedTag { tci })) {
        assert_eq!((packet.src, packet.dst), (src, dst), "parser addresses");
        let first_tag = VLAN_TPIDS
            .contains(&read_u16(bytes, 12).unwrap_or(0))
            .then(|| read_u16(bytes, 14).unwrap_or(0) & 0x0fff);
        assert_eq!(
            packet.vlan,
            offloaded.map(|t| t & 0x0fff).or(first_tag),
            "parser VLAN"
        );
    }
    let either = |nets: &[IpNet]| nets.iter().any(|n| covers(n, src) || covers(n, dst));
    if either(&rules.exclude) {
        return false;
    }
    rules.allow_list().is_none_or(either)
}

fuzz_target!(|input: &[u8]| {
    let mut u = Unstructured::new(input);
    let Ok(rules) = rules(&mut u) else {
        return;
    };
    let program = match generate(&rules) {
        Ok(program) => program,
        Err(ClassicError::TooLarge { .. }) => return,
        Err(other) => panic!("{other}"),
    };
    while let Ok((bytes, offloaded)) = frame(&mut u) {
        let verdict = run(
            &program,
            Input {
                bytes: &bytes,
                offloaded_tci: offloaded,
            },
        )
        .unwrap_or_else(|fault| panic!("{fault}"));
        let want = reference(&rules, &bytes, offloaded);
        assert_eq!(
            verdict != 0,
            want,
            "rules {rules:?}\nframe {bytes:02x?} offloaded {offloaded:?}"
        );
        if u.is_empty() {
            break;
        }
    }
});
