//! Snapshots as the repository holds them: saving, loading and judging them (signer, host),
//! and their times.

use super::handle::{Defect, Judged, Repository, Skipped, SnapshotList};
use super::highwater::Seen;
use super::snapshot_cache::{Opened, SnapshotCache};
use super::trust::Verdict;
use crate::error::{CoreError, Result};
use tresor_format::ObjectId;
use tresor_format::snapshot::Snapshot;
use tresor_storage::Kind;

impl Repository {
    /// Seal, sign and store a snapshot; returns its id.
    ///
    /// # Errors
    /// Storage errors.
    pub fn save_snapshot(&self, snap: &Snapshot) -> Result<ObjectId> {
        self.write_object(Kind::Snapshot, &snap.seal(self.key(), &self.signer)?)
    }

    /// Load one snapshot.
    ///
    /// # Errors
    /// [`CoreError::PutOnly`], storage errors, damage, [`CoreError::Untrusted`].
    pub fn load_snapshot(&self, id: &ObjectId) -> Result<Snapshot> {
        self.require_read("reading snapshots")?;
        self.open_snapshot(id, None).map_err(|(_, e)| e)
    }

    /// Read, open and judge one snapshot (`listed`: its size from a listing).
    fn open_snapshot(&self, id: &ObjectId, listed: Option<u64>) -> Judged<Snapshot> {
        let (signer, snap) = self.read_snapshot(id, listed)?;
        self.accept_snapshot(id, signer, snap)
    }

    /// Read and open snapshot `id` (`listed`: its size from a listing): its signer (signature
    /// checked) and contents, not yet judged.
    fn read_snapshot(&self, id: &ObjectId, listed: Option<u64>) -> Judged<Opened> {
        let bytes = self.fetch(Kind::Snapshot, id, listed)?;
        Snapshot::open(self.key(), &bytes).map_err(|e| {
            (
                Defect::of_format(&e),
                CoreError::Damaged(format!("snapshot {id}: {e}")),
            )
        })
    }

    /// Judge opened snapshot `id` by its signer under the current trust record; remembers the
    /// signer. A snapshot of a put-only key that claims another host than the one its key is
    /// certified for is ignored (format §11).
    fn accept_snapshot(&self, id: &ObjectId, signer: [u8; 32], snap: Snapshot) -> Judged<Snapshot> {
        self.judge("snapshot", id, &signer)?;
        if !self.trust.speaks_for(&signer, id, &snap.hostname) {
            return Err((
                Defect::Ignored,
                CoreError::Untrusted(format!(
                    "snapshot {id} claims host {:?}, but it is signed by a put-only key certified for host {:?}: ignored",
                    snap.hostname,
                    self.trust.certified_host(&signer).unwrap_or_default()
                )),
            ));
        }
        self.signers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(*id, signer);
        Ok(snap)
    }

    /// The verdict on the key that signed snapshot `id` ([`Verdict::Full`] or
    /// [`Verdict::PutOnly`] for an accepted snapshot): restore applies privileged metadata
    /// (device nodes, setuid bits, `security.*` attributes) only from full keys' snapshots unless
    /// told otherwise. Checks the signature; needs no secret key.
    ///
    /// # Errors
    /// Storage errors, damage (name or signature), [`CoreError::Untrusted`] for an unknown or
    /// revoked signer.
    pub fn snapshot_verdict(&self, id: &ObjectId) -> Result<Verdict> {
        let signer = self.snapshot_signer(id)?;
        self.judge("snapshot", id, &signer).map_err(|(_, e)| e)?;
        Ok(self.trust.verdict(&signer, id))
    }

