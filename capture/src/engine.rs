//! Starting and stopping a capture: sockets in the safe order, pinned workers, the aggregator.
//!
//! [`Capture::start`] returns once every fanout member is bound, in the group and filtering,
//! so frames sent after it returns are counted, each exactly once. Snapshots arrive on a
//! latest-wins [`Feed`]. [`Capture::stop`] drains the rings and returns the final snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::aggregator::{Aggregator, Clock, Setup, WorkerSlot};
use crate::config::{CaptureConfig, FanoutMode, RingGeometry};
use crate::counters::{Tally, new_tally};
use crate::fanout_choice::ReceivePath;
use crate::feed::{Feed, Publisher};
use crate::groups::{GroupSet, GroupTotals};
use crate::iface::LinkInfo;
use crate::parse::LinkKind;
use crate::ring::{Ring, interface_index, vnet_hdr_supported};
use crate::snapshot::{FanoutInfo, Snapshot, Source};
use crate::stats::{RingCounters, WorkerStats};
use crate::worker::{Counting, Signals, Worker};
use crate::{CaptureError, PacketFilter, iface};
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
    feed: Feed,
}

/// A capture whose rings are open, in the fanout group and filtering, with no thread started:
/// frames queue in the rings until [`Opened::run`] starts the workers.
pub struct Opened {
    config: CaptureConfig,
    filter: Option<Arc<dyn PacketFilter>>,
    rings: Vec<Ring>,
    ifindex: u32,
    geometry: RingGeometry,
    groups: Arc<GroupSet>,
    fanout: FanoutInfo,
    link: LinkInfo,
}

impl Opened {
    /// The fanout group as joined.
    pub fn fanout(&self) -> FanoutInfo {
        self.fanout
    }

    /// Starts the pinned workers and the aggregator.
    pub fn run(self) -> Result<Capture, CaptureError> {
        let Self {
            config,
            filter,
            rings,
            ifindex,
            geometry,
            groups,
            fanout,
            link,
        } = self;
        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Arc::new(AtomicU64::new(0));
        let (to_aggregator, messages) = mpsc::channel();
        let signals = Signals {
            stop: stop.clone(),
            epoch: epoch.clone(),
        };
        let (workers, slots) = spawn_workers(
            &config,
            rings,
            ifindex,
            &signals,
            &to_aggregator,
            &|| {
                new_tally(
                    &config,
                    config.workers,
                    fanout.mode.keeps_conversations_together(),
                    &groups,
                )
            },
            link,
        )?;
        drop(to_aggregator);
        drop(signals);

        let setup = Setup {
            interface: config.interface,
            fanout,
            ring: geometry,
            max_talkers: config.max_talkers,
            max_flows: config.max_flows,
            flows: config.flows,
            tick: config.tick,
            filter,
            groups: GroupTotals::for_set(&groups),
            link,
            source: Source::Live,
        };
        let publisher = Publisher::new();
        let feed = publisher.subscribe();
        let aggregator = Aggregator::new(setup, Clock::wall(), slots, publisher);
        let aggregator = std::thread::Builder::new()
            .name("tc-aggregator".into())
            .spawn(move || {
                let (snapshot, error) = aggregator.run(&messages, &epoch);
                Finished { snapshot, error }
            })
            .map_err(|e| CaptureError::Thread {
                name: "tc-aggregator".into(),
                message: e.to_string(),
            })?;
        Ok(Capture {
            stop,
            workers,
            aggregator,
            fanout,
            geometry,
            feed,
        })
    }
}

impl Capture {
    /// Opens the rings, joins the fanout group and starts the workers and the aggregator.
    ///
    /// `filter`, when given, is attached to every socket once all of them are in the group;
    /// until then each socket drops everything. [`Capture::open`] and [`Opened::run`] do the
    /// same in two steps, for a caller that drops privileges in between.
    pub fn start(
        config: &CaptureConfig,
        filter: Option<Arc<dyn PacketFilter>>,
    ) -> Result<Self, CaptureError> {
        Self::open(config, filter)?.run()
    }

    /// Does everything that needs privileges: opens the rings, joins the fanout group and
    /// attaches the filter. No thread is started yet, so a privilege drop made before
    /// [`Opened::run`] covers every thread the capture will have.
    pub fn open(
        config: &CaptureConfig,
        filter: Option<Arc<dyn PacketFilter>>,
    ) -> Result<Opened, CaptureError> {
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
        let link = check_link(&config.interface, filter.as_deref())?;
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
        let (mode, chosen_because) = fanout_mode(config, ifindex, link.arphrd)?;
        let (rings, group) = open_rings(config, mode, ifindex, geometry, filter.as_deref())?;
        let fanout = FanoutInfo {
            mode,
            group,
            rollover: config.fanout.rollover,
            chosen_because,
        };
        Ok(Opened {
            config: config.clone(),
            filter,
            rings,
            ifindex,
            geometry,
            groups,
            fanout,
            link,
        })
    }

