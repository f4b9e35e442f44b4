//! Writing pcap and pcapng files for the replay tests, byte by byte from the format
//! specifications, independently of the reader under test.
//!
//! Each Ethernet frame can be written as it is or as the Linux cooked record (SLL or SLL2)
//! libpcap would have written for it: the cooked header replaces the Ethernet header, keeping
//! the EtherType (an in-band VLAN tag stays in the payload, as libpcap reinserts it).

/// The link-layer header type of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// `LINKTYPE_ETHERNET` (1).
    Ethernet,
    /// `LINKTYPE_LINUX_SLL` (113).
    Sll,
    /// `LINKTYPE_LINUX_SLL2` (276).
    Sll2,
}

impl Link {
    /// The `LINKTYPE_*` number.
    pub fn number(self) -> u16 {
        match self {
            Self::Ethernet => 1,
            Self::Sll => 113,
            Self::Sll2 => 276,
        }
    }

    /// The record of `frame` (an Ethernet frame) in this link type.
    pub fn record(self, frame: &[u8]) -> Vec<u8> {
        let (mac, payload) = frame.split_at(14);
        let protocol = [mac[12], mac[13]];
        let source_mac = &mac[6..12];
        let mut out = Vec::with_capacity(frame.len() + 6);
        match self {
            Self::Ethernet => out.extend_from_slice(frame),
            Self::Sll => {
                out.extend_from_slice(&0u16.to_be_bytes()); // PACKET_HOST
                out.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
                out.extend_from_slice(&6u16.to_be_bytes());
                out.extend_from_slice(source_mac);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&protocol);
                out.extend_from_slice(payload);
            }
            Self::Sll2 => {
                out.extend_from_slice(&protocol);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&7u32.to_be_bytes()); // interface index
                out.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
                out.push(0); // PACKET_HOST
                out.push(6);
                out.extend_from_slice(source_mac);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(payload);
            }
        }
        out
    }
}

/// A pcap file (little-endian; nanosecond timestamps when `nanos`, else microseconds) of
/// `frames`, each an Ethernet frame with its capture time in ns since the epoch.
pub fn pcap(link: Link, nanos: bool, frames: &[(u64, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    out.extend_from_slice(&magic.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend_from_slice(&u32::from(link.number()).to_le_bytes());
    for (ts, frame) in frames {
        let record = link.record(frame);
        let fraction = if nanos {
            ts % 1_000_000_000
        } else {
            ts % 1_000_000_000 / 1_000
        };
        out.extend_from_slice(&((ts / 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(fraction as u32).to_le_bytes());
        out.extend_from_slice(&(record.len() as u32).to_le_bytes());
        out.extend_from_slice(&(record.len() as u32).to_le_bytes());
        out.extend_from_slice(&record);
    }
    out
}

/// A pcapng file (little-endian, one section, one interface with nanosecond timestamps) of
/// `frames`, as enhanced packet blocks, with an interface statistics block after the first one
/// that a reader must skip.
pub fn pcapng(link: Link, frames: &[(u64, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    // Section header: byte-order magic, version 1.0, section length unknown.
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    // Interface description: link type, snap length, if_tsresol = 9 (ns), end of options.
    let mut idb = Vec::new();
    idb.extend_from_slice(&link.number().to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&262_144u32.to_le_bytes());
    idb.extend_from_slice(&9u16.to_le_bytes());
    idb.extend_from_slice(&1u16.to_le_bytes());
    idb.extend_from_slice(&[9, 0, 0, 0]);
    idb.extend_from_slice(&[0, 0, 0, 0]);
    block(&mut out, 1, &idb);
    for (i, (ts, frame)) in frames.iter().enumerate() {
        let record = link.record(frame);
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(*ts as u32).to_le_bytes());
        epb.extend_from_slice(&(record.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(record.len() as u32).to_le_bytes());
        epb.extend_from_slice(&record);
        epb.resize(epb.len().next_multiple_of(4), 0);
        block(&mut out, 6, &epb);
        if i == 0 {
            // An interface statistics block: interface 0, a timestamp, no options.
            let mut isb = Vec::new();
            isb.extend_from_slice(&0u32.to_le_bytes());
            isb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
            isb.extend_from_slice(&(*ts as u32).to_le_bytes());
            block(&mut out, 5, &isb);
        }
    }
    out
}

/// Appends one pcapng block: type, total length, body, total length again.
fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let len = (body.len() + 12) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&len.to_le_bytes());
}
