//! Spool files: an open pack's stored bytes go to a file as the pack fills, so that a worker
//! holds about [`SPILL_AT`] bytes of it in memory, not the whole pack (16 MiB by default).
//!
//! A spool file is `.tmp-spool-<16 hex digits>` in the storage's spool folder
//! ([`Storage::spool_dir`](tresor_storage::Storage::spool_dir): a local repository's `data/`,
//! where the finished pack is moved into place, not copied) or else the system's temporary
//! folder. It is written with `O_DIRECT` where the file system allows it (as the local storage
//! writes packs: a backup has no use for its packs in the page cache, and copying into fresh
//! cache pages costs more CPU than the rest of writing), buffered elsewhere (tmpfs).
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
use tresor_storage::direct::ALIGN;
use tresor_storage::{Kind, StorageError};

/// An open pack's stored bytes go to its spool file once at least this many bytes (1 MiB)
/// are held.
pub(super) const SPILL_AT: usize = 1 << 20;

/// Bytes copied to the aligned buffer per `O_DIRECT` write (1 MiB).
const CHUNK: usize = 1 << 20;

/// Name prefix of spool files.
const PREFIX: &str = ".tmp-spool-";

/// [`sweep`] removes only spool files last modified at least this long ago (10 minutes): a
/// file just created is not yet locked by its writer.
pub(super) const SWEEP_AGE: std::time::Duration = std::time::Duration::from_secs(600);

thread_local! {
    /// Aligned buffer of [`CHUNK`] bytes (plus alignment slack) per thread, on first use.
    static ALIGNED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

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
    /// Whether the file is open with `O_DIRECT` (then writes are whole [`ALIGN`] blocks).
    direct: bool,
    hasher: blake3::Hasher,
    /// Bytes written, the pack's first bytes (without `O_DIRECT` padding).
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
        let open = |direct: bool| {
            let mut o = fs::OpenOptions::new();
            o.read(true).write(true).create_new(true).mode(0o600);
            if direct {
                o.custom_flags(libc::O_DIRECT);
            }
            o.open(&path)
        };
        let (file, direct) = match open(true) {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                let _ = fs::remove_file(&path);
                (open(false).map_err(|e| spool_error(&path, &e))?, false)
            }
            Err(e) => return Err(spool_error(&path, &e)),
        };
        let name = Removed(path);
        // Without locks (some network file systems) no sweep can lock it either.
        let _ = rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive);
        Ok(Spool {
            name,
            file,
            direct,
            hasher: blake3::Hasher::new(),
            len: 0,
        })
    }

    /// Append a prefix of `data` (the next bytes of the pack): all of it, or with `O_DIRECT`
    /// whole [`ALIGN`] blocks only. Returns the bytes taken.
    ///
    /// # Errors
    /// Writing ([`CoreError::Storage`]; a full disk is `NoSpace`).
    pub(super) fn append(&mut self, data: &[u8]) -> Result<usize> {
        let n = match self.direct {
            true => data.len() / ALIGN * ALIGN,
            false => data.len(),
        };
        self.write(&data[..n])?;
        Ok(n)
    }

    /// Write `data` at the end: with `O_DIRECT` through the aligned buffer, the last block
    /// padded with zeros (cut off by [`Spool::finish`]); a file system that refuses it
    /// (`EINVAL`) gets buffered writes from then on.
    fn write(&mut self, data: &[u8]) -> Result<()> {
        let mut at = 0;
        while self.direct && at < data.len() {
            let piece = &data[at..data.len().min(at + CHUNK)];
            match write_aligned(&self.file, piece, self.len + at as u64) {
                Ok(()) => at += piece.len(),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.buffered()?,
                Err(e) => return Err(spool_error(&self.name.0, &e)),
            }
        }
        let rest = &data[at..];
        if !rest.is_empty() {
            let end = self.len + at as u64;
            (self.file.write_all_at(rest, end)).map_err(|e| spool_error(&self.name.0, &e))?;
        }
        self.hasher.update(data);
        self.len += data.len() as u64;
        Ok(())
    }

    /// Clear `O_DIRECT`: writes go through the page cache from now on.
    fn buffered(&mut self) -> Result<()> {
        let err = |e: rustix::io::Errno| spool_error(&self.name.0, &e.into());
        let flags = rustix::fs::fcntl_getfl(&self.file).map_err(err)?;
        rustix::fs::fcntl_setfl(&self.file, flags - rustix::fs::OFlags::DIRECT).map_err(err)?;
        self.direct = false;
        Ok(())
    }

    /// `len` bytes at `offset` of the pack, from the file.
    ///
    /// # Errors
    /// Reading ([`CoreError::Io`]).
    pub(super) fn read_at(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        let err = |e| CoreError::io(&self.name.0, e);
        // Not through this file's descriptor: `O_DIRECT` reads need aligned buffers.
        let f = File::open(&self.name.0).map_err(err)?;
        let len = usize::try_from(len).map_err(|e| err(std::io::Error::other(e)))?;
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, offset).map_err(err)?;
        Ok(buf)
    }

    /// Append the pack's last bytes `tail`; returns the finished file and the pack's BLAKE3.
    ///
    /// # Errors
    /// Writing ([`CoreError::Storage`]).
    pub(super) fn finish(mut self, tail: &[u8]) -> Result<(Spooled, blake3::Hash)> {
        self.write(tail)?;
        if self.direct {
            let len = self.len;
            (self.file.set_len(len)).map_err(|e| spool_error(&self.name.0, &e))?;
        }
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

/// Write `data` (at most [`CHUNK`] bytes) at `offset` (a multiple of [`ALIGN`]) through the
/// thread's aligned buffer, padded with zeros to a whole block.
fn write_aligned(file: &File, data: &[u8], offset: u64) -> std::io::Result<()> {
    ALIGNED.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() < CHUNK + ALIGN {
            *b = vec![0u8; CHUNK + ALIGN];
        }
        let start = b.as_ptr().align_offset(ALIGN);
        let buf = &mut b[start..start + CHUNK];
        let padded = data.len().div_ceil(ALIGN) * ALIGN;
        buf[..data.len()].copy_from_slice(data);
        buf[data.len()..padded].fill(0);
        file.write_all_at(&buf[..padded], offset)
    })
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
