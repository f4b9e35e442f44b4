//! Per-entry byte history for rates over the 2 s, 10 s and 40 s windows iftop made familiar.
//!
//! Each entry keeps one slot per tick for the last 40 ticks, per series (e.g. sent and
//! received). Slots are zeroed lazily when the entry is next touched, so ticking costs nothing
//! for idle entries and adding is O(1).

/// Rate windows, in ticks.
pub const WINDOWS: [u32; 3] = [2, 10, 40];
const SLOTS: usize = 40;

/// Byte counts per tick for the last [`SLOTS`] ticks, for `N` series.
#[derive(Clone, Debug)]
pub struct History<const N: usize> {
    last_tick: u32,
    slots: [[u32; N]; SLOTS],
}

impl<const N: usize> History<N> {
    /// An empty history whose newest slot is `tick`.
    pub fn new(tick: u32) -> Self {
        Self {
            last_tick: tick,
            slots: [[0; N]; SLOTS],
        }
    }

    /// Adds `bytes` to series `series` in the slot of `tick` (saturating at `u32::MAX` a tick).
    pub fn add(&mut self, tick: u32, series: usize, bytes: u64) {
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
            *slot = slot.saturating_add(u32::try_from(bytes).unwrap_or(u32::MAX));
        }
    }

    /// Bytes per series summed over each of [`WINDOWS`], ending with tick `now` inclusive.
    pub fn window_sums(&self, now: u32) -> [[u64; N]; 3] {
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
        let mut h = History::<2>::new(0);
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
    fn idle_ticks_count_as_zero_and_old_slots_are_cleared() {
        let mut h = History::<1>::new(5);
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
