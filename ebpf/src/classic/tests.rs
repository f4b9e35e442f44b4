use super::*;
use crate::rules::{CidrList, VlanList};

fn rules(vlans: Option<&str>, exclude: &str, allow: Option<&str>) -> FilterRules {
    let list = |s: &str| {
        if s.is_empty() {
            Vec::new()
        } else {
            s.parse::<CidrList>().unwrap().0
        }
    };
    FilterRules {
        vlans: vlans.map(|v| v.parse::<VlanList>().unwrap()),
        exclude: list(exclude),
        allow: allow.map(list),
    }
}

#[test]
fn prefix_words_mask_what_the_prefix_fixes() {
    let net = |s: &str| s.parse::<IpNet>().unwrap();
    assert_eq!(
        prefix_words(&net("198.18.0.0/15")),
        vec![(0xc612_0000, 0xfffe_0000)]
    );
    assert_eq!(prefix_words(&net("0.0.0.0/0")), vec![]);
    assert_eq!(
        prefix_words(&net("2001:db8:5::/48")),
        vec![(0x2001_0db8, u32::MAX), (0x0005_0000, 0xffff_0000)]
    );
    assert_eq!(prefix_words(&net("2001:db8::1/128")).len(), 4);
}

#[test]
fn every_jump_lands_inside_the_program() {
    let r = rules(
        Some("100,200,untagged"),
        "198.18.5.0/24,2001:db8:5::/48",
        Some("198.18.0.0/16,2001:db8::/32"),
    );
    let prog = generate(&r).unwrap();
    for (i, insn) in prog.iter().enumerate() {
        let class = insn.code & 0x07;
        if class == 0x05 {
            let reach = if insn.code == JMP_JA {
                insn.k as usize
            } else {
                usize::from(insn.jt.max(insn.jf))
            };
            assert!(i + 1 + reach < prog.len(), "insn {i} jumps out: {insn:?}");
        }
    }
    assert_eq!(prog.last().map(|i| i.code), Some(RET_K));
}

#[test]
fn too_many_prefixes_is_a_clear_error() {
    let many: Vec<String> = (0..600).map(|i| format!("2001:db8:{i:x}::/48")).collect();
    let r = rules(None, &many.join(","), None);
    let err = ClassicFilter::new(&r).err().unwrap();
    assert!(err.to_string().contains("4096"), "{err}");
    assert!(ClassicFilter::new(&rules(None, "", None)).unwrap().len() < 40);
}

/// The verdict of the program for `rules` on `frame`, run in the interpreter.
fn passes(rules: &FilterRules, frame: &[u8], offloaded_tci: Option<u16>) -> bool {
    let program = generate(rules).unwrap();
    let input = interpret::Input {
        bytes: frame,
        offloaded_tci,
    };
    interpret::run(&program, input).unwrap() != 0
}

fn udp(src: &str, dst: &str) -> Vec<u8> {
    let ip = |s: &str| s.parse().unwrap();
    testlab::Frame::ip(ip(src), ip(dst), testlab::L4::Udp(1, 2), 4).bytes
}

#[test]
fn mapped_addresses_meet_the_ipv4_rules() {
    let r = rules(
        None,
        "198.18.5.0/24,::ffff:198.19.7.0/120",
        Some("198.18.0.0/16,2001:db8:1::/48"),
    );
    for (src, dst, pass) in [
        ("::ffff:198.18.5.1", "2001:db8:1::1", false),
        ("2001:db8:1::2", "::ffff:198.18.5.9", false),
        ("::ffff:198.18.1.1", "::ffff:198.18.2.2", true),
        ("::ffff:198.19.1.1", "2001:db8:2::1", false),
        ("198.19.7.1", "198.18.0.1", false),
        ("198.18.1.1", "198.18.2.2", true),
        ("2001:db8:1::5", "2001:db8:2::5", true),
        // Not mapped: IPv4-compatible, and one bit off the mapped prefix.
        ("::198.18.1.1", "2001:db8:2::5", false),
        ("::fffe:c612:101", "2001:db8:1::5", true),
    ] {
        assert_eq!(passes(&r, &udp(src, dst), None), pass, "{src} -> {dst}");
    }
    // An IPv6 rule shorter than /96 does not match mapped addresses.
    let wide = rules(None, "::/0", None);
    assert!(passes(
        &wide,
        &udp("::ffff:198.18.1.1", "::ffff:198.18.2.2"),
        None
    ));
    assert!(!passes(
        &wide,
        &udp("2001:db8::1", "::ffff:198.18.2.2"),
        None
    ));
    assert!(passes(&wide, &udp("198.18.1.1", "198.18.2.2"), None));
}

#[test]
fn an_empty_allow_list_passes_what_the_other_checks_pass() {
    let r = rules(None, "198.18.9.0/24", Some(""));
    assert!(passes(&r, &udp("198.18.1.1", "198.18.2.2"), None));
    assert!(passes(&r, &udp("2001:db8::1", "2001:db8::2"), None));
    assert!(!passes(&r, &udp("198.18.9.1", "198.18.2.2"), None));
}

#[test]
fn the_interpreter_drops_on_a_short_load_and_refuses_unknown_code() {
    let frame = udp("198.18.1.1", "198.18.2.2");
    let load = |k| [sock_filter(LD_W_ABS, 0, 0, k), sock_filter(RET_K, 0, 0, 1)];
    let input = interpret::Input {
        bytes: &frame,
        offloaded_tci: Some(0x2064),
    };
    assert_eq!(interpret::run(&load(frame.len() as u32 - 4), input), Ok(1));
    assert_eq!(interpret::run(&load(frame.len() as u32 - 3), input), Ok(0));
    let vlan = [
        sock_filter(LD_W_ABS, 0, 0, SKF_AD_OFF + SKF_AD_VLAN_TAG),
        sock_filter(ALU_AND_K, 0, 0, 0x0fff),
        sock_filter(JMP_JEQ_K, 0, 1, 100),
        sock_filter(RET_K, 0, 0, 7),
        sock_filter(RET_K, 0, 0, 0),
    ];
    assert_eq!(interpret::run(&vlan, input), Ok(7));
    let bad = [sock_filter(0x61, 0, 0, 0)];
    assert_eq!(
        interpret::run(&bad, input),
        Err(interpret::Fault::Opcode { at: 0, code: 0x61 })
    );
    let falls_off = [sock_filter(LDX_IMM, 0, 0, 0)];
    assert!(matches!(
        interpret::run(&falls_off, input),
        Err(interpret::Fault::OutOfProgram { .. })
    ));
}
