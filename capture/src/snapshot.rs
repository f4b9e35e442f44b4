//! The immutable value the aggregator publishes each tick, and everything that reads it uses.
//!
//! A snapshot owns its data: the terminal UI, the headless writer and the exporters read the
//! same `Arc<Snapshot>` and never touch live capture state. Time is inside it (`taken_at`,
//! `tick`), so rendering it is deterministic. Serialising it gives the documented JSON schema
//! (`docs/snapshot-json.md`).

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

use crate::config::{FanoutMode, RingGeometry};
use crate::iface::LinkInfo;
use crate::parse::proto;
use crate::stats::{ParseErrors, WorkerStats};

/// Rates over the 2 s, 10 s and 40 s windows, per second.
///
/// Stored as `f32`: display precision is plenty, and a million talkers' rows stay small
/// enough for the terminal UI to rank them within a tick.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WindowRates(pub [f32; 3]);

impl WindowRates {
    /// The rate over window 0 (2 s), 1 (10 s) or 2 (40 s); 0 for any other index.
    pub fn get(&self, window: usize) -> f64 {
        self.0.get(window).map_or(0.0, |&r| f64::from(r))
    }
}

/// A packet time: nanoseconds since the Unix epoch, as the ring reports it.
///
/// Eight bytes where `SystemTime` takes sixteen; serialised as RFC 3339 like `SystemTime`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The same instant as a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(self.0)
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        Self(
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        rfc3339(&self.to_system_time(), s)
    }
}

impl Serialize for WindowRates {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(3))?;
        for (name, value) in ["2s", "10s", "40s"].iter().zip(self.0) {
            map.serialize_entry(name, &value)?;
        }
        map.end()
    }
}

/// Serialises a `SystemTime` as RFC 3339 with milliseconds, in UTC.
pub fn rfc3339<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*time))
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's serialize_with passes a reference
fn proto_name<S: Serializer>(p: &u8, s: S) -> Result<S::Ok, S::Error> {
    match proto::name(*p) {
        Some(name) => s.serialize_str(name),
        None => s.serialize_u8(*p),
    }
}

/// IP traffic counted since capture started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Totals {
    /// IP packets.
    pub packets: u64,
    /// Their bytes on the wire.
    pub bytes: u64,
    /// Packets per second over each window.
    pub packets_per_sec: WindowRates,
    /// Bytes per second over each window.
    pub bytes_per_sec: WindowRates,
}

/// One address's counters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Talker {
    /// The address.
    pub ip: IpAddr,
    /// Packets it sent.
    pub packets_sent: u64,
    /// Bytes it sent.
    pub bytes_sent: u64,
    /// Packets it received.
    pub packets_received: u64,
    /// Bytes it received.
    pub bytes_received: u64,
    /// When it was first seen.
    pub first_seen: Timestamp,
    /// When it was last seen.
    pub last_seen: Timestamp,
    /// Bytes per second sent over each window.
    pub sent_bytes_per_sec: WindowRates,
    /// Bytes per second received over each window.
    pub received_bytes_per_sec: WindowRates,
}

/// One conversation's counters; `a` is the side that sent the first packet seen.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Flow {
    /// IP protocol number; serialised as its name where it has one.
    #[serde(serialize_with = "proto_name")]
    pub proto: u8,
    /// The initiating address.
    pub a_ip: IpAddr,
    /// Its port, where the protocol has ports.
    pub a_port: Option<u16>,
    /// The responding address.
    pub b_ip: IpAddr,
    /// Its port, where the protocol has ports.
    pub b_port: Option<u16>,
    /// Packets from a to b.
    pub packets_a_to_b: u64,
    /// Bytes from a to b.
    pub bytes_a_to_b: u64,
    /// Packets from b to a.
    pub packets_b_to_a: u64,
    /// Bytes from b to a.
    pub bytes_b_to_a: u64,
    /// When it was first seen.
    pub first_seen: Timestamp,
    /// When it was last seen.
    pub last_seen: Timestamp,
    /// Bytes per second from a to b over each window.
    pub a_to_b_bytes_per_sec: WindowRates,
    /// Bytes per second from b to a over each window.
    pub b_to_a_bytes_per_sec: WindowRates,
}

