//! Writes the test corpora's frames as fuzzing seeds for `fuzz/parse_and_count`: one file per
//! distinct frame, prefixed with the target's flag byte and two bytes of extra wire length.
//!
//! Usage: `cargo run -p testlab --example write_seeds -- fuzz/seeds/parse_and_count`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: write_seeds DIR");
    std::fs::create_dir_all(&dir).unwrap();
    let mut frames = BTreeSet::new();
    for corpus in [testlab::corpus::standard(), testlab::corpus::filtered()] {
        for frame in corpus.frames {
            frames.insert(frame.bytes);
        }
    }
    for (i, bytes) in frames.iter().enumerate() {
        let mut seed = vec![0u8, 0, 0];
        seed.extend_from_slice(bytes);
        std::fs::write(format!("{dir}/frame-{i:02}"), seed).unwrap();
    }
    println!("{} seeds in {dir}", frames.len());
}
