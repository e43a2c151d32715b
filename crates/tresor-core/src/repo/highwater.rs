//! High-water marks: what this machine has seen of a repository (format §4.3, §13).
//!
//! The storage can present the repository as it was earlier (rollback) or leave objects out.
//! A client cannot tell that from the repository alone, so it remembers, in the local cache
//! directory (`<cache dir>/<repository id>/seen`), the highest trust record `seq` it has seen
//! (every key kind) and, with a full key, the snapshots it has seen with their host and time.
//! Opening fails when the storage's newest trust record is older than the one remembered
//! ([`HighWater::check_trust_seq`]); a snapshot seen before, missing now and listed by no
//! forget record (format §16) is reported as hidden ([`HighWater::hidden`]).
//!
//! Only clients that saw the newer state notice: a fresh client (or `--no-cache`) trusts what it
//! finds. The file is JSON, written atomically (a temporary file renamed) under an exclusive
//! `flock` on `seen.lock`, mode 0600. A file that does not parse is treated as absent.

use crate::error::{CoreError, Result};
use crate::repo::index::IdSet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use tresor_format::ObjectId;

/// Version of the `seen` file.
const MARKS_VERSION: u32 = 1;

/// A snapshot as it was seen: its host and time (as the snapshot says).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The snapshot's `hostname`.
    pub host: String,
    /// The snapshot's `time`, RFC 3339.
    pub time: String,
}

/// What the `seen` file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marks {
    version: u32,
    /// The highest trust record `seq` seen.
    pub trust_seq: u64,
    /// Accepted snapshots seen (full keys only), by id.
    pub snapshots: BTreeMap<ObjectId, Seen>,
}

impl Default for Marks {
    fn default() -> Self {
        Marks {
            version: MARKS_VERSION,
            trust_seq: 0,
            snapshots: BTreeMap::new(),
        }
    }
}

/// A snapshot seen before that is missing now, with no forget record listing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hidden {
    /// Its id.
    pub id: ObjectId,
    /// Host and time when it was seen.
    pub seen: Seen,
}

impl std::fmt::Display for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "snapshot {} (host {}, time {}) was seen by this machine and is missing, and no \
             forget record lists it: hidden by the storage?",
            self.id,
            tresor_format::tree::escape_name(self.seen.host.as_bytes()),
            tresor_format::tree::escape_name(self.seen.time.as_bytes()),
        )
    }
}

/// The high-water marks of one repository on this machine.
#[derive(Debug, Clone)]
pub struct HighWater {
    dir: PathBuf,
}

impl HighWater {
    /// The marks of repository `repo_id` (64 hex digits, checked by the config decoder) under
    /// the cache directory `cache_dir`.
    pub fn new(cache_dir: &Path, repo_id: &str) -> Self {
        HighWater {
            dir: cache_dir.join(repo_id),
        }
    }

    /// The repository's directory under the cache directory (it holds the marks' file).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding the marks.
    pub fn path(&self) -> PathBuf {
        self.dir.join("seen")
    }

    /// The marks; default ones when the file is absent or does not parse.
    pub fn load(&self) -> Marks {
        std::fs::read(self.path())
            .ok()
            .and_then(|b| serde_json::from_slice::<Marks>(&b).ok())
            .filter(|m| m.version == MARKS_VERSION)
            .unwrap_or_default()
    }

    /// Change the marks under the lock: load, apply `f`, write back atomically — only when `f`
    /// changed them (an unchanged file is not rewritten, so no `fsync`).
    ///
    /// # Errors
    /// I/O errors of the cache directory (as [`CoreError::Io`]).
    pub fn update<T>(&self, f: impl FnOnce(&mut Marks) -> T) -> Result<T> {
        let io = |e| CoreError::io(&self.dir, e);
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(self.dir.join("seen.lock"))
            .map_err(io)?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io(e.into()))?;
        let before = self.load();
        let mut marks = before.clone();
        let out = f(&mut marks);
        if marks != before {
            self.save(&marks).map_err(io)?;
        }
        Ok(out)
    }

    fn save(&self, marks: &Marks) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(marks).map_err(std::io::Error::other)?;
        super::localfile::replace(&self.path(), &bytes, true)
    }

    /// Compare the storage's newest trust record `seq` with the highest seen, and remember it
    /// when it is higher.
    ///
    /// # Errors
    /// [`CoreError::Damaged`] naming both numbers when `found` is lower (the storage rolled
    /// back); I/O errors of the cache directory.
    pub fn check_trust_seq(&self, found: u64) -> Result<()> {
        let path = self.path();
        let rolled_back = |seen: u64| {
            CoreError::Damaged(format!(
                "trust record went back from {seen} to {found}: the storage rolled back (if you \
                 restored the repository on purpose, delete {})",
                path.display()
            ))
        };
        // Compared before locking too: a file that can be read but not written still counts.
        let seen = self.load().trust_seq;
        if found < seen {
            return Err(rolled_back(seen));
        }
        self.update(|m| {
            if found < m.trust_seq {
                return Err(rolled_back(m.trust_seq));
            }
            m.trust_seq = found;
            Ok(())
        })?
    }

    /// Remember accepted snapshots as seen.
    ///
    /// # Errors
    /// I/O errors of the cache directory.
    pub fn note_snapshots(&self, seen: impl IntoIterator<Item = (ObjectId, Seen)>) -> Result<()> {
        self.update(|m| m.snapshots.extend(seen))
    }

    /// The snapshots seen before that are not in `present` (the storage's listing now) and
    /// that no forget record lists. `forgotten` is asked (once) only when some are missing; the
    /// forgotten ones are dropped from the marks.
    ///
    /// # Errors
    /// Those of `forgotten`; I/O errors of the cache directory.
    pub fn hidden(
        &self,
        present: &IdSet<ObjectId>,
        forgotten: impl FnOnce() -> Result<IdSet<ObjectId>>,
    ) -> Result<Vec<Hidden>> {
        let missing = |m: &Marks| m.snapshots.keys().any(|id| !present.contains(id));
        if !missing(&self.load()) {
            return Ok(Vec::new());
        }
        let forgotten = forgotten()?;
        self.update(|m| judge(m, present, &forgotten))
    }
}

