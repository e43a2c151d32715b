//! Temporary names: in a directory that existed before the restore, a file is written as
//! `.tresor-restore-<random>` (created `O_EXCL` beneath it) and renamed to its name only once
//! its content is complete (and verified) and its metadata applied — so no name there ever
//! holds a partial or damaged file, and an older file at that name stays as it was until then.
//! (In a directory the restore created there is nothing to keep: files are written under
//! their own names, see `entries::write_new`.)

use crate::fsmeta::open_beneath;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::fs::File;
use std::os::fd::BorrowedFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The prefix of every temporary name.
pub const PREFIX: &[u8] = b".tresor-restore-";

/// Attempts at a fresh random name before giving up (a name taken is `EEXIST`).
const ATTEMPTS: usize = 16;

/// A random temporary name: [`PREFIX`] and 16 hex digits, the keyed BLAKE3 hash of a counter
/// under a key drawn once per process from the kernel's random source (one system call per
/// process, not per file; the names cannot be guessed from outside).
fn random_name() -> Vec<u8> {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let key = KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        // SAFETY: `k` is a valid, writable buffer of its length.
        let n = unsafe { libc::getrandom(k.as_mut_ptr().cast(), k.len(), 0) };
        if n != k.len() as isize {
            // No random source: the time and the process id (names are still created O_EXCL).
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            k = *blake3::hash(format!("{t} {}", std::process::id()).as_bytes()).as_bytes();
        }
        k
    });
    let c = COUNTER.fetch_add(1, Ordering::Relaxed);
    let h = blake3::keyed_hash(key, &c.to_le_bytes());
    let mut name = PREFIX.to_vec();
    name.extend_from_slice(hex::encode(&h.as_bytes()[..8]).as_bytes());
    name
}

/// A file being written under a temporary name in `dir`.
pub(super) struct Temp {
    /// Its name in the directory.
    pub name: Vec<u8>,
    /// Opened read-write.
    pub file: File,
}

impl Temp {
    /// Create a new empty file with a fresh temporary name beneath `dir`, mode 0600 (its final
    /// mode is applied through its descriptor later).
    ///
    /// # Errors
    /// The errno of the last attempt.
    pub fn create(dir: BorrowedFd<'_>) -> rustix::io::Result<Temp> {
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        let mut last = Errno::EXIST;
        for _ in 0..ATTEMPTS {
            let name = random_name();
            match open_beneath(dir, &name, flags, Mode::from_bits_truncate(0o600)) {
                Ok(fd) => {
                    return Ok(Temp {
                        name,
                        file: File::from(fd),
                    });
                }
                Err(Errno::EXIST) => last = Errno::EXIST,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Rename it to `name` in `dir`, replacing what is there (not a directory: the caller
    /// removes one first).
    ///
    /// # Errors
    /// The errno of `renameat`; the temporary file is then removed.
    pub fn commit(self, dir: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<File> {
        match rustix::fs::renameat(dir, self.name.as_slice(), dir, name) {
            Ok(()) => Ok(self.file),
            Err(e) => {
                self.discard(dir);
                Err(e)
            }
        }
    }

    /// Remove it.
    pub fn discard(self, dir: BorrowedFd<'_>) {
        let _ = rustix::fs::unlinkat(dir, self.name.as_slice(), AtFlags::empty());
    }
}

/// The interrupted-restore marker: an empty file in every directory a restore made (files are
/// written there under their own names), removed when the directory is complete. A restore that
/// finds it knows the directory's files may be partly written. Not a temporary name (those end
/// in 16 hex digits).
pub const MARKER: &[u8] = b".tresor-restore-incomplete";

/// Put the marker in `dir` (created `O_EXCL`, mode 0600); false when it could not be made.
pub(super) fn mark(dir: BorrowedFd<'_>) -> bool {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
    open_beneath(dir, MARKER, flags, Mode::from_bits_truncate(0o600)).is_ok()
}

/// Whether `dir` holds the marker (a regular file; a symlink or directory of that name is not).
pub(super) fn marked(dir: BorrowedFd<'_>) -> bool {
    rustix::fs::statat(dir, MARKER, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
}

/// Remove the marker from `dir` (the directory is complete). Only a file or symlink of that
/// name can be unlinked this way, never a directory.
pub(super) fn unmark(dir: BorrowedFd<'_>) {
    let _ = rustix::fs::unlinkat(dir, MARKER, AtFlags::empty());
}

/// Remove the temporary files an interrupted restore left in `dir`: regular files named
/// [`PREFIX`]… that `keep` (a name of the snapshot's listing) does not claim. Returns how many.
pub(super) fn remove_leftovers(dir: BorrowedFd<'_>, keep: &dyn Fn(&[u8]) -> bool) -> u64 {
    let Ok(mut listing) = rustix::fs::Dir::read_from(dir) else {
        return 0;
    };
    let mut removed = 0;
    while let Some(Ok(e)) = listing.read() {
        let name = e.file_name().to_bytes();
        if !name.starts_with(PREFIX) || keep(name) {
            continue;
        }
        let regular = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile);
        if regular && rustix::fs::unlinkat(dir, name, AtFlags::empty()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// A temporary file is created O_EXCL with a fresh name, renamed over whatever file holds
    /// the final name, or removed; leftovers are removed unless the listing claims them, and
    /// never a directory or symlink of that name.
    #[test]
    fn create_commit_discard_and_leftovers() {
        let tmp = tempfile::tempdir().unwrap();
        let d = std::fs::File::open(tmp.path()).unwrap();
        std::fs::write(tmp.path().join("f"), b"old").unwrap();
        let t = Temp::create(d.as_fd()).unwrap();
        assert!(t.name.starts_with(PREFIX) && t.name.len() == PREFIX.len() + 16);
        std::io::Write::write_all(&mut &t.file, b"new").unwrap();
        let other = Temp::create(d.as_fd()).unwrap();
        assert_ne!(t.name, other.name);
        t.commit(d.as_fd(), b"f").unwrap();
        assert_eq!(std::fs::read(tmp.path().join("f")).unwrap(), b"new");
        other.discard(d.as_fd());
        let names = |p: &std::path::Path| {
            let mut v: Vec<String> = std::fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(tmp.path()), vec!["f"]);
        for n in ["a", "b"] {
            std::fs::write(tmp.path().join(format!(".tresor-restore-{n}")), b"x").unwrap();
        }
        std::fs::create_dir(tmp.path().join(".tresor-restore-dir")).unwrap();
        std::os::unix::fs::symlink("f", tmp.path().join(".tresor-restore-link")).unwrap();
        let removed = remove_leftovers(d.as_fd(), &|n| n == b".tresor-restore-b");
        assert_eq!(removed, 1);
        let want = [
            ".tresor-restore-b",
            ".tresor-restore-dir",
            ".tresor-restore-link",
            "f",
        ];
        assert_eq!(names(tmp.path()), want);
    }
}
