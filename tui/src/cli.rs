//! The command line: every option, its parser, and the capture configuration it yields.
//!
//! Values are validated by clap value parsers, so a bad value is reported by clap naming the
//! flag and the value, before anything is opened.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use traffic_counter_capture::affinity::{allowed_cpus, parse_cpu_list};
use traffic_counter_capture::config::{
    DEFAULT_MAX_FLOWS, DEFAULT_MAX_TALKERS, MAX_SNAP_LEN, MIN_SNAP_LEN,
};
use traffic_counter_capture::groups::{Group, GroupSet};
use traffic_counter_capture::iface::{self, LinkInfo};
use traffic_counter_capture::parse::LinkKind;
use traffic_counter_capture::{CaptureConfig, FanoutConfig, FanoutMode, RingOptions};
use traffic_counter_ebpf::{CidrList, FilterMode, FilterRules, VlanList};

use crate::app::rollup::PrefixLens;

/// Live per-IP and per-flow traffic monitor on AF_PACKET TPACKET_V3 rings with fanout.
#[derive(Debug, Parser)]
#[allow(clippy::struct_excessive_bools)] // each bool is an independent command-line switch
#[command(name = "traffic-counter", version, about, max_term_width = 100)]
pub struct Args {
    /// Interface to capture on [default: the one carrying the default route, else the first
    /// non-loopback interface that is up].
    #[arg(short, long, value_name = "IFACE")]
    pub interface: Option<String>,

