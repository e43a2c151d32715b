//! The recovery-time estimate: the drill's measured throughput extrapolated to whole snapshots
//! and whole hosts.
//!
//! With `T` the drill's restore time for `n` files of `b` bytes, a snapshot of `N` files and
//! `B` bytes (its summary) is estimated at
//!
//! ```text
//! t = (T · B / b + T · N / n) / 2
//! ```
//!
//! the mean of the byte-based and the file-based extrapolation (a sample of few large files
//! says little about many small ones and the reverse; the mean keeps either from dominating).
//! A term whose drill count is zero is left out. A host's estimate is the sum over the latest
//! snapshot of each of its path sets. Cold-tier thaw time (issue 18) is not included yet:
//! [`Estimate::thaw_seconds`] is the hook, always `None` today.

use tresor_format::ObjectId;
use tresor_format::snapshot::Snapshot;

/// The measured throughput of a drill.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Throughput {
    /// Files restored.
    pub files: u64,
    /// Bytes restored.
    pub bytes: u64,
    /// Seconds the restores took.
    pub seconds: f64,
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
        let by_bytes = (self.bytes > 0).then(|| self.seconds * bytes as f64 / self.bytes as f64);
        let by_files = (self.files > 0).then(|| self.seconds * files as f64 / self.files as f64);
        match (by_bytes, by_files) {
            (Some(a), Some(b)) => Some((a + b) / 2.0),
            (a, b) => a.or(b),
        }
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
    fn formula_is_the_mean_of_both_extrapolations() {
        let t = Throughput {
            files: 10,
            bytes: 1000,
            seconds: 2.0,
        };
        assert_eq!(t.bytes_per_sec(), 500.0);
        assert_eq!(t.files_per_sec(), 5.0);
        // bytes: 2 s × 10 = 20 s; files: 2 s × 4 = 8 s; mean 14 s.
        assert_eq!(t.extrapolate(40, 10_000), Some(14.0));
        let none = Throughput::default();
        assert_eq!(none.extrapolate(1, 1), None);
        let only_links = Throughput {
            files: 2,
            bytes: 0,
            seconds: 1.0,
        };
        assert_eq!(only_links.extrapolate(4, 100), Some(2.0));
    }
}
