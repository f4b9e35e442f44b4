//! Per-entry byte history for rates over the 2 s, 10 s and 40 s windows iftop made familiar.
//!
//! Most entries are seen in only a few ticks (under a random-source flood, one), so a history
//! starts compact: up to two (tick, bytes) records inline. An entry active in more ticks
//! spills into a ring with one slot per tick for the last 40 ticks, zeroed lazily when next
//! touched, so ticking costs nothing for idle entries and adding is O(1) either way.
//!
//! Counts are 64-bit: no tick's bytes ever saturate. The ring starts with 32-bit slots, which
//! halves the memory of the common case, and widens to 64-bit slots the first time a tick's
//! count for the entry passes 4 GiB (34 Gbit/s over a 1 s tick).

/// Rate windows, in ticks.
pub const WINDOWS: [u32; 3] = [2, 10, 40];
const SLOTS: usize = 40;
/// Records kept inline: two keep an aggregate talker slot (address, counts, history, hash)
/// within 128 bytes, two cache lines; a third made it three lines for every merge to load.
const INLINE: usize = 2;

/// Byte counts per tick for the last [`SLOTS`] ticks, for `N` series.
#[derive(Clone, Debug)]
pub(crate) enum History<const N: usize> {
    /// Up to two ticks' counts, inline, oldest first.
    Few {
        ticks: [u32; INLINE],
        bytes: [[u64; N]; INLINE],
        len: u8,
    },
    /// A 32-bit slot per tick for the last 40 ticks.
    Narrow(Slots<u32, N>),
    /// A 64-bit slot per tick for the last 40 ticks.
    Wide(Slots<u64, N>),
}

/// A slot type of the ring: 32 or 64 bits.
pub(crate) trait SlotCount: Copy + Default + Into<u64> + TryFrom<u64> {}
impl SlotCount for u32 {}
impl SlotCount for u64 {}

/// One slot per tick for the last [`SLOTS`] ticks.
///
/// The newest tick is kept beside the pointer, in the entry, so that adding to a tick reads
/// one line of the ring (the tick's slot), not two: a merge adds to tens of thousands of
/// rings a tick, each a likely cache miss.
#[derive(Clone, Debug)]
pub(crate) struct Slots<T, const N: usize> {
    last_tick: u32,
    slots: Box<[[T; N]; SLOTS]>,
}

impl<const N: usize> History<N> {
    /// An empty history.
    pub(crate) fn new() -> Self {
        Self::Few {
            ticks: [0; INLINE],
            bytes: [[0; N]; INLINE],
            len: 0,
        }
    }

    /// Adds `bytes` to series `series` in the slot of `tick`.
    pub(crate) fn add(&mut self, tick: u32, series: usize, bytes: u64) {
        if bytes == 0 || series >= N {
            return;
        }
        match self {
            Self::Few {
                ticks,
                bytes: counts,
                len,
            } => {
                let n = usize::from(*len);
                if let Some(i) = ticks[..n].iter().position(|&t| t == tick) {
                    counts[i][series] = counts[i][series].saturating_add(bytes);
                    return;
                }
                // Forget records too old for any window, compacting in place.
                let mut kept = 0;
                for i in 0..n {
                    if ticks[i] + SLOTS as u32 > tick {
                        ticks[kept] = ticks[i];
                        counts[kept] = counts[i];
                        kept += 1;
                    }
                }
                if kept < INLINE {
                    ticks[kept] = tick;
                    counts[kept] = [0; N];
                    counts[kept][series] = bytes;
                    *len = kept as u8 + 1;
                    return;
                }
                let records = (*ticks, *counts);
                *self = Self::Narrow(Slots::new(records.0[0]));
                for (t, row) in records.0.iter().zip(records.1) {
                    for (s, b) in row.into_iter().enumerate() {
                        self.add_to_ring(*t, s, b);
                    }
                }
                self.add_to_ring(tick, series, bytes);
            }
            Self::Narrow(_) | Self::Wide(_) => self.add_to_ring(tick, series, bytes),
        }
    }

