//! Backup start markers (format §16.1), the backup side.
//!
//! [`PendingMarkers::start`] writes a marker before the backup reads the index; the snapshot lists it (and the
//! markers of earlier runs of this host that ended without a snapshot, remembered in a local file
//! of the cache directory) so that prune knows these backups have ended. Prune waits for the
//! host of every marker no snapshot lists; see `crate::prune`.

use crate::error::{CoreError, Result};
use crate::repo::Repository;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tresor_format::ObjectId;
use tresor_format::marker::Marker;
use tresor_storage::{ErrorKind, Kind};

/// How often a running backup writes a fresh marker: 5 minutes (as restic refreshes its locks).
pub const REFRESH: Duration = Duration::from_secs(300);

/// Marker age from which prune treats a marker as stale: 30 minutes, restic's stale-lock age
/// (`StaleLockTimeout` in restic's `internal/restic/lock.go`).
pub const STALE_AGE: Duration = Duration::from_secs(30 * 60);

/// Longest time a backup goes on without a successful marker write before it stops itself:
/// half of [`STALE_AGE`].
pub const MAX_GAP: Duration = Duration::from_secs(15 * 60);

/// Markers of this host that no snapshot lists yet, kept in
/// `<cache dir>/<repository id>/markers-<hash of host>` (one hex id per line).
#[derive(Debug, Clone)]
pub struct PendingMarkers {
    path: Option<PathBuf>,
    ids: Vec<ObjectId>,
}

impl PendingMarkers {
    /// The pending markers of `host` (none without a cache directory or file).
    pub fn load(cache_dir: Option<&Path>, repo_id: &str, host: &str) -> Self {
        let path = cache_dir.map(|d| {
            let h = blake3::hash(host.as_bytes()).to_hex();
            d.join(repo_id).join(format!("markers-{}", &h[..16]))
        });
        let ids = path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default();
        PendingMarkers { path, ids }
    }

    /// The ids a snapshot of this host lists.
    pub fn ids(&self) -> &[ObjectId] {
        &self.ids
    }

    fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if self.ids.is_empty() {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let dir = path.parent().expect("cache file has a folder");
        std::fs::create_dir_all(dir)?;
        let text: String = self
            .ids
            .iter()
            .map(|id| format!("{}\n", id.to_hex()))
            .collect();
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }

    /// Write a marker for a backup of `host` starting at `started` (RFC 3339), declaring
    /// `refresh_secs` (the backup writes a fresh marker that often, format §16.1), and
    /// remember it. An older repository without a `markers/` folder gets one.
    ///
    /// # Errors
    /// Storage errors writing the marker. Failing to remember it locally is not an error (the
    /// marker then stays until an operator waives the host, see `prune --inactive-host`).
    pub fn start(
        &mut self,
        repo: &Repository,
        host: &str,
        started: &str,
        refresh_secs: Option<u64>,
    ) -> Result<ObjectId> {
        let mut marker = Marker::new(host, started)?;
        marker.refresh_secs = refresh_secs;
        let bytes = marker.seal(repo.key(), repo.signer())?;
        let id = match repo.write_object(Kind::Marker, &bytes) {
            Err(CoreError::Storage(e)) if e.kind == ErrorKind::NotFound => {
                repo.storage().create()?;
                repo.write_object(Kind::Marker, &bytes)?
            }
            r => r?,
        };
        self.remember(id);
        Ok(id)
    }

    /// Remember a marker written for this host (a refresh, format §16.1) until a snapshot
    /// lists it. Failing to save the local file is not an error, as in
    /// [`PendingMarkers::start`].
    pub fn remember(&mut self, id: ObjectId) {
        self.ids.push(id);
        let _ = self.save();
    }

    /// A snapshot listing [`PendingMarkers::ids`] was written: forget them.
    ///
    /// # Errors
    /// I/O errors updating the local file.
    pub fn done(&mut self) -> std::io::Result<()> {
        self.ids.clear();
        self.save()
    }
}
