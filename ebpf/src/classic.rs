//! The classic-BPF fallback: the same verdicts as the eBPF program, generated from the rules,
//! for kernels or processes that cannot load eBPF (no `CAP_BPF`, old kernels).
//!
//! Classic BPF has no maps, so the lists are compiled into the program, which makes the
//! program's size grow with them; past the kernel's 4096-instruction bound generation fails
//! with a clear error. It cannot count its rejects either: the snapshot says "unknown".
//!
//! Reading past the end of a frame makes a classic program return 0 (drop), where the eBPF
//! program lets the frame through; so the generated code checks the frame length before every
//! read and passes frames too short to judge, exactly as the eBPF program does.

use std::os::fd::BorrowedFd;

use ipnet::IpNet;
use traffic_counter_capture::PacketFilter;
use traffic_counter_capture::filter::attach_classic;
use traffic_counter_capture::snapshot::{FilterKind, Rejects};

use crate::rules::{FilterRules, canonical};

#[cfg(any(test, feature = "interpreter"))]
pub mod interpret;

/// The kernel's limit on a classic program (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;
/// What a passing frame returns as generated: keep the whole frame (the kernel clamps to its
/// length); [`ClassicFilter::snapped`] turns it into the snap length.
const PASS: u32 = 0x0004_0000;
const REJECT: u32 = 0;
/// `SKF_AD_OFF`, the base of the ancillary-data pseudo offsets.
const SKF_AD_OFF: u32 = 0xffff_f000;
const SKF_AD_VLAN_TAG: u32 = 44;
const SKF_AD_VLAN_TAG_PRESENT: u32 = 48;

// Opcodes (linux/filter.h).
const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_W_IND: u16 = 0x40;
const LD_H_IND: u16 = 0x48;
const LD_W_LEN: u16 = 0x80;
const LDX_IMM: u16 = 0x01;
const ALU_ADD_K: u16 = 0x04;
const ALU_SUB_X: u16 = 0x1c;
const ALU_AND_K: u16 = 0x54;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;
const TAX: u16 = 0x07;
const TXA: u16 = 0x87;

/// Why a classic program could not be generated.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClassicError {
    /// A conditional jump would need to reach further than 255 instructions.
    #[error("internal error: a classic-BPF conditional jump at {at} reaches past 255")]
    JumpTooFar {
        /// The instruction's index.
        at: usize,
    },
    /// The lists need more instructions than the kernel accepts.
    #[error(
        "the classic-BPF fallback needs {needed} instructions for these lists, over the \
         kernel's {MAX_INSTRUCTIONS}; shorten --vlan/--allow/--exclude or use the eBPF filter"
    )]
    TooLarge {
        /// Instructions the program would need.
        needed: usize,
    },
}

/// A jump target inside the program being assembled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Label(usize);

#[derive(Clone, Copy, Debug)]
enum Target {
    Next,
    Skip(u8),
    To(Label),
}

#[derive(Clone, Copy, Debug)]
enum Insn {
    Plain(u16, u32),
    Jump(u16, u32, Target, Target),
    Always(Label),
}

/// A tiny assembler: instructions with labels, resolved to relative offsets at the end.
#[derive(Default)]
struct Asm {
    code: Vec<Insn>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    fn bind(&mut self, label: Label) {
        self.labels[label.0] = Some(self.code.len());
    }

    fn op(&mut self, code: u16, k: u32) {
        self.code.push(Insn::Plain(code, k));
    }

    fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.code.push(Insn::Jump(code, k, jt, jf));
    }

    fn goto(&mut self, label: Label) {
        self.code.push(Insn::Always(label));
    }

    /// Passes the frame unless at least `bytes` remain from offset X on.
    fn need(&mut self, bytes: u32) {
        self.op(LD_W_LEN, 0);
        self.op(ALU_SUB_X, 0);
        self.jump(JMP_JGE_K, bytes, Target::Skip(1), Target::Next);
        self.op(RET_K, PASS);
    }

    fn finish(self) -> Result<Vec<libc::sock_filter>, ClassicError> {
        if self.code.len() > MAX_INSTRUCTIONS {
            return Err(ClassicError::TooLarge {
                needed: self.code.len(),
            });
        }
        // Every label is bound after its uses, so targets are forward.
        let at = |label: Label| self.labels[label.0].unwrap_or(usize::MAX);
        let offset = |from: usize, target: Target| -> Result<u8, ClassicError> {
            match target {
                Target::Next => Ok(0),
                Target::Skip(n) => Ok(n),
                Target::To(label) => u8::try_from(at(label).saturating_sub(from + 1))
                    .map_err(|_| ClassicError::JumpTooFar { at: from }),
            }
        };
        self.code
            .iter()
            .enumerate()
            .map(|(i, insn)| {
                Ok(match *insn {
                    Insn::Plain(code, k) => sock_filter(code, 0, 0, k),
                    Insn::Jump(code, k, jt, jf) => {
                        sock_filter(code, offset(i, jt)?, offset(i, jf)?, k)
                    }
                    Insn::Always(label) => {
                        sock_filter(JMP_JA, 0, 0, at(label).saturating_sub(i + 1) as u32)
                    }
                })
            })
            .collect()
    }
}

