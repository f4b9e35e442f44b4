//! Any bytes as a captured frame: parsing never panics, and counting what parses keeps the
//! books (packets and bytes add up across talkers and flows, kept or evicted) in a tally too
//! small to hold everything and in the aggregate it is merged into.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::Duration;

use traffic_counter_capture::parse::{OffloadedTag, parse_frame};
use traffic_counter_capture::{Aggregate, Tally};

fuzz_target!(|input: &[u8]| {
    // First byte: an offloaded tag or not; next two: extra wire length beyond the capture.
    let Some((&flags, rest)) = input.split_first() else {
        return;
    };
    let Some((extra, frame)) = rest.split_at_checked(2) else {
        return;
    };
    let wire_len = frame.len() as u32 + u32::from(u16::from_be_bytes([extra[0], extra[1]])) % 2048;
    let offloaded = (flags & 1 == 1).then_some(OffloadedTag {
        tci: u16::from(flags) << 4,
    });
    let Ok(packet) = parse_frame(frame, wire_len, offloaded) else {
        return;
    };
    // A tally that holds one conversation, so the second round's key (the packet with its
    // direction reversed) evicts the first whenever the two differ; an aggregate then takes it.
    let mut tally = Tally::new(1, flags & 2 == 2);
    let mut reversed = packet;
    reversed.src = packet.dst;
    reversed.dst = packet.src;
    reversed.ports = packet.ports.map(|(s, d)| (d, s));
    for round in 0..3u64 {
        let p = if round == 1 { &reversed } else { &packet };
        tally.count(p, u64::from(wire_len), round);
    }
    assert_eq!(
        (tally.packets(), tally.bytes()),
        (3, 3 * u64::from(wire_len))
    );
    let kept: u64 = tally
        .conversations()
        .iter()
        .map(|(_, c)| c.packets[0] + c.packets[1])
        .sum();
    assert!(tally.conversations().len() <= 1);
    assert_eq!(kept + tally.conversations().evicted().packets, 3);
    let mut aggregate = Aggregate::new(2, Some(1));
    aggregate.merge(&tally);
    let rows = aggregate.rows(Duration::from_secs(1));
    let sent: u64 = rows.talkers.iter().map(|t| t.packets_sent).sum();
    let received: u64 = rows.talkers.iter().map(|t| t.packets_received).sum();
    assert_eq!(sent + rows.evicted_talkers.packets_sent, 3);
    assert_eq!(received + rows.evicted_talkers.packets_received, 3);
    let flowed: u64 = rows
        .flows
        .iter()
        .map(|f| f.packets_a_to_b + f.packets_b_to_a)
        .sum();
    if tally.flows() {
        assert_eq!(flowed + rows.evicted_flows.packets, 3);
    } else {
        assert_eq!(flowed, 0);
    }
    assert_eq!(rows.bytes, 3 * u64::from(wire_len));
});
