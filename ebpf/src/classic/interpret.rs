//! A small classic-BPF interpreter for the programs [`super::generate`] emits, so tests and the
//! differential fuzzer (`fuzz/fuzz_targets/classic_verdicts.rs`) can run them without a socket.
//!
//! It knows only the opcodes the generator emits, and follows the kernel where it matters to a
//! verdict: a load past the end of the frame ends the program with 0 (drop), ancillary loads
//! read the offloaded VLAN tag, jumps are relative to the next instruction. Anything else (an
//! unknown opcode, a jump or fall-through out of the program, an indirect load at an
//! ancillary offset) is a generator bug and comes back as an error naming the instruction.

use super::{
    ALU_ADD_K, ALU_AND_K, ALU_SUB_X, JMP_JA, JMP_JEQ_K, JMP_JGE_K, LD_H_ABS, LD_H_IND, LD_W_ABS,
    LD_W_IND, LD_W_LEN, LDX_IMM, RET_K, SKF_AD_OFF, SKF_AD_VLAN_TAG, SKF_AD_VLAN_TAG_PRESENT, TAX,
    TXA,
};

/// A frame as a socket filter sees it: the bytes from the MAC header on (without the tag the
/// kernel moved into metadata) and that tag's TCI, if any.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The frame's bytes.
    pub bytes: &'a [u8],
    /// The offloaded VLAN tag's TCI.
    pub offloaded_tci: Option<u16>,
}

/// Why a program could not be run to its end.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// An opcode the generator never emits.
    #[error("instruction {at}: unknown opcode {code:#06x}")]
    Opcode {
        /// The instruction's index.
        at: usize,
        /// Its opcode.
        code: u16,
    },
    /// Execution left the program without returning.
    #[error("instruction {from}: control leaves the program")]
    OutOfProgram {
        /// The instruction control left from.
        from: usize,
    },
    /// An absolute load at an ancillary offset the interpreter does not model, or an indirect
    /// load at an ancillary offset.
    #[error("instruction {at}: unsupported ancillary load at {k:#x}")]
    Ancillary {
        /// The instruction's index.
        at: usize,
        /// Its offset.
        k: u32,
    },
}

/// Runs `program` on `input` and returns what it returned: 0 drops the frame.
pub fn run(program: &[libc::sock_filter], input: Input<'_>) -> Result<u32, Fault> {
    let (mut a, mut x) = (0u32, 0u32);
    let mut pc = 0usize;
    // Every jump goes forward, so the program ends within its length in steps.
    for _ in 0..=program.len() {
        let Some(insn) = program.get(pc) else {
            return Err(Fault::OutOfProgram {
                from: pc.saturating_sub(1),
            });
        };
        let at = pc;
        pc += 1;
        match insn.code {
            LD_W_ABS | LD_H_ABS if insn.k >= SKF_AD_OFF => {
                a = match insn.k - SKF_AD_OFF {
                    SKF_AD_VLAN_TAG => u32::from(input.offloaded_tci.unwrap_or(0)),
                    SKF_AD_VLAN_TAG_PRESENT => u32::from(input.offloaded_tci.is_some()),
                    _ => return Err(Fault::Ancillary { at, k: insn.k }),
                };
            }
            LD_W_ABS | LD_H_ABS | LD_W_IND | LD_H_IND => {
                let indirect = matches!(insn.code, LD_W_IND | LD_H_IND);
                let offset = if indirect {
                    let offset = x.wrapping_add(insn.k);
                    if offset >= SKF_AD_OFF {
                        return Err(Fault::Ancillary { at, k: offset });
                    }
                    offset
                } else {
                    insn.k
                };
                let width = if matches!(insn.code, LD_W_ABS | LD_W_IND) {
                    4
                } else {
                    2
                };
                let start = offset as usize;
                let Some(bytes) = input.bytes.get(start..start + width) else {
                    return Ok(0);
                };
                a = bytes.iter().fold(0, |acc, &b| acc << 8 | u32::from(b));
            }
            LD_W_LEN => a = input.bytes.len() as u32,
            LDX_IMM => x = insn.k,
            ALU_ADD_K => a = a.wrapping_add(insn.k),
            ALU_SUB_X => a = a.wrapping_sub(x),
            ALU_AND_K => a &= insn.k,
            TAX => x = a,
            TXA => a = x,
            RET_K => return Ok(insn.k),
            JMP_JA => pc = pc.saturating_add(insn.k as usize),
            JMP_JEQ_K | JMP_JGE_K => {
                let taken = if insn.code == JMP_JEQ_K {
                    a == insn.k
                } else {
                    a >= insn.k
                };
                pc += usize::from(if taken { insn.jt } else { insn.jf });
            }
            code => return Err(Fault::Opcode { at, code }),
        }
    }
    Err(Fault::OutOfProgram { from: pc })
}
