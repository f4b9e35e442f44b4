//! The resolver thread: reverse lookups off the capture path and off the UI thread.
//!
//! The UI (or headless mode) says which addresses it shows by replacing a list on a watch
//! channel, which never blocks and keeps only the latest list, so a slow resolver never queues
//! work behind it. A thread of its own runs a small tokio runtime that starts lookups for the
//! listed addresses the [`Cache`] says are due, at most [`MAX_IN_FLIGHT`] at a time, each cut
//! off after [`LOOKUP_LIMIT`], and publishes every name it knows on a second watch channel
//! whenever they change. A resolver that never answers therefore costs a few pending lookups
//! and nothing else: the UI draws with the names it has.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use super::NameMap;
use super::cache::{Answer, Cache};
use super::lookup::{Dns, Reverse};

/// Most lookups under way at once.
pub const MAX_IN_FLIGHT: usize = 8;
/// Most addresses remembered (a few hundred bytes each).
pub const CAPACITY: usize = 4096;
/// Most addresses of one wanted list considered: more than any screen or file's named rows.
pub const MAX_WANTED: usize = 1024;
/// Longest a lookup may take, whatever the resolver's own timeouts and retries say.
pub const LOOKUP_LIMIT: Duration = Duration::from_secs(30);
/// How often due entries are looked at again when nothing else happens (expired TTLs).
const RECHECK: Duration = Duration::from_secs(1);

/// A running resolver thread, which stops when this is dropped; or, when names are off, a
/// resolver that asks nothing and never has a name.
pub struct Resolver {
    wanted: Option<watch::Sender<Vec<IpAddr>>>,
    names: watch::Receiver<Arc<NameMap>>,
    thread: Option<JoinHandle<()>>,
}