/// Pure part of [`HighWater::hidden`]: drop the forgotten snapshots that are gone from the
/// marks; the other missing ones are hidden.
fn judge(m: &mut Marks, present: &IdSet<ObjectId>, forgotten: &IdSet<ObjectId>) -> Vec<Hidden> {
    m.snapshots
        .retain(|id, _| present.contains(id) || !forgotten.contains(id));
    m.snapshots
        .iter()
        .filter(|(id, _)| !present.contains(*id))
        .map(|(id, seen)| Hidden {
            id: *id,
            seen: seen.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(h: &str) -> Seen {
        Seen {
            host: h.into(),
            time: "2026-05-01T10:00:00Z".into(),
        }
    }

    #[test]
    fn trust_seq_only_goes_up() {
        let d = tempfile::tempdir().unwrap();
        let hw = HighWater::new(d.path(), &"ab".repeat(32));
        hw.check_trust_seq(3).unwrap();
        hw.check_trust_seq(3).unwrap();
        hw.check_trust_seq(5).unwrap();
        assert_eq!(hw.load().trust_seq, 5);
        let e = hw.check_trust_seq(4).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "repository damaged: trust record went back from 5 to 4: the storage rolled \
                 back (if you restored the repository on purpose, delete {})",
                hw.path().display()
            )
        );
        assert_eq!(hw.load().trust_seq, 5);
        assert_eq!(
            std::fs::metadata(hw.path()).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A damaged file counts as absent.
        std::fs::write(hw.path(), b"{not json").unwrap();
        assert_eq!(hw.load(), Marks::default());
        hw.check_trust_seq(1).unwrap();
    }

    use std::os::unix::fs::PermissionsExt;

    /// Marks that do not change are not written again (each write is an `fsync`, on every
    /// command that opens the repository): the file keeps its bytes (here pretty-printed, which
    /// a write would not keep) until a mark moves.
    #[test]
    fn unchanged_marks_are_not_rewritten() {
        let d = tempfile::tempdir().unwrap();
        let hw = HighWater::new(d.path(), &"ef".repeat(32));
        hw.check_trust_seq(3).unwrap();
        hw.note_snapshots([(ObjectId([1; 32]), seen("a"))]).unwrap();
        let pretty = serde_json::to_vec_pretty(&hw.load()).unwrap();
        std::fs::write(hw.path(), &pretty).unwrap();
        hw.check_trust_seq(3).unwrap();
        hw.note_snapshots([(ObjectId([1; 32]), seen("a"))]).unwrap();
        assert_eq!(std::fs::read(hw.path()).unwrap(), pretty);
        hw.note_snapshots([(ObjectId([2; 32]), seen("b"))]).unwrap();
        assert_ne!(std::fs::read(hw.path()).unwrap(), pretty);
        hw.check_trust_seq(4).unwrap();
        assert_eq!((hw.load().trust_seq, hw.load().snapshots.len()), (4, 2));
    }

    #[test]
    fn missing_snapshots_are_hidden_unless_forgotten() {
        let d = tempfile::tempdir().unwrap();
        let hw = HighWater::new(d.path(), &"cd".repeat(32));
        let (a, b, c) = (ObjectId([1; 32]), ObjectId([2; 32]), ObjectId([3; 32]));
        hw.note_snapshots([(a, seen("a")), (b, seen("b\n")), (c, seen("c"))])
            .unwrap();
        let all: IdSet<ObjectId> = [a, b, c].into_iter().collect();
        let asked = std::cell::Cell::new(0);
        let none = || {
            asked.set(asked.get() + 1);
            Ok(IdSet::default())
        };
        assert_eq!(hw.hidden(&all, none).unwrap(), []);
        assert_eq!(asked.get(), 0, "forget records are read only when needed");
        let only_a: IdSet<ObjectId> = [a].into_iter().collect();
        let forgot_c = || Ok([c].into_iter().collect());
        let hidden = hw.hidden(&only_a, forgot_c).unwrap();
        assert_eq!(
            hidden,
            [Hidden {
                id: b,
                seen: seen("b\n")
            }]
        );
        assert_eq!(
            hidden[0].to_string(),
            format!(
                "snapshot {b} (host \"b\\n\", time \"2026-05-01T10:00:00Z\") was seen by this \
                 machine and is missing, and no forget record lists it: hidden by the storage?"
            )
        );
        // The forgotten one is no longer remembered; the hidden one still is.
        let marks = hw.load();
        assert_eq!(marks.snapshots.keys().copied().collect::<Vec<_>>(), [a, b]);
        // It is back: nothing hidden.
        let back: IdSet<ObjectId> = [a, b].into_iter().collect();
        assert_eq!(hw.hidden(&back, || Ok(IdSet::default())).unwrap(), []);
    }
}
