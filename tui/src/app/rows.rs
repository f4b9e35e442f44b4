//! Which rows a table shows and in what order: sort keys and the visible window.
//!
//! Choosing the window never sorts all rows: one pass over the rows that pass the filter keeps
//! a bounded heap of the best keys (or, for deep windows, partitions a key array with
//! `select_nth_unstable`), and only the window is sorted, so a top-20 of a million talkers
//! stays cheap.

use std::net::IpAddr;

use traffic_counter_capture::snapshot::{Flow, Talker};

use super::query::Query;
use crate::columns::{FlowColumn, TalkerColumn};
use crate::names::Naming;

fn rate(r: &traffic_counter_capture::snapshot::WindowRates, w: usize) -> f64 {
    r.get(w)
}

/// A row's sort key, built so that ascending order is the table's order: the column's value
/// (inverted when descending), then the address's first 64 bits (inverted for a descending
/// address column), then the row's index.
///
/// Keys are computed in one sequential pass; choosing the window never chases pointers into
/// the (large) rows at random. Rows still tied on value and address prefix (IPv6 addresses in
/// one /63) are put in full-address order when the window is settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    value: u64,
    address: u64,
    index: u32,
}

/// How a table is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    /// Largest first.
    pub descending: bool,
    /// The sort column is an address, so descending applies to the address too.
    pub by_address: bool,
}

impl Order {
    fn key(self, value: u64, ip: IpAddr, index: u32) -> Key {
        let address = address_key(ip);
        Key {
            value: if self.descending { !value } else { value },
            address: if self.descending && self.by_address {
                !address
            } else {
                address
            },
            index,
        }
    }
}

/// The first 64 bits of the address order: all of an IPv4 address, the top 63 bits of an
/// IPv6 one, IPv4 before IPv6 as `IpAddr` orders them.
fn address_key(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(v6) => (1 << 63) | (v6.to_bits() >> 65) as u64,
    }
}

fn rate_key(r: &traffic_counter_capture::snapshot::WindowRates, w: usize) -> u64 {
    // Rates are non-negative, and non-negative floats order like their bit patterns.
    rate(r, w).max(0.0).to_bits()
}

/// The sort key of a talker under `column`.
pub fn talker_key(t: &Talker, column: TalkerColumn, order: Order, index: u32) -> Key {
    let value = match column {
        TalkerColumn::Address => 0,
        TalkerColumn::Sent(w) => rate_key(&t.sent_bytes_per_sec, w),
        TalkerColumn::Received(w) => rate_key(&t.received_bytes_per_sec, w),
        TalkerColumn::Packets => t.packets_sent + t.packets_received,
        TalkerColumn::Bytes | TalkerColumn::Share => t.bytes_sent + t.bytes_received,
        TalkerColumn::LastSeen => t.last_seen.0,
    };
    order.key(value, t.ip, index)
}

/// The sort key of a flow under `column`.
pub fn flow_key(f: &Flow, column: FlowColumn, order: Order, index: u32) -> Key {
    let value = match column {
        FlowColumn::Proto => u64::from(f.proto),
        FlowColumn::A => u64::from(f.a_port.unwrap_or(0)),
        FlowColumn::B => u64::from(f.b_port.unwrap_or(0)),
        FlowColumn::AToB(w) => rate_key(&f.a_to_b_bytes_per_sec, w),
        FlowColumn::BToA(w) => rate_key(&f.b_to_a_bytes_per_sec, w),
        FlowColumn::Packets => f.packets_a_to_b + f.packets_b_to_a,
        FlowColumn::Bytes | FlowColumn::Share => f.bytes_a_to_b + f.bytes_b_to_a,
        FlowColumn::LastSeen => f.last_seen.0,
    };
    order.key(value, flow_address(f, column), index)
}

fn flow_address(f: &Flow, column: FlowColumn) -> IpAddr {
    if column == FlowColumn::B {
        f.b_ip
    } else {
        f.a_ip
    }
}

/// Windows ending past this many rows use a key array and selection instead of a heap.
const HEAP_LIMIT: usize = 4096;

/// The rows passing `keep`, and the indexes of rows ranked `start..start + len`, in order.
///
/// One pass over the rows. For a window near the top (the usual case) it keeps a bounded heap
/// of the best `start + len` keys and writes nothing per row; deeper windows fill `keys` and
/// partition it with `select_nth_unstable`. Either way O(n) plus a top-N selection.
pub fn window<T>(
    items: &[T],
    keep: impl Fn(&T) -> bool,
    key: impl Fn(&T, u32) -> Key,
    full: impl Fn(&T) -> IpAddr,
    order: Order,
    (start, len): (usize, usize),
    keys: &mut Vec<Key>,
) -> (usize, Vec<usize>) {
    let end = start.saturating_add(len);
    let mut total = 0;
    let mut chosen: Vec<Key> = if end <= HEAP_LIMIT {
        let mut heap = std::collections::BinaryHeap::with_capacity(end + 1);
        for (i, item) in items.iter().enumerate() {
            if !keep(item) {
                continue;
            }
            total += 1;
            let k = key(item, i as u32);
            if heap.len() < end {
                heap.push(k);
            } else if let Some(mut worst) = heap.peek_mut()
                && k < *worst
            {
                *worst = k;
            }
        }
        heap.into_sorted_vec()
    } else {
        keys.clear();
        keys.extend(
            items
                .iter()
                .enumerate()
                .filter(|(_, item)| keep(item))
                .map(|(i, item)| key(item, i as u32)),
        );
        total = keys.len();
        let end = end.min(total);
        if end < total {
            keys.select_nth_unstable(end);
        }
        let mut best = keys[..end].to_vec();
        best.sort_unstable();
        best
    };
    let chosen = chosen.split_off(start.min(chosen.len()));
    let mut rows: Vec<usize> = chosen.iter().map(|k| k.index as usize).collect();
    settle_ties(&mut rows, &chosen, |i| full(&items[i]), order);
    (total, rows)
}

