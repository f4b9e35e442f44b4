//! A bounded table with CLOCK eviction: the one structure both the workers' per-tick tallies
//! and the aggregate tables are built on.
//!
//! A table never holds more than its capacity and never allocates after it is built. Values
//! sit in a dense slab of slots that never move (the clock's ring); an [`index`] maps a key's
//! hash to a slot number and compares keys in the slab, so it costs 8 bytes a bucket whatever
//! the key. Lookups can be prefetched in two steps ([`ClockTable::prefetch_index`], then
//! [`ClockTable::prefetch_slot`]), so a worker counting a batch of frames waits for memory
//! once per batch instead of once per frame.
//!
//! Eviction is CLOCK (second chance): each slot has a "referenced" bit that every later hit
//! sets. When a new key arrives at a full table, the hand sweeps the ring, clearing set bits,
//! and evicts the first slot whose bit is clear: one nothing touched since the hand last
//! passed. New entries start unreferenced, so a flood of one-packet random sources evicts its
//! own kind first and steady talkers survive. The sweep stops after [`MAX_SWEEP`] slots and
//! evicts where it stands, so a working set just larger than the table (every bit set) costs a
//! bounded step per eviction instead of a lap of the table.
//!
//! Every evicted value is added to the table's evicted sums, so the table plus those sums
//! always equals what went in.

use std::hash::{BuildHasher, Hash};

use index::Index;

use crate::prefetch::prefetch_all;

mod index;

/// A value that can be folded into sums when it is evicted.
pub trait Evict {
    /// The sums evicted values roll into.
    type Sums: Default + Copy;
    /// Adds this value to `sums`.
    fn evict_into(&self, sums: &mut Self::Sums);
}

/// Most referenced slots one eviction passes over before it evicts regardless.
pub const MAX_SWEEP: usize = 32;

/// One entry of the slab, aligned to a cache line so that it spans as few lines as its size
/// allows: a tally's 128-byte slot two lines, where at the allocator's 16-byte alignment it
/// would span three.
#[repr(align(64))]
struct Slot<K, V> {
    key: K,
    value: V,
    /// The key's hash, kept so eviction finds its bucket without rehashing, and can ask for
    /// the bucket of the slots the hand reaches next before it gets there.
    hash: u64,
    referenced: bool,
}

/// How far ahead of the hand eviction prefetches index buckets.
const HAND_LOOKAHEAD: usize = 8;

/// A table of at most `capacity` values that evicts by CLOCK when full.
pub struct ClockTable<K, V: Evict> {
    index: Index,
    slots: Vec<Slot<K, V>>,
    hasher: foldhash::fast::RandomState,
    evicted: V::Sums,
    hand: usize,
    capacity: usize,
}

