//! The offline spool (format §17): a local repository directory that holds the real
//! repository's config, this key's key file and the trust records, so that a backup written into
//! it produces exactly the objects a backup into the real repository would (same `id_key`,
//! chunker key, master key and signer), and a flush that uploads them verbatim.
//!
//! [`prepare`] makes or refreshes a spool from an open repository; [`status`] counts what waits;
//! [`flush`] verifies every waiting object (its name is the BLAKE3 of its bytes; index objects,
//! markers and snapshots carry this key's signature and, with a full key, open under the
//! repository key) before uploading anything, then uploads markers, packs, index objects and
//! snapshots in that order, deleting each from the spool only after the repository took it.

use crate::error::{CoreError, Result};
use crate::repo::{Repository, limits};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use tresor_format::index::IndexFile;
use tresor_format::marker::Marker;
use tresor_format::sign::{SignedKind, open_envelope};
use tresor_format::snapshot::Snapshot;
use tresor_storage::local::LocalStorage;
use tresor_storage::{Kind, Storage};

/// The kinds a spool holds objects of that wait for a flush, in flush order: markers first (a
/// fresh marker in the repository keeps a concurrent prune from deleting the packs that follow
/// before their index objects arrive, format §16 step 3), then packs, index objects, snapshots
/// (format §12 rules 1–2).
pub const FLUSH_ORDER: [Kind; 4] = [Kind::Marker, Kind::Pack, Kind::Index, Kind::Snapshot];

/// Make `dir` a spool of `repo` (created with mode 0700 when missing) or refresh one: copy the
/// config, this key's key file and every trust record verbatim (create-only writes: copying
/// again is harmless). Returns the spool's storage.
///
/// # Errors
/// [`CoreError::Invalid`] when `dir` holds the spool of another repository; I/O and storage
/// errors.
pub fn prepare(repo: &Repository, dir: &Path) -> Result<Arc<dyn Storage>> {
    create_dir(dir)?;
    let spool = LocalStorage::new(dir);
    spool.create()?;
    let real = repo.storage().as_ref();
    let (config_id, _) = Repository::read_config_with_id(real)?;
    check_same_config(&spool, dir, &config_id.to_hex())?;
    for (name, _) in real.list(Kind::Trust)? {
        copy(real, &spool, Kind::Trust, &name, limits::TRUST)?;
    }
    copy(
        real,
        &spool,
        Kind::Key,
        &repo.key_id().to_hex(),
        limits::KEY,
    )?;
    copy(
        real,
        &spool,
        Kind::Config,
        &config_id.to_hex(),
        limits::CONFIG,
    )?;
    Ok(Arc::new(spool))
}

/// Open an existing spool (one [`prepare`] made).
///
/// # Errors
/// [`CoreError::Invalid`] when `dir` holds no spool.
pub fn open(dir: &Path) -> Result<Arc<dyn Storage>> {
    let spool = LocalStorage::new(dir);
    match spool.list(Kind::Config) {
        Ok(l) if !l.is_empty() => Ok(Arc::new(spool)),
        _ => Err(CoreError::Invalid(format!(
            "{}: no spool there (a backup with --spool DIR while the repository is reachable prepares one)",
            dir.display()
        ))),
    }
}

fn create_dir(dir: &Path) -> Result<()> {
    let io = |e: std::io::Error| CoreError::Invalid(format!("spool {}: {e}", dir.display()));
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)
}

fn check_same_config(spool: &dyn Storage, dir: &Path, config: &str) -> Result<()> {
    for (name, _) in spool.list(Kind::Config)? {
        if name != config {
            return Err(CoreError::Invalid(format!(
                "{}: the spool of another repository (config {}, this one's is {})",
                dir.display(),
                &name[..8.min(name.len())],
                &config[..8]
            )));
        }
    }
    Ok(())
}

fn copy(from: &dyn Storage, to: &dyn Storage, kind: Kind, name: &str, limit: u64) -> Result<()> {
    let bytes = limits::read_bounded(from, kind, name, None, limit)?;
    checked_name(kind, name, &bytes)?;
    Ok(to.write(kind, name, &bytes)?)
}

/// Objects of one kind waiting in a spool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Waiting {
    /// How many objects.
    pub objects: u64,
    /// Their total size, bytes.
    pub bytes: u64,
}

/// What a spool holds that waits for a flush, per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolStatus {
    /// Snapshots.
    pub snapshots: Waiting,
    /// Packs.
    pub packs: Waiting,
    /// Index objects.
    pub index: Waiting,
    /// Backup start markers.
    pub markers: Waiting,
}

impl SpoolStatus {
    /// The counts of `kind` (one of [`FLUSH_ORDER`]).
    pub fn of_mut(&mut self, kind: Kind) -> &mut Waiting {
        match kind {
            Kind::Snapshot => &mut self.snapshots,
            Kind::Pack => &mut self.packs,
            Kind::Index => &mut self.index,
            _ => &mut self.markers,
        }
    }

    /// Bytes of every kind together.
    pub fn bytes(&self) -> u64 {
        self.snapshots.bytes + self.packs.bytes + self.index.bytes + self.markers.bytes
    }
}

