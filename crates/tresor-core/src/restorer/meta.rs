//! Applying a node's metadata to the entry restore made, in the order owner, mode, xattrs,
//! times — always through the entry's own descriptor, never by resolving its name again
//! (symlinks, which have no descriptor to change them through, only by no-follow calls).
//! Then it is read back through the same descriptor and compared ([`super::differ`]): what the
//! target refused (`chown`, an attribute, a time out of its range, a mode bit) is a
//! difference naming the path, never an error and never silent.

use super::Shared;
use super::differ::{DiffKind, Wanted, compare, refused};
use super::dirs::DirState;
use crate::fsmeta::{XattrTarget, fd_path, proc_fd, set_xattrs};
use crate::metapolicy::Fate;
use rustix::fs::{AtFlags, CWD, Gid, Mode, Stat, Timespec, Timestamps, Uid};
use rustix::io::Errno;
use std::os::fd::{AsFd, BorrowedFd};
use tresor_format::tree::{Node, Xattr};

/// How the entry is reached.
#[derive(Clone, Copy)]
pub(super) enum Access<'f> {
    /// A descriptor opened for reading or writing: `f*` calls.
    Fd(BorrowedFd<'f>),
    /// An `O_PATH` descriptor (fifos, sockets, devices, which must not be opened):
    /// `fchownat(fd, "", AT_EMPTY_PATH)` and path calls on `/proc/self/fd/N`.
    Path(BorrowedFd<'f>),
}

impl Access<'_> {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Access::Fd(fd) | Access::Path(fd) => fd.as_fd(),
        }
    }
}

fn ts(t: tresor_format::tree::Timestamp) -> Timespec {
    Timespec {
        tv_sec: t.secs,
        tv_nsec: t.nanos.into(),
    }
}

fn times(node: &Node) -> Timestamps {
    Timestamps {
        last_access: ts(node.atime),
        last_modification: ts(node.mtime),
    }
}

/// Whether an entry created now by this process in a directory this restore created is
/// already owned as `node` says (then no chown is needed).
pub(super) fn owned_as_created(node: &Node) -> bool {
    (node.uid, node.gid) == crate::fsmeta::effective_ids()
}

/// The permission bits a new file in a directory this restore created can be created with,
/// when they are final: it needs no chown and has no setuid/setgid/sticky bit (those wait for
/// the owner and go through [`apply`]'s chmod). The file is still opened read-write: a mode
/// given at creation does not apply to the descriptor that creates it.
pub(super) fn final_mode_at_creation(sh: &Shared<'_>, node: &Node) -> Option<u32> {
    let bits = node.mode & 0o7777;
    (bits & 0o7000 == 0 && (!sh.policy.owner || owned_as_created(node))).then_some(bits)
}

/// Metadata of a directory, through its own descriptor.
///
/// # Errors
/// Every failing step, joined.
pub(super) fn dir_meta(sh: &Shared<'_>, d: &DirState, node: &Node) -> Result<(), String> {
    apply(sh, Access::Fd(d.fd.as_fd()), node, true, true, &|| d.path())
}

/// Metadata of a regular file or special file through `a`, then read back and compared.
/// `chown`: the owner must be set (it is not known to be right already); `chmod`: the mode
/// must be set even without special bits.
///
/// # Errors
/// Every failing step that is not a refusal of the target, joined.
pub(super) fn apply(
    sh: &Shared<'_>,
    a: Access<'_>,
    node: &Node,
    chown: bool,
    chmod: bool,
    path: &dyn Fn() -> String,
) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut dropped = false;
    let owner_set = set_owner(sh, a, node, chown, &mut errors);
    let (uid, gid) = if owner_set || node.mode & 0o6000 == 0 {
        (node.uid, node.gid)
    } else {
        current_owner(a)
    };
    let (mode, fate) = sh.policy.mode(node, uid, gid);
    sh.note(fate, true, &mut dropped);
    if chmod || mode & 0o7000 != 0 {
        keep_error(set_mode(a, mode), "chmod", &mut errors);
    }
    let xattrs = allowed_xattrs(sh, node, owner_set, &mut dropped);
    if !xattrs.is_empty() {
        let p = proc_fd(a.fd());
        let target = match a {
            Access::Fd(fd) => XattrTarget::Fd(fd),
            Access::Path(_) => XattrTarget::Follow(&p),
        };
        xattr_refusals(sh, set_xattrs(target, &xattrs), path, &mut errors);
    }
    let r = match a {
        Access::Fd(fd) => rustix::fs::futimens(fd, &times(node)),
        Access::Path(fd) => rustix::fs::utimensat(CWD, proc_fd(fd), &times(node), AtFlags::empty()),
    };
    keep_error(r, "set times", &mut errors);
    if dropped {
        sh.privileges_dropped(path());
    }
    let mut st = rustix::fs::fstat(a.fd());
    // Bits given at creation can come out otherwise (a default ACL of the directory takes the
    // umask's place and masks them): then they are set after all.
    if !chmod && st.as_ref().is_ok_and(|s| s.st_mode & 0o7777 != mode) {
        keep_error(set_mode(a, mode), "chmod", &mut errors);
        st = rustix::fs::fstat(a.fd());
    }
    read_back(sh, st, node, Some(mode), path);
    joined(errors)
}

