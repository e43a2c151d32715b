//! Chunker throughput, format version 1's table against version 2's (issue 11, D2).
//!
//! `cargo run --release -p tresor-format --example chunker_speed [MIB] [ROUNDS]`
//!
//! Both run the same cut loop (`fastcdc::v2020::cut_gear`, default sizes 256 KiB / 1 MiB /
//! 4 MiB, normalisation level 1) over the same in-memory input: version 1 with fastcdc's table
//! XORed with a 64-bit seed (what `Chunker` did in format version 1), version 2 with the
//! BLAKE3-derived table of [`tresor_format::chunker::gear_table`] through [`Chunker::next_cut`].
//! Rounds alternate between the two; the best round of each is printed in MB/s (10^6 bytes/s)
//! of input, and of bytes hashed (the loop skips the first `min_size` bytes of every chunk, so
//! a table that happens to cut fewer chunks of some input hashes more of it), for pseudo-random
//! bytes and for text-like bytes.

use std::time::Instant;
use tresor_format::chunker::{Chunker, ChunkerParams};

/// xorshift64 bytes: incompressible input.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// Words drawn from a small vocabulary: input with the byte statistics of text.
fn text_bytes(len: usize) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "the ",
        "backup ",
        "of ",
        "tresor ",
        "keeps ",
        "every ",
        "file\n",
        "chunk ",
        "and ",
        "index ",
        "snapshot ",
        "restores ",
    ];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % 12) as usize].as_bytes());
    }
    out.truncate(len);
    out
}

/// Cut all of `data` with `cut`; returns the number of chunks and of bytes hashed (beyond
/// `min` in each chunk).
fn cut_all(data: &[u8], min: usize, cut: Cut<'_>) -> (usize, usize) {
    let (mut at, mut n, mut hashed) = (0, 0, 0);
    while at < data.len() {
        let len = cut(&data[at..]);
        at += len;
        n += 1;
        hashed += len.saturating_sub(min);
    }
    (n, hashed)
}

/// Version 1's cut: fastcdc's table XORed with `seed`, the same loop.
fn v1_cutter(params: &ChunkerParams, seed: u64) -> impl Fn(&[u8]) -> usize {
    let (gear, gear_ls) = fastcdc::v2020::get_gear_with_seed(seed);
    let (min, avg, max) = (
        params.min_size as usize,
        params.avg_size as usize,
        params.max_size as usize,
    );
    let (ms, ml) = fastcdc::v2020::select_masks(avg, fastcdc::v2020::Normalization::Level1);
    move |w: &[u8]| {
        fastcdc::v2020::cut_gear(w, min, avg, max, ms, ml, ms << 1, ml << 1, &gear, &gear_ls).1
    }
}

/// Best round of each cutter over `rounds` alternating rounds.
#[derive(Clone, Copy, Default)]
struct Best {
    /// Input MB/s.
    input: f64,
    /// Hashed MB/s.
    hashed: f64,
    chunks: usize,
}

/// A cut function: the length of the next chunk of a window.
type Cut<'a> = &'a dyn Fn(&[u8]) -> usize;

fn race(data: &[u8], min: usize, rounds: usize, cutters: &[Cut<'_>]) -> Vec<Best> {
    let mut best = vec![Best::default(); cutters.len()];
    for _ in 0..rounds {
        for (i, cut) in cutters.iter().enumerate() {
            let t = Instant::now();
            let (chunks, hashed) = cut_all(data, min, *cut);
            let secs = t.elapsed().as_secs_f64();
            let b = &mut best[i];
            b.input = b.input.max(data.len() as f64 / secs / 1e6);
            b.hashed = b.hashed.max(hashed as f64 / secs / 1e6);
            b.chunks = chunks;
        }
    }
    best
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(512);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let params = ChunkerParams::default();
    let v1 = v1_cutter(&params, 0x0123_4567_89ab_cdef);
    let chunker = Chunker::new(&params, &[0x5e; 32]);
    let v2 = |w: &[u8]| chunker.next_cut(w);
    println!("input {mib} MiB, {rounds} rounds, best round per table");
    for (what, data) in [
        ("random", random_bytes(mib << 20)),
        ("text", text_bytes(mib << 20)),
    ] {
        let r = race(&data, params.min_size as usize, rounds, &[&v1, &v2]);
        for (name, b) in [("v1 seeded table", r[0]), ("v2 keyed table ", r[1])] {
            println!(
                "{what:>6} {name}: {:5.0} MB/s of input, {:5.0} MB/s hashed, {} chunks",
                b.input, b.hashed, b.chunks
            );
        }
    }
}