impl<K: Copy + Eq + Hash, V: Evict> ClockTable<K, V> {
    /// An empty table that will hold up to `capacity` values (at least 1), fully allocated.
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, u32::MAX as usize / 4);
        Self {
            index: Index::new(capacity),
            slots: Vec::with_capacity(capacity),
            hasher: foldhash::fast::RandomState::default(),
            evicted: V::Sums::default(),
            hand: 0,
            capacity,
        }
    }

    /// The value for `key`, created by `create` when the key is new (evicting the idlest
    /// value if the table is full). A hit marks the value referenced.
    #[inline]
    pub fn upsert(&mut self, key: K, create: impl FnOnce() -> V) -> &mut V {
        let hash = self.hash(&key);
        self.upsert_hashed(hash, key, create, |_, _| {})
    }

    /// The hash the table files `key` under.
    #[inline]
    pub fn hash(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Starts loading the index bucket a lookup of `hash` reads first.
    #[inline]
    pub fn prefetch_index(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Starts loading every line of the slot `hash` most likely names (best after
    /// [`Self::prefetch_index`]), reading only the index: comparing the key would wait for the
    /// very load this starts. A slot spans two or three lines, and a lookup reads them all
    /// (the key, then the value and the referenced bit).
    #[inline]
    pub fn prefetch_slot(&self, hash: u64) {
        if let Some(slot) = self.index.probable(hash).and_then(|i| self.slots.get(i)) {
            prefetch_all(std::ptr::from_ref(slot));
        }
    }

    /// The value in the slot `hash` most likely names, without comparing its key (so without
    /// waiting for the key to load): for prefetching what the value points to, never for
    /// counting. `None` when nothing is filed under the hash's tag.
    #[inline]
    pub fn probable(&self, hash: u64) -> Option<&V> {
        let slot = self.index.probable(hash)?;
        self.slots.get(slot).map(|s| &s.value)
    }

    /// [`Self::upsert`] for a key whose [`Self::hash`] the caller has; a value it evicts is
    /// handed to `spill` before it goes (it is added to the evicted sums all the same).
    #[inline]
    pub fn upsert_hashed(
        &mut self,
        hash: u64,
        key: K,
        create: impl FnOnce() -> V,
        spill: impl FnOnce(&K, &V),
    ) -> &mut V {
        if let Some(i) = self.find(hash, &key) {
            return self.hit(i);
        }
        self.insert(hash, key, create, spill)
    }

    /// The value for `key` if it is held or there is room for it; when the table is full, a
    /// new key is admitted (evicting the idlest value) only if `admit_when_full`. A hit marks
    /// the value referenced.
    #[inline]
    pub fn upsert_admitting(
        &mut self,
        key: K,
        create: impl FnOnce() -> V,
        admit_when_full: bool,
    ) -> Option<&mut V> {
        let hash = self.hash(&key);
        self.upsert_admitting_hashed(hash, key, create, admit_when_full)
    }

    /// [`Self::upsert_admitting`] for a key whose [`Self::hash`] the caller has.
    #[inline]
    pub fn upsert_admitting_hashed(
        &mut self,
        hash: u64,
        key: K,
        create: impl FnOnce() -> V,
        admit_when_full: bool,
    ) -> Option<&mut V> {
        if let Some(i) = self.find(hash, &key) {
            return Some(self.hit(i));
        }
        if self.slots.len() < self.capacity || admit_when_full {
            Some(self.insert(hash, key, create, |_, _| {}))
        } else {
            None
        }
    }

    #[inline]
    fn find(&self, hash: u64, key: &K) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(hash, |i| slots.get(i).is_some_and(|s| s.key == *key))
    }

    /// The value in slot `i`, marked referenced.
    #[inline]
    fn hit(&mut self, i: usize) -> &mut V {
        let slot = &mut self.slots[i];
        slot.referenced = true;
        &mut slot.value
    }

    /// Inserts a key known to be absent, evicting when full.
    #[inline]
    fn insert(
        &mut self,
        hash: u64,
        key: K,
        create: impl FnOnce() -> V,
        spill: impl FnOnce(&K, &V),
    ) -> &mut V {
        let slot = Slot {
            key,
            value: create(),
            hash,
            referenced: false,
        };
        let i = if self.slots.len() < self.capacity {
            self.slots.push(slot);
            self.slots.len() - 1
        } else {
            let i = self.evict_one();
            let old = &self.slots[i];
            spill(&old.key, &old.value);
            self.slots[i] = slot;
            i
        };
        self.index.insert(hash, i);
        &mut self.slots[i].value
    }

    /// Evicts the first unreferenced value at or after the hand, or the last of
    /// [`MAX_SWEEP`] referenced ones; returns its slot.
    fn evict_one(&mut self) -> usize {
        let mut passed = 0;
        loop {
            let i = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            let slot = &mut self.slots[i];
            if slot.referenced && passed < MAX_SWEEP {
                slot.referenced = false;
                passed += 1;
                continue;
            }
            let hash = slot.hash;
            slot.value.evict_into(&mut self.evicted);
            // Under churn the hand evicts about one slot per insert: start loading the bucket
            // of a slot it will reach soon, so that removal does not wait for memory then.
            let ahead = (i + HAND_LOOKAHEAD) % self.slots.len();
            if let Some(next) = self.slots.get(ahead) {
                self.index.prefetch(next.hash);
            }
            self.index.remove(hash, i);
            return i;
        }
    }

    /// How many values the table holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the table holds nothing.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The most values the table holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The sums of every value evicted so far.
    pub fn evicted(&self) -> &V::Sums {
        &self.evicted
    }

    /// The keys and values, in slot order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&K, &V)> {
        self.slots.iter().map(|slot| (&slot.key, &slot.value))
    }

    /// The value for `key`, without marking it.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.find(self.hash(key), key).map(|i| &self.slots[i].value)
    }

    /// Empties the table and its evicted sums, keeping every allocation.
    pub fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.evicted = V::Sums::default();
        self.hand = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    struct Sum {
        entries: u64,
        total: u64,
    }

    #[derive(Debug)]
    struct Count(u64);

    impl Evict for Count {
        type Sums = Sum;
        fn evict_into(&self, sums: &mut Sum) {
            sums.entries += 1;
            sums.total += self.0;
        }
    }

    fn add(table: &mut ClockTable<u32, Count>, key: u32, n: u64) {
        table.upsert(key, || Count(0)).0 += n;
    }

    fn kept(table: &ClockTable<u32, Count>) -> u64 {
        table.iter().map(|(_, v)| v.0).sum()
    }

    #[test]
    fn a_full_table_evicts_untouched_entries_first_and_keeps_the_sums() {
        let mut table = ClockTable::with_capacity(4);
        for i in 0..4 {
            add(&mut table, i, 1);
        }
        // A flood of new keys arrives while 0 and 2 keep being hit: the flood evicts the
        // silent 1 and 3, then its own kind.
        for round in 0..5 {
            add(&mut table, 0, 1);
            add(&mut table, 2, 1);
            add(&mut table, 10 + 2 * round, 1);
            add(&mut table, 11 + 2 * round, 1);
        }
        assert_eq!(table.len(), 4);
        assert!(table.get(&0).is_some() && table.get(&2).is_some());
        assert!(table.get(&1).is_none() && table.get(&3).is_none());
        assert_eq!(table.evicted().entries, 10);
        assert_eq!(kept(&table) + table.evicted().total, 4 + 10 + 10);
    }

    #[test]
    fn when_everything_is_referenced_the_hand_clears_and_evicts() {
        let mut table = ClockTable::with_capacity(3);
        for _ in 0..3 {
            for i in 0..3 {
                add(&mut table, i, 1);
            }
        }
        add(&mut table, 9, 1);
        assert_eq!((table.len(), table.evicted().entries), (3, 1));
        assert!(table.get(&9).is_some());
    }

    #[test]
    fn churn_never_grows_the_index_and_clear_keeps_the_allocation() {
        let mut table = ClockTable::with_capacity(1000);
        let bytes = table.index.bytes();
        let mut inserted = 0u64;
        for key in 0..200_000u32 {
            add(&mut table, key, 1);
            inserted += 1;
            assert!(table.len() <= 1000);
        }
        assert_eq!(table.index.bytes(), bytes);
        assert_eq!(table.slots.capacity(), 1000);
        assert_eq!(kept(&table) + table.evicted().total, inserted);
        // Every key still in the slab is found through the index.
        let keys: Vec<u32> = table.iter().map(|(k, _)| *k).collect();
        assert!(keys.iter().all(|k| table.get(k).is_some()));
        table.clear();
        assert!(table.is_empty());
        assert_eq!(*table.evicted(), Sum::default());
        assert_eq!(table.index.bytes(), bytes);
    }
}