    /// A reader's end of the latest-wins snapshot feed.
    pub fn feed(&self) -> Feed {
        self.feed.clone()
    }

    /// The fanout group as joined.
    pub fn fanout(&self) -> FanoutInfo {
        self.fanout
    }

    /// The ring geometry every worker uses.
    pub fn geometry(&self) -> RingGeometry {
        self.geometry
    }

    /// A capture run by one thread of its own (a replay), which publishes on `feed`, returns
    /// the final snapshot when it ends, and ends early once `stop` is set.
    pub(crate) fn single(
        stop: Arc<AtomicBool>,
        thread: JoinHandle<Finished>,
        feed: Feed,
        fanout: FanoutInfo,
        geometry: RingGeometry,
    ) -> Self {
        Self {
            stop,
            workers: Vec::new(),
            aggregator: thread,
            fanout,
            geometry,
            feed,
        }
    }

    /// Waits for a capture that ends by itself (a replay, when its input ends) and returns
    /// the final snapshot. A live capture ends only when stopped or when it fails.
    pub fn join(self) -> Result<Finished, CaptureError> {
        for handle in self.workers {
            let _ = handle.join();
        }
        self.aggregator.join().map_err(|_| CaptureError::Thread {
            name: "tc-aggregator".into(),
            message: "panicked".into(),
        })
    }

    /// Stops the workers, drains their rings and returns the final snapshot.
    pub fn stop(self) -> Result<Finished, CaptureError> {
        self.stop.store(true, Ordering::Release);
        self.join()
    }
}