fn sock_filter(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Generates the classic program for `rules`.
///
/// Register X holds the bytes of in-band VLAN tags skipped so far, so the `EtherType` is at
/// `X + 12` and the IP header at `X + 14`.
pub fn generate(rules: &FilterRules) -> Result<Vec<libc::sock_filter>, ClassicError> {
    let mut a = Asm::default();
    // A frame too short for an EtherType passes, as in the eBPF program.
    a.op(LDX_IMM, 0);
    a.need(14);
    if let Some(vlans) = &rules.vlans {
        vlan_check(
            &mut a,
            &vlans.ids.iter().copied().collect::<Vec<_>>(),
            vlans.untagged,
        );
    }
    // Skip up to two in-band tags.
    let ethertype_known = a.label();
    for _ in 0..2 {
        a.op(LD_H_IND, 12);
        a.jump(JMP_JEQ_K, 0x8100, Target::Skip(2), Target::Next);
        a.jump(JMP_JEQ_K, 0x88a8, Target::Skip(1), Target::Next);
        a.jump(JMP_JEQ_K, 0x9100, Target::Next, Target::To(ethertype_known));
        a.op(TXA, 0);
        a.op(ALU_ADD_K, 4);
        a.op(TAX, 0);
        a.need(14);
    }
    a.op(LD_H_IND, 12);
    a.bind(ethertype_known);
    let v6 = a.label();
    let v4 = a.label();
    a.jump(JMP_JEQ_K, 0x0800, Target::Next, Target::Skip(1));
    a.goto(v4);
    a.jump(JMP_JEQ_K, 0x86dd, Target::Next, Target::Skip(1));
    a.goto(v6);
    a.op(RET_K, REJECT); // non_ip
    let (v4_exclude, v6_exclude) = split(&rules.exclude);
    let allow = rules.allow_list().map(split);
    let v4_lists = Lists {
        exclude: &v4_exclude,
        allow: allow.as_ref().map(|(v4, _)| v4.as_slice()),
    };
    let v6_lists = Lists {
        exclude: &v6_exclude,
        allow: allow.as_ref().map(|(_, v6)| v6.as_slice()),
    };
    a.bind(v4);
    address_checks(&mut a, 34, [26, 30], v4_lists, None);
    a.bind(v6);
    address_checks(&mut a, 54, [22, 38], v6_lists, Some(v4_lists));
    a.finish()
}

fn vlan_check(a: &mut Asm, ids: &[u16], untagged: bool) {
    let inband = a.label();
    let check = a.label();
    let tag = a.label();
    let ok = a.label();
    a.op(LD_W_ABS, SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT);
    a.jump(JMP_JEQ_K, 0, Target::To(inband), Target::Next);
    a.op(LD_W_ABS, SKF_AD_OFF + SKF_AD_VLAN_TAG);
    a.goto(check);
    a.bind(inband);
    a.op(LD_H_ABS, 12);
    a.jump(JMP_JEQ_K, 0x8100, Target::To(tag), Target::Next);
    a.jump(JMP_JEQ_K, 0x88a8, Target::To(tag), Target::Next);
    a.jump(JMP_JEQ_K, 0x9100, Target::To(tag), Target::Next);
    if untagged {
        a.goto(ok);
    } else {
        a.op(RET_K, REJECT); // vlan: untagged
    }
    a.bind(tag);
    a.need(16);
    a.op(LD_H_ABS, 14);
    a.bind(check);
    a.op(ALU_AND_K, 0x0fff);
    for &id in ids {
        a.jump(JMP_JEQ_K, u32::from(id), Target::Next, Target::Skip(1));
        a.goto(ok);
    }
    a.op(RET_K, REJECT); // vlan: not listed
    a.bind(ok);
}

/// One address family's prefix lists.
#[derive(Clone, Copy)]
struct Lists<'a> {
    exclude: &'a [IpNet],
    /// `None` when there is no allow list; empty when it holds only the other family.
    allow: Option<&'a [IpNet]>,
}

/// Exclude and allow checks for one address family. `need` is the bytes from X that the
/// addresses end at, `fields` the offsets of source and destination from X. `mapped` (for
/// IPv6) holds the IPv4 lists, which judge an IPv4-mapped address instead of `own`.
fn address_checks(
    a: &mut Asm,
    need: u32,
    fields: [u32; 2],
    own: Lists<'_>,
    mapped: Option<Lists<'_>>,
) {
    let no_exclude = own.exclude.is_empty() && mapped.is_none_or(|m| m.exclude.is_empty());
    if no_exclude && own.allow.is_none() {
        a.op(RET_K, PASS);
        return;
    }
    a.need(need);
    let rejected = a.label();
    for field in fields {
        match_list(a, field, own.exclude, mapped.map(|m| m.exclude), rejected);
    }
    if let Some(allowed) = own.allow {
        let pass = a.label();
        for field in fields {
            let mapped_allow = mapped.map(|m| m.allow.unwrap_or_default());
            match_list(a, field, allowed, mapped_allow, pass);
        }
        a.op(RET_K, REJECT); // not_allowed
        a.bind(pass);
    }
    a.op(RET_K, PASS);
    a.bind(rejected);
    a.op(RET_K, REJECT); // excluded
}