impl Resolver {
    /// Starts a resolver on the system's DNS configuration.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(Dns::from_system)
    }

    /// A resolver on the system's DNS configuration when `on`, else one that is off; also off,
    /// with a notice saying why, when the resolver cannot start.
    pub fn system(on: bool) -> (Self, Option<String>) {
        if !on {
            return (Self::off(), None);
        }
        match Self::start() {
            Ok(resolver) => (resolver, None),
            Err(err) => (Self::off(), Some(format!("no host names: {err:#}"))),
        }
    }

    /// A resolver that looks nothing up (`-n`).
    pub fn off() -> Self {
        let (_, names) = watch::channel(Arc::default());
        Self {
            wanted: None,
            names,
            thread: None,
        }
    }

    /// Whether lookups happen at all.
    pub fn is_on(&self) -> bool {
        self.wanted.is_some()
    }

    /// Starts a resolver whose lookups `make` builds (inside the thread's runtime).
    pub fn start_with<R: Reverse>(
        make: impl FnOnce() -> anyhow::Result<R> + Send + 'static,
    ) -> anyhow::Result<Self> {
        let (wanted_tx, wanted_rx) = watch::channel(Vec::new());
        let (names_tx, names_rx) = watch::channel(Arc::new(NameMap::default()));
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("tc-names".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready_tx.send(Err(anyhow::Error::new(err)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match make() {
                        Ok(lookup) => {
                            let _ = ready_tx.send(Ok(()));
                            serve(Arc::new(lookup), wanted_rx, names_tx).await;
                        }
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                        }
                    }
                });
            })
            .context("starting the resolver thread")?;
        let ready = ready_rx
            .recv()
            .context("the resolver thread ended before starting")?;
        let mut resolver = Self {
            wanted: Some(wanted_tx),
            names: names_rx,
            thread: Some(thread),
        };
        match ready {
            Ok(()) => Ok(resolver),
            Err(err) => {
                resolver.stop();
                Err(err)
            }
        }
    }

    /// Replaces the addresses wanted by name (those on screen, or a file's top rows). Never
    /// blocks; an unchanged list wakes nothing.
    pub fn want(&self, mut ips: Vec<IpAddr>) {
        ips.truncate(MAX_WANTED);
        if let Some(wanted) = &self.wanted {
            wanted.send_if_modified(|list| {
                let changed = *list != ips;
                if changed {
                    *list = ips;
                }
                changed
            });
        }
    }

    /// Every name known now.
    pub fn names(&self) -> Arc<NameMap> {
        self.names.borrow().clone()
    }

    /// Waits until the names change; pending forever when off or once the thread has stopped.
    pub async fn changed(&mut self) -> Arc<NameMap> {
        if self.names.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        self.names.borrow_and_update().clone()
    }

    fn stop(&mut self) {
        // Closing the list ends the thread's loop; pending lookups are dropped with it.
        self.wanted = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The thread's loop: start due lookups, take answers, publish names, until the wanted list
/// is closed.
async fn serve<R: Reverse>(
    lookup: Arc<R>,
    mut wanted: watch::Receiver<Vec<IpAddr>>,
    names: watch::Sender<Arc<NameMap>>,
) {
    let mut cache = Cache::new(CAPACITY);
    let mut running = JoinSet::new();
    // Which address each running task looks up, so even a task that panicked frees its slot.
    let mut asked: HashMap<tokio::task::Id, IpAddr> = HashMap::new();
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        {
            let list = wanted.borrow_and_update();
            let slots = MAX_IN_FLIGHT.saturating_sub(running.len());
            for ip in cache.start(&list, Instant::now(), slots) {
                let lookup = lookup.clone();
                let task = running.spawn(async move {
                    tokio::time::timeout(LOOKUP_LIMIT, lookup.reverse(ip))
                        .await
                        .unwrap_or(Answer::Failed)
                });
                asked.insert(task.id(), ip);
            }
        }
        tokio::select! {
            changed = wanted.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            Some(first) = running.join_next_with_id() => {
                let mut done = Some(first);
                while let Some(result) = done {
                    let (id, answer) = match result {
                        Ok((id, answer)) => (id, answer),
                        Err(err) => (err.id(), Answer::Failed),
                    };
                    if let Some(ip) = asked.remove(&id) {
                        cache.finish(ip, answer, Instant::now());
                    }
                    done = running.try_join_next_with_id();
                }
                let known = cache.names();
                names.send_if_modified(|shown| {
                    let changed = **shown != known;
                    if changed {
                        *shown = Arc::new(known);
                    }
                    changed
                });
            }
            _ = recheck.tick() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Semaphore;

    use super::*;

    /// A stand-in resolver: names every address `hN` after its last byte, at once or, for the
    /// addresses in `held`, only when the test releases a permit. It records every call and
    /// the most lookups ever under way together.
    struct Fake {
        held: HashSet<IpAddr>,
        gate: Semaphore,
        calls: Mutex<Vec<IpAddr>>,
        active: AtomicUsize,
        peak: AtomicUsize,
    }

    fn fake(held: &[IpAddr]) -> Arc<Fake> {
        Arc::new(Fake {
            held: held.iter().copied().collect(),
            gate: Semaphore::new(0),
            calls: Mutex::default(),
            active: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        })
    }

    impl Reverse for Arc<Fake> {
        async fn reverse(&self, ip: IpAddr) -> Answer {
            self.calls.lock().unwrap().push(ip);
            let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            if self.held.contains(&ip) {
                self.gate.acquire().await.unwrap().forget();
            }
            self.active.fetch_sub(1, Ordering::SeqCst);
            let IpAddr::V4(v4) = ip else {
                return Answer::NoName(None);
            };
            Answer::Name(format!("h{}", v4.octets()[3]), Duration::from_secs(300))
        }
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([198, 18, 0, n])
    }

    fn start(fake: &Arc<Fake>) -> Resolver {
        let fake = fake.clone();
        Resolver::start_with(move || Ok(fake)).unwrap()
    }

    /// Waits (up to a generous bound) until the published names satisfy `ok`.
    async fn until(resolver: &mut Resolver, ok: impl Fn(&NameMap) -> bool) -> Arc<NameMap> {
        tokio::time::timeout(Duration::from_secs(20), async {
            let mut names = resolver.names();
            while !ok(&names) {
                names = resolver.changed().await;
            }
            names
        })
        .await
        .expect("the names arrive")
    }

    fn calls(fake: &Fake) -> Vec<IpAddr> {
        fake.calls.lock().unwrap().clone()
    }

    /// Waits (up to a generous bound) until `n` lookups have started.
    async fn wait_for_calls(fake: &Fake, n: usize) {
        let waited = tokio::time::timeout(Duration::from_secs(20), async {
            while calls(fake).len() < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        waited.await.expect("the lookups start");
    }

    #[tokio::test]
    async fn wanted_addresses_get_names_once_and_others_are_never_asked() {
        let fake = fake(&[]);
        let mut resolver = start(&fake);
        resolver.want(vec![ip(1), ip(2), "2001:db8::1".parse().unwrap()]);
        let names = until(&mut resolver, |n| n.len() == 2).await;
        assert_eq!(names.get(ip(1)), Some("h1"));
        assert_eq!(names.get(ip(2)), Some("h2"));
        // The same list again, then a smaller one: answers come from the cache.
        resolver.want(vec![ip(2), ip(1)]);
        resolver.want(vec![ip(1)]);
        resolver.want(vec![ip(1), ip(3)]);
        until(&mut resolver, |n| n.len() == 3).await;
        let mut asked = calls(&fake);
        asked.sort();
        let mut want = vec![ip(1), ip(2), ip(3), "2001:db8::1".parse().unwrap()];
        want.sort();
        assert_eq!(asked, want);
    }

    #[tokio::test]
    async fn lookups_in_flight_are_bounded_and_a_stuck_one_holds_up_no_other() {
        let held: Vec<IpAddr> = (1..=20).map(ip).collect();
        let fake = fake(&held);
        let mut resolver = start(&fake);
        // A fast address behind the held ones waits for a slot; ahead of them it is answered
        // while every other lookup is stuck.
        let mut wanted = vec![ip(100)];
        wanted.extend(&held);
        resolver.want(wanted.clone());
        until(&mut resolver, |n| n.get(ip(100)) == Some("h100")).await;
        wait_for_calls(&fake, 1 + MAX_IN_FLIGHT).await;
        assert_eq!(calls(&fake).len(), 1 + MAX_IN_FLIGHT);
        // Each answer frees one slot, and the next held address starts.
        fake.gate.add_permits(1);
        wait_for_calls(&fake, 2 + MAX_IN_FLIGHT).await;
        fake.gate.add_permits(held.len());
        until(&mut resolver, |n| n.len() == 21).await;
        assert_eq!(calls(&fake).len(), 21);
        assert_eq!(fake.peak.load(Ordering::SeqCst), MAX_IN_FLIGHT);
    }

    #[test]
    fn a_resolver_that_cannot_start_says_why() {
        let err = Resolver::start_with::<Arc<Fake>>(|| anyhow::bail!("no resolv.conf here"))
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "no resolv.conf here");
    }
}
