//! Opening and initialising repositories; reading and writing snapshots and the index.
//!
//! A [`Repository`] holds the storage, the config, the unlocked key and the repository's
//! [`Trust`] (certified keys and revocations). It is cheap to share between threads by
//! reference. Write ordering (format §12): packs, then index objects, then the snapshot — every
//! writer in this crate follows it.

use crate::error::{CoreError, Result};
use crate::repo::highwater::{Hidden, HighWater, Seen};
use crate::repo::index::{IdMap, IdSet, Index, Lister};
use crate::repo::limits;
use crate::repo::trust::{Trust, Verdict};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tresor_format::config::Config;
use tresor_format::crypto::MasterKey;
use tresor_format::index::IndexFile;
use tresor_format::keyfile::{KdfParams, KeyFile, KeyKind, KeyPayload};
use tresor_format::sign::Signer;
use tresor_format::snapshot::Snapshot;
use tresor_format::trust::{TrustRecord, TrustedKey};
use tresor_format::{BlobId, FormatError, ObjectId};
use tresor_storage::{ErrorKind, Kind, Storage};

/// An open repository: storage, config, unlocked key, trust.
pub struct Repository {
    storage: Arc<dyn Storage>,
    config: Config,
    payload: KeyPayload,
    signer: Signer,
    key_id: ObjectId,
    key_kind: KeyKind,
    trust: Trust,
    /// Signers of the snapshots loaded so far ([`Repository::snapshot_signer`]).
    signers: Mutex<IdMap<ObjectId, [u8; 32]>>,
    /// What this machine has seen of the repository, when a cache directory is used.
    marks: Option<HighWater>,
    /// Why the cache directory could not hold the high-water marks (then `marks` is `None`).
    cache_problem: Option<String>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Repository({})", self.storage.location())
    }
}

/// Who a key is made by or for: written into the key file.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    /// Host name.
    pub host: String,
    /// User name.
    pub username: String,
    /// Creation time, RFC 3339.
    pub created: String,
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
            FormatError::UnsupportedVersion { .. } => Defect::Damaged,
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

/// Create a certified key file for `master` (full, or put-only when `master` has no secret key)
/// with a fresh signing key, certified by `admin` (a full key). Returns the stored bytes.
///
/// # Errors
/// [`CoreError::PutOnly`] when `admin` cannot certify; format errors.
pub fn make_key_file(
    admin: &MasterKey,
    master: MasterKey,
    password: &str,
    kdf: KdfParams,
    owner: &KeyOwner,
) -> Result<Vec<u8>> {
    let signer = Signer::generate()?;
    let kind = if master.can_read() {
        KeyKind::Full
    } else {
        KeyKind::PutOnly
    };
    let cert = KeyFile::certify(admin, kind, &signer.public(), &owner.host, &owner.created)
        .map_err(|_| CoreError::PutOnly("adding keys"))?;
    let payload = KeyPayload {
        master,
        signing_secret: *signer.secret(),
    };
    let kf = KeyFile::create(
        &payload,
        password,
        kdf,
        (&owner.host, &owner.username, &owner.created),
        cert,
    )?;
    Ok(kf.to_bytes())
}

impl Repository {
    /// Create a new repository in `storage` with one full key under `password`.
    ///
    /// # Errors
    /// [`CoreError::RepositoryExists`] if a config object is present; storage errors.
    pub fn init(
        storage: Arc<dyn Storage>,
        password: &str,
        kdf: KdfParams,
        owner: &KeyOwner,
        config: Config,
    ) -> Result<Self> {
        storage.create()?;
        if !storage.list(Kind::Config)?.is_empty() {
            return Err(CoreError::RepositoryExists(storage.location()));
        }
        let master = MasterKey::generate()?;
        let kf_bytes = make_key_file(&master, master.clone(), password, kdf, owner)?;
        storage.write(Kind::Key, &ObjectId::of(&kf_bytes).to_hex(), &kf_bytes)?;
        // The trust record names the config, which is written last: a repository exists when
        // its config exists (format §2, §12).
        let cfg_bytes = config.to_bytes();
        let cfg_id = ObjectId::of(&cfg_bytes);
        let mut record = TrustRecord::new(1, cfg_id);
        record.trust(trusted_key(&KeyFile::from_bytes(&kf_bytes)?)?);
        crate::repo::trust::write_record(storage.as_ref(), &master.admin()?, &record)?;
        storage.write(Kind::Config, &cfg_id.to_hex(), &cfg_bytes)?;
        Self::open(storage, password)
    }

