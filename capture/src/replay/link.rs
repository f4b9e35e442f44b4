//! Turning a record of any supported link type into the Ethernet frame the parser reads.
//!
//! Live capture sees Ethernet frames, and replay hands the same parser the same shape: an
//! Ethernet record as it is; a Linux cooked (SLL) record as a view that starts two bytes in,
//! where its protocol field sits exactly where an EtherType would; an SLL2 record, whose
//! protocol field comes first, copied behind a 14-byte Ethernet header in a scratch buffer
//! allocated once. Lengths on the wire are those of the Ethernet frame the cooked header
//! stands for: the cooked header's length is replaced by Ethernet's 14 bytes.

use crate::ring::Frame;

/// Link-layer header types replay reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    /// `LINKTYPE_ETHERNET` (1).
    Ethernet,
    /// `LINKTYPE_LINUX_SLL` (113): a 16-byte cooked header, protocol in its last two bytes.
    Sll,
    /// `LINKTYPE_LINUX_SLL2` (276): a 20-byte cooked header, protocol in its first two bytes.
    Sll2,
}

/// Bytes of an Ethernet header (no tags).
const ETHERNET_HEADER: usize = 14;
/// Bytes of an SLL header.
const SLL_HEADER: usize = 16;
/// Bytes of an SLL2 header.
const SLL2_HEADER: usize = 20;
/// Bytes of an SLL2 record copied for the parser: the deepest header it reads (two VLAN tags,
/// IPv6 and eight extension headers of at most 2 KiB, then the ports) ends well within.
const SCRATCH: usize = 32 << 10;

/// The one buffer SLL2 records are rewritten into.
pub(crate) struct Scratch(Box<[u8]>);

impl Scratch {
    pub(crate) fn new() -> Self {
        Self(vec![0; ETHERNET_HEADER + SCRATCH].into_boxed_slice())
    }

    /// The Ethernet frame a record of `link` stands for.
    #[inline]
    pub(crate) fn frame<'a>(
        &'a mut self,
        link: Link,
        data: &'a [u8],
        orig_len: u32,
        ts_ns: u64,
    ) -> Frame<'a> {
        let wire_len = Self::wire_len(link, orig_len);
        let data = match link {
            Link::Ethernet => data,
            Link::Sll => data.get(SLL_HEADER - ETHERNET_HEADER..).unwrap_or(&[]),
            Link::Sll2 => match (data.get(..2), data.get(SLL2_HEADER..)) {
                (Some(protocol), Some(payload)) => {
                    let n = payload.len().min(SCRATCH);
                    self.0[12..ETHERNET_HEADER].copy_from_slice(protocol);
                    self.0[ETHERNET_HEADER..ETHERNET_HEADER + n].copy_from_slice(&payload[..n]);
                    &self.0[..ETHERNET_HEADER + n]
                }
                // A cooked header cut short: too short for the parser too.
                _ => &[],
            },
        };
        Frame {
            data,
            wire_len,
            ts_ns,
            offloaded: None,
            gso: None,
            outgoing: false,
        }
    }

    /// The length on the wire of the Ethernet frame a record of `link` stands for.
    pub(crate) fn wire_len(link: Link, orig_len: u32) -> u32 {
        match link {
            Link::Ethernet => orig_len,
            Link::Sll => orig_len.saturating_sub((SLL_HEADER - ETHERNET_HEADER) as u32),
            Link::Sll2 => orig_len.saturating_sub((SLL2_HEADER - ETHERNET_HEADER) as u32),
        }
    }
}
