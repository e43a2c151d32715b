//! Content-defined chunking (format §6).
//!
//! FastCDC as published in 2020 (Xia et al., "The Design of Fast and Lightweight Resemblance
//! Detection and Deduplication", IEEE TPDS 2020), normalisation level 1, with a **keyed gear
//! table**: the 256 table entries are the output of a PRF — the BLAKE3 keyed XOF — under the
//! repository's secret 256-bit `chunker_key` ([`gear_table`]). So chunk boundaries, and hence
//! blob lengths, depend on a 256-bit secret, not on a 64-bit seed XORed into a public table
//! (format version 1, whose bit `k` of the rolling hash depended only on seed bits `≤ k`, so the
//! seed was recovered bit by bit from the chunk lengths of one known file: Alexeev, Percival and
//! Zhang, IACR ePrint 2025/532). Blob lengths are further blurred by Padmé padding
//! ([`crate::blob`]) and by encryption of every pack header and index.
//!
//! This is the defence Borg 2.0 adopted; it is **not** a proof against an attacker who gets
//! chosen files backed up and sees exact blob lengths (Truong, Merz, Scarlata, Günther,
//! Paterson, "Breaking and Fixing Content-Defined Chunking", CCS 2025, ePrint 2025/558): see
//! `docs/format.md` §6 for what an observer of lengths can and cannot learn.
//!
//! [`Chunker::next_cut`] runs fastcdc's (`=5.0.0`, module `v2020`) cut loop with the keyed
//! tables; [`ChunkerParams::lengths`] is a straightforward in-crate implementation of the §6
//! text, independent of fastcdc's loop, that the test vectors check `next_cut` against.

use crate::error::{FormatError, Result};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// The ASCII input hashed, under the chunker key, into the gear table (format §6).
pub const GEAR_TABLE_INPUT: &[u8] = b"tresor v2 gear table";

/// Chunk size bounds in bytes. Even, within fastcdc's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// Algorithm name, always `"fastcdc-v2020-keyed-gear"`.
    pub algorithm: ChunkerAlgorithm,
    /// Minimum chunk size in bytes.
    pub min_size: u32,
    /// Average (target) chunk size in bytes.
    pub avg_size: u32,
    /// Maximum chunk size in bytes.
    pub max_size: u32,
}

/// The only chunker algorithm name of format version 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkerAlgorithm {
    /// FastCDC 2020, normalisation level 1, gear table from the BLAKE3 keyed XOF
    /// ([`gear_table`]). Named so that nothing confuses it with fastcdc's seeded table of
    /// format version 1 (`"fastcdc-v2020"`, refused).
    #[serde(rename = "fastcdc-v2020-keyed-gear")]
    FastCdc2020KeyedGear,
}

impl Default for ChunkerParams {
    /// 256 KiB / 1 MiB / 4 MiB.
    fn default() -> Self {
        ChunkerParams {
            algorithm: ChunkerAlgorithm::FastCdc2020KeyedGear,
            min_size: 256 * 1024,
            avg_size: 1024 * 1024,
            max_size: 4 * 1024 * 1024,
        }
    }
}

/// The gear tables `(G, GL)` of `chunker_key` (format §6): `G[i]` is the little-endian `u64` of
/// bytes `8i .. 8i + 8` of the first 2048 bytes of the BLAKE3 XOF of
/// `blake3::Hasher::new_keyed(chunker_key)` over [`GEAR_TABLE_INPUT`], and `GL[i] = G[i] << 1`.
pub fn gear_table(chunker_key: &[u8; 32]) -> (Box<[u64; 256]>, Box<[u64; 256]>) {
    let mut xof = [0u8; 2048];
    blake3::Hasher::new_keyed(chunker_key)
        .update(GEAR_TABLE_INPUT)
        .finalize_xof()
        .fill(&mut xof);
    let gear: Box<[u64; 256]> = Box::new(std::array::from_fn(|i| {
        u64::from_le_bytes(xof[8 * i..8 * i + 8].try_into().expect("8 bytes"))
    }));
    xof.zeroize();
    let gear_ls: Box<[u64; 256]> = Box::new(std::array::from_fn(|i| gear[i] << 1));
    (gear, gear_ls)
}

