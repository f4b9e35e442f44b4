//! Typed errors for everything the capture library can refuse or fail at.
//!
//! Each variant carries the context an operator needs to act on it (the interface, the socket
//! option, the capability), so the binary can print one clear line without guessing.

use std::io;

/// Why capture could not start, or why it stopped.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The named interface does not exist in this network namespace.
    #[error("interface {name:?} not found; available interfaces: {}", available.join(", "))]
    InterfaceNotFound {
        /// The name that was asked for.
        name: String,
        /// The interfaces that do exist, in index order.
        available: Vec<String>,
    },
    /// The interface is administratively down. Kernels before 6.x refuse to join a fanout
    /// group on a down link (`EINVAL`), and a capture started there would count nothing until
    /// someone brings it up; once running, capture survives the link going down and up.
    #[error(
        "interface {interface} is down: bring it up first (ip link set {interface} up); \
         once capture runs, the link may go down and up again and counting resumes"
    )]
    InterfaceDown {
        /// The interface that is down.
        interface: String,
    },
    /// The interface's frames carry a link-layer header capture cannot parse.
    #[error(
        "interface {interface} has hardware type {arphrd} (see /sys/class/net/{interface}/type), \
         whose frames traffic-counter cannot parse; it supports Ethernet-like links (Ethernet, \
         veth, bridges, bonds, VLANs, loopback) and links without a link-layer header (tun, \
         WireGuard, ipip, sit, ip6tnl)"
    )]
    UnsupportedLink {
        /// The interface.
        interface: String,
        /// Its `ARPHRD_*` type.
        arphrd: u16,
    },
    /// A socket filter was asked for on a link without a link-layer header: the filters read
    /// Ethernet offsets and would misjudge every frame there.
    #[error(
        "interface {interface} has no link-layer header (hardware type {arphrd}), and the \
         socket filters read Ethernet headers: capture there runs without a filter (--filter \
         none), so --vlan, --exclude, --allow and the x key are unavailable"
    )]
    FilterNeedsEthernet {
        /// The interface.
        interface: String,
        /// Its `ARPHRD_*` type.
        arphrd: u16,
    },
    /// The fixed fanout group already has members that this capture did not create.
    #[error(
        "fanout group {group} is already in use by {sockets} packet socket(s) of uid {}: \
         another traffic-counter or an IDS (Suricata's default cluster id is 99) captures \
         with it, and joining would split the frames between us. Pick another --fanout-group, \
         leave it out for a unique group, or pass --fanout-join to share the group on purpose",
        uids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
    )]
    FanoutGroupInUse {
        /// The group id asked for.
        group: u16,
        /// Packet sockets already in it.
        sockets: usize,
        /// Their owners.
        uids: Vec<u32>,
    },
    /// Whether the fixed fanout group is in use could not be found out.
    #[error(
        "cannot tell whether fanout group {group} is already in use: listing packet sockets \
         through sock_diag failed ({source}; the kernel needs CONFIG_PACKET_DIAG, module \
         packet_diag). Leave out --fanout-group for a unique group, or pass --fanout-join to \
         join it whoever else is in it"
    )]
    FanoutCheck {
        /// The group id asked for.
        group: u16,
        /// Why the dump failed.
        #[source]
        source: io::Error,
    },
    /// No interface was named and none could be chosen.
    #[error("no interface given and none is up besides loopback; name one with -i")]
    NoDefaultInterface,
    /// The process lacks a capability that an operation needs.
    #[error("{operation} needs {capability}: run as root or grant it (e.g. setcap cap_net_raw+ep)")]
    Permission {
        /// What was being done, e.g. "opening an AF_PACKET socket".
        operation: &'static str,
        /// The capability needed, e.g. `CAP_NET_RAW`.
        capability: &'static str,
    },
    /// A socket call failed.
    #[error("{operation} on {interface}: {source}")]
    Socket {
        /// What was being done.
        operation: &'static str,
        /// The interface it was done for.
        interface: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Setting or reading a socket option failed.
    #[error("socket option {option} on {interface}: {source}")]
    SocketOption {
        /// The option's name, e.g. `PACKET_RX_RING`.
        option: &'static str,
        /// The interface the socket is for.
        interface: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Mapping the ring into memory failed.
    #[error("mapping a {bytes}-byte TPACKET_V3 ring on {interface}: {source}")]
    Mmap {
        /// The ring's size.
        bytes: usize,
        /// The interface the ring is for.
        interface: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The ring geometry is not one the kernel accepts.
    #[error("invalid ring geometry: {0}")]
    Geometry(String),
    /// The CPU list or worker count is unusable.
    #[error("invalid CPU selection: {0}")]
    Cpus(String),
    /// A named group is unusable (duplicate name, too many groups).
    #[error("invalid named group: {0}")]
    Groups(#[from] crate::groups::GroupError),
    /// Pinning a worker to its CPU failed.
    #[error("pinning worker {worker} to CPU {cpu}: {source}")]
    Affinity {
        /// The worker's index.
        worker: usize,
        /// The CPU it was to run on.
        cpu: usize,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The socket filter could not be attached.
    #[error("attaching the socket filter on {interface}: {message}")]
    Filter {
        /// The interface the socket is for.
        interface: String,
        /// What the filter reported.
        message: String,
    },
    /// The interface disappeared while capturing.
    #[error("interface {interface} went away during capture")]
    InterfaceGone {
        /// The interface that vanished.
        interface: String,
    },
    /// A replay could not read its input.
    #[error(transparent)]
    Replay(#[from] crate::replay::ReplayError),
    /// A worker or aggregator thread could not be started or died.
    #[error("capture thread {name}: {message}")]
    Thread {
        /// The thread's name.
        name: String,
        /// What happened.
        message: String,
    },
}

impl CaptureError {
    /// Builds the error for a failed `socket()`, naming `CAP_NET_RAW` when that is the cause.
    pub(crate) fn socket(operation: &'static str, interface: &str, source: io::Error) -> Self {
        if is_permission(&source) {
            Self::Permission {
                operation,
                capability: "CAP_NET_RAW",
            }
        } else {
            Self::Socket {
                operation,
                interface: interface.to_owned(),
                source,
            }
        }
    }

    /// Builds the error for a failed socket option.
    pub(crate) fn option(option: &'static str, interface: &str, source: io::Error) -> Self {
        Self::SocketOption {
            option,
            interface: interface.to_owned(),
            source,
        }
    }
}

fn is_permission(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EPERM | libc::EACCES))
}