    /// The signing public key of snapshot `id` (verified), e.g. for
    /// [`crate::repo::blobs::BlobReader::for_snapshot`]. Known without a read for snapshots loaded
    /// through this handle.
    ///
    /// # Errors
    /// Storage errors; [`CoreError::Damaged`] when the object is damaged or its signature
    /// does not verify.
    pub fn snapshot_signer(&self, id: &ObjectId) -> Result<[u8; 32]> {
        if let Some(s) = self
            .signers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            return Ok(*s);
        }
        let bytes = self.read_object(Kind::Snapshot, id)?;
        let signer = Snapshot::signer_of(&bytes)
            .map_err(|e| CoreError::Damaged(format!("snapshot {id}: {e}")))?;
        self.signers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(*id, signer);
        Ok(signer)
    }

    /// Ids of all snapshot objects (unsorted).
    ///
    /// # Errors
    /// Storage errors.
    pub fn snapshot_ids(&self) -> Result<Vec<ObjectId>> {
        self.storage
            .list(Kind::Snapshot)?
            .into_iter()
            .map(|(n, _)| n.parse().map_err(CoreError::from))
            .collect()
    }

    /// Load every snapshot, oldest first. Damaged and ignored snapshots are returned apart.
    /// Snapshots this machine opened before come from its snapshot cache
    /// ([`super::snapshot_cache`]; judged again, not read), the others from the repository.
    ///
    /// # Errors
    /// [`CoreError::PutOnly`], storage errors on listing.
    pub fn load_snapshots(&self) -> Result<(SnapshotList, Vec<Skipped>)> {
        self.list_snapshots(self.snapshot_cache())
    }

    /// [`Self::load_snapshots`], every snapshot read and opened from the repository (`check`,
    /// `repair`, `drill`: what proves the repository). The snapshot cache is left as it is.
    ///
    /// # Errors
    /// As [`Self::load_snapshots`].
    pub fn load_snapshots_from_storage(&self) -> Result<(SnapshotList, Vec<Skipped>)> {
        self.list_snapshots(None)
    }

    /// The snapshot cache of this key and repository: a reading key with a cache directory.
    fn snapshot_cache(&self) -> Option<SnapshotCache> {
        let dir = self.marks.as_ref()?.dir();
        let key = self.payload().snapshot_cache_key(&self.config().id)?;
        Some(SnapshotCache::new(dir, key))
    }

    /// Drop `ids` (deleted snapshots) from the snapshot cache. Best effort: an entry left
    /// behind is used only while the storage still lists its id.
    pub(crate) fn uncache_snapshots(&self, ids: &[ObjectId]) {
        if let Some(c) = self.snapshot_cache() {
            let _ = c.remove(ids);
        }
    }

    fn list_snapshots(&self, cache: Option<SnapshotCache>) -> Result<(SnapshotList, Vec<Skipped>)> {
        self.require_read("listing snapshots")?;
        let mut cached = cache.as_ref().map(SnapshotCache::load).unwrap_or_default();
        let mut ok = Vec::new();
        let mut signers = Vec::new();
        let mut bad = Vec::new();
        let mut opened_new = false;
        for (name, size) in self.storage.list(Kind::Snapshot)? {
            let id: ObjectId = name.parse()?;
            let opened = match cached.remove(&id) {
                Some(known) => Ok(known),
                None => self
                    .read_snapshot(&id, Some(size))
                    .inspect(|_| opened_new = true),
            };
            let judged = opened
                .and_then(|(signer, snap)| Ok((signer, self.accept_snapshot(&id, signer, snap)?)));
            match judged {
                Ok((signer, s)) => {
                    ok.push((id, s));
                    signers.push(signer);
                }
                Err((defect, error)) => bad.push(Skipped { id, error, defect }),
            }
        }
        // Rewritten when it lacks a snapshot or holds one that is gone. Best effort: a cache
        // that cannot be written only means opening the snapshots again next time.
        if let Some(c) = cache
            && (opened_new || !cached.is_empty())
        {
            let _ = c.save(ok.iter().zip(&signers).map(|((id, s), g)| (*id, *g, s)));
        }
        ok.sort_by(|a, b| time_of(&a.1).cmp(&time_of(&b.1)).then(a.0.cmp(&b.0)));
        if let Some(m) = &self.marks {
            let seen = ok.iter().map(|(id, s)| {
                let (host, time) = (s.hostname.clone(), s.time.clone());
                (*id, Seen { host, time })
            });
            // Best effort: a cache that cannot be written only weakens what `hidden_snapshots`
            // can tell later (opening checked that it could be written).
            let _ = m.note_snapshots(seen);
        }
        Ok((ok, bad))
    }
}

/// Snapshot time as a timestamp (snapshots with an unparsable time sort first).
pub fn time_of(s: &Snapshot) -> jiff::Timestamp {
    s.time
        .parse::<jiff::Timestamp>()
        .unwrap_or(jiff::Timestamp::MIN)
}

/// How far after the reader's clock a snapshot's time may lie before the snapshot is *future*
/// (format §11): one day, for clocks that are a little off and time zones.
pub const FUTURE_SLACK: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// Snapshots dated after this time are *future* ([`FUTURE_SLACK`] after the clock of this
/// machine): never `latest`, never counted by a retention policy (nor removed by one), and not
/// counted by prune's approval.
pub fn future_after() -> jiff::Timestamp {
    jiff::Timestamp::now()
        .checked_add(FUTURE_SLACK)
        .unwrap_or(jiff::Timestamp::MAX)
}

/// Whether snapshot `s` is dated after `after` (see [`future_after`]).
pub fn is_future(s: &Snapshot, after: jiff::Timestamp) -> bool {
    time_of(s) > after
}
