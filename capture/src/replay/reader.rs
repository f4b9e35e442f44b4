//! Reading a pcap or pcapng stream record by record, with the byte offset of every record.
//!
//! The record layouts are decoded by `pcap-parser`'s block parsers; this module owns the
//! buffering around them so that it always knows where in the file it is: a malformed record is
//! reported with its byte offset, and a record that the end of the input cuts short is told
//! apart from one that is wrong. One buffer is reused for the whole file and grows only to fit
//! the largest record, never past [`MAX_RECORD`].

use std::io::{self, Read};

use pcap_parser::nom::{self, Needed};
use pcap_parser::pcap::{
    parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified, parse_pcap_header,
};
use pcap_parser::pcapng::{Block, parse_block_be, parse_block_le, parse_sectionheaderblock};
use pcap_parser::{LegacyPcapBlock, Linktype};

use super::ReplayError;
use super::link::Link;

/// The largest record (pcap record or pcapng block) accepted: far above any snap length
/// (libpcap's is 256 KiB), so only a corrupt length field reaches it.
pub(crate) const MAX_RECORD: usize = 16 << 20;
/// What one read asks for at least.
const READ_CHUNK: usize = 256 << 10;
/// Bytes of a pcap record header.
const PCAP_RECORD_HEADER: usize = 16;
/// pcapng block types of packets.
const EPB: u32 = 0x0000_0006;
const SPB: u32 = 0x0000_0003;

/// Which format the input is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// libpcap's format.
    Pcap,
    /// pcapng.
    Pcapng,
}

/// One packet record.
pub(crate) struct Record<'a> {
    /// The captured bytes, from the link-layer header on.
    pub(crate) data: &'a [u8],
    /// The packet's length on the wire, link-layer header included.
    pub(crate) orig_len: u32,
    /// Capture time, ns since the Unix epoch.
    pub(crate) ts_ns: u64,
    /// The link-layer header type.
    pub(crate) link: Link,
}

/// What the next step through the input found.
pub(crate) enum Next<'a> {
    /// A packet.
    Packet(Record<'a>),
    /// The input ended inside a packet record: the record is cut short. Its length on the wire
    /// and link type when its header was complete.
    Truncated(Option<(u32, Link)>),
    /// The input ended cleanly.
    End,
}

/// A pcapng interface as its description block set it up.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link: Link,
    /// Timestamp units per second.
    units: u64,
    /// Seconds added to every timestamp.
    offset_secs: i64,
}

/// The layout of the records that follow.
enum Layout {
    Pcap {
        big_endian: bool,
        nanos: bool,
        modified: bool,
        link: Link,
    },
    Pcapng {
        big_endian: bool,
        interfaces: Vec<Interface>,
        /// The last timestamp seen, for simple packet blocks, which carry none.
        last_ts_ns: u64,
    },
}

/// Reads records from a pcap or pcapng stream.
pub(crate) struct Reader<R> {
    input: R,
    name: String,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Offset in the input of `buf[0]`.
    base: u64,
    eof: bool,
    layout: Layout,
    format: Format,
}

/// What one record parse found, as offsets into the parsed bytes, so that the buffer's borrow
/// ends before the reader moves on.
enum Parsed {
    Packet {
        len: usize,
        data: (usize, usize),
        orig_len: u32,
        ts_ns: u64,
        link: Link,
    },
    /// A block that carries no packet (or one that set up the section or an interface).
    Skip { len: usize },
    /// More bytes are needed: at least this many in all.
    Need(usize),
}

