//! Any text as `--vlan|--exclude|--allow`: parsing rejects it or the classic-BPF generator
//! either refuses it within the kernel's bound or emits a program whose every jump lands
//! inside it and which ends in a return.
#![no_main]

use libfuzzer_sys::fuzz_target;
use traffic_counter_ebpf::classic::{ClassicError, MAX_INSTRUCTIONS, generate};
use traffic_counter_ebpf::{CidrList, FilterRules, VlanList};

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    let mut parts = text.split('|');
    let (vlan, exclude, allow) = (parts.next(), parts.next(), parts.next());
    let Ok(vlans) = vlan
        .filter(|v| !v.is_empty())
        .map(str::parse::<VlanList>)
        .transpose()
    else {
        return;
    };
    let Ok(exclude) = exclude
        .filter(|v| !v.is_empty())
        .map(str::parse::<CidrList>)
        .transpose()
    else {
        return;
    };
    let Ok(allow) = allow
        .filter(|v| !v.is_empty())
        .map(str::parse::<CidrList>)
        .transpose()
    else {
        return;
    };
    let rules = FilterRules {
        vlans,
        exclude: exclude.map(|l| l.0).unwrap_or_default(),
        allow: allow.map(|l| l.0),
    };
    match generate(&rules) {
        Ok(program) => {
            assert!(!program.is_empty() && program.len() <= MAX_INSTRUCTIONS);
            for (i, insn) in program.iter().enumerate() {
                if insn.code & 0x07 == 0x05 {
                    let reach = if insn.code == 0x05 {
                        insn.k as usize
                    } else {
                        usize::from(insn.jt.max(insn.jf))
                    };
                    assert!(i + 1 + reach < program.len(), "jump out at {i}");
                }
            }
            assert_eq!(program.last().map(|i| i.code & 0x07), Some(0x06));
        }
        Err(ClassicError::TooLarge { needed }) => assert!(needed > MAX_INSTRUCTIONS),
        Err(other) => panic!("{other}"),
    }
});
