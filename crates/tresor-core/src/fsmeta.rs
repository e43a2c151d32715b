//! File metadata: reading it into tree nodes (backup) and applying it (restore).
//!
//! Paths deeper than `PATH_MAX` are handled by addressing every entry relative to an open
//! directory: either with `*at` system calls on the directory fd, or through the short path
//! `/proc/self/fd/<dirfd>/<name>` ([`fd_path`]) where only a path API exists (xattrs).
//!
//! The apply side (restore) never resolves a name twice: entries are opened beneath their
//! directory with [`open_beneath`] (no symlink, no `..`, no magic link can lead out), and their
//! metadata is changed through that descriptor ([`set_xattrs`] with [`XattrTarget::Fd`], or
//! [`proc_fd`] for descriptors opened with `O_PATH`, which names exactly that inode).

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::collections::HashMap;
use std::fs::Metadata;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use tresor_format::tree::{Node, NodeKind, Timestamp, Xattr};

/// `/proc/self/fd/<dirfd>/<name>`: a short path to an entry of an open directory.
pub fn fd_path(dir: BorrowedFd<'_>, name: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(std::ffi::OsStr::from_bytes(name));
    p
}

/// `/proc/self/fd/<fd>`: a path naming exactly the inode an open descriptor refers to (also one
/// opened with `O_PATH`), for calls that exist only for paths (chmod, setxattr, utimensat).
/// Path calls follow this magic link to that inode, never to whatever name it had.
pub fn proc_fd(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Set once `openat2` answered `ENOSYS` (kernels before 5.6): then only the component walk.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Open `path` (one or more `/`-separated names, relative) beneath the directory `dir` so that
/// nothing can lead out of it: `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
/// RESOLVE_NO_MAGICLINKS`; where the kernel lacks `openat2` (`ENOSYS`, or `EPERM` from a
/// seccomp filter), a walk one component at a time with `O_NOFOLLOW`. `O_CLOEXEC` is added.
///
/// A symlink anywhere on the way fails with `ELOOP` (as the last component with `O_PATH |
/// O_NOFOLLOW`, the symlink itself is opened); an empty path, an empty component, `.` or `..`
/// fails with `EXDEV` before any system call.
///
/// # Errors
/// The errno of the failing open.
pub fn open_beneath(
    dir: BorrowedFd<'_>,
    path: &[u8],
    flags: OFlags,
    mode: Mode,
) -> rustix::io::Result<OwnedFd> {
    let comps: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
    if comps
        .iter()
        .any(|c| c.is_empty() || *c == b"." || *c == b"..")
    {
        return Err(Errno::XDEV);
    }
    let flags = flags | OFlags::CLOEXEC;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(dir, path, flags, mode, resolve) {
            Err(Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
            Err(Errno::PERM) => {}
            r => return r,
        }
    }
    open_components(dir, &comps, flags, mode)
}

/// The fallback of [`open_beneath`]: every directory on the way opened with `O_PATH |
/// O_NOFOLLOW` relative to the previous one (and checked to be a directory), the last component
/// with `flags | O_NOFOLLOW`. A symlink gives `ELOOP` as with `openat2`.
fn open_components(
    dir: BorrowedFd<'_>,
    comps: &[&[u8]],
    flags: OFlags,
    mode: Mode,
) -> rustix::io::Result<OwnedFd> {
    use rustix::fs::FileType;
    let (last, parents) = comps.split_last().ok_or(Errno::XDEV)?;
    let mut held: Option<OwnedFd> = None;
    for c in parents {
        let at = held.as_ref().map_or(dir, |f| f.as_fd());
        let next = rustix::fs::openat(
            at,
            *c,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        match FileType::from_raw_mode(rustix::fs::fstat(&next)?.st_mode) {
            FileType::Directory => held = Some(next),
            FileType::Symlink => return Err(Errno::LOOP),
            _ => return Err(Errno::NOTDIR),
        }
    }
    let at = held.as_ref().map_or(dir, |f| f.as_fd());
    match rustix::fs::openat(at, *last, flags | OFlags::NOFOLLOW, mode) {
        // O_DIRECTORY | O_NOFOLLOW on a symlink says ENOTDIR; openat2 says ELOOP.
        Err(Errno::NOTDIR)
            if rustix::fs::statat(at, *last, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink) =>
        {
            Err(Errno::LOOP)
        }
        r => r,
    }
}

/// Where [`set_xattrs`] writes.
#[derive(Debug, Clone, Copy)]
pub enum XattrTarget<'a> {
    /// An open descriptor (not `O_PATH`): `fsetxattr`.
    Fd(BorrowedFd<'a>),
    /// A path whose last component is followed (a [`proc_fd`] path): `setxattr`.
    Follow(&'a std::path::Path),
    /// A path whose last component is not followed (a symlink itself): `lsetxattr`.
    NoFollow(&'a std::path::Path),
}

/// Set every attribute of `xattrs` on `target`, each one tried whatever happened to the others
/// (a file system may refuse one attribute and take the next).
///
/// Returns the attributes that were not set, each with the errno of its call (e.g. `ENOTSUP`:
/// no extended attributes here; `E2BIG`/`ENOSPC`: too large for this file system; `EPERM`).
pub fn set_xattrs<'x>(target: XattrTarget<'_>, xattrs: &[&'x Xattr]) -> Vec<(&'x Xattr, Errno)> {
    use std::os::unix::ffi::OsStrExt;
    let flags = rustix::fs::XattrFlags::empty();
    let mut refused = Vec::new();
    for x in xattrs {
        let name = std::ffi::OsStr::from_bytes(&x.name);
        let r = match target {
            XattrTarget::Fd(fd) => rustix::fs::fsetxattr(fd, name, &x.value, flags),
            XattrTarget::Follow(p) => rustix::fs::setxattr(p, name, &x.value, flags),
            XattrTarget::NoFollow(p) => rustix::fs::lsetxattr(p, name, &x.value, flags),
        };
        if let Err(e) = r {
            refused.push((*x, e));
        }
    }
    refused
}

/// Caches user and group names by id (the lookups read `/etc/passwd` each time).
#[derive(Default)]
pub struct NameCache {
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
}

impl NameCache {
    /// User name of `uid`, if any.
    pub fn user(&mut self, uid: u32) -> Option<String> {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .clone()
    }
    /// Group name of `gid`, if any.
    pub fn group(&mut self, gid: u32) -> Option<String> {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .map(|g| g.name)
            })
            .clone()
    }
}

/// The `lstat` fields a node is made of, from either a [`Metadata`] (a path call) or a
/// [`rustix::fs::Stat`] ([`lstat_at`]: one `statx` on a directory fd and a name, no path walk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryStat {
    /// `st_mode`: file type and permission bits.
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Device of the file system holding the entry.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Hard link count.
    pub nlink: u64,
    /// Device number of a character or block device.
    pub rdev: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Modification time: seconds since the epoch and nanoseconds.
    pub mtime: (i64, i64),
    /// Status change time: seconds since the epoch and nanoseconds.
    pub ctime: (i64, i64),
}

impl From<&Metadata> for EntryStat {
    fn from(m: &Metadata) -> Self {
        EntryStat {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            dev: m.dev(),
            ino: m.ino(),
            nlink: m.nlink(),
            rdev: m.rdev(),
            blocks: m.blocks(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

impl From<&rustix::fs::Stat> for EntryStat {
    #[allow(
        clippy::unnecessary_cast,
        clippy::cast_sign_loss,
        clippy::cast_possible_wrap,
        reason = "the field types of struct stat differ between architectures; the values are the kernel's"
    )]
    fn from(s: &rustix::fs::Stat) -> Self {
        EntryStat {
            mode: s.st_mode as u32,
            uid: s.st_uid as u32,
            gid: s.st_gid as u32,
            size: s.st_size as u64,
            dev: s.st_dev as u64,
            ino: s.st_ino as u64,
            nlink: s.st_nlink as u64,
            rdev: s.st_rdev as u64,
            blocks: s.st_blocks as u64,
            mtime: (s.st_mtime as i64, s.st_mtime_nsec as i64),
            ctime: (s.st_ctime as i64, s.st_ctime_nsec as i64),
        }
    }
}

impl EntryStat {
    /// The node kind of the file type bits, `None` for an unknown type.
    pub fn kind(&self) -> Option<NodeKind> {
        use rustix::fs::FileType as T;
        Some(match T::from_raw_mode(self.mode) {
            T::RegularFile => NodeKind::File,
            T::Directory => NodeKind::Dir,
            T::Symlink => NodeKind::Symlink,
            T::Fifo => NodeKind::Fifo,
            T::Socket => NodeKind::Socket,
            T::CharacterDevice => NodeKind::CharDevice,
            T::BlockDevice => NodeKind::BlockDevice,
            T::Unknown => return None,
        })
    }

    /// Whether the entry is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind() == Some(NodeKind::Dir)
    }
}

/// `lstat` of the entry `name` of an open directory: `statx` relative to the directory fd,
/// not following a symlink (no path lookup through `/proc/self/fd`, see [`fd_path`]).
///
/// # Errors
/// The system call's error (`ENOENT` when the entry is gone).
pub fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> std::io::Result<EntryStat> {
    let st = rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(EntryStat::from(&st))
}

/// A node from `lstat` metadata; xattrs, content, target and subtree are left empty.
///
/// The access time is not recorded: `atime` holds the modification time (as restic does without
/// `--with-atime`). Reading the source — by the backup itself, or by anyone between two backups
/// — changes access times, and recording them would make every directory above a read file look
/// changed on the next run.
pub fn node_from_metadata(
    name: Vec<u8>,
    kind: NodeKind,
    m: &EntryStat,
    names: &mut NameCache,
) -> Node {
    let ts = |(s, ns): (i64, i64)| Timestamp {
        secs: s,
        nanos: ns.clamp(0, 999_999_999) as u32,
    };
    Node {
        name,
        kind,
        mode: m.mode & 0o7777,
        uid: m.uid,
        gid: m.gid,
        user: names.user(m.uid),
        group: names.group(m.gid),
        mtime: ts(m.mtime),
        atime: ts(m.mtime),
        ctime: ts(m.ctime),
        size: if kind == NodeKind::Dir { 0 } else { m.size },
        device: m.dev,
        inode: m.ino,
        links: m.nlink,
        rdev: if matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
            m.rdev
        } else {
            0
        },
        target: Vec::new(),
        xattrs: Vec::new(),
        sparse: kind == NodeKind::File && m.blocks.saturating_mul(512) < m.size,
        content: Vec::new(),
        subtree: None,
    }
}

/// Extended attributes of an entry (not following symlinks), sorted by name. File systems
/// without xattr support give an empty list.
///
/// # Errors
/// I/O errors other than "not supported".
pub fn read_xattrs(path: &std::path::Path) -> std::io::Result<Vec<Xattr>> {
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names {
        use std::os::unix::ffi::OsStrExt;
        if let Some(value) = xattr::get(path, &name)? {
            out.push(Xattr {
                name: name.as_bytes().to_vec(),
                value,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Extended attributes of an open file, sorted by name (like [`read_xattrs`], without a path
/// lookup).
///
/// # Errors
/// I/O errors other than "not supported".
pub fn read_file_xattrs(file: &std::fs::File) -> std::io::Result<Vec<Xattr>> {
    use xattr::FileExt;
    let names = match file.list_xattr() {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names {
        use std::os::unix::ffi::OsStrExt;
        if let Some(value) = file.get_xattr(&name)? {
            out.push(Xattr {
                name: name.as_bytes().to_vec(),
                value,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Whether this process runs as root (effective uid 0), so ownership can be restored.
pub fn is_root() -> bool {
    effective_ids().0 == 0
}

/// This process's effective user and group ids, asked once (a restore or backup does not change
/// them; asking cost a restore two system calls a file).
pub fn effective_ids() -> (u32, u32) {
    static IDS: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    *IDS.get_or_init(|| {
        (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        )
    })
}

/// Raise the soft open-files limit to the hard limit (deep trees hold one fd per level).
pub fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if l.current != l.maximum {
        l.current = l.maximum;
        let _ = setrlimit(Resource::Nofile, l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Open<'a> = dyn Fn(&[u8], OFlags) -> rustix::io::Result<OwnedFd> + 'a;

    /// `lstat_at` (statx on a directory fd) gives field by field what `lstat` of the path gives,
    /// for a file with a time before 1970 and a hostile name (newline, not UTF-8), a directory, a
    /// symlink (not followed) and a FIFO; a missing name is `ENOENT`.
    #[test]
    fn lstat_at_equals_lstat_of_the_path() {
        use std::os::unix::ffi::OsStrExt;
        let tmp = tempfile::tempdir().unwrap();
        let hostile: &[u8] = b"a\nb\xff";
        let file = tmp.path().join(std::ffi::OsStr::from_bytes(hostile));
        std::fs::write(&file, b"12345").unwrap();
        let old = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: -86_401,
                tv_nsec: 5,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: -86_400,
                tv_nsec: 7,
            },
        };
        rustix::fs::utimensat(rustix::fs::CWD, &file, &old, rustix::fs::AtFlags::empty()).unwrap();
        std::fs::create_dir(tmp.path().join("d")).unwrap();
        std::os::unix::fs::symlink("d", tmp.path().join("l")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            tmp.path().join("p"),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let dir = std::fs::File::open(tmp.path()).unwrap();
        let kinds = [
            (hostile, NodeKind::File),
            (b"d".as_slice(), NodeKind::Dir),
            (b"l".as_slice(), NodeKind::Symlink),
            (b"p".as_slice(), NodeKind::Fifo),
        ];
        for (name, kind) in kinds {
            let by_fd = lstat_at(dir.as_fd(), name).unwrap();
            let path = tmp.path().join(std::ffi::OsStr::from_bytes(name));
            let by_path = EntryStat::from(&std::fs::symlink_metadata(&path).unwrap());
            assert_eq!(by_fd, by_path, "{}", path.display());
            assert_eq!(by_fd.kind(), Some(kind));
        }
        let st = lstat_at(dir.as_fd(), hostile).unwrap();
        assert_eq!((st.mtime, st.size), ((-86_400, 7), 5));
        let gone = lstat_at(dir.as_fd(), b"missing").unwrap_err();
        assert_eq!(gone.raw_os_error(), Some(libc::ENOENT));
    }

    /// Both ways of opening beneath a directory refuse the same escapes: `..`, absolute or
    /// empty components, and symlinks anywhere on the path (the last one opened itself only
    /// with `O_PATH | O_NOFOLLOW`).
    #[test]
    fn open_beneath_never_leaves_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("base");
        std::fs::create_dir_all(base.join("a/b")).unwrap();
        std::fs::write(base.join("a/b/f"), b"in").unwrap();
        std::fs::write(tmp.path().join("outside"), b"out").unwrap();
        std::os::unix::fs::symlink(tmp.path(), base.join("up")).unwrap();
        std::os::unix::fs::symlink("../../outside", base.join("a/link")).unwrap();
        let dir = std::fs::File::open(&base).unwrap();
        let d = dir.as_fd();
        let ro = OFlags::RDONLY;
        let opens: [&Open<'_>; 2] = [&|p, f| open_beneath(d, p, f, Mode::empty()), &|p, f| {
            let comps: Vec<&[u8]> = p.split(|b| *b == b'/').collect();
            open_components(d, &comps, f | OFlags::CLOEXEC, Mode::empty())
        }];
        for open in opens {
            let f = open(b"a/b/f", ro).unwrap();
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(f), &mut s).unwrap();
            assert_eq!(s, "in");
            assert_eq!(open(b"up/outside", ro).unwrap_err(), Errno::LOOP);
            assert_eq!(open(b"a/link", ro).unwrap_err(), Errno::LOOP);
            assert_eq!(
                open(b"up", ro | OFlags::DIRECTORY).unwrap_err(),
                Errno::LOOP
            );
            let link = open(b"a/link", OFlags::PATH | OFlags::NOFOLLOW).unwrap();
            let st = rustix::fs::fstat(&link).unwrap();
            assert_eq!(
                rustix::fs::FileType::from_raw_mode(st.st_mode),
                rustix::fs::FileType::Symlink
            );
        }
        for bad in [
            &b"../outside"[..],
            b"a/../../outside",
            b"",
            b"/etc/passwd",
            b"a//b",
        ] {
            assert_eq!(
                open_beneath(d, bad, ro, Mode::empty()).unwrap_err(),
                Errno::XDEV
            );
        }
    }
}