impl<R: Read> Reader<R> {
    /// Reads the file header; `name` is what errors call the input.
    pub(crate) fn new(input: R, name: &str) -> Result<Self, ReplayError> {
        let mut reader = Self {
            input,
            name: name.to_owned(),
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            base: 0,
            eof: false,
            layout: Layout::Pcapng {
                big_endian: false,
                interfaces: Vec::new(),
                last_ts_ns: 0,
            },
            format: Format::Pcapng,
        };
        // A pcapng section header is at least 28 bytes, a pcap header 24.
        while reader.end < 28 && !reader.eof {
            reader.fill(28)?;
        }
        let head = &reader.buf[..reader.end];
        if parse_sectionheaderblock(head).is_ok() {
            // The section header is parsed again as the first block, which sets the byte order.
            return Ok(reader);
        }
        match parse_pcap_header(head) {
            Ok((_, header)) => {
                let link = Link::of(header.network).ok_or_else(|| ReplayError::LinkType {
                    file: reader.name.clone(),
                    offset: 20,
                    linktype: header.network.0,
                })?;
                reader.layout = Layout::Pcap {
                    big_endian: header.is_bigendian(),
                    nanos: header.is_nanosecond_precision(),
                    modified: header.is_modified_format(),
                    link,
                };
                reader.format = Format::Pcap;
                reader.start = header.size();
                Ok(reader)
            }
            Err(_) => Err(ReplayError::NotACapture {
                file: reader.name.clone(),
                found: match head.get(..4) {
                    None if head.is_empty() => "it is empty".to_owned(),
                    None => format!("it is only {} bytes long", head.len()),
                    Some(magic) => format!(
                        "byte offset 0 holds 0x{:08x}, which is neither pcap's nor pcapng's \
                         magic number",
                        u32::from_be_bytes([magic[0], magic[1], magic[2], magic[3]])
                    ),
                },
            }),
        }
    }

    /// The input's format.
    pub(crate) fn format(&self) -> Format {
        self.format
    }

