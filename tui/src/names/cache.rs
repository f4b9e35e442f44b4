//! The resolver's memory: what each address resolved to and until when, bounded.
//!
//! Every answer is kept for its time to live, clamped: a name for the record's TTL, "no name"
//! for the zone's negative TTL, and a failure (timeout, refused, no route) for a short fixed
//! time, so a dead or blackholed resolver is asked about an address at most once per
//! [`FAILURE_RETRY`] rather than on every tick. An expired name stays shown while it is asked
//! again. The cache holds at most `capacity` addresses; a new one replaces the entry wanted
//! longest ago (never one being looked up). Time is passed in, so tests need no clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::NameMap;

/// Shortest time an answer is kept, whatever its TTL: a TTL of 0 must not mean a query per
/// tick.
pub const MIN_TTL: Duration = Duration::from_secs(30);
/// Longest time a name is kept before it is asked again.
pub const MAX_TTL: Duration = Duration::from_secs(3600);
/// Longest time "no name" is kept (RFC 2308 suggests at most 3 hours; names appear, so less).
pub const MAX_NEGATIVE_TTL: Duration = Duration::from_secs(600);
/// How long a failed lookup waits before the address is asked again.
pub const FAILURE_RETRY: Duration = Duration::from_secs(30);
/// Longest name kept: the most a DNS name can spell (RFC 1035: 255 octets on the wire).
pub const MAX_NAME: usize = 253;

/// What one reverse lookup found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A PTR record: the name, and how long the record may be kept.
    Name(String, Duration),
    /// The resolver answered that there is no name, to be believed this long (the negative
    /// TTL, when the answer carried an SOA).
    NoName(Option<Duration>),
    /// No answer: timeout, refusal, unreachable server.
    Failed,
}

#[derive(Debug)]
struct Entry {
    /// The name shown, if any (kept while an expired one is asked again).
    name: Option<Arc<str>>,
    /// When the answer should be asked again; `None` until the first answer.
    expires: Option<Instant>,
    /// A lookup is under way.
    pending: bool,
    /// The last time the address was on screen or in a file's top rows.
    wanted: Instant,
}

/// Answers per address, bounded, with expiry.
#[derive(Debug)]
pub struct Cache {
    entries: HashMap<IpAddr, Entry>,
    capacity: usize,
}

impl Cache {
    /// An empty cache holding at most `capacity` addresses (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Addresses held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Lookups under way.
    pub fn pending(&self) -> usize {
        self.entries.values().filter(|e| e.pending).count()
    }

    /// Marks `wanted` as wanted at `now` and returns, in the order given, up to `slots` of
    /// them that need a lookup (never asked, or expired, and not already being looked up),
    /// now marked pending.
    pub fn start(&mut self, wanted: &[IpAddr], now: Instant, slots: usize) -> Vec<IpAddr> {
        let mut due = Vec::new();
        for &ip in wanted {
            if let Some(entry) = self.entries.get_mut(&ip) {
                entry.wanted = now;
                let expired = entry.expires.is_none_or(|t| t <= now);
                if expired && !entry.pending && due.len() < slots {
                    entry.pending = true;
                    due.push(ip);
                }
            } else if due.len() < slots && self.make_room() {
                self.entries.insert(
                    ip,
                    Entry {
                        name: None,
                        expires: None,
                        pending: true,
                        wanted: now,
                    },
                );
                due.push(ip);
            }
        }
        due
    }

    /// Records the answer for `ip` received at `now`. An address evicted meanwhile is not
    /// brought back.
    pub fn finish(&mut self, ip: IpAddr, answer: Answer, now: Instant) {
        let Some(entry) = self.entries.get_mut(&ip) else {
            return;
        };
        entry.pending = false;
        let keep = match answer {
            Answer::Name(name, ttl) => {
                let name = clean(&name);
                entry.name = (!name.is_empty()).then(|| Arc::from(name));
                ttl.clamp(MIN_TTL, MAX_TTL)
            }
            Answer::NoName(ttl) => {
                entry.name = None;
                ttl.unwrap_or(MIN_TTL).clamp(MIN_TTL, MAX_NEGATIVE_TTL)
            }
            // A failure keeps whatever name was known: the server did not say it changed.
            Answer::Failed => FAILURE_RETRY,
        };
        entry.expires = Some(now + keep);
    }

    /// Every name known, for the views and files.
    pub fn names(&self) -> NameMap {
        self.entries
            .iter()
            .filter_map(|(ip, e)| Some((*ip, e.name.clone()?)))
            .collect()
    }

    /// Frees a place when the cache is full by dropping the entry wanted longest ago that is
    /// not being looked up; false when every entry is pending.
    fn make_room(&mut self) -> bool {
        if self.entries.len() < self.capacity {
            return true;
        }
        let oldest = self
            .entries
            .iter()
            .filter(|(_, e)| !e.pending)
            .min_by_key(|(_, e)| e.wanted)
            .map(|(ip, _)| *ip);
        oldest.is_some_and(|ip| self.entries.remove(&ip).is_some())
    }
}