    /// Read the config of the repository in `storage`.
    ///
    /// # Errors
    /// [`CoreError::RepositoryNotFound`] when there is none; [`CoreError::Damaged`] when its
    /// name does not match its content or there are several.
    pub fn read_config(storage: &dyn Storage) -> Result<Config> {
        Ok(Self::read_config_with_id(storage)?.1)
    }

    /// [`Repository::read_config`], with the config object's id (which the trust record must
    /// name, format §4.3).
    ///
    /// # Errors
    /// As [`Repository::read_config`].
    pub fn read_config_with_id(storage: &dyn Storage) -> Result<(ObjectId, Config)> {
        let list = match storage.list(Kind::Config) {
            Ok(l) => l,
            Err(e) if e.kind == ErrorKind::NotFound => {
                return Err(CoreError::RepositoryNotFound(storage.location()));
            }
            Err(e) => return Err(e.into()),
        };
        match list.as_slice() {
            [] => Err(CoreError::RepositoryNotFound(storage.location())),
            [(name, size)] => {
                let bytes =
                    limits::read_bounded(storage, Kind::Config, name, Some(*size), limits::CONFIG)?;
                let id = ObjectId::of(&bytes);
                if id.to_hex() != *name {
                    return Err(CoreError::Damaged(format!(
                        "config {name}: content does not match its name"
                    )));
                }
                Ok((id, Config::from_bytes(&bytes)?))
            }
            _ => Err(CoreError::Damaged(format!(
                "{} config objects, expected one",
                list.len()
            ))),
        }
    }

    /// Open the repository in `storage` with `password`, trying every key file, without
    /// high-water marks ([`Repository::open_with`]).
    ///
    /// # Errors
    /// As [`Repository::open_with`].
    pub fn open(storage: Arc<dyn Storage>, password: &str) -> Result<Self> {
        Self::open_with(storage, password, None)
    }

    /// Open the repository in `storage` with `password`, trying every key file. The config must
    /// be the one the newest trust record names, and the key must be trusted by it. With a
    /// cache directory, the storage's newest trust record must not be older than the newest
    /// this machine has seen ([`HighWater`]).
    ///
    /// # Errors
    /// [`CoreError::RepositoryNotFound`], [`CoreError::WrongPassword`],
    /// [`CoreError::KeyRevoked`] when the password opens only a removed key,
    /// [`CoreError::KeyNotTrusted`] when it opens only keys the trust record does not list,
    /// [`CoreError::Damaged`] for a config the trust record does not name, no trust record, or
    /// a rollback; [`CoreError::Io`] when the cache directory cannot be written.
    pub fn open_with(
        storage: Arc<dyn Storage>,
        password: &str,
        cache_dir: Option<&Path>,
    ) -> Result<Self> {
        let (config_id, config) = Self::read_config_with_id(storage.as_ref())?;
        let mut damaged = Vec::new();
        let (mut revoked, mut unlisted) = (None, None);
        // Cheapest first: a planted key file with costly Argon2id parameters (within the
        // bounds every key file is held to) cannot delay opening with an honest key.
        for (name, kf) in crate::keys::key_files_cheapest_first(storage.as_ref(), &mut damaged)? {
            let payload = match kf.open(password) {
                Ok(p) => p,
                Err(FormatError::WrongPassword) => continue,
                Err(e) => {
                    damaged.push(format!("key {name}: {e}"));
                    continue;
                }
            };
            let key_id: ObjectId = name.parse()?;
            let trust = Trust::load(storage.as_ref(), &payload.master)?;
            trust.authenticate_config(&config_id)?;
            // Before judging the key: an older trust record may not list it yet.
            let (marks, cache_problem) = high_water(cache_dir, &config.id, trust.seq())?;
            let signer = payload.signer();
            if trust.is_revoked(&signer.public()) {
                // A removed key whose key file is back (or was never deleted).
                revoked = Some(key_id);
                continue;
            }
            if trust.key(&signer.public()).is_none() {
                unlisted = Some(key_id);
                continue;
            }
            return Ok(Repository {
                storage,
                config,
                signer,
                payload,
                key_id,
                key_kind: kf.kind,
                trust,
                signers: Mutex::default(),
                marks,
                cache_problem,
            });
        }
        if let Some(id) = revoked {
            Err(CoreError::KeyRevoked(id.short()))
        } else if let Some(id) = unlisted {
            Err(CoreError::KeyNotTrusted(id.short()))
        } else if damaged.is_empty() {
            Err(CoreError::WrongPassword)
        } else {
            Err(CoreError::Damaged(format!(
                "no key opened; {}",
                damaged.join("; ")
            )))
        }
    }

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