/// Set the permission bits `mode` through `a`.
fn set_mode(a: Access<'_>, mode: u32) -> rustix::io::Result<()> {
    let m = Mode::from_bits_truncate(mode);
    match a {
        Access::Fd(fd) => rustix::fs::fchmod(fd, m),
        Access::Path(fd) => rustix::fs::chmod(proc_fd(fd), m),
    }
}

/// Keep the error of a metadata call unless the target refused it (then the read-back shows
/// the difference).
fn keep_error(r: rustix::io::Result<()>, what: &str, errors: &mut Vec<String>) {
    if let Err(e) = r
        && !refused(e)
    {
        errors.push(format!("{what}: {e}"));
    }
}

/// Attributes the target refused are differences; other failures errors.
fn xattr_refusals(
    sh: &Shared<'_>,
    failed: Vec<(&Xattr, Errno)>,
    path: &dyn Fn() -> String,
    errors: &mut Vec<String>,
) {
    for (x, e) in failed {
        let name = String::from_utf8_lossy(&x.name);
        if refused(e) {
            let wanted = format!("{name} ({} bytes)", x.value.len());
            let got = format!("refused: {e}");
            sh.diffs.add(path(), DiffKind::Xattr, wanted, got, true);
        } else {
            errors.push(format!("xattr {name}: {e}"));
        }
    }
}

/// Compare the entry as it now is (`st`) with the node: owner (when owners are to be restored:
/// listed as root, only counted without root), permission bits `mode` as applied, times.
fn read_back(
    sh: &Shared<'_>,
    st: rustix::io::Result<Stat>,
    node: &Node,
    mode: Option<u32>,
    path: &dyn Fn() -> String,
) {
    let Ok(st) = st else { return };
    let w = Wanted {
        node,
        mode,
        owner: sh.owner_wanted,
    };
    let found = compare(&w, &st);
    if found.is_empty() {
        return;
    }
    let p = path();
    for (what, wanted, got) in found {
        let listed = what != DiffKind::Owner || sh.policy.owner;
        sh.diffs.add(p.clone(), what, wanted, got, listed);
    }
}

fn joined(errors: Vec<String>) -> Result<(), String> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Set the owner when the policy says so; true when the entry is now owned as `node` says. A
/// refused `chown` (`EPERM`, or `EINVAL` for an id a user namespace does not map) is left to
/// the read-back.
fn set_owner(
    sh: &Shared<'_>,
    a: Access<'_>,
    node: &Node,
    chown: bool,
    errors: &mut Vec<String>,
) -> bool {
    if !sh.policy.owner {
        return false;
    }
    if !chown {
        return true;
    }
    let (uid, gid) = (Some(Uid::from_raw(node.uid)), Some(Gid::from_raw(node.gid)));
    let r = match a {
        Access::Fd(fd) => rustix::fs::fchown(fd, uid, gid),
        Access::Path(fd) => rustix::fs::chownat(fd, "", uid, gid, AtFlags::EMPTY_PATH),
    };
    let ok = r.is_ok();
    keep_error(r, "chown", errors);
    ok
}

/// The entry's owner as it is (`u32::MAX` when it cannot be read: then no bit that needs the
/// owner is applied).
fn current_owner(a: Access<'_>) -> (u32, u32) {
    match rustix::fs::fstat(a.fd()) {
        Ok(st) => (st.st_uid, st.st_gid),
        Err(_) => (u32::MAX, u32::MAX),
    }
}

/// The node's attributes that the policy lets through (the others counted).
fn allowed_xattrs<'n>(
    sh: &Shared<'_>,
    node: &'n Node,
    owner_set: bool,
    dropped: &mut bool,
) -> Vec<&'n Xattr> {
    node.xattrs
        .iter()
        .filter(|x| {
            let fate = sh.policy.xattr_fate(x, owner_set);
            sh.note(fate, false, dropped);
            fate == Fate::Apply
        })
        .collect()
}

/// Metadata of the symlink `name` in `dir`: no-follow calls only (its mode means nothing),
/// then read back with `lstat`.
///
/// # Errors
/// Every failing step that is not a refusal of the target, joined.
pub(super) fn symlink_meta(
    sh: &Shared<'_>,
    dir: BorrowedFd<'_>,
    node: &Node,
    path: &dyn Fn() -> String,
) -> Result<(), String> {
    let name = node.name.as_slice();
    let mut errors = Vec::new();
    let mut owner_set = false;
    if sh.policy.owner {
        let (uid, gid) = (Some(Uid::from_raw(node.uid)), Some(Gid::from_raw(node.gid)));
        let r = rustix::fs::chownat(dir, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW);
        owner_set = r.is_ok();
        keep_error(r, "chown", &mut errors);
    }
    let mut dropped = false;
    let xattrs = allowed_xattrs(sh, node, owner_set, &mut dropped);
    if !xattrs.is_empty() {
        let p = fd_path(dir, name);
        let failed = set_xattrs(XattrTarget::NoFollow(&p), &xattrs);
        xattr_refusals(sh, failed, path, &mut errors);
    }
    let r = rustix::fs::utimensat(dir, name, &times(node), AtFlags::SYMLINK_NOFOLLOW);
    keep_error(r, "set times", &mut errors);
    if dropped {
        sh.privileges_dropped(path());
    }
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW);
    read_back(sh, st, node, None, path);
    joined(errors)
}