/// The sum of every talker evicted from the bounded table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EvictedTalkers {
    /// Entries evicted.
    pub entries: u64,
    /// Their packets sent.
    pub packets_sent: u64,
    /// Their bytes sent.
    pub bytes_sent: u64,
    /// Their packets received.
    pub packets_received: u64,
    /// Their bytes received.
    pub bytes_received: u64,
}

impl EvictedTalkers {
    /// Adds another set of sums to this one.
    pub fn add(&mut self, other: &Self) {
        self.entries += other.entries;
        self.packets_sent += other.packets_sent;
        self.bytes_sent += other.bytes_sent;
        self.packets_received += other.packets_received;
        self.bytes_received += other.bytes_received;
    }
}

/// The sum of every flow evicted from the bounded table, both directions together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EvictedFlows {
    /// Entries evicted.
    pub entries: u64,
    /// Their packets.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl EvictedFlows {
    /// Adds another set of sums to this one.
    pub fn add(&mut self, other: &Self) {
        self.entries += other.entries;
        self.packets += other.packets;
        self.bytes += other.bytes;
    }
}

/// Which socket filter is attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterKind {
    /// No filter: every frame reaches the rings.
    #[default]
    None,
    /// The eBPF socket filter, which counts its rejects.
    Ebpf,
    /// The classic-BPF fallback, whose rejects nobody counts.
    Classic,
    /// A replay's filter, which gives the socket filter's verdicts in userspace and counts
    /// its rejects.
    Userspace,
}

/// Frames the socket filter rejected, per reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rejects {
    /// Outermost VLAN not in the list.
    pub vlan: u64,
    /// Not IPv4 or IPv6.
    pub non_ip: u64,
    /// Source or destination in an excluded prefix.
    pub excluded: u64,
    /// Neither source nor destination in an allowed prefix.
    pub not_allowed: u64,
}

/// The filter's kind and, where it can know them, its reject counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FilterStatus {
    /// Which filter is attached.
    pub kind: FilterKind,
    /// Rejects per reason; `None` where they are unknown (classic) or meaningless (none).
    pub rejects: Option<Rejects>,
}

/// The fanout group as it was joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FanoutInfo {
    /// How frames are spread.
    pub mode: FanoutMode,
    /// The group id in use.
    pub group: u16,
    /// Whether full rings spill over.
    pub rollover: bool,
    /// Why the mode was chosen, when the operator named none ([`crate::fanout_choice`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chosen_because: Option<&'static str>,
}

/// Where a capture's frames come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Live, from an interface's rings.
    #[default]
    Live,
    /// Replayed from a pcap file.
    Pcap,
    /// Replayed from a pcapng file.
    Pcapng,
}

impl Source {
    /// Whether the frames come from a file.
    pub fn is_replay(self) -> bool {
        self != Self::Live
    }
}

/// Everything known at one tick.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// The interface captured on; in a replay, the file's path (`-` for standard input).
    pub interface: String,
    /// Where the frames come from.
    pub source: Source,
    /// When this snapshot was built.
    #[serde(serialize_with = "rfc3339")]
    pub taken_at: SystemTime,
    /// When capture started.
    #[serde(serialize_with = "rfc3339")]
    pub started_at: SystemTime,
    /// Time from start to this snapshot.
    #[serde(rename = "duration_secs", serialize_with = "secs")]
    pub duration: Duration,
    /// Ticks completed; rate windows count in ticks.
    pub tick: u32,
    /// IP traffic counted.
    pub totals: Totals,
    /// Per-worker capture health.
    pub workers: Vec<WorkerStats>,
    /// Frames not counted as traffic, per reason.
    pub parse_errors: ParseErrors,
    /// The socket filter.
    pub filter: FilterStatus,
    /// The fanout group.
    pub fanout: FanoutInfo,
    /// The link's kind, which decides where parsing starts.
    pub link: LinkInfo,
    /// Each worker's ring geometry.
    pub ring: RingGeometry,
    /// Bound on the talker table.
    pub max_talkers: usize,
    /// Bound on the flow table.
    pub max_flows: usize,
    /// Whether flows are counted.
    pub flows_enabled: bool,
    /// Tracked addresses, in no particular order.
    pub talkers: Vec<Talker>,
    /// What was evicted from the talker table.
    pub evicted_talkers: EvictedTalkers,
    /// Tracked flows, in no particular order.
    pub flows: Vec<Flow>,
    /// What was evicted from the flow table.
    pub evicted_flows: EvictedFlows,
    /// Named CIDR groups, counted exactly, in configuration order.
    pub groups: Vec<crate::groups::GroupTotals>,
}