    /// The snapshots this machine saw before that are missing now and that no forget record
    /// lists (format §16): hidden by the storage? Empty without a cache directory.
    ///
    /// # Errors
    /// [`CoreError::PutOnly`]; storage errors on listing; cache I/O errors.
    pub fn hidden_snapshots(&self) -> Result<Vec<Hidden>> {
        self.require_read("comparing snapshots with those seen before")?;
        let Some(marks) = &self.marks else {
            return Ok(Vec::new());
        };
        let present = self.snapshot_ids()?.into_iter().collect();
        marks.hidden(&present, || {
            let recs = crate::prune::load_records(self)?;
            Ok(recs
                .forgotten
                .into_iter()
                .flat_map(|(_, ids)| ids)
                .collect())
        })
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

    fn judge(&self, kind: &str, id: &ObjectId, signer: &[u8; 32]) -> Judged<Verdict> {
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

    /// Read, open and judge one snapshot (`listed`: its size from a listing); remembers its
    /// signer. A snapshot of a put-only key that claims another host than the one its key is
    /// certified for is ignored (format §11).
    fn open_snapshot(&self, id: &ObjectId, listed: Option<u64>) -> Judged<Snapshot> {
        let bytes = self.fetch(Kind::Snapshot, id, listed)?;
        let (signer, snap) = Snapshot::open(self.key(), &bytes).map_err(|e| {
            (
                Defect::of_format(&e),
                CoreError::Damaged(format!("snapshot {id}: {e}")),
            )
        })?;
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
    ///
    /// # Errors
    /// [`CoreError::PutOnly`], storage errors on listing.
    pub fn load_snapshots(&self) -> Result<(SnapshotList, Vec<Skipped>)> {
        self.require_read("listing snapshots")?;
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for (name, size) in self.storage.list(Kind::Snapshot)? {
            let id: ObjectId = name.parse()?;
            match self.open_snapshot(&id, Some(size)) {
                Ok(s) => ok.push((id, s)),
                Err((defect, error)) => bad.push(Skipped { id, error, defect }),
            }
        }
        ok.sort_by(|a, b| {
            crate::snapshots::time_of(&a.1)
                .cmp(&crate::snapshots::time_of(&b.1))
                .then(a.0.cmp(&b.0))
        });
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

    /// Load and merge all accepted index objects. Superseded, damaged and garbage objects and
    /// those of ignored signers are left out ([`Index::damaged_objects`] and
    /// [`Index::ignored_objects`] count them; `check` names them): they never stop a reader.
    ///
    /// # Errors
    /// [`CoreError::PutOnly`]; storage errors, also of reading an index object (a transient
    /// failure must not look like a smaller index).
    pub fn load_index(&self) -> Result<Index> {
        let (index, skipped) = self.load_index_lenient()?;
        match skipped.into_iter().find(|s| s.defect == Defect::Unreadable) {
            Some(s) => Err(s.error),
            None => Ok(index),
        }
    }

    /// Load and merge all accepted index objects; damaged and ignored ones are returned apart.
    /// Objects of full keys are merged first, so their blob locations are preferred.
    ///
    /// # Errors
    /// [`CoreError::PutOnly`], storage errors on listing.
    pub fn load_index_lenient(&self) -> Result<(Index, Vec<Skipped>)> {
        self.require_read("reading the index")?;
        // A concurrent prune replaces index objects and prune records (format §16): when a
        // listed object vanishes before it is read, or the prune records change meanwhile, the
        // view may be torn, so load again.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let records = crate::prune::record_names(self)?;
            let (index, skipped) = self.load_index_once()?;
            let raced = skipped.iter().any(
                |s| matches!(&s.error, CoreError::Storage(e) if e.kind == ErrorKind::NotFound),
            ) || crate::prune::record_names(self)? != records;
            if !raced || attempt >= 8 {
                return Ok((index, skipped));
            }
            std::thread::sleep(std::time::Duration::from_millis(10 * attempt));
        }
    }

    /// Read, open and judge one index object (`listed`: its size from a listing); returns who
    /// listed its packs.
    pub(crate) fn open_index(
        &self,
        id: &ObjectId,
        listed: Option<u64>,
    ) -> Judged<(Lister, IndexFile)> {
        let bytes = self.fetch(Kind::Index, id, listed)?;
        let (signer, f) = IndexFile::open(self.key(), &bytes).map_err(|e| {
            (
                Defect::of_format(&e),
                CoreError::Damaged(format!("index {id}: {e}")),
            )
        })?;
        Ok(match self.judge("index", id, &signer)? {
            Verdict::Full => (Lister::Full, f),
            _ => (Lister::PutOnly(signer), f),
        })
    }

    fn load_index_once(&self) -> Result<(Index, Vec<Skipped>)> {
        let mut files = Vec::new();
        let mut skipped = Vec::new();
        for (name, size) in self.storage.list(Kind::Index)? {
            let id: ObjectId = name.parse()?;
            match self.open_index(&id, Some(size)) {
                Ok((lister, f)) => files.push((lister != Lister::Full, id, lister, f)),
                Err((defect, error)) => skipped.push(Skipped { id, error, defect }),
            }
        }
        files.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        // Only full keys may retire index objects (prune, repair): a put-only key could otherwise
        // hide other writers' data.
        let superseded: std::collections::HashSet<ObjectId> = files
            .iter()
            .filter(|(not_full, ..)| !not_full)
            .flat_map(|(.., f)| f.supersedes.iter().copied())
            .collect();
        let mut index = Index::default();
        for (_, id, lister, f) in files {
            if !superseded.contains(&id) {
                index.add_file(id, lister, &f);
            }
        }
        // Packs condemned by prune stay readable until they are deleted (format §16).
        crate::prune::merge_fossils(self, &mut index, &mut skipped)?;
        index.ignored_objects = skipped
            .iter()
            .filter(|s| s.defect == Defect::Ignored)
            .count();
        index.damaged_objects = skipped
            .iter()
            .filter(|s| matches!(s.defect, Defect::Garbage | Defect::Damaged))
            .count();
        Ok((index, skipped))
    }

    /// The blobs a writer may deduplicate against (format §9, §13): those in the dedup lists of
    /// this key's own index objects (sealed for their writer alone), and — for a full key —
    /// those of the index objects of full keys, whose sealed index it opens. A put-only key
    /// sees its own lists only: no other writer's blob ids.
    ///
    /// # Errors
    /// Storage errors on listing. Unreadable index objects are skipped (their blobs are written
    /// again).
    pub fn load_dedup_set(&self) -> Result<IdSet<BlobId>> {
        let mut set = IdSet::default();
        let me = self.signer.public();
        let full = self.key().can_read();
        for (name, size) in self.storage.list(Kind::Index)? {
            let id: ObjectId = name.parse()?;
            let Ok(bytes) = self.fetch(Kind::Index, &id, Some(size)) else {
                continue;
            };
            let Ok((signer, env)) = IndexFile::envelope(&bytes) else {
                continue;
            };
            if signer == me {
                if let Ok(list) = IndexFile::dedup_list(&self.signer, &env) {
                    set.extend(list.into_iter().map(|(_, b)| b));
                }
            } else if full
                && self.trust.verdict(&signer, &id) == Verdict::Full
                && let Ok(f) = IndexFile::open_sealed(self.key(), &env.sealed, &signer)
            {
                set.extend(f.packs.iter().flat_map(|p| p.blobs.iter().map(|b| b.id)));
            }
        }
        Ok(set)
    }
}

/// The high-water marks under `cache_dir` after checking the storage's trust `seq` against
/// them; a cache directory that cannot be written gives no marks and a problem to report.
///
/// # Errors
/// [`CoreError::Damaged`] when the storage rolled back.
fn high_water(
    cache_dir: Option<&Path>,
    repo_id: &str,
    seq: u64,
) -> Result<(Option<HighWater>, Option<String>)> {
    let Some(dir) = cache_dir else {
        return Ok((None, None));
    };
    let marks = HighWater::new(dir, repo_id);
    match marks.check_trust_seq(seq) {
        Ok(()) => Ok((Some(marks), None)),
        Err(e @ CoreError::Io { .. }) => Ok((None, Some(e.to_string()))),
        Err(e) => Err(e),
    }
}

/// The trust record entry of a key file (kind, host and creation time as certified).
///
/// # Errors
/// [`FormatError::Malformed`] for a key file whose signing key is not 32 hex bytes.
pub fn trusted_key(kf: &KeyFile) -> Result<TrustedKey> {
    Ok(TrustedKey {
        signing_public: kf.signing_public()?,
        kind: kf.kind,
        host: kf.host.clone(),
        created: kf.created.clone(),
    })
}

/// A time as RFC 3339 in UTC, to the second (e.g. the end of an object lock).
pub fn rfc3339_utc(t: std::time::SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
        .unwrap_or_else(|_| format!("{t:?}"))
}
