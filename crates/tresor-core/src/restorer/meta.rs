//! Applying a node's metadata to the entry restore made, in the order owner, mode, xattrs,
//! times — always through the entry's own descriptor, never by resolving its name again
//! (symlinks, which have no descriptor to change them through, only by no-follow calls).

use super::Shared;
use super::policy::Fate;
use super::walk::DirState;
use crate::fsmeta::{fd_path, proc_fd, write_xattrs_fd, write_xattrs_path};
use rustix::fs::{AtFlags, CWD, Gid, Mode, Timespec, Timestamps, Uid};
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
    node.uid == rustix::process::geteuid().as_raw()
        && node.gid == rustix::process::getegid().as_raw()
}

/// Metadata of a directory, through its own descriptor.
///
/// # Errors
/// Every failing step, joined.
pub(super) fn dir_meta(sh: &Shared<'_>, d: &DirState, node: &Node) -> Result<(), String> {
    apply(sh, Access::Fd(d.fd.as_fd()), node, true, true, &|| d.path())
}

/// Metadata of a regular file or special file through `a`. `chown`: the owner must be set (it
/// is not known to be right already); `chmod`: the mode must be set even without special bits.
///
/// # Errors
/// Every failing step, joined.
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
        let m = Mode::from_bits_truncate(mode);
        let r = match a {
            Access::Fd(fd) => rustix::fs::fchmod(fd, m),
            Access::Path(fd) => rustix::fs::chmod(proc_fd(fd), m),
        };
        if let Err(e) = r {
            errors.push(format!("chmod: {e}"));
        }
    }
    let xattrs = allowed_xattrs(sh, node, owner_set, &mut dropped);
    if !xattrs.is_empty() {
        let r = match a {
            Access::Fd(fd) => write_xattrs_fd(fd, &xattrs),
            Access::Path(fd) => write_xattrs_path(&proc_fd(fd), &xattrs, true),
        };
        if let Err(e) = r {
            errors.push(e);
        }
    }
    let r = match a {
        Access::Fd(fd) => rustix::fs::futimens(fd, &times(node)),
        Access::Path(fd) => rustix::fs::utimensat(CWD, proc_fd(fd), &times(node), AtFlags::empty()),
    };
    if let Err(e) = r {
        errors.push(format!("set times: {e}"));
    }
    if dropped {
        sh.privileges_dropped(path());
    }
    joined(errors)
}

fn joined(errors: Vec<String>) -> Result<(), String> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Set the owner when the policy says so; true when the entry is now owned as `node` says.
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
    match r {
        Ok(()) => true,
        Err(e) => {
            errors.push(format!("chown: {e}"));
            false
        }
    }
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

/// Metadata of the symlink `name` in `dir`: no-follow calls only (its mode means nothing).
///
/// # Errors
/// Every failing step, joined.
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
        match rustix::fs::chownat(dir, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(()) => owner_set = true,
            Err(e) => errors.push(format!("chown: {e}")),
        }
    }
    let mut dropped = false;
    let xattrs = allowed_xattrs(sh, node, owner_set, &mut dropped);
    if !xattrs.is_empty()
        && let Err(e) = write_xattrs_path(&fd_path(dir, name), &xattrs, false)
    {
        errors.push(e);
    }
    if let Err(e) = rustix::fs::utimensat(dir, name, &times(node), AtFlags::SYMLINK_NOFOLLOW) {
        errors.push(format!("set times: {e}"));
    }
    if dropped {
        sh.privileges_dropped(path());
    }
    joined(errors)
}
