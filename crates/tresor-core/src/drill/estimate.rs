//! The recovery-time estimate: the drill's measured restores extrapolated to whole snapshots
//! and whole hosts.
//!
//! A restore's time is modelled as a cost per file plus a cost per byte, `t = a + b · x` for a
//! file of `x` bytes. The drill restores its sample as a restore does (one restore per
//! snapshot, its workers writing files at once: [`crate::restorer::restore_entries`]), takes
//! the seconds each file's worker spent on it, and fits `a` and `b` to those times by ordinary
//! least squares (both kept ≥ 0: when the fit gives a negative one, it is 0 and the other is
//! fitted alone), then scales both so that the fitted times of the sample add up to the
//! restores' wall time. A snapshot of `N` files and `B` bytes (its summary) is estimated at
//!
//! ```text
//! t = a · N + b · B
//! ```
//!
//! The sample's folders are made before the timed restore: a sample spread over the tree needs
//! nearly a folder per file where a restore makes one per directory, and counting them made the
//! estimate of the 1 GB bench tree 3–4 times the measured restore. (A mean of a byte-based and a
//! file-based extrapolation, the first formula, was 4–20 times too high.)
//! A host's estimate is the sum over the latest snapshot of each of its path sets.
//! [`Estimate::thaw_seconds`] adds the time to thaw data from a cold tier when known.

use tresor_format::ObjectId;
use tresor_format::snapshot::Snapshot;

/// The measured throughput of a drill.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Throughput {
    /// Files restored.
    pub files: u64,
    /// Bytes restored.
    pub bytes: u64,
    /// Seconds the restores took (wall time).
    pub seconds: f64,
    /// The cost model fitted to the sample's restore times (`None` when nothing was restored).
    #[serde(skip)]
    pub model: Option<CostModel>,
}

/// Seconds a restore spends per file and per byte (module formula).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CostModel {
    /// Seconds per file.
    pub per_file: f64,
    /// Seconds per byte.
    pub per_byte: f64,
}

impl CostModel {
    /// The least-squares fit of `t = per_file + per_byte · bytes` to `samples` (bytes and
    /// seconds of each restored file), both coefficients ≥ 0, scaled so that the fitted times
    /// add up to `wall` seconds. `None` without samples or without measured time.
    pub fn fit(samples: &[(u64, f64)], wall: f64) -> Option<Self> {
        let n = samples.len() as f64;
        let sum_t: f64 = samples.iter().map(|s| s.1).sum();
        let sum_x: f64 = samples.iter().map(|s| s.0 as f64).sum();
        if samples.is_empty() || sum_t <= 0.0 {
            return None;
        }
        let (mx, mt) = (sum_x / n, sum_t / n);
        let sxx: f64 = samples.iter().map(|s| (s.0 as f64 - mx).powi(2)).sum();
        let sxt: f64 = (samples.iter())
            .map(|s| (s.0 as f64 - mx) * (s.1 - mt))
            .sum();
        let mut b = if sxx > 0.0 { sxt / sxx } else { 0.0 };
        let mut a = mt - b * mx;
        if b < 0.0 {
            (a, b) = (mt, 0.0);
        } else if a < 0.0 {
            (a, b) = (0.0, sum_t / sum_x);
        }
        let scale = if wall > 0.0 { wall / sum_t } else { 1.0 };
        Some(CostModel {
            per_file: a * scale,
            per_byte: b * scale,
        })
    }
}

impl Throughput {
    /// Bytes per second (0 when no time was measured).
    pub fn bytes_per_sec(&self) -> f64 {
        rate(self.bytes, self.seconds)
    }
    /// Files per second (0 when no time was measured).
    pub fn files_per_sec(&self) -> f64 {
        rate(self.files, self.seconds)
    }

