//! Human units for counts, sizes and rates, so every view and line formats numbers alike.
//!
//! Each kind of number has one format with a fixed number of decimals, whatever its size, as
//! iftop and htop do: a column never shows `6kbit` above `6.5kbit` above `14.0kbit`. Table
//! cells also have a fixed width (value, space, unit padded to the unit's longest spelling), so
//! right-aligned cells line up on the decimal point. A value moves to the next prefix once it
//! would round to 1000, so the integer part never needs a fourth digit.
//!
//! Sizes use binary prefixes (KiB, MiB), as htop does; rates in bits use decimal prefixes
//! (kbit/s, Mbit/s), as iftop and link speeds do.

/// How rates and sizes are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Units {
    /// Bits per second (iftop's default).
    Bits,
    /// Bytes per second.
    Bytes,
}

/// Prefixes up to the largest `u64` (16 EiB) and beyond, so every counter keeps the width.
const DECIMAL: (f64, [&str; 8]) = (1000.0, ["", "k", "M", "G", "T", "P", "E", "Z"]);
const BINARY: (f64, [&str; 8]) = (1024.0, ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi"]);

/// `value` scaled down by `step` until it shows below 1000 when printed with `decimals`
/// (`.0` without a prefix, `.1` with one), and its prefix.
fn scale(
    value: f64,
    (step, prefixes): (f64, [&'static str; 8]),
    decimals: (i32, i32),
) -> (f64, &'static str) {
    let below = |d: i32| 1000.0 - 0.5 * 10f64.powi(-d);
    let mut v = if value.is_finite() {
        value.max(0.0)
    } else {
        0.0
    };
    let mut at = 0;
    while v >= below(if at == 0 { decimals.0 } else { decimals.1 }) && at + 1 < prefixes.len() {
        v /= step;
        at += 1;
    }
    (v, prefixes[at])
}

/// A byte count: `512 B`, `1.43 MiB`; two decimals once a prefix applies.
pub fn bytes(n: u64) -> String {
    match scale(n as f64, BINARY, (0, 2)) {
        (v, "") => format!("{v:.0} B"),
        (v, p) => format!("{v:.2} {p}B"),
    }
}

/// A byte rate as bits per second: `12.4 Mbit/s`, `0.0 bit/s`.
pub fn bits_per_sec(bytes_per_sec: f64) -> String {
    let (v, p) = scale(bytes_per_sec * 8.0, DECIMAL, (1, 1));
    format!("{v:.1} {p}bit/s")
}

/// A rate in the chosen units, long form: `12.4 Mbit/s` or `1.5 MiB/s`.
pub fn rate(bytes_per_sec: f64, units: Units) -> String {
    match units {
        Units::Bits => bits_per_sec(bytes_per_sec),
        Units::Bytes => {
            let (v, p) = scale(bytes_per_sec, BINARY, (1, 1));
            format!("{v:.1} {p}B/s")
        }
    }
}

/// A rate for a table cell, per second by the column's name, 8 or 9 wide: `  6.0 kb`,
/// ` 14.0 kb`, `  1.5 MiB`.
pub fn rate_cell(bytes_per_sec: f64, units: Units) -> String {
    match units {
        Units::Bits => {
            let (v, p) = scale(bytes_per_sec * 8.0, DECIMAL, (1, 1));
            format!("{v:>5.1} {:>2}", format!("{p}b"))
        }
        Units::Bytes => size_cell(bytes_per_sec),
    }
}

/// A byte count for a table cell, 9 wide: `512.0   B`, `  1.5 MiB`.
pub fn bytes_cell(n: u64) -> String {
    size_cell(n as f64)
}

fn size_cell(bytes: f64) -> String {
    let (v, p) = scale(bytes, BINARY, (1, 1));
    format!("{v:>5.1} {:>3}", format!("{p}B"))
}

/// A count with a decimal prefix in running text: `950`, `12.3k`, `4.1M`. Counts below 1000
/// are whole, so they show no decimals; from 1000 on, one.
pub fn count(n: f64) -> String {
    count_cell(n).trim().to_owned()
}

/// A count for a table cell, 6 wide with a place for the prefix: `  950 `, ` 12.3k`.
pub fn count_cell(n: f64) -> String {
    match scale(n, DECIMAL, (0, 1)) {
        (v, "") => format!("{v:>5.0} "),
        (v, p) => format!("{v:>5.1}{p}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_of_values() {
        let values = [
            0.0,
            0.4,
            1.0,
            6.0,
            99.96,
            124.99,
            999.0,
            999.94,
            999.95,
            1000.0,
            1023.0,
            1024.0,
            1_500_000.0,
            10_000_000_000.0,
            1e20,
            -3.0,
            f64::NAN,
        ];
        let rows: Vec<String> = values
            .iter()
            .map(|&n| {
                format!(
                    "{n:>12} | {:>10} | {:>13} | {:>11} | {} | {} | {} | {} | {}",
                    bytes(n as u64),
                    bits_per_sec(n),
                    rate(n, Units::Bytes),
                    rate_cell(n, Units::Bits),
                    rate_cell(n, Units::Bytes),
                    bytes_cell(n as u64),
                    count_cell(n),
                    count(n)
                )
            })
            .collect();
        insta::assert_snapshot!(rows.join("\n"));
    }

    #[test]
    fn cells_have_one_width_per_column() {
        for n in (0..84).map(|e| 1.7f64.powi(e)).chain([u64::MAX as f64]) {
            assert_eq!(rate_cell(n, Units::Bits).len(), 8, "{n}");
            assert_eq!(rate_cell(n, Units::Bytes).len(), 9, "{n}");
            assert_eq!(bytes_cell(n as u64).len(), 9, "{n}");
            assert_eq!(count_cell(n).len(), 6, "{n}");
            let cell = rate_cell(n, Units::Bits);
            assert_eq!(cell.find('.'), Some(3), "{cell}");
        }
    }
}
