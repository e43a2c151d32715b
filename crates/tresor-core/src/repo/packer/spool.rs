//! Spool files: an open pack's stored bytes go to a file as the pack fills, so that a worker
//! holds about [`SPILL_AT`] bytes of it in memory, not the whole pack (32 MiB by default).
//!
//! A spool file is `.tmp-spool-<16 hex digits>` in the storage's spool folder
//! ([`Storage::spool_dir`](tresor_storage::Storage::spool_dir): a local repository's `data/`,
//! where the finished pack is moved into place, not copied) or else the system's temporary
//! folder. It is written through the page cache: `O_DIRECT` (as the local storage writes packs
//! from memory) would make the worker wait for the disk at every write, which measured 10–20 %
//! slower first backups on two cores, where the page cache cost no more CPU; the storage drops
//! the pack's pages once it is stored (the local storage's `write_file`).
//!
//! **Removal.** A spool file is removed when the value holding it ([`Spool`], then
//! [`Spooled`]) is dropped: after its pack is stored (the file is then usually gone already,
//! moved), and on every error path — a failed write, a worker or uploader that stops, a packer
//! dropped unfinished. A process that dies leaves its spool files behind. They are harmless:
//! their names are no object names, so no listing takes them for packs; and the next packer
//! using the folder removes them ([`sweep`]). Its writer holds an exclusive `flock` on a spool
//! file for as long as the file exists under its name, so `sweep` removes only files no live
//! process writes, and only those older than [`SWEEP_AGE`].

use crate::error::{CoreError, Result};
use std::fs::{self, File};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use tresor_storage::{Kind, StorageError};

/// An open pack's stored bytes go to its spool file once at least this many bytes (1 MiB)
/// are held.
pub(super) const SPILL_AT: usize = 1 << 20;

/// Name prefix of spool files.
const PREFIX: &str = ".tmp-spool-";

/// [`sweep`] removes only spool files last modified at least this long ago (10 minutes): a
/// file just created is not yet locked by its writer.
pub(super) const SWEEP_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// A spool error as a storage error of writing a pack (a full disk is
/// [`tresor_storage::ErrorKind::NoSpace`], as when the pack itself is written).
fn spool_error(path: &Path, e: &std::io::Error) -> CoreError {
    let what = format!("spool file {}", path.display());
    CoreError::Storage(StorageError::io("write", Kind::Pack, &what, e))
}

/// A spool file's name; removes the file when dropped (whether it is still there or not).
#[derive(Debug)]
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// A spool file being written: the pack's first bytes and their BLAKE3.
pub(super) struct Spool {
    /// Declared before `file`: dropped (removing the file) while it is still open and locked.
    name: Removed,
    file: File,
    hasher: blake3::Hasher,
    /// Bytes written: the pack's first bytes.
    len: u64,
}

impl Spool {
    /// A new spool file in `dir`, locked.
    ///
    /// # Errors
    /// Creating the file ([`CoreError::Storage`]).
    pub(super) fn create(dir: &Path) -> Result<Spool> {
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd).map_err(|e| CoreError::Damaged(format!("random: {e}")))?;
        let path = dir.join(format!("{PREFIX}{}", hex::encode(rnd)));
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| spool_error(&path, &e))?;
        let name = Removed(path);
        // Without locks (some network file systems) no sweep can lock it either.
        let _ = rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive);
        Ok(Spool {
            name,
            file,
            hasher: blake3::Hasher::new(),
            len: 0,
        })
    }

    /// Append `data`, the next bytes of the pack. Returns the bytes taken: all of them.
    ///
    /// # Errors
    /// Writing ([`CoreError::Storage`]; a full disk is `NoSpace`).
    pub(super) fn append(&mut self, data: &[u8]) -> Result<usize> {
        let at = self.len;
        (self.file.write_all_at(data, at)).map_err(|e| spool_error(&self.name.0, &e))?;
        self.hasher.update(data);
        self.len += data.len() as u64;
        Ok(data.len())
    }

    /// `len` bytes at `offset` of the pack, from the file.
    ///
    /// # Errors
    /// Reading ([`CoreError::Io`]).
    pub(super) fn read_at(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        let err = |e| CoreError::io(&self.name.0, e);
        let len = usize::try_from(len).map_err(|e| err(std::io::Error::other(e)))?;
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, offset).map_err(err)?;
        Ok(buf)
    }

    /// Append the pack's last bytes `tail`; returns the finished file and the pack's BLAKE3.
    ///
    /// # Errors
    /// Writing ([`CoreError::Storage`]).
    pub(super) fn finish(mut self, tail: &[u8]) -> Result<(Spooled, blake3::Hash)> {
        self.append(tail)?;
        let hash = self.hasher.finalize();
        let len = self.len;
        let spooled = Spooled {
            name: self.name,
            _file: self.file,
            len,
        };
        Ok((spooled, hash))
    }
}

/// A finished spool file: a whole pack, to be stored with
/// [`Storage::write_file`](tresor_storage::Storage::write_file). Removed when dropped (if still
/// there); kept open (and locked) until then.
#[derive(Debug)]
pub(super) struct Spooled {
    name: Removed,
    _file: File,
    /// The pack's length in bytes.
    pub(super) len: u64,
}

impl Spooled {
    /// Where the file is.
    pub(super) fn path(&self) -> &Path {
        &self.name.0
    }
}

/// Remove the spool files in `dir` that a process which died left: those no process holds
/// locked and last modified at least [`SWEEP_AGE`] ago. Returns how many were removed; a
/// folder that cannot be read removes none.
pub(super) fn sweep(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for e in entries.flatten() {
        let is_spool = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(PREFIX));
        let old = e.metadata().ok().and_then(|m| m.modified().ok());
        let old = old.is_some_and(|t| now.duration_since(t).is_ok_and(|age| age >= SWEEP_AGE));
        if !is_spool || !old {
            continue;
        }
        let Ok(f) = File::open(e.path()) else {
            continue;
        };
        let lock = rustix::fs::FlockOperation::NonBlockingLockExclusive;
        if rustix::fs::flock(&f, lock).is_ok() && fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}
