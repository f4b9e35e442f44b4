//! The columns of the talkers and flows tables, one spec each: what it shows, its header, its
//! width, its alignment, and how soon it is dropped when the terminal is narrow.
//!
//! Both the state (which column sorts, `<` `>` cycling) and the drawing read these lists, so
//! they live in a module of their own: the app never imports the view to learn its columns, and
//! a column's facts are written once rather than spread over parallel index lists.

/// A column of the talkers table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TalkerColumn {
    /// The address.
    Address,
    /// Send rate over window 0, 1 or 2 (2 s, 10 s, 40 s).
    Sent(usize),
    /// Receive rate over a window.
    Received(usize),
    /// Packets sent plus received.
    Packets,
    /// Bytes sent plus received.
    Bytes,
    /// Bytes sent plus received, as a share of all bytes.
    Share,
    /// Time since last seen.
    LastSeen,
}

/// A column of the flows table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowColumn {
    /// Protocol.
    Proto,
    /// The initiating endpoint.
    A,
    /// The responding endpoint.
    B,
    /// Rate from a to b over a window.
    AToB(usize),
    /// Rate from b to a over a window.
    BToA(usize),
    /// Packets both ways.
    Packets,
    /// Bytes both ways.
    Bytes,
    /// Bytes both ways, as a share of all bytes.
    Share,
    /// Time since last seen.
    LastSeen,
}

/// How wide a column is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// Always this many cells.
    Fixed(u16),
    /// As wide as the widest visible cell, within these bounds.
    Content {
        /// Narrowest.
        min: u16,
        /// Widest.
        max: u16,
    },
}

impl Width {
    /// The width for cells whose widest is `widest`.
    pub fn resolve(self, widest: u16) -> u16 {
        match self {
            Self::Fixed(w) => w,
            Self::Content { min, max } => widest.clamp(min, max),
        }
    }
}

/// Where a cell's text sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Names and addresses.
    Left,
    /// Numbers, so digits and units line up.
    Right,
}

/// One column: everything about it in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec<C> {
    /// What the column shows and sorts by.
    pub column: C,
    /// The header text.
    pub header: &'static str,
    /// Its width.
    pub width: Width,
    /// Its alignment.
    pub align: Align,
    /// Lower is kept longer when the terminal is narrow; 0 is always kept.
    pub priority: u8,
}

/// Width of a rate or size cell: every number format in [`crate::units`] fits.
pub const NUM: u16 = 9;

const fn spec<C>(column: C, header: &'static str, width: Width, priority: u8) -> Spec<C> {
    let align = match width {
        Width::Fixed(_) => Align::Right,
        Width::Content { .. } => Align::Left,
    };
    Spec {
        column,
        header,
        width,
        align,
        priority,
    }
}

/// The same spec, its text to the left (protocol names read as words, not numbers).
const fn left<C: Copy>(mut s: Spec<C>) -> Spec<C> {
    s.align = Align::Left;
    s
}

const ADDRESS: Width = Width::Content { min: 7, max: 39 };
const ENDPOINT: Width = Width::Content { min: 1, max: 47 };
const RATE: Width = Width::Fixed(NUM);
/// A share: a bar of eighth blocks and the percentage, `████▌  75.3%`.
const SHARE: Width = Width::Fixed(13);

/// The talkers table, in display (and `<` `>` sort) order.
pub const TALKERS: [Spec<TalkerColumn>; 11] = [
    spec(TalkerColumn::Address, "Address", ADDRESS, 0),
    spec(TalkerColumn::Sent(0), "Sent 2s", RATE, 1),
    spec(TalkerColumn::Received(0), "Recv 2s", RATE, 2),
    spec(TalkerColumn::Sent(1), "Sent 10s", RATE, 7),
    spec(TalkerColumn::Received(1), "Recv 10s", RATE, 8),
    spec(TalkerColumn::Sent(2), "Sent 40s", RATE, 9),
    spec(TalkerColumn::Received(2), "Recv 40s", RATE, 10),
    spec(TalkerColumn::Packets, "Packets", RATE, 6),
    spec(TalkerColumn::Bytes, "Bytes", RATE, 3),
    spec(TalkerColumn::Share, "Share", SHARE, 4),
    spec(TalkerColumn::LastSeen, "Seen", Width::Fixed(7), 5),
];

/// The flows table on one line per flow, in display (and sort) order.
pub const FLOWS: [Spec<FlowColumn>; 13] = [
    left(spec(FlowColumn::Proto, "Proto", Width::Fixed(7), 0)),
    spec(FlowColumn::A, "A", ENDPOINT, 1),
    spec(FlowColumn::B, "B", ENDPOINT, 2),
    spec(FlowColumn::AToB(0), "A>B 2s", RATE, 3),
    spec(FlowColumn::BToA(0), "B>A 2s", RATE, 4),
    spec(FlowColumn::AToB(1), "A>B 10s", RATE, 9),
    spec(FlowColumn::BToA(1), "B>A 10s", RATE, 10),
    spec(FlowColumn::AToB(2), "A>B 40s", RATE, 11),
    spec(FlowColumn::BToA(2), "B>A 40s", RATE, 12),
    spec(FlowColumn::Packets, "Packets", RATE, 8),
    spec(FlowColumn::Bytes, "Bytes", RATE, 5),
    spec(FlowColumn::Share, "Share", SHARE, 6),
    spec(FlowColumn::LastSeen, "Seen", Width::Fixed(7), 7),
];

