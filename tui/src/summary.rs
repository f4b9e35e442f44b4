//! The one-line summary headless mode prints every interval.

use traffic_counter_capture::Snapshot;
use traffic_counter_capture::snapshot::FilterKind;

use crate::units;

/// `12.0s 42 pkts 3.43 KiB | 2s: 21 pps 13.7 kbit/s | talkers 12 flows 9 evicted 0/0 | drops 0
/// freezes 0 | filter rejected 4 | errors non-IP 0 truncated 2 bad 3`
pub fn line(s: &Snapshot) -> String {
    let drops: u64 = s.workers.iter().map(|w| w.ring_drops).sum();
    let freezes: u64 = s.workers.iter().map(|w| w.ring_freezes).sum();
    let flows = if s.flows_enabled {
        format!(" flows {}", s.flows.len())
    } else {
        String::new()
    };
    let filter = match (s.filter.kind, s.filter.rejects) {
        (FilterKind::None, _) => "filter none".to_owned(),
        (_, Some(r)) => format!(
            "filter rejected {}",
            r.vlan + r.non_ip + r.excluded + r.not_allowed
        ),
        (_, None) => "filter rejects unknown".to_owned(),
    };
    format!(
        "{:.1}s {} pkts {} | 2s: {} pps {} | talkers {}{flows} evicted {}/{} | drops {drops} \
         freezes {freezes} | {filter} | errors non-IP {} truncated {} bad {}",
        s.duration.as_secs_f64(),
        s.totals.packets,
        units::bytes(s.totals.bytes),
        units::count(s.totals.packets_per_sec.get(0)),
        units::bits_per_sec(s.totals.bytes_per_sec.get(0)),
        s.talkers.len(),
        s.evicted_talkers.entries,
        s.evicted_flows.entries,
        s.parse_errors.non_ip,
        s.parse_errors.truncated,
        s.parse_errors.bad_header,
    )
}
