//! Opening what the walker listed, without blocking and without following anything.
//!
//! Between the walker's `lstat` of an entry and its `openat`, a local user can replace a regular
//! file by a FIFO (whose open would block until a writer appears, forever), a symlink or another
//! file. So files are opened with `O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC` (and
//! `O_NOATIME` where permitted), and `fstat` of the open file must show the regular file that
//! was listed — same device and inode — before a byte is read. Anything else is
//! [`OpenError::Changed`]: the walker warns and skips the entry.

use crate::fsmeta::EntryStat;
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use std::fs::File;
use std::os::fd::{BorrowedFd, OwnedFd};

/// The identity of a listed entry: `st_dev` and `st_ino` from the walker's `lstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Listed {
    /// Device of the file system holding the entry.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

/// Why an entry could not be opened for reading.
#[derive(Debug)]
pub(super) enum OpenError {
    /// The entry is no longer what was listed; the text says what it is now ("a fifo",
    /// "another file", …).
    Changed(&'static str),
    /// The open or `fstat` failed (permissions, a vanished entry, …).
    Io(std::io::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Changed(now) => {
                write!(f, "changed while being backed up (now {now}), skipped")
            }
            OpenError::Io(e) => e.fmt(f),
        }
    }
}

impl From<Errno> for OpenError {
    fn from(e: Errno) -> Self {
        match e {
            // O_NOFOLLOW on a symlink.
            Errno::LOOP => OpenError::Changed("a symbolic link"),
            // O_DIRECTORY on something else.
            Errno::NOTDIR => OpenError::Changed("not a directory"),
            // A socket (or a FIFO opened for writing): no such device or address.
            Errno::NXIO => OpenError::Changed("a socket or device"),
            e => OpenError::Io(e.into()),
        }
    }
}

/// What a file type is, for [`OpenError::Changed`].
fn describe(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a fifo",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "of an unknown type",
    }
}

/// Open `name` in `dir` for reading: never blocks (a FIFO opens at once and is refused), never
/// follows a symlink, never becomes the controlling terminal. With `listed`, the open file must
/// be that file (same device and inode). The returned file is in blocking mode again, with
/// its `fstat`.
///
/// # Errors
/// [`OpenError::Changed`] when the entry is not a regular file, or not the listed one;
/// [`OpenError::Io`] when the open or `fstat` fails.
pub(super) fn open_regular(
    dir: BorrowedFd<'_>,
    name: &[u8],
    listed: Option<Listed>,
) -> Result<(File, EntryStat), OpenError> {
    #[cfg(test)]
    tests::before_open(name);
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::NOCTTY;
    let flags = flags | OFlags::CLOEXEC;
    // O_NOATIME is refused (EPERM) on files of other users unless privileged.
    let fd = match rustix::fs::openat(dir, name, flags | OFlags::NOATIME, Mode::empty()) {
        Err(Errno::PERM) => rustix::fs::openat(dir, name, flags, Mode::empty()),
        r => r,
    }?;
    let st = check_identity(&fd, FileType::RegularFile, listed)?;
    // O_NONBLOCK only served the open; reads of a regular file block as usual (some file
    // systems would otherwise answer EAGAIN).
    let fl = rustix::fs::fcntl_getfl(&fd)?;
    rustix::fs::fcntl_setfl(&fd, fl - OFlags::NONBLOCK)?;
    Ok((File::from(fd), EntryStat::from(&st)))
}

