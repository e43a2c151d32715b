//! The repository handle: storage, config, unlocked key and trust, and the reading and writing
//! of whole objects every operation goes through.
//!
//! A [`Repository`] is cheap to share between threads by reference. Opening and creating one is
//! in [`super::open`]; loading snapshots in [`super::snapshots`], the index in
//! [`super::index_load`], prune records in [`super::records`] — each an `impl Repository` of its
//! own. Write ordering (format §12): packs, then index objects, then the snapshot — every writer
//! in this crate follows it.

use super::highwater::HighWater;
use super::index::IdMap;
use super::limits;
use super::trust::{Trust, Verdict};
use crate::error::{CoreError, Result};
use std::sync::{Arc, Mutex};
use tresor_format::config::Config;
use tresor_format::crypto::MasterKey;
use tresor_format::keyfile::{KeyKind, KeyPayload};
use tresor_format::sign::Signer;
use tresor_format::snapshot::Snapshot;
use tresor_format::{FormatError, ObjectId};
use tresor_storage::{Kind, Storage};

/// An open repository: storage, config, unlocked key, trust.
pub struct Repository {
    pub(super) storage: Arc<dyn Storage>,
    pub(super) config: Config,
    pub(super) payload: KeyPayload,
    pub(super) signer: Signer,
    pub(super) key_id: ObjectId,
    pub(super) key_kind: KeyKind,
    pub(super) trust: Trust,
    /// Signers of the snapshots loaded so far ([`Repository::snapshot_signer`]).
    pub(super) signers: Mutex<IdMap<ObjectId, [u8; 32]>>,
    /// What this machine has seen of the repository, when a cache directory is used.
    pub(super) marks: Option<HighWater>,
    /// Why the cache directory could not hold the high-water marks (then `marks` is `None`).
    pub(super) cache_problem: Option<String>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Repository({})", self.storage.location())
    }
}

/// Snapshots with their ids.
pub type SnapshotList = Vec<(ObjectId, Snapshot)>;

/// A damaged or ignored object met while loading.
#[derive(Debug)]
pub struct Skipped {
    /// The object.
    pub id: ObjectId,
    /// Why it was skipped.
    pub error: CoreError,
    /// What kind of problem that is.
    pub defect: Defect,
}

/// What is wrong with an object a loader left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Defect {
    /// Not an object any key wrote: its bytes do not hash to its name, or its envelope, magic,
    /// signature, sealing or encoding is wrong. Nothing can read it; an admin's `prune`
    /// deletes it.
    Garbage,
    /// A sound object signed by a key readers ignore (unknown or revoked, format §4.2): kept,
    /// since it may be a lost key's, until an admin accepts or removes it.
    Ignored,
    /// Damaged without being provably garbage (larger than its kind may be, or of an unknown
    /// version): skipped and reported, never deleted by `prune`.
    Damaged,
    /// Could not be read (a storage error): nothing is concluded about it.
    Unreadable,
}

impl Defect {
    /// The class of a failure to decode an object's bytes: garbage, except for an unknown
    /// version (a newer writer's object is not garbage).
    pub fn of_format(e: &FormatError) -> Defect {
        match e {
            FormatError::UnsupportedVersion { .. } | FormatError::UnsupportedVersions { .. } => {
                Defect::Damaged
            }
            FormatError::Authentication { .. }
            | FormatError::Malformed { .. }
            | FormatError::BlobIdMismatch(_) => Defect::Garbage,
            FormatError::WrongPassword | FormatError::PutOnlyKey | FormatError::Random(_) => {
                Defect::Unreadable
            }
        }
    }
}

/// An object's problem, classified (the error of a loader that says what kind it is).
pub type Judged<T> = std::result::Result<T, (Defect, CoreError)>;

impl Repository {
    /// The storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }
    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The unlocked key material.
    pub fn key(&self) -> &MasterKey {
        &self.payload.master
    }
    /// The opened key's payload (key material and signing secret, format §4.1): what an
    /// unlocked key file holds (§4.4).
    pub fn payload(&self) -> &KeyPayload {
        &self.payload
    }
    /// This key's signer.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }
    /// A copy of this key's signer (for background threads).
    pub fn signer_copy(&self) -> Signer {
        Signer::from_secret(&self.payload.signing_secret)
    }
    /// Id of the key file that was opened.
    pub fn key_id(&self) -> ObjectId {
        self.key_id
    }
    /// Whether the opened key is full or put-only.
    pub fn key_kind(&self) -> KeyKind {
        self.key_kind
    }
    /// Trusted keys and revocations, from the newest trust record.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }
    /// This machine's high-water marks of the repository (`None` without a cache directory).
    pub fn high_water(&self) -> Option<&HighWater> {
        self.marks.as_ref()
    }
    /// Why the cache directory could not keep high-water marks (it cannot be written): then
    /// rollback and hidden snapshots go unnoticed. The CLI warns with it.
    pub fn cache_problem(&self) -> Option<&str> {
        self.cache_problem.as_deref()
    }

