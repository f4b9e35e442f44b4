//! Human units for counts, sizes and rates, so every view and line formats numbers alike.
//!
//! Sizes use binary prefixes (KiB, MiB), as htop does; rates in bits use decimal prefixes
//! (kbit/s, Mbit/s), as iftop and link speeds do.

use humansize::{BINARY, BaseUnit, DECIMAL, FormatSizeOptions, format_size};

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
                    "{n} | {} | {} | {}",
                    bytes(n),
                    bits_per_sec(n as f64),
                    count(n as f64)
                )
            })
            .collect();
        insta::assert_snapshot!(rows.join("\n"));
    }
}
