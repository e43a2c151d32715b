//! The target's directories as the restore holds them: [`DirState`] (an open descriptor and
//! its place in the target), [`FileJob`] (an entry for the workers), and creating or removing
//! entries beneath a descriptor without following symlinks ([`ensure_dir`], [`remove_entry`]).
//! The walker, the workers and the dry-run plan all use these; this module uses none of them.

use crate::fsmeta::{fd_path, open_beneath, proc_fd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tresor_format::tree::{Node, valid_name};

/// A directory being restored.
pub(super) struct DirState {
    /// Its open descriptor (read-only, a directory): entries are made relative to it and its
    /// own metadata is applied through it.
    pub fd: OwnedFd,
    /// Created empty by this restore: entries need no check for what is already there.
    pub fresh: bool,
    pub parent: Option<Arc<DirState>>,
    /// Its name in the parent (for the target root: the target path, for messages).
    pub name: Vec<u8>,
    /// Its node (`None` for the target root, whose metadata is left alone).
    pub node: Option<Node>,
    /// Entries not done yet, plus one held by the walker until its listing is done.
    pub pending: AtomicUsize,
    /// The interrupted-restore marker ([`super::temp::MARKER`]) is in it: removed when the
    /// directory is complete, before its own metadata.
    pub marked: AtomicBool,
    /// A restore into it was interrupted (its marker was found): files under their names may be
    /// partly written, so every file is judged by content (`--overwrite always`) whatever the
    /// mode.
    pub interrupted: AtomicBool,
}

impl DirState {
    /// The target directory, open as `fd`, shown as `path` in messages.
    pub fn root(fd: OwnedFd, path: String) -> Self {
        Self::new(fd, false, None, path.into_bytes(), None)
    }

    /// A directory `name` below `parent`, open as `fd`; `fresh`: made by this restore.
    pub fn child(parent: &Arc<DirState>, fd: OwnedFd, fresh: bool, node: Node) -> Self {
        let name = node.name.clone();
        Self::new(fd, fresh, Some(parent.clone()), name, Some(node))
    }

    fn new(
        fd: OwnedFd,
        fresh: bool,
        parent: Option<Arc<DirState>>,
        name: Vec<u8>,
        node: Option<Node>,
    ) -> Self {
        DirState {
            fd,
            fresh,
            parent,
            name,
            node,
            pending: AtomicUsize::new(1),
            marked: AtomicBool::new(false),
            interrupted: AtomicBool::new(false),
        }
    }

    /// The overwrite mode for its entries: `mode`, or `always` when a restore into it was
    /// interrupted.
    pub fn overwrite(&self, mode: super::Overwrite) -> super::Overwrite {
        if self.interrupted.load(Ordering::Relaxed) {
            super::Overwrite::Always
        } else {
            mode
        }
    }

    /// Its path in the target, for messages (built on demand: deep trees would otherwise hold
    /// a quadratic amount of path text).
    pub fn path(&self) -> String {
        let mut names = Vec::new();
        let mut cur = Some(self);
        while let Some(d) = cur {
            match d.parent.as_deref() {
                Some(_) => names.push(shown(&d.name)),
                // The target root: its path as given.
                None => names.push(tresor_format::tree::display_bytes(&d.name)),
            }
            cur = d.parent.as_deref();
        }
        names.reverse();
        names.join("/")
    }

    /// The path of entry `name` in it, for messages.
    pub fn child_path(&self, name: &[u8]) -> String {
        format!("{}/{}", self.path(), shown(name))
    }
}

impl Drop for DirState {
    /// Unlink the parent chain iteratively: dropping the last directory of a deep tree must not
    /// recurse once per level.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(p) = next {
            match Arc::try_unwrap(p) {
                Ok(mut d) => next = d.parent.take(),
                Err(_) => break,
            }
        }
    }
}

/// A name for messages: by the display rule (docs/cli.md, "Names in output") when valid,
/// quoted and escaped when not (so that `a/b` or `..` cannot pass for a path).
pub(super) fn shown(name: &[u8]) -> String {
    if valid_name(name) {
        tresor_format::tree::display_bytes(name)
    } else {
        tresor_format::tree::escape_name(name)
    }
}

/// A file, symlink or special file for the workers.
pub(super) struct FileJob {
    pub dir: Arc<DirState>,
    pub node: Node,
}

impl FileJob {
    /// Its path in the target, for messages.
    pub fn path(&self) -> String {
        self.dir.child_path(&self.node.name)
    }
}

/// Remove whatever is at `name` in `dir` (a directory recursively), not following symlinks.
pub(super) fn remove_entry(dir: BorrowedFd<'_>, name: &[u8]) -> std::io::Result<()> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            // std's remove_dir_all does not follow symlinks, also not when racing.
            std::fs::remove_dir_all(fd_path(dir, name))
        }
        Ok(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(Into::into),
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW);

/// Create (or reuse) directory `name` in `dir` and open it beneath `dir`; true when newly
/// created and as this restore made it ([`as_made`]). An existing directory is made writable
/// for us (mode 0700) through its own descriptor; anything else in the way is removed.
pub(super) fn ensure_dir(dir: BorrowedFd<'_>, name: &[u8]) -> std::io::Result<(OwnedFd, bool)> {
    match rustix::fs::mkdirat(dir, name, Mode::from_bits_truncate(0o700)) {
        Ok(()) => {
            let fd = open_beneath(dir, name, DIR_FLAGS, Mode::empty())?;
            let made = as_made(fd.as_fd());
            return Ok((fd, made));
        }
        Err(Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    match open_beneath(dir, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => {
            // Make sure we can fill it, even if an earlier run left it read-only.
            let _ = rustix::fs::fchmod(&fd, Mode::from_bits_truncate(0o700));
            Ok((fd, false))
        }
        // Not a directory, or a symlink: replaced.
        Err(Errno::NOTDIR | Errno::LOOP) => {
            remove_entry(dir, name)?;
            rustix::fs::mkdirat(dir, name, Mode::from_bits_truncate(0o700))?;
            let fd = open_beneath(dir, name, DIR_FLAGS, Mode::empty())?;
            let made = as_made(fd.as_fd());
            Ok((fd, made))
        }
        // A directory we may not read (an earlier run left it mode 0): chmod it through an
        // O_PATH descriptor of exactly that directory, then open it through that.
        Err(Errno::ACCESS) => {
            let path_fd = open_beneath(
                dir,
                name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW,
                Mode::empty(),
            )?;
            rustix::fs::chmod(proc_fd(path_fd.as_fd()), Mode::from_bits_truncate(0o700))?;
            let fd = rustix::fs::openat(&path_fd, ".", DIR_FLAGS | OFlags::CLOEXEC, Mode::empty())?;
            Ok((fd, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether the directory just created and opened as `fd` is as this restore made it, so that
/// its entries need no check and new files can be created under their names with their final
/// bits: ours (not one another user swapped in between `mkdirat` and the open, in a parent
/// others can write to), mode exactly 0700 (no setgid bit inherited from its parent: its
/// entries would get the parent's group) and without a default ACL (which would mask the bits
/// files are created with). Otherwise the restore treats it as a directory that existed.
fn as_made(fd: BorrowedFd<'_>) -> bool {
    let Ok(st) = rustix::fs::fstat(fd) else {
        return false;
    };
    let ours = st.st_uid == crate::fsmeta::effective_ids().0;
    let acl = rustix::fs::fgetxattr(fd, "system.posix_acl_default", &mut [0u8; 0][..]);
    ours && st.st_mode & 0o7777 == 0o700 && !matches!(acl, Ok(n) if n > 0)
}
