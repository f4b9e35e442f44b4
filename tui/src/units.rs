//! Human units for counts, sizes and rates, so every view and line formats numbers alike.
//!
//! Sizes use binary prefixes (KiB, MiB), as htop does; rates in bits use decimal prefixes
//! (kbit/s, Mbit/s), as iftop and link speeds do.

use humansize::{BINARY, BaseUnit, DECIMAL, FormatSizeOptions, format_size};

/// How rates and sizes are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Units {
    /// Bits per second (iftop's default).
    Bits,
    /// Bytes per second.
    Bytes,
}

/// A byte count: `1.21 MiB`.
pub fn bytes(n: u64) -> String {
    format_size(n, BINARY)
}

/// A byte rate as bits per second: `12.4 Mbit/s`.
pub fn bits_per_sec(bytes_per_sec: f64) -> String {
    let options = FormatSizeOptions::from(DECIMAL)
        .base_unit(BaseUnit::Bit)
        .decimal_places(1)
        .suffix("/s");
    format_size((bytes_per_sec.max(0.0) * 8.0).round() as u64, options)
}

/// A rate in the chosen units, long form: `12.4 Mbit/s` or `1.5 MiB/s`.
pub fn rate(bytes_per_sec: f64, units: Units) -> String {
    match units {
        Units::Bits => bits_per_sec(bytes_per_sec),
        Units::Bytes => {
            let options = FormatSizeOptions::from(BINARY)
                .decimal_places(1)
                .suffix("/s");
            format_size(bytes_per_sec.max(0.0).round() as u64, options)
        }
    }
}

/// A rate for a table cell, compact and per second by the column's name: `12.4Mbit`, `1.5MiB`.
pub fn rate_cell(bytes_per_sec: f64, units: Units) -> String {
    let bytes = bytes_per_sec.max(0.0);
    if bytes < 0.5 {
        return "0".to_owned();
    }
    match units {
        Units::Bits => {
            let options = FormatSizeOptions::from(DECIMAL)
                .base_unit(BaseUnit::Bit)
                .decimal_places(1)
                .space_after_value(false);
            format_size((bytes * 8.0).round() as u64, options)
        }
        Units::Bytes => bytes_cell(bytes.round() as u64),
    }
}

/// A byte count for a table cell: `1.5MiB`.
pub fn bytes_cell(n: u64) -> String {
    format_size(
        n,
        FormatSizeOptions::from(BINARY)
            .decimal_places(1)
            .space_after_value(false),
    )
}

/// A count with a decimal prefix: `950`, `12.3k`, `4.1M`.
pub fn count(n: f64) -> String {
    let n = n.max(0.0);
    for (scale, suffix) in [(1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if n >= scale {
            return format!("{:.1}{suffix}", n / scale);
        }
    }
    format!("{n:.0}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_of_values() {
        let rows: Vec<String> = [0u64, 1, 999, 1000, 1023, 1024, 1_500_000, 10_000_000_000]
            .iter()
            .map(|&n| {
                format!(
                    "{n} | {} | {} | {} | {} | {} | {}",
                    bytes(n),
                    bits_per_sec(n as f64),
                    rate(n as f64, Units::Bytes),
                    rate_cell(n as f64, Units::Bits),
                    rate_cell(n as f64, Units::Bytes),
                    count(n as f64)
                )
            })
            .collect();
        insta::assert_snapshot!(rows.join("\n"));
    }
}