impl Snapshot {
    /// A copy of everything but the rows, which are left empty: the cheap start of a
    /// snapshot that keeps only some of them.
    #[must_use]
    pub fn without_rows(&self) -> Self {
        Self {
            interface: self.interface.clone(),
            source: self.source,
            taken_at: self.taken_at,
            started_at: self.started_at,
            duration: self.duration,
            tick: self.tick,
            totals: self.totals,
            workers: self.workers.clone(),
            parse_errors: self.parse_errors,
            filter: self.filter,
            fanout: self.fanout,
            link: self.link,
            ring: self.ring,
            max_talkers: self.max_talkers,
            max_flows: self.max_flows,
            flows_enabled: self.flows_enabled,
            talkers: Vec::new(),
            evicted_talkers: self.evicted_talkers,
            flows: Vec::new(),
            evicted_flows: self.evicted_flows,
            groups: self.groups.clone(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A snapshot of nothing, for tests that need a value to pass around.
    pub(crate) fn empty_snapshot() -> Snapshot {
        Snapshot {
            interface: "tc0".into(),
            source: Source::Live,
            taken_at: SystemTime::UNIX_EPOCH,
            started_at: SystemTime::UNIX_EPOCH,
            duration: Duration::ZERO,
            tick: 0,
            totals: Totals::default(),
            workers: Vec::new(),
            parse_errors: ParseErrors::default(),
            filter: FilterStatus::default(),
            fanout: FanoutInfo {
                mode: FanoutMode::Hash,
                group: 0,
                rollover: false,
                chosen_because: None,
            },
            link: LinkInfo::default(),
            ring: RingGeometry {
                block_size: 1 << 20,
                block_count: 8,
                frame_size: 2048,
                block_timeout_ms: 10,
                snap_len: 256,
            },
            max_talkers: 1,
            max_flows: 1,
            flows_enabled: false,
            talkers: Vec::new(),
            evicted_talkers: EvictedTalkers::default(),
            flows: Vec::new(),
            evicted_flows: EvictedFlows::default(),
            groups: Vec::new(),
        }
    }

    #[test]
    fn window_rates_serialise_as_named_windows() {
        let json = serde_json::to_string(&WindowRates([1.0, 2.5, 0.0])).unwrap();
        assert_eq!(json, r#"{"2s":1.0,"10s":2.5,"40s":0.0}"#);
    }

    #[test]
    fn flows_name_known_protocols_and_number_the_rest() {
        let json = |proto| {
            let mut f = Flow {
                proto,
                a_ip: IpAddr::from([198, 18, 0, 2]),
                a_port: None,
                b_ip: IpAddr::from([198, 18, 0, 1]),
                b_port: Some(53),
                packets_a_to_b: 0,
                bytes_a_to_b: 0,
                packets_b_to_a: 0,
                bytes_b_to_a: 0,
                first_seen: Timestamp(0),
                last_seen: Timestamp(1_500_000_000),
                a_to_b_bytes_per_sec: WindowRates::default(),
                b_to_a_bytes_per_sec: WindowRates::default(),
            };
            f.proto = proto;
            serde_json::to_value(&f).unwrap()
        };
        assert_eq!(json(17)["proto"], "udp");
        assert_eq!(json(47)["proto"], 47);
        assert_eq!(json(47)["a_port"], serde_json::Value::Null);
        assert_eq!(json(47)["last_seen"], "1970-01-01T00:00:01.500Z");
    }
}
