//! Any bytes as a captured frame: parsing never panics, and counting what parses keeps the
//! tally's books (packets and bytes add up across talkers and flows) without ever growing it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use traffic_counter_capture::counters::Tally;
use traffic_counter_capture::parse::{OffloadedTag, parse_frame};

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
    let mut tally = Tally::with_capacity(4, Some(4));
    let (capacity_t, capacity_f) = (tally.talkers.capacity(), tally.flows.capacity());
    for round in 0..3u64 {
        assert!(tally.has_room());
        tally.count(&packet, u64::from(wire_len), round);
    }
    assert_eq!(
        (tally.talkers.capacity(), tally.flows.capacity()),
        (capacity_t, capacity_f)
    );
    let sent: u64 = tally.talkers.values().map(|t| t.packets_sent).sum();
    let received: u64 = tally.talkers.values().map(|t| t.packets_received).sum();
    let flowed: u64 = tally
        .flows
        .values()
        .map(|f| f.packets[0] + f.packets[1])
        .sum();
    assert_eq!((sent, received, flowed, tally.packets), (3, 3, 3, 3));
    assert_eq!(tally.bytes, 3 * u64::from(wire_len));
});