    /// Count a pcap or pcapng file (Ethernet or Linux cooked SLL/SLL2) instead of an
    /// interface, `-` for standard input; rates are per second of capture time, and the
    /// replay ends with the file. --vlan, --allow and --exclude give the socket filter's
    /// verdicts in userspace; options that only apply to live capture are refused.
    #[arg(
        short = 'r',
        long = "read",
        value_name = "FILE",
        conflicts_with_all = [
            "interface", "workers", "cpus", "fanout", "fanout_group", "fanout_rollover",
            "block_size", "block_count", "frame_size", "block_timeout", "snaplen", "filter",
            "metrics",
        ],
    )]
    pub read: Option<String>,

    /// Capture workers, one per fanout member [default: one per CPU in --cpus, else per
    /// online CPU].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,

    /// CPUs to pin workers to, e.g. 0-3,6; worker i runs on the i-th CPU of the list, wrapping
    /// around [default: the CPUs this process may use].
    #[arg(long, value_name = "LIST", value_parser = parse_cpus)]
    pub cpus: Option<CpuList>,

    /// How the kernel spreads frames across workers. auto: by receiving CPU (cpu) where the
    /// interface already takes frames in on several CPUs (RSS queues, RPS, veth, tun,
    /// loopback), else by flow hash (hash).
    #[arg(long, value_name = "MODE", value_enum, default_value_t = FanoutArg::Auto)]
    pub fanout: FanoutArg,

    /// Fanout group id [default: a unique id chosen by the kernel].
    #[arg(long, value_name = "ID")]
    pub fanout_group: Option<u16>,

    /// Spill to another worker's ring when the chosen one is full (PACKET_FANOUT_FLAG_ROLLOVER).
    #[arg(long)]
    pub fanout_rollover: bool,

    /// Ring block size: a power of two of at least the page size; K/M suffixes allowed
    /// [default: 1M].
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub block_size: Option<u32>,

    /// Blocks per ring [default: enough for 100 ms of line rate across all workers, from the
    /// link speed, 8 MiB to 256 MiB per worker].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=65536))]
    pub block_count: Option<u32>,

    /// Frame slot size: a multiple of 16 that divides the block size [default: 2048].
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub frame_size: Option<u32>,

    /// Milliseconds before the kernel hands over a partly filled block [default: 10].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u32).range(1..=60000))]
    pub block_timeout: Option<u32>,

    /// Bytes of each frame copied into the ring, from the link-layer header: the headers are
    /// all that is counted, and lengths on the wire are exact whatever this is [default: 256].
    #[arg(long, value_name = "BYTES", value_parser = parse_snaplen)]
    pub snaplen: Option<u32>,

    /// Count flows (protocol and both endpoints) as well as addresses.
    #[arg(long)]
    pub flows: bool,

    /// Most addresses tracked at once; the idlest are evicted beyond that.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TALKERS, value_parser = positive)]
    pub max_talkers: usize,

    /// Most flows tracked at once; the idlest are evicted beyond that.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_FLOWS, value_parser = positive)]
    pub max_flows: usize,

    /// Run without the terminal UI: print a summary line and write snapshots every interval.
    #[arg(long)]
    pub headless: bool,

    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub duration: Option<Duration>,

    /// Seconds between headless summary lines and snapshot writes.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, default_value = "1")]
    pub interval: Duration,

    /// Headless: rewrite this JSON file atomically every interval and once more at exit.
    #[arg(long, value_name = "PATH")]
    pub snapshot_file: Option<PathBuf>,

    /// Socket filter: `auto` tries eBPF and falls back to classic BPF; `none` lets every frame
    /// through to userspace.
    #[arg(long, value_name = "KIND", value_enum, default_value_t = FilterArg::Auto)]
    pub filter: FilterArg,

    /// Only frames whose outermost VLAN id is listed pass; `untagged` lets untagged frames
    /// pass, e.g. 100,200-210,untagged.
    #[arg(long, value_name = "LIST")]
    pub vlan: Option<VlanList>,

    /// Reject frames whose source or destination is in one of these prefixes.
    #[arg(long, value_name = "CIDR,...")]
    pub exclude: Option<CidrList>,

    /// Only frames whose source or destination is in one of these prefixes pass.
    #[arg(long, value_name = "CIDR,...")]
    pub allow: Option<CidrList>,

    /// Milliseconds between redraws of the terminal UI.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..=60000))]
    pub tick: u64,

    /// Directory the UI's `w` key writes snapshots to.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub snapshot_dir: PathBuf,

    /// Format of the files the `w` key writes: the headless JSON schema, or the current table
    /// as CSV.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = SnapshotFormat::Json)]
    pub snapshot_format: SnapshotFormat,

    /// Headless snapshot files keep the N biggest talkers and flows (by total bytes) and sum
    /// up the rest; `all` writes every row.
    #[arg(long, value_name = "N|all", default_value = "1000", value_parser = parse_top)]
    pub top: TopRows,

    /// Serve Prometheus metrics on /metrics and a health check on /healthz at this address,
    /// e.g. 127.0.0.1:9848 (headless and with the terminal UI).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,

    /// Talkers exported as series of their own: the top N by bytes, with hysteresis.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_METRICS_TOP, value_parser = metrics_top)]
    pub metrics_top: usize,

    /// Roll IPv6 talkers up to networks of this many bits in the exported top, e.g. 64.
    #[arg(long, value_name = "BITS", value_parser = clap::value_parser!(u8).range(1..=128))]
    pub metrics_v6_prefix: Option<u8>,

    /// Count the traffic from and to a named set of prefixes exactly, on every packet, e.g.
    /// storage=198.18.4.0/24,2001:db8:4::/48; repeat for more groups (at most 64).
    #[arg(long = "group", value_name = "NAME=CIDR,...")]
    pub groups: Vec<Group>,

    /// IPv4 prefix length the UI's `g` key rolls talkers up to.
    #[arg(long, value_name = "LEN", default_value_t = 24, value_parser = clap::value_parser!(u8).range(0..=32))]
    pub rollup_v4: u8,

    /// IPv6 prefix length the UI's `g` key rolls talkers up to.
    #[arg(long, value_name = "LEN", default_value_t = 64, value_parser = clap::value_parser!(u8).range(0..=128))]
    pub rollup_v6: u8,

    // Privileges and sharing: who the process becomes once capture is set up, who may read
    // its files, and whether it may share a fanout group.
    /// Once capture is set up, run as this user and its groups, with no capabilities (as
    /// tcpdump -Z) [default: the invoking user under sudo, else the user it started as;
    /// `root` keeps root, without capabilities].
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Files written (snapshots, `w`) get this group and mode 0640 [default: mode 0600].
    /// The user it runs as must be a member.
    #[arg(long, value_name = "NAME")]
    pub file_group: Option<String>,

    /// Join the --fanout-group even when other sockets already use it (another instance, an
    /// IDS): the kernel then spreads frames across all of them, and each sees only its share.
    #[arg(long, requires = "fanout_group")]
    pub fanout_join: bool,

    /// Show addresses only: no reverse DNS lookups at all (`n` toggles names in the UI).
    #[arg(short = 'n', long)]
    pub no_dns: bool,

    /// Show port numbers, not service names from /etc/services.
    #[arg(short = 'N', long)]
    pub no_port_names: bool,
}

