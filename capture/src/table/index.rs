//! The table's index: an open-addressing array of (hash tag, slot number) words.
//!
//! A purpose-built index rather than a general hash map because the per-packet cost is cache
//! misses, and hiding them needs the one thing general maps do not offer: the address a
//! lookup will read, known from the hash alone, so a batch of lookups can prefetch it. Each
//! bucket is one `u64`: the hash's upper 32 bits (whose low bits are also the home position)
//! and a slot number. Linear probing over a table at most half full keeps probes short, and
//! backward-shift deletion leaves no tombstones, so churn never degrades or grows it.

/// An empty bucket. A real bucket never has slot `u32::MAX` (slots are below capacity).
const EMPTY: u64 = u64::MAX;

pub(super) struct Index {
    buckets: Box<[u64]>,
    mask: usize,
}

impl Index {
    /// An index for up to `capacity` slots, at most half full.
    pub(super) fn new(capacity: usize) -> Self {
        let len = (capacity * 2).next_power_of_two().max(16);
        Self {
            buckets: vec![EMPTY; len].into_boxed_slice(),
            mask: len - 1,
        }
    }

    fn home(&self, tag: u64) -> usize {
        tag as usize & self.mask
    }

    /// Prefetches the bucket a lookup of `hash` reads first.
    #[inline]
    pub(super) fn prefetch(&self, hash: u64) {
        if let Some(bucket) = self.buckets.get(self.home(hash >> 32)) {
            crate::prefetch::prefetch(std::ptr::from_ref(bucket));
        }
    }

    /// The first slot filed under `hash`'s tag: almost always the key's own, found without
    /// reading the slot (which is what prefetching it is for).
    #[inline]
    pub(super) fn probable(&self, hash: u64) -> Option<usize> {
        self.position(hash, &mut |_| true).map(|(_, slot)| slot)
    }

    /// The slot whose entry `eq` accepts, among those filed under `hash`.
    #[inline]
    pub(super) fn find(&self, hash: u64, mut eq: impl FnMut(usize) -> bool) -> Option<usize> {
        self.position(hash, &mut eq).map(|(_, slot)| slot)
    }

    #[inline]
    fn position(&self, hash: u64, eq: &mut impl FnMut(usize) -> bool) -> Option<(usize, usize)> {
        let tag = hash >> 32;
        let mut b = self.home(tag);
        for _ in 0..self.buckets.len() {
            let word = *self.buckets.get(b)?;
            if word == EMPTY {
                return None;
            }
            let slot = (word & 0xffff_ffff) as usize;
            if word >> 32 == tag && eq(slot) {
                return Some((b, slot));
            }
            b = (b + 1) & self.mask;
        }
        None
    }

    /// Files `slot` under `hash`; the caller knows it is not filed yet and that there is room.
    #[inline]
    pub(super) fn insert(&mut self, hash: u64, slot: usize) {
        let tag = hash >> 32;
        let mut b = self.home(tag);
        while self.buckets.get(b).is_some_and(|&w| w != EMPTY) {
            b = (b + 1) & self.mask;
        }
        if let Some(bucket) = self.buckets.get_mut(b) {
            *bucket = tag << 32 | slot as u64;
        }
    }

    /// Removes `slot`, filed under `hash`, shifting later entries of its run back.
    pub(super) fn remove(&mut self, hash: u64, slot: usize) {
        let Some((mut hole, _)) = self.position(hash, &mut |s| s == slot) else {
            return;
        };
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let word = self.buckets[j];
            if word == EMPTY {
                break;
            }
            let start = self.home(word >> 32);
            // The entry at j may move into the hole unless its home lies after the hole.
            if j.wrapping_sub(start) & self.mask >= j.wrapping_sub(hole) & self.mask {
                self.buckets[hole] = word;
                hole = j;
            }
        }
        self.buckets[hole] = EMPTY;
    }

    /// Empties the index, keeping its allocation.
    pub(super) fn clear(&mut self) {
        self.buckets.fill(EMPTY);
    }

    /// Bytes the index holds.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.buckets.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_keeps_every_colliding_entry_findable() {
        let mut index = Index::new(8);
        // Tags that share home bucket 15 of 16, so their run wraps around the end.
        let hashes: Vec<u64> = (0..8u64).map(|i| ((i << 4 | 15) << 32) | i).collect();
        for (slot, &h) in hashes.iter().enumerate() {
            index.insert(h, slot);
        }
        let order = [3usize, 0, 6];
        for (n, &gone) in order.iter().enumerate() {
            index.remove(hashes[gone], gone);
            for (slot, &h) in hashes.iter().enumerate() {
                let removed = order[..=n].contains(&slot);
                assert_eq!(
                    index.find(h, |s| s == slot).is_some(),
                    !removed,
                    "slot {slot}"
                );
            }
        }
    }
}