/// Jumps to `target` when the address at `X + field` lies in one of `nets`; falls through
/// otherwise. With `mapped`, an IPv6 address in `::ffff:0:0/96` is matched against those IPv4
/// prefixes instead, through its last word.
fn match_list(a: &mut Asm, field: u32, nets: &[IpNet], mapped: Option<&[IpNet]>, target: Label) {
    let Some(v4_nets) = mapped else {
        for net in nets {
            match_prefix(a, field, net, target);
        }
        return;
    };
    if nets.is_empty() && v4_nets.is_empty() {
        return;
    }
    let native = a.label();
    let is_mapped = a.label();
    let done = a.label();
    a.op(LD_W_IND, field);
    a.jump(JMP_JEQ_K, 0, Target::Next, Target::To(native));
    a.op(LD_W_IND, field + 4);
    a.jump(JMP_JEQ_K, 0, Target::Next, Target::To(native));
    a.op(LD_W_IND, field + 8);
    a.jump(JMP_JEQ_K, 0xffff, Target::Next, Target::To(native));
    a.goto(is_mapped);
    a.bind(native);
    for net in nets {
        match_prefix(a, field, net, target);
    }
    a.goto(done);
    a.bind(is_mapped);
    for net in v4_nets {
        match_prefix(a, field + 12, net, target);
    }
    a.bind(done);
}

/// Jumps to `target` when the address at `X + field` lies in `net`; falls through otherwise.
fn match_prefix(a: &mut Asm, field: u32, net: &IpNet, target: Label) {
    let words = prefix_words(net);
    let count = words.len();
    for (i, (value, mask)) in words.into_iter().enumerate() {
        // On a mismatch skip the rest of this prefix: 3 instructions per word left, and the goto.
        let rest = (count - i - 1) * 3 + 1;
        a.op(LD_W_IND, field + 4 * i as u32);
        a.op(ALU_AND_K, mask);
        a.jump(JMP_JEQ_K, value, Target::Next, Target::Skip(rest as u8));
    }
    a.goto(target);
}

/// The (value, mask) of each 32-bit word a prefix constrains; none for a /0.
fn prefix_words(net: &IpNet) -> Vec<(u32, u32)> {
    let (bytes, len): (Vec<u8>, u32) = match net {
        IpNet::V4(n) => (n.network().octets().to_vec(), u32::from(n.prefix_len())),
        IpNet::V6(n) => (n.network().octets().to_vec(), u32::from(n.prefix_len())),
    };
    bytes
        .chunks(4)
        .enumerate()
        .take(len.div_ceil(32) as usize)
        .map(|(i, chunk)| {
            let bits = (len - 32 * i as u32).min(32);
            let mask = if bits == 32 {
                u32::MAX
            } else {
                !(u32::MAX >> bits)
            };
            let value = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            (value & mask, mask)
        })
        .collect()
}

/// The IPv4 and IPv6 prefixes of a list, each made [`canonical`].
fn split(nets: &[IpNet]) -> (Vec<IpNet>, Vec<IpNet>) {
    nets.iter()
        .map(|&net| canonical(net))
        .partition(|n| matches!(n, IpNet::V4(_)))
}

/// A generated classic program, attached with `SO_ATTACH_FILTER`.
pub struct ClassicFilter {
    program: Vec<libc::sock_filter>,
}

impl ClassicFilter {
    /// Generates the program for `rules`.
    pub fn new(rules: &FilterRules) -> Result<Self, ClassicError> {
        Ok(Self {
            program: generate(rules)?,
        })
    }

    /// The program's length in instructions.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    /// Whether the program is empty (it never is).
    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }

    /// The program with every pass returning `snap_len`, so a passing frame keeps only its
    /// first `snap_len` bytes (0 keeps the whole frame).
    pub fn snapped(&self, snap_len: u32) -> Vec<libc::sock_filter> {
        let keep = if snap_len == 0 { PASS } else { snap_len };
        self.program
            .iter()
            .map(|&insn| match insn {
                libc::sock_filter {
                    code: RET_K,
                    k: PASS,
                    ..
                } => libc::sock_filter { k: keep, ..insn },
                other => other,
            })
            .collect()
    }
}

impl PacketFilter for ClassicFilter {
    fn kind(&self) -> FilterKind {
        FilterKind::Classic
    }

    fn attach(&self, socket: BorrowedFd<'_>, snap_len: u32) -> Result<(), String> {
        attach_classic(socket, &self.snapped(snap_len))
            .map_err(|e| format!("SO_ATTACH_FILTER: {e}"))
    }

    fn rejects(&self) -> Option<Rejects> {
        None
    }
}

#[cfg(test)]
mod tests;