/// How many rows of each table a headless snapshot file keeps: `Some(n)`, or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopRows(pub Option<usize>);

fn parse_top(text: &str) -> Result<TopRows, String> {
    if text.eq_ignore_ascii_case("all") {
        return Ok(TopRows(None));
    }
    positive(text)
        .map(|n| TopRows(Some(n)))
        .map_err(|_| format!("{text:?} must be a whole number above 0, or `all`"))
}

/// Talkers exported by default.
pub const DEFAULT_METRICS_TOP: usize = 20;
/// The most talkers `--metrics-top` may export: each costs four series on every node.
pub const MAX_METRICS_TOP: usize = 100;

/// What the `w` key writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SnapshotFormat {
    /// The snapshot JSON schema, limited to the rows shown.
    Json,
    /// The current table as CSV.
    Csv,
}

/// The `--filter` choice as spelled on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FilterArg {
    /// eBPF, else classic BPF.
    Auto,
    /// eBPF, or fail naming the capability.
    Ebpf,
    /// Classic BPF; reject counts unknown.
    Classic,
    /// No filter.
    None,
}

impl From<FilterArg> for FilterMode {
    fn from(arg: FilterArg) -> Self {
        match arg {
            FilterArg::Auto => Self::Auto,
            FilterArg::Ebpf => Self::Ebpf,
            FilterArg::Classic => Self::Classic,
            FilterArg::None => Self::None,
        }
    }
}

/// A parsed `--cpus` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

fn parse_cpus(text: &str) -> Result<CpuList, String> {
    parse_cpu_list(text).map(CpuList)
}

/// Fanout modes as spelled on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FanoutArg {
    /// cpu where receive work is already spread over CPUs, else hash.
    Auto,
    /// By flow hash: both directions of a flow on one worker.
    Hash,
    /// Round robin.
    Lb,
    /// By receiving CPU.
    Cpu,
    /// Fill one worker, then the next.
    Rollover,
    /// Random worker.
    Random,
    /// By NIC receive queue.
    Qm,
}

impl FanoutArg {
    /// The mode asked for; `None` leaves the choice to the capture.
    fn mode(self) -> Option<FanoutMode> {
        Some(match self {
            Self::Auto => return None,
            Self::Hash => FanoutMode::Hash,
            Self::Lb => FanoutMode::Lb,
            Self::Cpu => FanoutMode::Cpu,
            Self::Rollover => FanoutMode::Rollover,
            Self::Random => FanoutMode::Random,
            Self::Qm => FanoutMode::Qm,
        })
    }
}

impl Args {
    /// Parses the command line, then checks what one flag's parser cannot see alone (the
    /// groups together); a problem exits with a usage error naming the flag, like clap's own.
    pub fn parse_checked() -> Self {
        let args = Self::parse();
        if let Err(err) = GroupSet::new(&args.groups) {
            use clap::CommandFactory;
            Self::command()
                .error(
                    clap::error::ErrorKind::ValueValidation,
                    format!("invalid value for '--group <NAME=CIDR,...>': {err}"),
                )
                .exit();
        }
        args
    }

