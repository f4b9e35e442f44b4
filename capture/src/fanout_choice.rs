//! Which fanout mode a capture uses when the operator names none.
//!
//! Counting needs no flow to stay on one worker: the aggregator merges every worker's tally by
//! key each tick. So the mode is only a matter of cost, and of spreading the work.
//!
//! `PACKET_FANOUT_CPU` hands each frame to the socket of the CPU that took it in. The kernel
//! computes no flow hash per frame (the flow dissector and SipHash were 5% of all samples
//! under a random-source flood on veth), and each ring is written by one CPU only and read by
//! the worker pinned to that CPU, so its lines stay in one cache instead of moving between the
//! CPUs that take frames in. Measured beside `hash` on this project's benchmark (veth, two
//! senders), the senders reached 4-10% more frames a second. It spreads the work only when
//! receive processing already runs on several CPUs: a NIC with several receive queues (RSS),
//! RPS, or a device that takes each frame in on the CPU that sent it (veth, tun, loopback),
//! which is where a container host's traffic passes.
//!
//! Otherwise `PACKET_FANOUT_HASH`: a single-queue NIC without RPS takes every frame in on one
//! CPU, and only a hash spreads them over the workers.

use crate::config::FanoutMode;
use crate::iface;

/// What decides the mode: how the interface takes frames in, and how many workers share them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivePath {
    /// Workers in the fanout group.
    pub workers: usize,
    /// The driver's name, when it tells one.
    pub driver: Option<String>,
    /// The hardware type (`ARPHRD_*`).
    pub arphrd: u16,
    /// Receive queues in use, when the driver tells.
    pub rx_queues: Option<u32>,
    /// Whether RPS spreads a receive queue over several CPUs.
    pub rps: bool,
}

/// The mode chosen, and why, as a log line or a snapshot states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    /// The mode.
    pub mode: FanoutMode,
    /// Why, in a few words.
    pub why: &'static str,
}

/// Drivers whose receive runs on the CPU that sent the frame (`veth_xmit`, `tun_get_user`).
const SENDER_CPU_DRIVERS: [&str; 2] = ["veth", "tun"];

impl ReceivePath {
    /// Asks the kernel about `interface` (index `ifindex`, hardware type `arphrd`), in the
    /// calling thread's network namespace.
    pub fn of(interface: &str, ifindex: u32, arphrd: u16, workers: usize) -> Self {
        Self {
            workers,
            driver: iface::driver(interface),
            arphrd,
            rx_queues: iface::rx_queues(interface),
            rps: iface::rps_spreads(interface, ifindex),
        }
    }

    /// The mode for this path.
    pub fn choose(&self) -> Choice {
        let cpu = |why| Choice {
            mode: FanoutMode::Cpu,
            why,
        };
        if self.workers <= 1 {
            cpu("one worker: no frame needs steering, so no hash is computed")
        } else if self.arphrd == libc::ARPHRD_LOOPBACK
            || self
                .driver
                .as_deref()
                .is_some_and(|d| SENDER_CPU_DRIVERS.contains(&d))
        {
            cpu("the device takes each frame in on the CPU that sent it")
        } else if self.rx_queues.is_some_and(|n| n >= 2) {
            cpu("the NIC spreads frames over several receive queues")
        } else if self.rps {
            cpu("RPS spreads receive work over several CPUs")
        } else {
            Choice {
                mode: FanoutMode::Hash,
                why: "one receive queue and no RPS: frames arrive on one CPU, a hash spreads them",
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(driver: &str, rx_queues: Option<u32>, rps: bool) -> ReceivePath {
        ReceivePath {
            workers: 2,
            driver: Some(driver.to_owned()),
            arphrd: libc::ARPHRD_ETHER,
            rx_queues,
            rps,
        }
    }

    #[test]
    fn cpu_where_receive_work_is_already_spread() {
        for path in [
            nic("veth", Some(1), false),
            nic("tun", None, false),
            nic("ixgbe", Some(8), false),
            nic("virtio_net", Some(2), false),
            nic("e1000", Some(1), true),
            ReceivePath {
                driver: None,
                arphrd: libc::ARPHRD_LOOPBACK,
                ..nic("", None, false)
            },
            ReceivePath {
                workers: 1,
                ..nic("e1000", Some(1), false)
            },
        ] {
            assert_eq!(path.choose().mode, FanoutMode::Cpu, "{path:?}");
        }
    }

    #[test]
    fn hash_where_frames_arrive_on_one_cpu() {
        for path in [
            nic("e1000", Some(1), false),
            nic("virtio_net", None, false),
            nic("bridge", None, false),
            nic("dummy", None, false),
        ] {
            assert_eq!(path.choose().mode, FanoutMode::Hash, "{path:?}");
        }
    }
}