    /// Estimated seconds to restore `files` files of `bytes` bytes (module formula), or `None`
    /// when the drill restored nothing.
    pub fn extrapolate(&self, files: u64, bytes: u64) -> Option<f64> {
        let m = self.model?;
        Some(m.per_file * files as f64 + m.per_byte * bytes as f64)
    }
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// The estimate for one snapshot or one host.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// The snapshot (`None` for a host's total).
    pub snapshot: Option<ObjectId>,
    /// Its host.
    pub host: String,
    /// Files to restore (from the snapshot summaries; 0 when a snapshot has none).
    pub files: u64,
    /// Bytes to restore.
    pub bytes: u64,
    /// Estimated seconds, or `None` when the drill measured nothing.
    pub seconds: Option<f64>,
    /// Seconds to thaw data from a cold tier first: the hook for issue 18's cold tier, `None`
    /// until it exists.
    pub thaw_seconds: Option<f64>,
}

/// The estimate for snapshot `id`.
pub fn for_snapshot(t: &Throughput, id: ObjectId, s: &Snapshot) -> Estimate {
    let (files, bytes) = s.summary.as_ref().map_or((0, 0), |m| {
        (m.total_files_processed, m.total_bytes_processed)
    });
    Estimate {
        snapshot: Some(id),
        host: s.hostname.clone(),
        files,
        bytes,
        seconds: t.extrapolate(files, bytes),
        thaw_seconds: None,
    }
}

/// The estimate for a whole host: the sum of `latest` (the latest snapshot of each of its path
/// sets).
pub fn for_host(t: &Throughput, host: &str, latest: &[(ObjectId, Snapshot)]) -> Estimate {
    let (files, bytes) = latest
        .iter()
        .filter_map(|(_, s)| s.summary.as_ref())
        .fold((0, 0), |(f, b), m| {
            (f + m.total_files_processed, b + m.total_bytes_processed)
        });
    Estimate {
        snapshot: None,
        host: host.into(),
        files,
        bytes,
        seconds: t.extrapolate(files, bytes),
        thaw_seconds: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_recovers_a_cost_per_file_and_per_byte() {
        // t = 0.001 s + 1e-8 s/byte, exact: the fit gives them back (wall = sum of times).
        let t = |x: u64| 0.001 + 1e-8 * x as f64;
        let samples: Vec<(u64, f64)> = [100, 5_000, 40_000, 1_000_000]
            .iter()
            .map(|&x| (x, t(x)))
            .collect();
        let sum: f64 = samples.iter().map(|s| s.1).sum();
        let m = CostModel::fit(&samples, sum).unwrap();
        assert!((m.per_file - 0.001).abs() < 1e-12, "{m:?}");
        assert!((m.per_byte - 1e-8).abs() < 1e-15, "{m:?}");
        // Restored two at a time: the wall time halves both.
        let half = CostModel::fit(&samples, sum / 2.0).unwrap();
        assert!((half.per_file - 0.0005).abs() < 1e-12, "{half:?}");
        let through = Throughput {
            files: 4,
            bytes: 1_045_100,
            seconds: sum,
            model: Some(m),
        };
        // 60,000 files of 900 MB: 60 s + 9 s.
        let e = through.extrapolate(60_000, 900_000_000).unwrap();
        assert!((e - 69.0).abs() < 1e-6, "{e}");
        assert_eq!(through.bytes_per_sec(), 1_045_100.0 / sum);
    }

    #[test]
    fn a_negative_coefficient_is_zero_and_the_other_fitted_alone() {
        // Bigger files faster: no cost per byte, the mean per file.
        let m = CostModel::fit(&[(10, 0.3), (1000, 0.1)], 0.4).unwrap();
        assert_eq!(
            m,
            CostModel {
                per_file: 0.2,
                per_byte: 0.0
            }
        );
        // A steep line through a negative intercept: only the cost per byte.
        let m = CostModel::fit(&[(100, 0.0001), (200, 0.3)], 0.3001).unwrap();
        assert_eq!(m.per_file, 0.0);
        assert!((m.per_byte - 0.3001 / 300.0).abs() < 1e-15, "{m:?}");
        // One size only (links: 0 bytes): per file only.
        let m = CostModel::fit(&[(0, 0.5), (0, 1.5)], 2.0).unwrap();
        assert_eq!(
            m,
            CostModel {
                per_file: 1.0,
                per_byte: 0.0
            }
        );
        assert_eq!(CostModel::fit(&[], 1.0), None);
        assert_eq!(CostModel::fit(&[(5, 0.0)], 1.0), None);
        assert_eq!(Throughput::default().extrapolate(1, 1), None);
    }
}