    /// Remember a trust record `seq` this process wrote (after a key operation), so that a
    /// storage that drops it is noticed.
    ///
    /// # Errors
    /// [`CoreError::Damaged`] when a higher one was seen already; cache I/O errors.
    pub fn note_trust_seq(&self, seq: u64) -> Result<()> {
        match &self.marks {
            Some(m) => m.check_trust_seq(seq),
            None => Ok(()),
        }
    }

    /// Fail with [`CoreError::PutOnly`] unless the key can read.
    ///
    /// # Errors
    /// [`CoreError::PutOnly`] naming `what`.
    pub fn require_read(&self, what: &'static str) -> Result<()> {
        if self.key().can_read() {
            Ok(())
        } else {
            Err(CoreError::PutOnly(what))
        }
    }

    /// Fail unless this key is a certified, unrevoked full key: only full keys may retire index
    /// objects (prune, repair).
    ///
    /// # Errors
    /// [`CoreError::Invalid`].
    pub fn require_full_signer(&self) -> Result<()> {
        if self
            .trust
            .verdict(&self.signer.public(), &ObjectId::default())
            == Verdict::Full
        {
            Ok(())
        } else {
            Err(CoreError::Invalid(
                "prune and repair need a certified, unrevoked full key (only full keys may retire index objects)"
                    .into(),
            ))
        }
    }

    /// Store an object under the hash of its bytes; returns its id.
    ///
    /// # Errors
    /// Storage errors.
    pub fn write_object(&self, kind: Kind, bytes: &[u8]) -> Result<ObjectId> {
        let id = ObjectId::of(bytes);
        self.storage.write(kind, &id.to_hex(), bytes)?;
        Ok(id)
    }

    /// Until when the storage still holds object `id` under a lock (S3 Object Lock retention or
    /// legal hold), or `None` when it may be deleted now. The storage's own clock decides in the
    /// end: a client clock ahead of it can only cause a refused delete, one behind it only a
    /// later one.
    ///
    /// # Errors
    /// Storage errors of asking ([`tresor_storage::ErrorKind::NotFound`] for a missing object
    /// on storages that can lock).
    pub fn lock_end(
        &self,
        kind: Kind,
        id: &ObjectId,
    ) -> std::result::Result<Option<std::time::SystemTime>, tresor_storage::StorageError> {
        let now = std::time::SystemTime::now();
        Ok(self
            .storage
            .locked_until(kind, &id.to_hex())?
            .filter(|t| *t > now))
    }

    /// Read an object whole — refused unread when the storage says it is larger than its
    /// kind may be ([`limits::max_object_size`]) — and check that its bytes hash to its name.
    ///
    /// # Errors
    /// Storage errors; [`CoreError::Damaged`] when too large or on a hash mismatch.
    pub fn read_object(&self, kind: Kind, id: &ObjectId) -> Result<Vec<u8>> {
        self.fetch(kind, id, None).map_err(|(_, e)| e)
    }

    /// [`Repository::read_object`] with the object's size from a listing (no need to ask the
    /// storage), the problem classified.
    ///
    /// # Errors
    /// [`Defect::Unreadable`] for storage errors, [`Defect::Damaged`] for an object over its
    /// limit, [`Defect::Garbage`] for one whose bytes do not hash to its name.
    pub fn fetch(&self, kind: Kind, id: &ObjectId, listed: Option<u64>) -> Judged<Vec<u8>> {
        let limit = limits::max_object_size(kind, &self.config);
        let bytes = limits::read_bounded(self.storage.as_ref(), kind, &id.to_hex(), listed, limit)
            .map_err(|e| match e {
                CoreError::Storage(_) => (Defect::Unreadable, e),
                e => (Defect::Damaged, e),
            })?;
        if ObjectId::of(&bytes) != *id {
            return Err((
                Defect::Garbage,
                CoreError::Damaged(format!("{kind} {id}: content does not match its name")),
            ));
        }
        Ok(bytes)
    }

    /// The verdict on the signer of object `id` (`kind` names it in messages): an accepted
    /// signer's, or [`Defect::Ignored`] for an unknown or revoked one.
    pub(super) fn judge(&self, kind: &str, id: &ObjectId, signer: &[u8; 32]) -> Judged<Verdict> {
        let ignored = |m: String| Err((Defect::Ignored, CoreError::Untrusted(m)));
        match self.trust.verdict(signer, id) {
            v @ (Verdict::Full | Verdict::PutOnly) => Ok(v),
            Verdict::Revoked => ignored(format!(
                "{kind} {id} was written by a revoked key after its revocation: ignored"
            )),
            Verdict::Unknown => ignored(format!(
                "{kind} {id} is signed by a key this repository does not know: ignored"
            )),
        }
    }
}

/// A time as RFC 3339 in UTC, to the second (e.g. the end of an object lock).
pub fn rfc3339_utc(t: std::time::SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
        .unwrap_or_else(|_| format!("{t:?}"))
}