    /// The prefix lengths of the UI's prefix roll-up (`--rollup-v4`, `--rollup-v6`).
    pub fn rollup_lens(&self) -> PrefixLens {
        PrefixLens {
            v4: self.rollup_v4,
            v6: self.rollup_v6,
        }
    }

    /// The filtering rules these options ask for.
    pub fn filter_rules(&self) -> FilterRules {
        FilterRules {
            vlans: self.vlan.clone(),
            exclude: self.exclude.clone().map(|l| l.0).unwrap_or_default(),
            allow: self.allow.clone().map(|l| l.0),
        }
    }

    /// The filter mode to set up on `interface`, and a notice when it is not the one asked for.
    ///
    /// On a link without a link-layer header (tun, WireGuard, ipip) the filters, which read
    /// Ethernet offsets, would misjudge every frame, so `auto` without rules runs without a
    /// filter there. An explicit filter or rules stay as asked, and capture refuses them with
    /// a message saying why.
    pub fn filter_mode(&self, interface: &str) -> (FilterMode, Option<String>) {
        let headerless = iface::link_state(interface)
            .ok()
            .and_then(|state| LinkInfo::for_arphrd(state.arphrd))
            .is_some_and(|link| link.kind == LinkKind::Ip);
        if headerless
            && self.filter == FilterArg::Auto
            && self.filter_rules() == FilterRules::default()
        {
            let notice = format!(
                "{interface} has no link-layer header and the socket filters read Ethernet \
                 headers, so capture runs without a filter (the x key is unavailable)"
            );
            (FilterMode::None, Some(notice))
        } else {
            (self.filter.into(), None)
        }
    }

    /// The capture configuration these options ask for, on `interface`.
    pub fn capture_config(&self, interface: String) -> CaptureConfig {
        let cpus = self
            .cpus
            .as_ref()
            .map_or_else(allowed_cpus, |list| list.0.clone());
        let workers = self.workers.map_or(cpus.len(), usize::from);
        let mut config = CaptureConfig::new(interface);
        config.workers = workers;
        config.cpus = cpus;
        config.fanout = FanoutConfig {
            mode: self.fanout.mode(),
            rollover: self.fanout_rollover,
            group: self.fanout_group,
            join_existing: self.fanout_join,
        };
        config.ring = RingOptions {
            block_size: self.block_size,
            block_count: self.block_count,
            frame_size: self.frame_size,
            block_timeout_ms: self.block_timeout,
            snap_len: self.snaplen,
        };
        config.flows = self.flows;
        config.max_talkers = self.max_talkers;
        config.max_flows = self.max_flows;
        config.groups.clone_from(&self.groups);
        config
    }
}

/// Parses a byte size with an optional binary K/M/G suffix: `65536`, `64K`, `1M`.
fn parse_size(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 10),
        Some((i, 'm' | 'M')) => (&t[..i], 20),
        Some((i, 'g' | 'G')) => (&t[..i], 30),
        _ => (t, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 65536, 64K, 1M)"))?;
    u32::try_from(n << shift)
        .ok()
        .filter(|&v| v > 0 && n << shift >> shift == n)
        .ok_or_else(|| format!("{text:?} is out of range (1 byte to 4 GiB)"))
}

/// A snap length: a size as [`parse_size`] reads it, from the shortest that holds every
/// header counting needs to libpcap's longest.
fn parse_snaplen(text: &str) -> Result<u32, String> {
    let len = parse_size(text)?;
    if (MIN_SNAP_LEN..=MAX_SNAP_LEN).contains(&len) {
        Ok(len)
    } else {
        Err(format!(
            "{text:?} must be between {MIN_SNAP_LEN} and {MAX_SNAP_LEN} bytes"
        ))
    }
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if secs.is_finite() && (0.05..=31_536_000.0).contains(&secs) {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(format!(
            "{text:?} must be between 0.05 and 31536000 seconds"
        ))
    }
}

