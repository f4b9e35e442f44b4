//! Starting and stopping a capture: sockets in the safe order, pinned workers, the aggregator.
//!
//! [`Capture::start`] returns once every fanout member is bound and in the group, so frames
//! sent after it returns are counted. [`Capture::stop`] drains the rings and returns the final
//! snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::aggregator::{Aggregator, Setup, Update};
use crate::config::{CaptureConfig, RingGeometry};
use crate::counters::{TALLY_FLOWS, TALLY_TALKERS, Tally};
use crate::groups::{GroupCounts, GroupSet, GroupTotals};
use crate::ring::{Ring, interface_index};
use crate::snapshot::{FanoutInfo, Snapshot};
use crate::stats::{RingCounters, WorkerStats};
use crate::worker::{Counting, Signals, Worker};
use crate::{CaptureError, PacketFilter, iface};

/// Tallies per worker: one being filled, the rest in flight or waiting.
const TALLIES_PER_WORKER: usize = 3;
/// Most workers one capture may run (the kernel allows 256 sockets per fanout group).
pub const MAX_WORKERS: usize = 256;

/// How a capture ended.
pub struct Finished {
    /// The snapshot built after every ring was drained.
    pub snapshot: Arc<Snapshot>,
    /// The first failure, if capture did not simply stop when asked.
    pub error: Option<CaptureError>,
}

/// A running capture.
pub struct Capture {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    aggregator: JoinHandle<Finished>,
    fanout: FanoutInfo,
    geometry: RingGeometry,
}

impl Capture {
    /// Opens the rings, joins the fanout group and starts the workers and the aggregator.
    ///
    /// `publish` is called from the aggregator thread with every snapshot and failure.
    /// `filter`, when given, is attached to every socket before it is bound.
    pub fn start(
        config: &CaptureConfig,
        filter: Option<Arc<dyn PacketFilter>>,
        publish: impl FnMut(Update) + Send + 'static,
    ) -> Result<Self, CaptureError> {
        if config.workers == 0 || config.workers > MAX_WORKERS {
            return Err(CaptureError::Cpus(format!(
                "{} workers requested; 1 to {MAX_WORKERS} are possible",
                config.workers
            )));
        }
        if config.cpus.is_empty() {
            return Err(CaptureError::Cpus("the CPU list is empty".into()));
        }
        let ifindex =
            interface_index(&config.interface).ok_or_else(|| CaptureError::InterfaceNotFound {
                name: config.interface.clone(),
                available: iface::interface_names(),
            })?;
        let groups = Arc::new(GroupSet::new(&config.groups)?);
        let speed = iface::link_speed_mbps(&config.interface);
        let geometry = RingGeometry::resolve(config.ring, speed, config.workers)?;
        log::info!(
            "{}: link speed {}, {} workers x {} blocks of {} KiB = {} MiB of ring each, \
             frame slot {} B, block timeout {} ms",
            config.interface,
            speed.map_or_else(|| "unknown".to_owned(), |s| format!("{s} Mbit/s")),
            config.workers,
            geometry.block_count,
            geometry.block_size >> 10,
            geometry.bytes() >> 20,
            geometry.frame_size,
            geometry.block_timeout_ms,
        );
        let (rings, group) = open_rings(config, ifindex, geometry, filter.as_deref())?;
        let fanout = FanoutInfo {
            mode: config.fanout.mode,
            group,
            defrag: config.fanout.defrag,
            rollover: config.fanout.rollover,
        };

        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Arc::new(AtomicU64::new(0));
        let (to_aggregator, messages) = mpsc::channel();
        let signals = Signals {
            stop: stop.clone(),
            epoch: epoch.clone(),
        };
        let (workers, pools, initial) = spawn_workers(
            config,
            rings,
            ifindex,
            geometry,
            &signals,
            &to_aggregator,
            &groups,
        )?;
        drop(to_aggregator);

        let setup = Setup {
            interface: config.interface.clone(),
            fanout,
            ring: geometry,
            max_talkers: config.max_talkers,
            max_flows: config.max_flows,
            flows: config.flows,
            tick: config.tick,
            workers: initial,
            filter,
            groups: GroupTotals::for_set(&groups),
        };
        let aggregator = Aggregator::new(setup, pools);
        let mut publish = publish;
        drop(signals);
        let aggregator = std::thread::Builder::new()
            .name("tc-aggregator".into())
            .spawn(move || {
                let (snapshot, error) = aggregator.run(&messages, &epoch, &mut publish);
                Finished { snapshot, error }
            })
            .map_err(|e| CaptureError::Thread {
                name: "tc-aggregator".into(),
                message: e.to_string(),
            })?;
        Ok(Self {
            stop,
            workers,
            aggregator,
            fanout,
            geometry,
        })
    }

    /// The fanout group as joined.
    pub fn fanout(&self) -> FanoutInfo {
        self.fanout
    }

    /// The ring geometry every worker uses.
    pub fn geometry(&self) -> RingGeometry {
        self.geometry
    }