    fn add_to_ring(&mut self, tick: u32, series: usize, bytes: u64) {
        match self {
            Self::Narrow(ring) => {
                if !ring.try_add(tick, series, bytes) {
                    let mut wide = ring.widen();
                    wide.try_add(tick, series, bytes);
                    *self = Self::Wide(wide);
                }
            }
            Self::Wide(ring) => {
                ring.try_add(tick, series, bytes);
            }
            Self::Few { .. } => {}
        }
    }

    /// Starts loading what adding at `tick` will touch, when it lives outside the entry.
    #[inline]
    pub(crate) fn prefetch(&self, tick: u32) {
        let slot = tick as usize % SLOTS;
        match self {
            Self::Few { .. } => {}
            Self::Narrow(ring) => crate::prefetch::prefetch(std::ptr::from_ref(&ring.slots[slot])),
            Self::Wide(ring) => crate::prefetch::prefetch(std::ptr::from_ref(&ring.slots[slot])),
        }
    }

    /// Bytes per series summed over each of [`WINDOWS`], ending with tick `now` inclusive.
    pub(crate) fn window_sums(&self, now: u32) -> [[u64; N]; 3] {
        match self {
            Self::Few { ticks, bytes, len } => {
                let mut sums = [[0u64; N]; 3];
                for i in 0..usize::from(*len) {
                    let Some(age) = now.checked_sub(ticks[i]) else {
                        continue;
                    };
                    for (w, window) in WINDOWS.iter().enumerate() {
                        if age < *window {
                            for (sum, &v) in sums[w].iter_mut().zip(&bytes[i]) {
                                *sum = sum.saturating_add(v);
                            }
                        }
                    }
                }
                sums
            }
            Self::Narrow(ring) => ring.window_sums(now),
            Self::Wide(ring) => ring.window_sums(now),
        }
    }
}

impl<const N: usize> Default for History<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: SlotCount, const N: usize> Slots<T, N> {
    fn new(last_tick: u32) -> Self {
        Self {
            last_tick,
            slots: Box::new([[T::default(); N]; SLOTS]),
        }
    }

    /// Adds `bytes` at `tick`; returns false, changing nothing, when the slot's sum would not
    /// fit `T`. Ticks older than the ring are ignored.
    fn try_add(&mut self, tick: u32, series: usize, bytes: u64) -> bool {
        if tick + SLOTS as u32 <= self.last_tick || series >= N {
            return true;
        }
        // The slot as it stands once the ring has advanced to `tick`: a newer tick's slot
        // still holds a count from an older lap, which does not count.
        let current: u64 = if tick > self.last_tick {
            0
        } else {
            self.slots[tick as usize % SLOTS][series].into()
        };
        let Ok(sum) = T::try_from(current.saturating_add(bytes)) else {
            return false;
        };
        if tick > self.last_tick {
            let stale = (tick - self.last_tick).min(SLOTS as u32);
            for t in (tick - stale + 1)..=tick {
                self.slots[t as usize % SLOTS] = [T::default(); N];
            }
            self.last_tick = tick;
        }
        self.slots[tick as usize % SLOTS][series] = sum;
        true
    }

    fn widen(&self) -> Slots<u64, N> {
        Slots {
            last_tick: self.last_tick,
            slots: Box::new(self.slots.map(|row| row.map(Into::into))),
        }
    }