impl ChunkerParams {
    /// Check the bounds against fastcdc's limits.
    ///
    /// # Errors
    /// [`FormatError::Malformed`] when a size is out of range or odd.
    pub fn validate(&self) -> Result<()> {
        use fastcdc::v2020::*;
        let (min, avg, max) = self.sizes();
        let ok = (MINIMUM_MIN..=MINIMUM_MAX).contains(&min)
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&avg)
            && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&max)
            && min <= avg
            && avg <= max
            && min % 2 == 0
            && avg % 2 == 0
            && max % 2 == 0;
        if ok {
            Ok(())
        } else {
            Err(FormatError::malformed(
                "chunker parameters",
                format!("{self:?}"),
            ))
        }
    }

    fn sizes(&self) -> (usize, usize, usize) {
        (
            self.min_size as usize,
            self.avg_size as usize,
            self.max_size as usize,
        )
    }

    /// The cut masks `(Ms, Ml)` of format §6: `MASKS[b + 1]` and `MASKS[b − 1]` of fastcdc's
    /// table with `b = round(log2(avg_size))`.
    pub fn masks(&self) -> (u64, u64) {
        let b = f64::from(self.avg_size).log2().round() as usize;
        let masks = &fastcdc::v2020::MASKS;
        (masks[b + 1], masks[b - 1])
    }

    /// Chunk lengths (bytes) of an in-memory buffer under `chunker_key`: the reference
    /// implementation of format §6, written from the text, for the test vectors. Slow (a byte
    /// at a time, masks chosen per step); [`Chunker::next_cut`] is what backups use.
    pub fn lengths(&self, data: &[u8], chunker_key: &[u8; 32]) -> Vec<usize> {
        let (gear, gear_ls) = gear_table(chunker_key);
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let n = self.reference_cut(rest, &gear, &gear_ls);
            out.push(n);
            rest = &rest[n..];
        }
        out
    }

    /// Format §6, steps 1–3, for the remaining bytes `r` (not empty).
    fn reference_cut(&self, r: &[u8], gear: &[u64; 256], gear_ls: &[u64; 256]) -> usize {
        let (min, avg, max) = self.sizes();
        if r.len() <= min {
            return r.len();
        }
        let (ms, ml) = self.masks();
        let end = r.len().min(max);
        let center = avg.min(end);
        let mut h = 0u64;
        for i in min / 2..end / 2 {
            let a = 2 * i;
            let m = if i < center / 2 { ms } else { ml };
            h = (h << 2).wrapping_add(gear_ls[usize::from(r[a])]);
            if h & (m << 1) == 0 {
                return a;
            }
            h = h.wrapping_add(gear[usize::from(r[a + 1])]);
            if h & m == 0 {
                return a + 1;
            }
        }
        end
    }
}

/// A prepared chunker: keyed gear tables and masks computed once, reusable for any number of
/// files. [`Chunker::next_cut`] gives exactly the cut points of [`ChunkerParams::lengths`] with
/// the same parameters and key (checked by the test vectors). The tables are wiped on drop.
pub struct Chunker {
    min: usize,
    avg: usize,
    max: usize,
    masks: (u64, u64),
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
}

impl Drop for Chunker {
    fn drop(&mut self) {
        self.gear.zeroize();
        self.gear_ls.zeroize();
    }
}

impl Chunker {
    /// Prepare a chunker for `params` keyed with `chunker_key` ([`gear_table`]).
    pub fn new(params: &ChunkerParams, chunker_key: &[u8; 32]) -> Self {
        let (gear, gear_ls) = gear_table(chunker_key);
        let (min, avg, max) = params.sizes();
        Chunker {
            min,
            avg,
            max,
            masks: params.masks(),
            gear,
            gear_ls,
        }
    }