    /// Stops the workers, drains their rings and returns the final snapshot.
    pub fn stop(self) -> Result<Finished, CaptureError> {
        self.stop.store(true, Ordering::Release);
        for handle in self.workers {
            let _ = handle.join();
        }
        self.aggregator.join().map_err(|_| CaptureError::Thread {
            name: "tc-aggregator".into(),
            message: "panicked".into(),
        })
    }
}

type Spawned = (
    Vec<JoinHandle<()>>,
    Vec<mpsc::Sender<Tally>>,
    Vec<WorkerStats>,
);

/// Starts one pinned worker per ring, each with its pool of tallies. On failure the workers
/// already started are stopped again.
fn spawn_workers(
    config: &CaptureConfig,
    rings: Vec<Ring>,
    ifindex: u32,
    geometry: RingGeometry,
    signals: &Signals,
    to_aggregator: &mpsc::Sender<crate::worker::Message>,
    groups: &Arc<GroupSet>,
) -> Result<Spawned, CaptureError> {
    let talkers = TALLY_TALKERS.min(config.max_talkers);
    let flows = config.flows.then_some(TALLY_FLOWS.min(config.max_flows));
    let mut pools = Vec::new();
    let mut workers = Vec::new();
    let mut initial = Vec::new();
    for (id, ring) in rings.into_iter().enumerate() {
        let cpu = config.cpus[id % config.cpus.len()];
        let (pool_tx, pool_rx) = mpsc::channel();
        for _ in 1..TALLIES_PER_WORKER {
            let _ = pool_tx.send(
                Tally::with_capacity(talkers, flows).with_groups(GroupCounts::new(groups.clone())),
            );
        }
        pools.push(pool_tx);
        let stats = WorkerStats {
            id,
            cpu,
            ..WorkerStats::default()
        };
        initial.push(stats);
        let worker = Worker {
            ring,
            ifindex,
            interface: config.interface.clone(),
            block_timeout_ms: geometry.block_timeout_ms,
            counting: Counting {
                stats,
                ring_counters: RingCounters::default(),
                tally: Tally::with_capacity(talkers, flows)
                    .with_groups(GroupCounts::new(groups.clone())),
                to_aggregator: to_aggregator.clone(),
                pool: pool_rx,
                seen_epoch: 0,
            },
        };
        let worker_signals = Signals {
            stop: signals.stop.clone(),
            epoch: signals.epoch.clone(),
        };
        match spawn_worker(worker, worker_signals, cpu) {
            Ok(handle) => workers.push(handle),
            Err(err) => {
                signals.stop.store(true, Ordering::Release);
                for handle in workers {
                    let _ = handle.join();
                }
                return Err(err);
            }
        }
    }
    Ok((workers, pools, initial))
}

/// Opens every worker's ring in the setup order: socket with protocol 0, ring, (filter),
/// bind, fanout join. The first socket lets the kernel choose a unique group id unless one
/// was given; the others join that id.
fn open_rings(
    config: &CaptureConfig,
    ifindex: u32,
    geometry: RingGeometry,
    filter: Option<&dyn PacketFilter>,
) -> Result<(Vec<Ring>, u16), CaptureError> {
    let fanout = config.fanout;
    let mut flags = 0;
    if fanout.defrag {
        flags |= libc::PACKET_FANOUT_FLAG_DEFRAG;
    }
    if fanout.rollover && fanout.mode != crate::config::FanoutMode::Rollover {
        flags |= libc::PACKET_FANOUT_FLAG_ROLLOVER;
    }
    let type_flags = fanout.mode.kernel_type() | flags;
    let mut rings = Vec::with_capacity(config.workers);
    let mut group = fanout.group;
    for _ in 0..config.workers {
        let ring = Ring::open(&config.interface, geometry)?;
        if let Some(filter) = filter {
            filter
                .attach(ring.socket())
                .map_err(|message| CaptureError::Filter {
                    interface: config.interface.clone(),
                    message,
                })?;
        }
        ring.bind(ifindex)?;
        if let Some(id) = group {
            ring.join_fanout(u32::from(id) | (type_flags << 16))?;
        } else {
            ring.join_fanout((type_flags | libc::PACKET_FANOUT_FLAG_UNIQUEID) << 16)?;
            group = Some(ring.fanout_group()?);
        }
        rings.push(ring);
    }
    Ok((rings, group.unwrap_or(0)))
}

fn spawn_worker(
    worker: Worker,
    signals: Signals,
    cpu: usize,
) -> Result<JoinHandle<()>, CaptureError> {
    let id = worker.counting.stats.id;
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(format!("tc-worker-{id}"))
        .spawn(move || {
            let pinned = crate::affinity::pin_current_thread(id, cpu);
            let ok = pinned.is_ok();
            let _ = ready_tx.send(pinned);
            if ok {
                worker.run(&signals);
            }
        })
        .map_err(|e| CaptureError::Thread {
            name: format!("tc-worker-{id}"),
            message: e.to_string(),
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(err)) => {
            let _ = handle.join();
            Err(err)
        }
        Err(_) => Err(CaptureError::Thread {
            name: format!("tc-worker-{id}"),
            message: "died before it was ready".into(),
        }),
    }
}