    fn window_sums(&self, now: u32) -> [[u64; N]; 3] {
        let mut sums = [[0u64; N]; 3];
        let newest = self.last_tick.min(now);
        let oldest = now.saturating_sub(SLOTS as u32 - 1);
        if newest < oldest {
            return sums;
        }
        for t in oldest..=newest {
            let age = now - t;
            let slot = &self.slots[t as usize % SLOTS];
            for (w, window) in WINDOWS.iter().enumerate() {
                if age < *window {
                    for (sum, &v) in sums[w].iter_mut().zip(slot) {
                        *sum = sum.saturating_add(v.into());
                    }
                }
            }
        }
        sums
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_sum_the_right_ticks() {
        let mut h = History::<2>::new();
        for tick in 0..50 {
            h.add(tick, 0, 10);
            h.add(tick, 1, u64::from(tick));
        }
        let sums = h.window_sums(49);
        assert_eq!(sums[0], [20, 48 + 49]);
        assert_eq!(sums[1], [100, (40..50).sum()]);
        assert_eq!(sums[2], [400, (10..50).sum()]);
    }

    #[test]
    fn few_ticks_stay_inline_and_agree_with_the_ring() {
        let mut few = History::<2>::new();
        for (tick, b) in [(5, 10), (5, 1), (30, 5)] {
            few.add(tick, 0, b);
        }
        assert!(matches!(few, History::Few { len: 2, .. }));
        assert_eq!(few.window_sums(31), [[5, 0], [5, 0], [16, 0]]);
        // A third tick spills into the ring with the same sums.
        few.add(31, 1, 4);
        assert!(matches!(few, History::Narrow(_)));
        assert_eq!(few.window_sums(31), [[5, 4], [5, 4], [16, 4]]);
        // Old inline records make room instead of spilling.
        let mut h = History::<1>::new();
        for tick in [1, 2, 100] {
            h.add(tick, 0, 1);
        }
        assert!(matches!(h, History::Few { len: 1, .. }));
        assert_eq!(h.window_sums(100), [[1], [1], [1]]);
    }

    #[test]
    fn idle_ticks_count_as_zero_and_old_slots_are_cleared() {
        let mut h = History::<1>::new();
        for tick in [1, 2, 3, 5] {
            h.add(tick, 0, 7);
        }
        assert!(matches!(h, History::Narrow(_)));
        assert_eq!(h.window_sums(5), [[7], [28], [28]]);
        assert_eq!(h.window_sums(7), [[0], [28], [28]]);
        assert_eq!(h.window_sums(44), [[0], [0], [7]]);
        assert_eq!(h.window_sums(45), [[0], [0], [0]]);
        h.add(100, 0, 3);
        assert_eq!(h.window_sums(100), [[3], [3], [3]]);
    }

    /// 5 GB in one tick is 40 Gbit/s over a 1 s tick: more than 32 bits hold.
    const FIVE_GB: u64 = 5_000_000_000;

    #[test]
    fn five_gigabytes_a_tick_do_not_saturate() {
        // Inline records.
        let mut few = History::<2>::new();
        few.add(1, 0, FIVE_GB);
        few.add(1, 0, FIVE_GB);
        few.add(2, 1, FIVE_GB);
        assert_eq!(few.window_sums(2)[0], [2 * FIVE_GB, FIVE_GB]);
        // A ring that holds small counts widens when one tick passes 4 GiB, keeping the rest.
        let mut ring = History::<2>::new();
        for tick in 0..10 {
            ring.add(tick, 0, 1000);
        }
        assert!(matches!(ring, History::Narrow(_)));
        ring.add(10, 0, FIVE_GB);
        ring.add(10, 1, FIVE_GB);
        ring.add(11, 0, FIVE_GB);
        assert!(matches!(ring, History::Wide(_)));
        assert_eq!(ring.window_sums(11)[0], [2 * FIVE_GB, FIVE_GB]);
        assert_eq!(ring.window_sums(11)[1], [2 * FIVE_GB + 8000, FIVE_GB]);
        // Spilling from inline records that are already large goes straight to wide slots.
        let mut spill = History::<1>::new();
        for tick in 0..4 {
            spill.add(tick, 0, FIVE_GB);
        }
        assert!(matches!(spill, History::Wide(_)));
        assert_eq!(
            spill.window_sums(3),
            [[2 * FIVE_GB], [4 * FIVE_GB], [4 * FIVE_GB]]
        );
    }
}