/// Open the directory `name` in `dir` for listing (`O_DIRECTORY | O_NOFOLLOW`: neither a FIFO
/// nor a symlink put in its place is opened). Its identity is not compared with the listing: an
/// automount point changes device and inode when it is opened, and another directory in its
/// place cannot block the walk.
///
/// # Errors
/// [`OpenError::Changed`] when the entry is no longer a directory; [`OpenError::Io`] otherwise.
pub(super) fn open_dir(dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, OpenError> {
    #[cfg(test)]
    tests::before_open(name);
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::NONBLOCK;
    let fd = rustix::fs::openat(dir, name, flags | OFlags::CLOEXEC, Mode::empty())?;
    Ok(fd)
}

/// Bytes of the buffer [`list_names`] reads directory entries into: far more than one entry
/// (at most 280 bytes), so a listing never needs a larger one.
pub(super) const LIST_BUF: usize = 32 * 1024;

/// The names in the open directory `fd` (without `.` and `..`), in the order the file system
/// gives them, read with `getdents64` on `fd` itself into `buf` (capacity [`LIST_BUF`], its
/// contents are scratch): no second open of the directory, no `fstat`. `fd` must be freshly
/// opened (its offset at the start).
///
/// # Errors
/// The `getdents64` error (e.g. `EIO`); the names read before it are dropped.
pub(super) fn list_names(fd: &OwnedFd, buf: &mut Vec<u8>) -> std::io::Result<Vec<Vec<u8>>> {
    buf.clear();
    buf.reserve(LIST_BUF);
    let mut dir = rustix::fs::RawDir::new(fd, buf.spare_capacity_mut());
    let mut names = Vec::new();
    while let Some(entry) = dir.next() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

/// `fstat` the open `fd`: it must be of type `want` and, with `listed`, that very file.
fn check_identity(
    fd: &OwnedFd,
    want: FileType,
    listed: Option<Listed>,
) -> Result<rustix::fs::Stat, OpenError> {
    let st = rustix::fs::fstat(fd)?;
    let now = FileType::from_raw_mode(st.st_mode);
    if now != want {
        return Err(OpenError::Changed(describe(now)));
    }
    if let Some(l) = listed
        && (st.st_dev != l.dev || st.st_ino != l.ino)
    {
        return Err(OpenError::Changed("another file"));
    }
    Ok(st)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A test's code run in the race window.
    pub(in crate::archiver) type Hook = Box<dyn Fn(&[u8])>;

    thread_local! {
        /// Called with the name before each [`open_regular`] and [`open_dir`] of this thread:
        /// the race window.
        pub(in crate::archiver) static BEFORE_OPEN: std::cell::RefCell<Option<Hook>> =
            const { std::cell::RefCell::new(None) };
    }

    pub(super) fn before_open(name: &[u8]) {
        BEFORE_OPEN.with_borrow(|h| {
            if let Some(h) = h {
                h(name)
            }
        });
    }

    /// Run `f` on a thread; fail (instead of hanging) when it does not return within 5 s.
    fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(f()).unwrap());
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the open returned within 5 s (it blocked)")
    }

    fn listed(p: &std::path::Path) -> Listed {
        let m = std::fs::symlink_metadata(p).unwrap();
        Listed {
            dev: m.dev(),
            ino: m.ino(),
        }
    }

    fn open_in(dir: &std::path::Path, name: &'static str, l: Option<Listed>) -> String {
        let d = File::open(dir).unwrap();
        bounded(move || match open_regular(d.as_fd(), name.as_bytes(), l) {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        })
    }

    #[test]
    fn a_file_swapped_for_a_fifo_is_refused_at_once() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        std::fs::write(&p, b"listed").unwrap();
        let was = listed(&p);
        // The swap, between listing and opening: the listed metadata is now stale.
        std::fs::remove_file(&p).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            FileType::Fifo,
            Mode::from_bits_truncate(0o644),
            0,
        )
        .unwrap();
        assert_eq!(
            open_in(t.path(), "f", Some(was)),
            "changed while being backed up (now a fifo), skipped"
        );
        // Without an expected identity too: the type alone refuses it.
        assert_eq!(
            open_in(t.path(), "f", None),
            "changed while being backed up (now a fifo), skipped"
        );
    }

    #[test]
    fn a_file_swapped_for_a_symlink_or_another_file_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        std::fs::write(&p, b"listed").unwrap();
        let was = listed(&p);
        std::fs::write(t.path().join("other"), b"other").unwrap();
        std::fs::rename(t.path().join("other"), &p).unwrap();
        assert_eq!(
            open_in(t.path(), "f", Some(was)),
            "changed while being backed up (now another file), skipped"
        );
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &p).unwrap();
        assert_eq!(
            open_in(t.path(), "f", Some(was)),
            "changed while being backed up (now a symbolic link), skipped"
        );
    }

    #[test]
    fn the_listed_file_opens_in_blocking_mode() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        std::fs::write(&p, b"content").unwrap();
        let d = File::open(t.path()).unwrap();
        let (f, st) = open_regular(d.as_fd(), b"f", Some(listed(&p))).unwrap();
        assert_eq!(st, EntryStat::from(&std::fs::symlink_metadata(&p).unwrap()));
        let fl = rustix::fs::fcntl_getfl(&f).unwrap();
        assert!(!fl.contains(OFlags::NONBLOCK), "{fl:?}");
        assert_eq!(std::io::read_to_string(&f).unwrap(), "content");
        assert_eq!(
            open_in(t.path(), "missing", None),
            "No such file or directory (os error 2)"
        );
    }

    #[test]
    fn a_directory_swapped_for_a_fifo_is_refused_at_once() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("d");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            FileType::Fifo,
            Mode::from_bits_truncate(0o644),
            0,
        )
        .unwrap();
        let d = File::open(t.path()).unwrap();
        let r = bounded(move || {
            open_dir(d.as_fd(), b"d")
                .map(drop)
                .map_err(|e| e.to_string())
        });
        assert_eq!(
            r,
            Err("changed while being backed up (now not a directory), skipped".to_string())
        );
    }
}