/// A column of the groups table (the talkers view rolled up to `--group`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupColumn {
    /// The group's name.
    Name,
    /// Bytes per second sent since the previous second.
    Sent,
    /// Bytes per second received since the previous second.
    Received,
    /// Packets sent plus received.
    Packets,
    /// Bytes sent.
    BytesSent,
    /// Bytes received.
    BytesReceived,
    /// Bytes sent plus received, as a share of all bytes.
    Share,
}

/// The groups table, in display order; always ranked by bytes.
pub const GROUPS: [Spec<GroupColumn>; 7] = [
    spec(
        GroupColumn::Name,
        "Group",
        Width::Content { min: 7, max: 64 },
        0,
    ),
    spec(GroupColumn::Sent, "Sent/s", RATE, 1),
    spec(GroupColumn::Received, "Recv/s", RATE, 2),
    spec(GroupColumn::Packets, "Packets", RATE, 5),
    spec(GroupColumn::BytesSent, "Sent", RATE, 3),
    spec(GroupColumn::BytesReceived, "Received", RATE, 4),
    spec(GroupColumn::Share, "Share", SHARE, 6),
];

/// A column of the stacked flows table (two lines a flow, A over B), which merges each pair of
/// one-line columns into one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackedColumn {
    /// Protocol.
    Proto,
    /// Both endpoints, A over B.
    Ends,
    /// Both rates over a window, A>B over B>A.
    Rates(usize),
    /// Bytes each way, A>B over B>A.
    Bytes,
    /// Time since last seen.
    LastSeen,
}

impl StackedColumn {
    /// Whether sorting by `sort` is shown on this merged column.
    pub fn covers(self, sort: FlowColumn) -> bool {
        match (self, sort) {
            (Self::Proto, FlowColumn::Proto)
            | (Self::Ends, FlowColumn::A | FlowColumn::B)
            | (Self::Bytes, FlowColumn::Bytes | FlowColumn::Packets | FlowColumn::Share)
            | (Self::LastSeen, FlowColumn::LastSeen) => true,
            (Self::Rates(w), FlowColumn::AToB(s) | FlowColumn::BToA(s)) => w == s,
            _ => false,
        }
    }
}

/// The stacked flows table, in display order.
pub const FLOWS_STACKED: [Spec<StackedColumn>; 7] = [
    left(spec(StackedColumn::Proto, "Proto", Width::Fixed(6), 0)),
    spec(
        StackedColumn::Ends,
        "A / B",
        Width::Content { min: 3, max: 50 },
        1,
    ),
    spec(StackedColumn::Rates(0), "2s", RATE, 2),
    spec(StackedColumn::Rates(1), "10s", RATE, 4),
    spec(StackedColumn::Rates(2), "40s", RATE, 6),
    spec(StackedColumn::Bytes, "Bytes", RATE, 3),
    spec(StackedColumn::LastSeen, "Seen", Width::Fixed(7), 5),
];

/// The columns (indexes into `specs`) that fit `width` given each column's resolved width,
/// keeping lower priorities first, in display order. The first priority is always kept.
pub fn fit<C>(specs: &[Spec<C>], widths: &[u16], width: u16) -> Vec<usize> {
    let mut by_priority: Vec<usize> = (0..specs.len()).collect();
    by_priority.sort_by_key(|&i| specs[i].priority);
    let mut used = 0u16;
    let mut chosen = Vec::new();
    for i in by_priority {
        let w = widths[i] + u16::from(!chosen.is_empty());
        if used + w <= width || chosen.is_empty() {
            used += w;
            chosen.push(i);
        }
    }
    chosen.sort_unstable();
    chosen
}

/// The index of `column` in `specs`, or 0.
pub fn index_of<C: PartialEq>(specs: &[Spec<C>], column: &C) -> usize {
    specs.iter().position(|s| s.column == *column).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_terminals_keep_the_important_columns() {
        let widths: Vec<u16> = TALKERS.iter().map(|s| s.width.resolve(39)).collect();
        // Address 39, rates 9, share 13, seen 7, one space between columns.
        assert_eq!(fit(&TALKERS, &widths, 83), vec![0, 1, 2, 8, 9]);
        // Too narrow for the share: the next priorities that fit still go in.
        assert_eq!(fit(&TALKERS, &widths, 82), vec![0, 1, 2, 8, 10]);
        assert_eq!(fit(&TALKERS, &widths, 200).len(), 11);
        assert_eq!(fit(&TALKERS, &widths, 10), vec![0]);
    }

    #[test]
    fn priorities_are_a_permutation() {
        fn check<C>(specs: &[Spec<C>]) {
            let mut p: Vec<u8> = specs.iter().map(|s| s.priority).collect();
            p.sort_unstable();
            assert_eq!(p, (0..specs.len() as u8).collect::<Vec<_>>());
        }
        check(&TALKERS);
        check(&FLOWS);
        check(&FLOWS_STACKED);
        check(&GROUPS);
    }

    #[test]
    fn every_sort_column_is_marked_on_one_stacked_column() {
        for f in FLOWS {
            let marked = FLOWS_STACKED
                .iter()
                .filter(|s| s.column.covers(f.column))
                .count();
            assert_eq!(marked, 1, "{:?}", f.column);
        }
    }
}