    /// Largest chunk in bytes: a caller must offer a window of at least this many bytes (or all
    /// that remains of the input) to [`Chunker::next_cut`].
    pub fn max_size(&self) -> usize {
        self.max
    }

    /// Length in bytes of the next chunk at the start of `window`, which holds at least
    /// [`Chunker::max_size`] bytes or everything left of the input. 0 only for an empty window.
    pub fn next_cut(&self, window: &[u8]) -> usize {
        if window.is_empty() {
            return 0;
        }
        let (ms, ml) = self.masks;
        let (_, n) = fastcdc::v2020::cut_gear(
            window,
            self.min,
            self.avg,
            self.max,
            ms,
            ml,
            ms << 1,
            ml << 1,
            &self.gear[..],
            &self.gear_ls[..],
        );
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_fastcdc_level_1() {
        for avg in [256u32, 1000, 4096, 1 << 20, 3 << 20, 4 << 20] {
            let p = ChunkerParams {
                avg_size: avg,
                ..ChunkerParams::default()
            };
            assert_eq!(
                p.masks(),
                fastcdc::v2020::select_masks(avg as usize, fastcdc::v2020::Normalization::Level1),
                "avg {avg}"
            );
        }
        assert_eq!(
            ChunkerParams::default().masks(),
            (0x0000_d917_6753_7000, 0x0000_d917_0753_7000)
        );
    }

    #[test]
    fn gear_table_is_the_keyed_xof() {
        let key = [7u8; 32];
        let (g, gl) = gear_table(&key);
        let mut xof = vec![0u8; 2048];
        let mut h = blake3::Hasher::new_keyed(&key);
        h.update(b"tresor v2 gear table");
        h.finalize_xof().fill(&mut xof);
        for i in [0, 1, 128, 255] {
            let want = u64::from_le_bytes(xof[8 * i..8 * i + 8].try_into().unwrap());
            assert_eq!((g[i], gl[i]), (want, want << 1), "entry {i}");
        }
        // Another key, another table: every entry differs.
        let (g2, _) = gear_table(&[8u8; 32]);
        assert!(g.iter().zip(g2.iter()).all(|(a, b)| a != b));
    }

    fn streamed(c: &Chunker, data: &[u8]) -> Vec<usize> {
        let (mut at, mut got) = (0, Vec::new());
        while at < data.len() {
            let n = c.next_cut(&data[at..]);
            got.push(n);
            at += n;
        }
        got
    }

    #[test]
    fn reference_and_streaming_cuts_agree_on_small_sizes() {
        let p = ChunkerParams {
            algorithm: ChunkerAlgorithm::FastCdc2020KeyedGear,
            min_size: 64,
            avg_size: 256,
            max_size: 1024,
        };
        p.validate().unwrap();
        let key = [3u8; 32];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let data: Vec<u8> = (0..200_001)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let want = p.lengths(&data, &key);
        assert_eq!(want.iter().sum::<usize>(), data.len());
        assert!(want.len() > 200_001 / 1024, "{}", want.len());
        let (last, body) = want.split_last().unwrap();
        assert!(body.iter().all(|n| (64..=1024).contains(n)) && *last <= 1024);
        let c = Chunker::new(&p, &key);
        assert_eq!(streamed(&c, &data), want);
        // Boundaries depend on the key.
        assert_ne!(p.lengths(&data, &[4u8; 32]), want);
        // Short and degenerate inputs.
        for input in [&[0u8; 2500][..], &data[..64], &data[..65], &data[..1]] {
            assert_eq!(streamed(&c, input), p.lengths(input, &key));
        }
        assert_eq!(p.lengths(&data[..64], &key), vec![64]);
    }
}