fn metrics_top(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_METRICS_TOP).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} must be a whole number from 1 to {MAX_METRICS_TOP} (each exported \
             talker costs 4 series on every node)"
        )),
    }
}

fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{text:?} must be a whole number above 0")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn sizes_and_seconds() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert!(parse_size("4G").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("1.5M").is_err());
        assert_eq!(parse_seconds("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("nan").is_err());
    }

    #[test]
    fn options_become_a_capture_config() {
        let args = Args::try_parse_from([
            "traffic-counter",
            "-i",
            "eth9",
            "--cpus",
            "0,1",
            "--fanout",
            "lb",
            "--fanout-group",
            "77",
            "--block-size",
            "64K",
            "--block-count",
            "8",
            "--flows",
            "--max-talkers",
            "10",
        ])
        .unwrap();
        let c = args.capture_config("eth9".into());
        assert_eq!((c.workers, c.cpus.clone()), (2, vec![0, 1]));
        assert_eq!(
            (c.fanout.mode, c.fanout.group),
            (Some(FanoutMode::Lb), Some(77))
        );
        assert_eq!(
            (c.ring.block_size, c.ring.block_count),
            (Some(65536), Some(8))
        );
        assert!(c.flows);
        assert_eq!(c.max_talkers, 10);
        assert_eq!(args.top, TopRows(Some(1000)));
        assert!(!args.no_dns && !args.no_port_names);
        let off = Args::try_parse_from(["traffic-counter", "-n", "-N"]).unwrap();
        assert!(off.no_dns && off.no_port_names);
        let long = Args::try_parse_from(["traffic-counter", "--no-dns", "--no-port-names"]);
        assert!(long.is_ok_and(|a| a.no_dns && a.no_port_names));
        let all = Args::try_parse_from(["traffic-counter", "--top", "all"]).unwrap();
        assert_eq!(all.top, TopRows(None));
    }

    #[test]
    fn fanout_defrag_is_gone() {
        // PACKET_FANOUT_FLAG_DEFRAG made the kernel hand over a reassembled datagram as one
        // packet and swallow incomplete trains, hiding both from the counts (docs/design.md).
        let err = Args::try_parse_from(["traffic-counter", "--fanout-defrag"]).unwrap_err();
        assert!(err.to_string().contains("--fanout-defrag"), "{err}");
    }

    #[test]
    fn auto_runs_without_a_filter_only_on_headerless_links() {
        let auto = Args::try_parse_from(["traffic-counter"]).unwrap();
        // Loopback has an (all-zero) Ethernet header: the filters apply there.
        assert_eq!(auto.filter_mode("lo"), (FilterMode::Auto, None));
        let ebpf = Args::try_parse_from(["traffic-counter", "--filter", "ebpf"]).unwrap();
        assert_eq!(ebpf.filter_mode("lo").0, FilterMode::Ebpf);
    }

    #[test]
    fn bad_values_name_their_flag() {
        for (flag, value) in [
            ("--workers", "0"),
            ("--cpus", "3-1"),
            ("--fanout", "bogus"),
            ("--block-size", "lots"),
            ("--max-talkers", "0"),
            ("--interval", "0"),
            ("--duration", "soon"),
            ("--vlan", "5000"),
            ("--exclude", "198.18.0.0/40"),
            ("--allow", "nowhere"),
            ("--filter", "maybe"),
            ("--top", "none"),
            ("--metrics", "localhost"),
            ("--metrics-top", "101"),
            ("--metrics-top", "0"),
            ("--metrics-v6-prefix", "129"),
            ("--group", "bad name=198.18.0.0/15"),
            ("--group", "lab=198.18.0.0/99"),
            ("--rollup-v4", "33"),
            ("--rollup-v6", "129"),
        ] {
            let err = Args::try_parse_from(["traffic-counter", flag, value]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(flag), "{flag}: {text}");
            assert!(text.contains(value), "{flag}: {text}");
        }
    }
}
