//! Content-defined chunking (format §6).
//!
//! FastCDC as published in 2020 (Xia et al., "The Design of Fast and Lightweight Resemblance
//! Detection and Deduplication", IEEE TPDS 2020), implemented by the `fastcdc` crate pinned to
//! exactly `=5.0.0`, module `v2020`, normalisation level 1. The gear table is keyed: every entry
//! is XORed with the repository's secret 64-bit `chunker_seed` (`fastcdc::v2020` seed API), so
//! that chunk boundaries, and hence blob lengths, depend on a secret. This raises the bar for the
//! chunk-length fingerprinting attacks of Alexeev, Percival and Zhang (IACR eprint 2025/532);
//! blob lengths are further hidden by padding ([`crate::blob`]) and by encryption of every pack
//! header and index. It does not make fingerprinting impossible for an attacker who can also
//! observe many uploads of chosen files: see the threat model in `docs/format.md`.

use crate::error::{FormatError, Result};
use serde::{Deserialize, Serialize};

/// Chunk size bounds in bytes. Powers of two, even, within fastcdc's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// Algorithm name, always `"fastcdc-v2020"`.
    pub algorithm: ChunkerAlgorithm,
    /// Minimum chunk size in bytes.
    pub min_size: u32,
    /// Average (target) chunk size in bytes.
    pub avg_size: u32,
    /// Maximum chunk size in bytes.
    pub max_size: u32,
}

/// The only chunker algorithm name of format version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkerAlgorithm {
    /// FastCDC 2020, normalisation level 1, keyed gear table.
    #[serde(rename = "fastcdc-v2020")]
    FastCdc2020,
}

impl Default for ChunkerParams {
    /// 256 KiB / 1 MiB / 4 MiB.
    fn default() -> Self {
        ChunkerParams {
            algorithm: ChunkerAlgorithm::FastCdc2020,
            min_size: 256 * 1024,
            avg_size: 1024 * 1024,
            max_size: 4 * 1024 * 1024,
        }
    }
}

impl ChunkerParams {
    /// Check the bounds against fastcdc's limits.
    ///
    /// # Errors
    /// [`FormatError::Malformed`] when a size is out of range or odd.
    pub fn validate(&self) -> Result<()> {
        use fastcdc::v2020::*;
        let (min, avg, max) = (
            self.min_size as usize,
            self.avg_size as usize,
            self.max_size as usize,
        );
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

    /// Cut points (chunk lengths) of an in-memory buffer, for test vectors.
    pub fn lengths(&self, data: &[u8], seed: u64) -> Vec<usize> {
        let (min, avg, max) = (
            self.min_size as usize,
            self.avg_size as usize,
            self.max_size as usize,
        );
        fastcdc::v2020::FastCDC::with_level_and_seed(
            data,
            min,
            avg,
            max,
            fastcdc::v2020::Normalization::Level1,
            seed,
        )
        .map(|c| c.length)
        .collect()
    }
}

/// A prepared chunker: keyed gear tables and masks computed once, reusable for any number of
/// files. [`Chunker::next_cut`] gives exactly the cut points of `fastcdc::v2020::FastCDC` with
/// the same parameters and seed (checked by the test vectors).
pub struct Chunker {
    min: usize,
    avg: usize,
    max: usize,
    masks: (u64, u64),
    gear: std::borrow::Cow<'static, [u64]>,
    gear_ls: std::borrow::Cow<'static, [u64]>,
}

impl Chunker {
    /// Prepare a chunker for `params` keyed with `seed`.
    pub fn new(params: &ChunkerParams, seed: u64) -> Self {
        let (gear, gear_ls) = fastcdc::v2020::get_gear_with_seed(seed);
        let avg = params.avg_size as usize;
        Chunker {
            min: params.min_size as usize,
            avg,
            max: params.max_size as usize,
            masks: fastcdc::v2020::select_masks(avg, fastcdc::v2020::Normalization::Level1),
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
            &self.gear,
            &self.gear_ls,
        );
        n
    }
}
