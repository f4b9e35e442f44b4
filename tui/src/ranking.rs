//! Ranking rows for display and for files: the first N of many rows without sorting them all.

use std::cmp::Ordering;

/// The first `limit` items of `items` in `cmp` order, without sorting the rest.
///
/// Costs O(n) plus O(limit log limit), so a top-20 of a million rows stays cheap.
pub fn top_n<T>(items: &[T], limit: usize, mut cmp: impl FnMut(&T, &T) -> Ordering) -> Vec<&T> {
    let mut refs: Vec<&T> = items.iter().collect();
    if limit < refs.len() {
        refs.select_nth_unstable_by(limit, |a, b| cmp(a, b));
        refs.truncate(limit);
    }
    refs.sort_unstable_by(|a, b| cmp(a, b));
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_n_selects_and_orders() {
        let items: Vec<u64> = (0..50).map(|i| i * 7 % 50).collect();
        let top = top_n(&items, 3, |a, b| b.cmp(a));
        assert_eq!(top, vec![&49, &48, &47]);
        assert_eq!(top_n(&items, 500, Ord::cmp).len(), 50);
        assert!(top_n(&items, 0, Ord::cmp).is_empty());
    }
}
