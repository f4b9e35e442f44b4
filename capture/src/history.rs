//! Per-entry byte history for rates over the 2 s, 10 s and 40 s windows iftop made familiar.
//!
//! Most entries are seen in only a few ticks (under a random-source flood, one), so a history
//! starts compact: up to three (tick, bytes) records inline. An entry active in more ticks
//! spills into a ring with one slot per tick for the last 40 ticks, zeroed lazily when next
//! touched, so ticking costs nothing for idle entries and adding is O(1) either way.

/// Rate windows, in ticks.
pub const WINDOWS: [u32; 3] = [2, 10, 40];
const SLOTS: usize = 40;
const INLINE: usize = 3;

/// Byte counts per tick for the last [`SLOTS`] ticks, for `N` series.
#[derive(Clone, Debug)]
pub enum History<const N: usize> {
    /// Up to three ticks' counts, inline.
    Few {
        /// The ticks recorded, oldest first.
        ticks: [u32; INLINE],
        /// Their counts.
        bytes: [[u32; N]; INLINE],
        /// How many are recorded.
        len: u8,
    },
    /// A slot per tick for the last 40 ticks.
    Ring(Box<Ring<N>>),
}

/// One slot per tick for the last [`SLOTS`] ticks.
#[derive(Clone, Debug)]
pub struct Ring<const N: usize> {
    last_tick: u32,
    slots: [[u32; N]; SLOTS],
}

fn saturate(bytes: u64) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

impl<const N: usize> History<N> {
    /// An empty history.
    pub fn new() -> Self {
        Self::Few {
            ticks: [0; INLINE],
            bytes: [[0; N]; INLINE],
            len: 0,
        }
    }

    /// Adds `bytes` to series `series` in the slot of `tick` (saturating at `u32::MAX` a tick).
    pub fn add(&mut self, tick: u32, series: usize, bytes: u64) {
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
                    counts[i][series] = counts[i][series].saturating_add(saturate(bytes));
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
                *len = kept as u8;
                let n = usize::from(*len);
                if n < INLINE {
                    ticks[n] = tick;
                    counts[n] = [0; N];
                    counts[n][series] = saturate(bytes);
                    *len += 1;
                    return;
                }
                let mut ring = Box::new(Ring {
                    last_tick: ticks[n - 1],
                    slots: [[0; N]; SLOTS],
                });
                for i in 0..n {
                    for (s, &b) in counts[i].iter().enumerate() {
                        ring.add(ticks[i], s, u64::from(b));
                    }
                }
                ring.add(tick, series, bytes);
                *self = Self::Ring(ring);
            }
            Self::Ring(ring) => ring.add(tick, series, bytes),
        }
    }

    /// Bytes per series summed over each of [`WINDOWS`], ending with tick `now` inclusive.
    pub fn window_sums(&self, now: u32) -> [[u64; N]; 3] {
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
                                *sum += u64::from(v);
                            }
                        }
                    }
                }
                sums
            }
            Self::Ring(ring) => ring.window_sums(now),
        }
    }
}

impl<const N: usize> Default for History<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Ring<N> {
    fn add(&mut self, tick: u32, series: usize, bytes: u64) {
        if tick > self.last_tick {
            let stale = (tick - self.last_tick).min(SLOTS as u32);
            for t in (tick - stale + 1)..=tick {
                self.slots[t as usize % SLOTS] = [0; N];
            }
            self.last_tick = tick;
        }
        if tick + SLOTS as u32 > self.last_tick
            && let Some(slot) = self.slots[tick as usize % SLOTS].get_mut(series)
        {
            *slot = slot.saturating_add(saturate(bytes));
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
                        *sum += u64::from(v);
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
        for (tick, b) in [(5, 10), (5, 1), (7, 20), (30, 5)] {
            few.add(tick, 0, b);
        }
        assert!(matches!(few, History::Few { len: 3, .. }));
        assert_eq!(few.window_sums(31), [[5, 0], [5, 0], [36, 0]]);
        // A fourth tick spills into the ring with the same sums.
        few.add(31, 1, 4);
        assert!(matches!(few, History::Ring(_)));
        assert_eq!(few.window_sums(31), [[5, 4], [5, 4], [36, 4]]);
        // Old inline records make room instead of spilling.
        let mut h = History::<1>::new();
        for tick in [1, 2, 3, 100] {
            h.add(tick, 0, 1);
        }
        assert!(matches!(h, History::Few { len: 1, .. }));
        assert_eq!(h.window_sums(100), [[1], [1], [1]]);
    }

    #[test]
    fn idle_ticks_count_as_zero_and_old_slots_are_cleared() {
        let mut h = History::<1>::new();
        h.add(5, 0, 7);
        assert_eq!(h.window_sums(5), [[7], [7], [7]]);
        assert_eq!(h.window_sums(7), [[0], [7], [7]]);
        assert_eq!(h.window_sums(44), [[0], [0], [7]]);
        assert_eq!(h.window_sums(45), [[0], [0], [0]]);
        h.add(100, 0, 3);
        assert_eq!(h.window_sums(100), [[3], [3], [3]]);
        h.add(101, 0, u64::MAX);
        assert_eq!(h.window_sums(101), [[3 + u64::from(u32::MAX)]; 3]);
    }
}