/// Starts one pinned worker per ring, each with a spare tally the aggregator passes back and
/// forth. On failure the workers already started are stopped again.
fn spawn_workers(
    config: &CaptureConfig,
    rings: Vec<Ring>,
    ifindex: u32,
    signals: &Signals,
    to_aggregator: &mpsc::Sender<crate::worker::Message>,
    tally: &dyn Fn() -> Box<Tally>,
    link: LinkInfo,
) -> Result<(Vec<JoinHandle<()>>, Vec<WorkerSlot>), CaptureError> {
    let mut slots = Vec::new();
    let mut workers = Vec::new();
    for (id, ring) in rings.into_iter().enumerate() {
        let cpu = config.cpus[id % config.cpus.len()];
        let (pool_tx, pool_rx) = mpsc::channel();
        let _ = pool_tx.send(tally());
        let stats = WorkerStats {
            id,
            cpu,
            ..WorkerStats::default()
        };
        slots.push(WorkerSlot::new(stats, pool_tx));
        let block_timeout_ms = ring.geometry().block_timeout_ms;
        let worker = Worker {
            source: ring,
            ifindex,
            interface: config.interface.clone(),
            block_timeout_ms,
            counting: Counting {
                stats,
                ring_counters: RingCounters::default(),
                tally: tally(),
                to_aggregator: to_aggregator.clone(),
                pool: pool_rx,
                seen_epoch: 0,
                link,
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
    Ok((workers, slots))
}

/// The fanout mode and, when the capture chose it, why: the operator's mode; else, joining a
/// group that exists, the mode its members use (the kernel refuses any other); else the one
/// [`ReceivePath::choose`] picks for the interface. Refuses a fixed group other sockets hold
/// unless joining it was asked for.
fn fanout_mode(
    config: &CaptureConfig,
    ifindex: u32,
    arphrd: u16,
) -> Result<(FanoutMode, Option<&'static str>), CaptureError> {
    let fanout = config.fanout;
    let mut joined_mode = None;
    if let Some(id) = fanout.group {
        match crate::fanout_diag::group_use(id) {
            Ok(None) => {}
            Ok(Some(used)) if fanout.join_existing => {
                joined_mode = used.kernel_type.and_then(FanoutMode::from_kernel_type);
            }
            Ok(Some(used)) => {
                return Err(CaptureError::FanoutGroupInUse {
                    group: id,
                    sockets: used.sockets,
                    uids: used.uids,
                });
            }
            // Joining was asked for: the join itself says whether it can be done.
            Err(_) if fanout.join_existing => {}
            Err(source) => return Err(CaptureError::FanoutCheck { group: id, source }),
        }
    }
    if let Some(mode) = fanout.mode {
        return Ok((mode, None));
    }
    if let Some(mode) = joined_mode {
        return Ok((mode, Some("the group's members use it")));
    }
    let path = ReceivePath::of(&config.interface, ifindex, arphrd, config.workers);
    let choice = path.choose();
    log::info!(
        "{}: fanout {} ({}; driver {}, receive queues {}, RPS {})",
        config.interface,
        choice.mode.name(),
        choice.why,
        path.driver.as_deref().unwrap_or("unknown"),
        path.rx_queues
            .map_or_else(|| "unknown".to_owned(), |n| n.to_string()),
        if path.rps { "on" } else { "off" },
    );
    Ok((choice.mode, Some(choice.why)))
}

/// Opens every worker's ring in the setup order: socket with protocol 0, ring, a drop-all
/// filter, bind, fanout join; then, once every socket is in the group, the real filter (or,
/// without one, `ret #snap_len`) replaces the drop-all one on each, keeping the snap length.
///
/// Between its bind and its fanout join a socket receives frames on its own while the group
/// already receives them too; the drop-all filter keeps those frames from being counted twice.
/// The first socket lets the kernel choose a unique group id unless one was given; the others
/// join that id.
fn open_rings(
    config: &CaptureConfig,
    mode: FanoutMode,
    ifindex: u32,
    geometry: RingGeometry,
    filter: Option<&dyn PacketFilter>,
) -> Result<(Vec<Ring>, u16), CaptureError> {
    let fanout = config.fanout;
    let mut flags = 0;
    if fanout.rollover && mode != FanoutMode::Rollover {
        flags |= libc::PACKET_FANOUT_FLAG_ROLLOVER;
    }
    let type_flags = mode.kernel_type() | flags;
    let mut rings = Vec::with_capacity(config.workers);
    let mut group = fanout.group;
    let vnet_hdr = vnet_hdr_supported();
    for _ in 0..config.workers {
        let ring = Ring::open(&config.interface, geometry, vnet_hdr)?;
        ring.drop_all()?;
        ring.bind(ifindex)?;
        let joined = if let Some(id) = group {
            ring.join_fanout(u32::from(id) | (type_flags << 16))
        } else {
            ring.join_fanout((type_flags | libc::PACKET_FANOUT_FLAG_UNIQUEID) << 16)
        };
        joined.map_err(|err| down_or(err, &config.interface))?;
        if group.is_none() {
            group = Some(ring.fanout_group()?);
        }
        rings.push(ring);
    }
    for ring in &rings {
        match filter {
            Some(filter) => {
                filter
                    .attach(ring.socket(), geometry.snap_len)
                    .map_err(|message| CaptureError::Filter {
                        interface: config.interface.clone(),
                        message,
                    })?;
            }
            None => ring.snap_only(geometry.snap_len)?,
        }
    }
    Ok((rings, group.unwrap_or(0)))
}

/// `err`, unless the link went down since [`check_link`]: kernels before 6.x refuse a fanout
/// join on a down link with `EINVAL`, which says nothing about why.
fn down_or(err: CaptureError, interface: &str) -> CaptureError {
    match iface::link_state(interface) {
        Ok(state) if !state.up => CaptureError::InterfaceDown {
            interface: interface.to_owned(),
        },
        _ => err,
    }
}

/// Checks that the link is up and of a kind capture can parse, and that a filter is only
/// asked for where its Ethernet offsets hold.
fn check_link(
    interface: &str,
    filter: Option<&dyn PacketFilter>,
) -> Result<LinkInfo, CaptureError> {
    let state = iface::link_state(interface).map_err(|source| CaptureError::Socket {
        operation: "reading the interface's type and flags",
        interface: interface.to_owned(),
        source,
    })?;
    if !state.up {
        return Err(CaptureError::InterfaceDown {
            interface: interface.to_owned(),
        });
    }
    let link = LinkInfo::for_arphrd(state.arphrd).ok_or_else(|| CaptureError::UnsupportedLink {
        interface: interface.to_owned(),
        arphrd: state.arphrd,
    })?;
    if link.kind == LinkKind::Ip && filter.is_some() {
        return Err(CaptureError::FilterNeedsEthernet {
            interface: interface.to_owned(),
            arphrd: state.arphrd,
        });
    }
    Ok(link)
}

fn spawn_worker(
    worker: Worker<Ring>,
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
                worker.run_guarded(&signals);
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