    /// The offset in the input of the next unread byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    /// Steps to the next packet, past blocks that carry none.
    pub(crate) fn next(&mut self) -> Result<Next<'_>, ReplayError> {
        loop {
            let unread = self.end - self.start;
            let parsed = parse_record(
                &mut self.layout,
                &self.buf[self.start..self.end],
                &self.name,
                self.base + self.start as u64,
            )?;
            match parsed {
                Parsed::Packet {
                    len,
                    data,
                    orig_len,
                    ts_ns,
                    link,
                } => {
                    let at = self.start;
                    self.start += len;
                    return Ok(Next::Packet(Record {
                        data: &self.buf[at + data.0..at + data.1],
                        orig_len,
                        ts_ns,
                        link,
                    }));
                }
                Parsed::Skip { len } => self.start += len,
                Parsed::Need(_) if self.eof => {
                    if unread == 0 {
                        return Ok(Next::End);
                    }
                    let cut = self.cut_record();
                    self.start = self.end;
                    return Ok(cut);
                }
                Parsed::Need(total) => {
                    if total > MAX_RECORD {
                        return Err(ReplayError::Malformed {
                            file: self.name.clone(),
                            offset: self.offset(),
                            what: format!(
                                "a record of {total} bytes (more than the {} MiB a record may have)",
                                MAX_RECORD >> 20
                            ),
                        });
                    }
                    self.fill(total)?;
                }
            }
        }
    }

    /// What the unread tail at the end of the input was: a cut packet record, or a cut block
    /// that carried no packet.
    fn cut_record(&self) -> Next<'static> {
        let tail = &self.buf[self.start..self.end];
        match &self.layout {
            Layout::Pcap {
                big_endian, link, ..
            } => {
                let orig_len = tail.get(12..16).map(|b| u32_at(b, *big_endian));
                Next::Truncated(orig_len.map(|len| (len, *link)))
            }
            Layout::Pcapng {
                big_endian,
                interfaces,
                ..
            } => match tail.get(..4).map(|b| u32_at(b, *big_endian)) {
                Some(EPB) => {
                    let interface = tail
                        .get(8..12)
                        .and_then(|b| interfaces.get(u32_at(b, *big_endian) as usize));
                    let orig_len = tail.get(24..28).map(|b| u32_at(b, *big_endian));
                    Next::Truncated(orig_len.zip(interface.map(|i| i.link)))
                }
                Some(SPB) => {
                    let orig_len = tail.get(8..12).map(|b| u32_at(b, *big_endian));
                    Next::Truncated(orig_len.zip(interfaces.first().map(|i| i.link)))
                }
                // Too short to tell what it was: count it rather than let it vanish.
                None => Next::Truncated(None),
                Some(_) => {
                    log::warn!(
                        "{}: the last block (at byte offset {}) is cut short; it carried no packet",
                        self.name,
                        self.offset()
                    );
                    Next::End
                }
            },
        }
    }

    /// Reads until `total` unread bytes are buffered or the input ends, first moving the
    /// unread bytes to the front of the buffer.
    fn fill(&mut self, total: usize) -> Result<(), ReplayError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        let want = total
            .max(self.end + READ_CHUNK / 2)
            .min(MAX_RECORD.max(total));
        if want > self.buf.len() {
            self.buf.resize(want, 0);
        }
        while self.end < total && !self.eof {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ReplayError::Read {
                        file: self.name.clone(),
                        offset: self.base + self.end as u64,
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

fn u32_at(bytes: &[u8], big_endian: bool) -> u32 {
    let b = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// The error for a malformed record of `name` at `offset`.
fn malformed(name: &str, offset: u64, what: String) -> ReplayError {
    ReplayError::Malformed {
        file: name.to_owned(),
        offset,
        what,
    }
}

/// Bytes a parse that ran out of input needs in all.
fn needed(have: usize, needed: Needed) -> usize {
    match needed {
        Needed::Size(n) => have + n.get(),
        Needed::Unknown => have + 4096,
    }
}

/// Parses the record at the start of `input` (found at `offset` in the file).
fn parse_record(
    layout: &mut Layout,
    input: &[u8],
    name: &str,
    offset: u64,
) -> Result<Parsed, ReplayError> {
    let malformed = |what: String| malformed(name, offset, what);
    match layout {
        Layout::Pcap {
            big_endian,
            nanos,
            modified,
            link,
        } => parse_pcap(input, *big_endian, *nanos, *modified, *link).map_err(malformed),
        Layout::Pcapng {
            big_endian,
            interfaces,
            last_ts_ns,
        } => parse_pcapng(input, big_endian, interfaces, last_ts_ns, name, offset),
    }
}

/// Parses one pcap record; the error says what is malformed.
fn parse_pcap(
    input: &[u8],
    big_endian: bool,
    nanos: bool,
    modified: bool,
    link: Link,
) -> Result<Parsed, String> {
    if input.len() < PCAP_RECORD_HEADER {
        return Ok(Parsed::Need(PCAP_RECORD_HEADER));
    }
    let parsed = if modified {
        parse_pcap_frame_modified(input)
    } else if big_endian {
        parse_pcap_frame_be(input)
    } else {
        parse_pcap_frame(input)
    };
    match parsed {
        Ok((rest, record)) => {
            let LegacyPcapBlock {
                ts_sec,
                ts_usec,
                origlen,
                data,
                ..
            } = record;
            let fraction = if nanos {
                u64::from(ts_usec)
            } else {
                u64::from(ts_usec) * 1_000
            };
            let start = input.len() - rest.len() - data.len();
            Ok(Parsed::Packet {
                len: input.len() - rest.len(),
                data: (start, start + data.len()),
                orig_len: origlen,
                ts_ns: u64::from(ts_sec) * 1_000_000_000 + fraction,
                link,
            })
        }
        Err(nom::Err::Incomplete(n)) => Ok(Parsed::Need(needed(input.len(), n))),
        Err(_) => Err("pcap record header".into()),
    }
}

/// Parses one pcapng block, keeping track of the section's byte order and interfaces.
fn parse_pcapng(
    input: &[u8],
    big_endian: &mut bool,
    interfaces: &mut Vec<Interface>,
    last_ts_ns: &mut u64,
    name: &str,
    offset: u64,
) -> Result<Parsed, ReplayError> {
    let malformed = |what: String| malformed(name, offset, what);
    if input.len() < 12 {
        return Ok(Parsed::Need(12));
    }
    let declared = u32_at(&input[4..8], *big_endian) as usize;
    let parsed = if *big_endian {
        parse_block_be(input)
    } else {
        parse_block_le(input)
    };
    let block = match parsed {
        Ok((rest, block)) => (input.len() - rest.len(), block),
        // A block whose declared length is all there cannot need more: its insides
        // disagree with its length.
        Err(nom::Err::Incomplete(n)) if input.len() < declared => {
            return Ok(Parsed::Need(needed(input.len(), n).max(declared)));
        }
        Err(_) => return Err(malformed(format!("pcapng block of {declared} bytes"))),
    };
    match block {
        (len, Block::SectionHeader(shb)) => {
            *big_endian = shb.big_endian();
            interfaces.clear();
            Ok(Parsed::Skip { len })
        }
        (len, Block::InterfaceDescription(idb)) => {
            let link = Link::of(idb.linktype).ok_or_else(|| ReplayError::LinkType {
                file: name.to_owned(),
                offset,
                linktype: idb.linktype.0,
            })?;
            let units = idb.ts_resolution().ok_or_else(|| {
                malformed(format!(
                    "interface description (timestamp resolution code {})",
                    idb.if_tsresol
                ))
            })?;
            interfaces.push(Interface {
                link,
                units,
                offset_secs: idb.ts_offset(),
            });
            Ok(Parsed::Skip { len })
        }
        (len, Block::EnhancedPacket(epb)) => {
            let interface = interfaces.get(epb.if_id as usize).ok_or_else(|| {
                malformed(format!(
                    "enhanced packet block for interface {}, which no interface \
                             description block declared",
                    epb.if_id
                ))
            })?;
            let ts = u64::from(epb.ts_high) << 32 | u64::from(epb.ts_low);
            let ts_ns = to_ns(ts, interface.units, interface.offset_secs);
            *last_ts_ns = ts_ns;
            let caplen = (epb.caplen as usize).min(epb.data.len());
            let start = epb.data.as_ptr() as usize - input.as_ptr() as usize;
            Ok(Parsed::Packet {
                len,
                data: (start, start + caplen),
                orig_len: epb.origlen,
                ts_ns,
                link: interface.link,
            })
        }
        (len, Block::SimplePacket(spb)) => {
            let interface = interfaces.first().ok_or_else(|| {
                malformed("simple packet block before any interface description".into())
            })?;
            let caplen = (spb.origlen as usize).min(spb.data.len());
            let start = spb.data.as_ptr() as usize - input.as_ptr() as usize;
            Ok(Parsed::Packet {
                len,
                data: (start, start + caplen),
                orig_len: spb.origlen,
                ts_ns: *last_ts_ns,
                link: interface.link,
            })
        }
        (len, _) => Ok(Parsed::Skip { len }),
    }
}

/// A pcapng timestamp in `units` per second, plus `offset_secs`, as ns since the epoch;
/// saturating rather than wrapping on absurd values.
fn to_ns(ts: u64, units: u64, offset_secs: i64) -> u64 {
    let units = u128::from(units.max(1));
    let ts = u128::from(ts);
    let ns = ts / units * 1_000_000_000 + ts % units * 1_000_000_000 / units;
    let offset = i128::from(offset_secs) * 1_000_000_000;
    u64::try_from((ns as i128 + offset).max(0)).unwrap_or(u64::MAX)
}

impl Link {
    /// The link type, when replay can read it.
    pub(crate) fn of(linktype: Linktype) -> Option<Self> {
        match linktype {
            Linktype::ETHERNET => Some(Self::Ethernet),
            Linktype::LINUX_SLL => Some(Self::Sll),
            Linktype::LINUX_SLL2 => Some(Self::Sll2),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_any_resolution() {
        assert_eq!(to_ns(1_500_000, 1_000_000, 0), 1_500_000_000);
        assert_eq!(to_ns(3, 2, 10), 11_500_000_000);
        assert_eq!(to_ns(1, 1_000_000_000, -5), 0);
        assert_eq!(to_ns(u64::MAX, 1, 0), u64::MAX);
    }
}