/// A PTR name as shown: without the root's trailing dot, lowercased (DNS names are
/// case-insensitive, and the `/` filter compares lowercase), only printable ASCII (a name is
/// data from the network and must not drive the terminal), at most [`MAX_NAME`] characters.
fn clean(name: &str) -> String {
    name.trim_end_matches('.')
        .chars()
        .filter(char::is_ascii_graphic)
        .take(MAX_NAME)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([198, 18, 0, n])
    }

    fn name(cache: &Cache, n: u8) -> Option<String> {
        cache.names().get(ip(n)).map(str::to_owned)
    }

    #[test]
    fn a_name_is_kept_for_its_ttl_then_asked_again_while_still_shown() {
        let t0 = Instant::now();
        let mut cache = Cache::new(16);
        assert_eq!(cache.start(&[ip(1)], t0, 8), vec![ip(1)]);
        // Pending: not asked twice.
        assert!(cache.start(&[ip(1)], t0, 8).is_empty());
        cache.finish(
            ip(1),
            Answer::Name("Host-1.Lab.Example.".into(), Duration::from_secs(120)),
            t0,
        );
        assert_eq!(name(&cache, 1).as_deref(), Some("host-1.lab.example"));
        assert!(
            cache
                .start(&[ip(1)], t0 + Duration::from_secs(119), 8)
                .is_empty()
        );
        let later = t0 + Duration::from_secs(120);
        assert_eq!(cache.start(&[ip(1)], later, 8), vec![ip(1)]);
        assert_eq!(name(&cache, 1).as_deref(), Some("host-1.lab.example"));
        cache.finish(ip(1), Answer::NoName(None), later);
        assert_eq!(name(&cache, 1), None);
    }

    #[test]
    fn ttls_are_clamped_and_negative_answers_cached() {
        let t0 = Instant::now();
        let mut cache = Cache::new(16);
        cache.start(&[ip(1), ip(2), ip(3), ip(4)], t0, 8);
        cache.finish(ip(1), Answer::Name("a".into(), Duration::ZERO), t0);
        cache.finish(
            ip(2),
            Answer::Name("b".into(), Duration::from_secs(86400)),
            t0,
        );
        cache.finish(ip(3), Answer::NoName(Some(Duration::from_secs(86400))), t0);
        cache.finish(ip(4), Answer::Failed, t0);
        let due = |cache: &mut Cache, at: Duration| {
            cache.start(&[ip(1), ip(2), ip(3), ip(4)], t0 + at, 8)
        };
        assert!(due(&mut cache, Duration::from_secs(29)).is_empty());
        assert_eq!(due(&mut cache, MIN_TTL), vec![ip(1), ip(4)]);
        assert_eq!(due(&mut cache, MAX_NEGATIVE_TTL), vec![ip(3)]);
        assert_eq!(due(&mut cache, MAX_TTL), vec![ip(2)]);
        // A failure keeps the name it had.
        cache.finish(ip(2), Answer::Failed, t0 + MAX_TTL);
        assert_eq!(name(&cache, 2).as_deref(), Some("b"));
    }

    #[test]
    fn slots_bound_the_lookups_started() {
        let t0 = Instant::now();
        let mut cache = Cache::new(64);
        let wanted: Vec<IpAddr> = (1..=20).map(ip).collect();
        assert_eq!(cache.start(&wanted, t0, 3), vec![ip(1), ip(2), ip(3)]);
        assert_eq!(cache.pending(), 3);
        assert_eq!(cache.start(&wanted, t0, 2), vec![ip(4), ip(5)]);
        assert_eq!(cache.pending(), 5);
        // Addresses not yet started take no place.
        assert_eq!(cache.len(), 5);
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_the_least_recently_wanted() {
        let t0 = Instant::now();
        let mut cache = Cache::new(4);
        for n in 1..=4 {
            let at = t0 + Duration::from_secs(u64::from(n));
            cache.start(&[ip(n)], at, 8);
            cache.finish(ip(n), Answer::Name(format!("h{n}"), MAX_TTL), at);
        }
        // ip(1) is wanted again, so ip(2) is now the stalest.
        cache.start(&[ip(1)], t0 + Duration::from_secs(10), 8);
        cache.start(&[ip(9)], t0 + Duration::from_secs(11), 8);
        assert_eq!(cache.len(), 4);
        assert_eq!(name(&cache, 2), None);
        assert_eq!(name(&cache, 1).as_deref(), Some("h1"));
        // Pending entries are never evicted: with all four pending, a fifth waits.
        let mut busy = Cache::new(4);
        assert_eq!(
            busy.start(&(1..=6).map(ip).collect::<Vec<_>>(), t0, 8)
                .len(),
            4
        );
        assert!(busy.start(&[ip(7)], t0, 8).is_empty());
        // An answer for an evicted address does not bring it back.
        busy.finish(ip(7), Answer::Name("x".into(), MAX_TTL), t0);
        assert_eq!(busy.len(), 4);
    }

    #[test]
    fn names_are_cleaned_of_control_characters_and_bounded() {
        assert_eq!(clean("a\x1b[31mb.example."), "a[31mb.example");
        assert_eq!(clean(&"x".repeat(400)).len(), MAX_NAME);
        let t0 = Instant::now();
        let mut cache = Cache::new(4);
        cache.start(&[ip(1)], t0, 8);
        cache.finish(ip(1), Answer::Name(".".into(), MAX_TTL), t0);
        assert_eq!(name(&cache, 1), None);
    }
}
