//! What this machine learned of a store's conditional writes: the time an S3 location last
//! refused an overwrite (`If-None-Match: *`), kept in the cache directory as
//! `probes/<BLAKE3 of the location, 32 hex digits>` holding the UNIX time in seconds, so that
//! backups do not probe again (two PUTs and a DELETE each) for [`FRESH`].
//!
//! Local state, not repository format: a lost or unwritable record costs one probe. Only the
//! outcome "refused" is recorded; a store that accepted an overwrite is probed (and warned
//! about) every time.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a recorded refusal is trusted: 7 days.
pub const FRESH: Duration = Duration::from_secs(7 * 86_400);

/// The probe record of one location.
pub struct Record {
    path: PathBuf,
}

impl Record {
    /// The record of `location` (as the user wrote it) under cache directory `dir`.
    pub fn new(dir: &Path, location: &str) -> Self {
        let h = blake3::hash(location.as_bytes()).to_hex();
        Record {
            path: dir.join("probes").join(&h.as_str()[..32]),
        }
    }

    /// Whether a refusal was recorded less than [`FRESH`] ago (and not in the future).
    pub fn fresh(&self) -> bool {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return false;
        };
        let Ok(secs) = text.trim().parse::<u64>() else {
            return false;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        secs <= now && now - secs < FRESH.as_secs()
    }

    /// Record a refusal now; a record that cannot be written is left out (the next run
    /// probes again).
    pub fn save(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&self.path, format!("{now}\n")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_fresh_for_seven_days_per_location() {
        let d = tempfile::tempdir().unwrap();
        let a = Record::new(d.path(), "s3:http://127.0.0.1:9000/b");
        let b = Record::new(d.path(), "s3:http://127.0.0.1:9000/c");
        assert!(!a.fresh());
        a.save();
        assert!(a.fresh());
        assert!(!b.fresh());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        for (secs, fresh) in [
            (now - FRESH.as_secs() + 60, true),
            (now - FRESH.as_secs() - 1, false),
            (now + 3600, false),
        ] {
            std::fs::write(&a.path, format!("{secs}\n")).unwrap();
            assert_eq!(a.fresh(), fresh, "{secs}");
        }
        std::fs::write(&a.path, "garbage").unwrap();
        assert!(!a.fresh());
    }
}