/// Puts rows whose keys tie on value and address prefix in full-address order.
fn settle_ties(rows: &mut [usize], keys: &[Key], full: impl Fn(usize) -> IpAddr, order: Order) {
    let mut start = 0;
    while start < rows.len() {
        let tied = |k: &Key| k.value == keys[start].value && k.address == keys[start].address;
        let end = start + keys[start..].iter().take_while(|k| tied(k)).count();
        if end - start > 1 {
            rows[start..end].sort_by(|&a, &b| {
                let o = full(a).cmp(&full(b));
                if order.descending && order.by_address {
                    o.reverse()
                } else {
                    o
                }
            });
        }
        start = end.max(start + 1);
    }
}

/// The talkers window for a column and direction.
pub fn talker_window(
    items: &[Talker],
    query: &Query,
    names: &Naming,
    column: TalkerColumn,
    descending: bool,
    range: (usize, usize),
    keys: &mut Vec<Key>,
) -> (usize, Vec<usize>) {
    let order = Order {
        descending,
        by_address: column == TalkerColumn::Address,
    };
    window(
        items,
        |t| query.talker(t, names),
        |t, i| talker_key(t, column, order, i),
        |t| t.ip,
        order,
        range,
        keys,
    )
}

/// The flows window for a column and direction.
pub fn flow_window(
    items: &[Flow],
    query: &Query,
    names: &Naming,
    column: FlowColumn,
    descending: bool,
    range: (usize, usize),
    keys: &mut Vec<Key>,
) -> (usize, Vec<usize>) {
    flows_where(
        items,
        |f| query.flow(f, names),
        column,
        descending,
        range,
        keys,
    )
}

/// The flows with `ip` at either end, ordered like the flows view: a talker's detail lists them.
pub fn flows_of(
    items: &[Flow],
    ip: IpAddr,
    column: FlowColumn,
    descending: bool,
    range: (usize, usize),
    keys: &mut Vec<Key>,
) -> (usize, Vec<usize>) {
    let keep = |f: &Flow| f.a_ip == ip || f.b_ip == ip;
    flows_where(items, keep, column, descending, range, keys)
}

fn flows_where(
    items: &[Flow],
    keep: impl Fn(&Flow) -> bool,
    column: FlowColumn,
    descending: bool,
    range: (usize, usize),
    keys: &mut Vec<Key>,
) -> (usize, Vec<usize>) {
    let order = Order {
        descending,
        by_address: matches!(column, FlowColumn::A | FlowColumn::B),
    };
    window(
        items,
        keep,
        |f, i| flow_key(f, column, order, i),
        |f| flow_address(f, column),
        order,
        range,
        keys,
    )
}

#[cfg(test)]
mod tests {

    use std::cmp::Ordering;

    use traffic_counter_capture::snapshot::{Timestamp, WindowRates};

    use super::*;
    use crate::app::query::Query;

    pub(crate) fn talker(ip: &str, sent: u64) -> Talker {
        Talker {
            ip: ip.parse().unwrap(),
            packets_sent: sent / 100,
            bytes_sent: sent,
            packets_received: 0,
            bytes_received: 0,
            first_seen: Timestamp(0),
            last_seen: Timestamp(sent * 1_000_000_000),
            sent_bytes_per_sec: WindowRates([sent as f32, 0.0, 0.0]),
            received_bytes_per_sec: WindowRates::default(),
        }
    }

    #[test]
    fn window_matches_a_full_sort() {
        let mut items: Vec<Talker> = (0..500u64)
            .map(|i| {
                talker(
                    &format!("198.18.{}.{}", i / 200, i % 200),
                    (i * 7919) % 1000,
                )
            })
            .collect();
        items.push(talker("2001:db8::1", 5));
        items.push(talker("2001:db8::", 5));
        let bytes = |t: &Talker| t.bytes_sent + t.bytes_received;
        for column in [TalkerColumn::Bytes, TalkerColumn::Address] {
            for descending in [true, false] {
                let mut all: Vec<usize> = (0..items.len()).collect();
                all.sort_by(|&a, &b| {
                    let (x, y) = (&items[a], &items[b]);
                    let by = if column == TalkerColumn::Address {
                        Ordering::Equal
                    } else {
                        bytes(x).cmp(&bytes(y))
                    };
                    let by = if descending { by.reverse() } else { by };
                    let addr = if descending && column == TalkerColumn::Address {
                        y.ip.cmp(&x.ip)
                    } else {
                        x.ip.cmp(&y.ip)
                    };
                    by.then(addr)
                });
                for (start, len) in [(0, 10), (17, 23), (490, 20), (0, 1000), (600, 5), (0, 9000)] {
                    let (total, shown) = talker_window(
                        &items,
                        &Query::default(),
                        &Naming::default(),
                        column,
                        descending,
                        (start, len),
                        &mut Vec::new(),
                    );
                    assert_eq!(total, 502);
                    let want: Vec<usize> = all.iter().copied().skip(start).take(len).collect();
                    assert_eq!(shown, want, "{column:?} desc {descending} {start}+{len}");
                }
            }
        }
    }
}