/// What waits in `spool` (entries that are not object names are not counted).
///
/// # Errors
/// Storage errors on listing.
pub fn status(spool: &dyn Storage) -> Result<SpoolStatus> {
    let mut s = SpoolStatus::default();
    for kind in FLUSH_ORDER {
        for (_, size) in spool.list(kind)? {
            let w = s.of_mut(kind);
            w.objects += 1;
            w.bytes += size;
        }
    }
    Ok(s)
}

fn checked_name(kind: Kind, name: &str, bytes: &[u8]) -> Result<()> {
    if tresor_storage::name_of(bytes) == name {
        Ok(())
    } else {
        Err(CoreError::Invalid(format!(
            "spool {kind} {name}: content does not match its name: refusing to flush"
        )))
    }
}

/// Whether `bytes` (object `name` of `kind`) was produced for `repo` by this key: the name is
/// the BLAKE3 of the bytes; index objects, markers and snapshots are signed by this key's signer
/// and, with a full key, open under the repository key (a put-only key checks the index
/// object's dedup list, which only this signer can read). Packs are inert until a signed index
/// object lists them (format §9, §12); only their name is checked.
///
/// # Errors
/// [`CoreError::Invalid`] naming the object and why it is refused.
pub fn verify(repo: &Repository, kind: Kind, name: &str, bytes: &[u8]) -> Result<()> {
    checked_name(kind, name, bytes)?;
    let refuse = |why: String| {
        CoreError::Invalid(format!(
            "spool {kind} {name}: {why}: not produced for this repository by this key, refusing to flush (remove it from the spool)"
        ))
    };
    let signed = match kind {
        Kind::Snapshot => SignedKind::Snapshot,
        Kind::Index => SignedKind::Index,
        Kind::Marker => SignedKind::Marker,
        Kind::Pack => return Ok(()),
        _ => return Err(refuse("not a kind a spool flushes".into())),
    };
    let (signer, _) = open_envelope(signed, bytes).map_err(|e| refuse(e.to_string()))?;
    if signer != repo.signer().public() {
        return Err(refuse("signed by another key".into()));
    }
    let key = repo.key();
    let opened = match kind {
        Kind::Snapshot if key.can_read() => Snapshot::open(key, bytes).map(|_| ()),
        Kind::Marker if key.can_read() => Marker::open(key, bytes).map(|_| ()),
        Kind::Index if key.can_read() => IndexFile::open(key, bytes).map(|_| ()),
        Kind::Index => IndexFile::envelope(bytes)
            .and_then(|(_, env)| IndexFile::dedup_list(repo.signer(), &env))
            .map(|_| ()),
        _ => Ok(()),
    };
    opened.map_err(|e| refuse(e.to_string()))
}

/// What a flush uploaded, per kind.
pub type FlushOutcome = SpoolStatus;

/// Upload what `spool` holds into `repo` (format §17): first every waiting object is read and
/// [`verify`]-ed (one refused object stops the flush before anything is uploaded), then each is
/// written verbatim in [`FLUSH_ORDER`] and deleted from the spool once the repository took it.
/// Writes are create-only, so a flush that was interrupted is simply run again. `uploaded` is
/// told each object's kind and size after it is uploaded.
///
/// # Errors
/// [`CoreError::Invalid`] for a spool of another repository or a refused object; storage errors
/// (the objects not yet uploaded stay in the spool).
pub fn flush(
    repo: &Repository,
    spool: &dyn Storage,
    uploaded: &mut dyn FnMut(Kind, u64),
) -> Result<FlushOutcome> {
    let (config_id, _) = Repository::read_config_with_id(spool)?;
    if config_id != Repository::read_config_with_id(repo.storage().as_ref())?.0 {
        return Err(CoreError::Invalid(format!(
            "{}: the spool of another repository (config {})",
            spool.location(),
            config_id.short()
        )));
    }
    let waiting = verified_list(repo, spool)?;
    let mut done = SpoolStatus::default();
    for (kind, name, size) in waiting {
        let limit = limits::max_object_size(kind, repo.config());
        let bytes = limits::read_bounded(spool, kind, &name, Some(size), limit)?;
        // Verified again as uploaded: the spool may have changed since it was listed.
        verify(repo, kind, &name, &bytes)?;
        repo.storage().write(kind, &name, &bytes)?;
        spool.delete(kind, &name)?;
        let w = done.of_mut(kind);
        w.objects += 1;
        w.bytes += size;
        uploaded(kind, size);
    }
    Ok(done)
}

/// Every waiting object in flush order, each read and verified.
fn verified_list(repo: &Repository, spool: &dyn Storage) -> Result<Vec<(Kind, String, u64)>> {
    let mut out = Vec::new();
    for kind in FLUSH_ORDER {
        let mut list = spool.list(kind)?;
        list.sort();
        for (name, size) in list {
            let limit = limits::max_object_size(kind, repo.config());
            let bytes = limits::read_bounded(spool, kind, &name, Some(size), limit)?;
            verify(repo, kind, &name, &bytes)?;
            out.push((kind, name, size));
        }
    }
    Ok(out)
}
