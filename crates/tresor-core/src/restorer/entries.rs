//! The workers' side: one file, symlink, fifo, socket or device at a time; hard links last.

use super::content::{index_lengths, verify, write_content};
use super::meta::{Access, apply, owned_as_created, symlink_meta};
use super::walk::{DirState, FileJob, Links, remove_entry};
use super::{Shared, bump};
use crate::fsmeta::open_beneath;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tresor_format::tree::{Node, NodeKind};

/// What is at a file's place in a target that restore did not create.
enum Existing {
    /// Nothing.
    Nothing,
    /// Something that must go (another type, another content, a file with more links …).
    Replace,
    /// The file, already correct, opened read-only: metadata goes through this descriptor.
    Correct(File),
}

fn is_regular(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
}

/// Whether the file at the job's place can stay: a regular file of the node's size and mtime,
/// with no more links than the node, opened without following or blocking and checked with
/// `fstat` to be the file seen (same device and inode). A file whose metadata would grant
/// privileges (setuid/setgid, a capability) must also have the node's owner already and the
/// node's content (read back and hashed); with `--verify`, every file.
fn existing(sh: &Shared<'_>, job: &FileJob) -> Existing {
    let (dir, node) = (job.dir.fd.as_fd(), &job.node);
    let seen = match rustix::fs::statat(dir, node.name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => return Existing::Nothing,
        Err(_) => return Existing::Replace,
        Ok(st) => st,
    };
    let same_times = seen.st_size as u64 == node.size
        && seen.st_mtime == node.mtime.secs
        && seen.st_mtime_nsec as u32 == node.mtime.nanos;
    if !is_regular(&seen) || !same_times || seen.st_nlink > node.links.max(1) {
        return Existing::Replace;
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY;
    let Ok(fd) = open_beneath(dir, &node.name, flags, Mode::empty()) else {
        return Existing::Replace;
    };
    let Ok(st) = rustix::fs::fstat(&fd) else {
        return Existing::Replace;
    };
    if !is_regular(&st) || st.st_dev != seen.st_dev || st.st_ino != seen.st_ino {
        return Existing::Replace;
    }
    let file = File::from(fd);
    let privileged = sh.policy.grants_privilege(node);
    if privileged && (st.st_uid != node.uid || st.st_gid != node.gid) {
        return Existing::Replace;
    }
    if privileged || sh.verify {
        let checked = index_lengths(sh, node).and_then(|lens| verify(sh, &file, node, &lens));
        if checked.is_err() {
            return Existing::Replace;
        }
    }
    Existing::Correct(file)
}

/// Restore one regular file (worker side).
pub(super) fn restore_file(sh: &Shared<'_>, job: &FileJob) {
    let (dir, node) = (job.dir.fd.as_fd(), &job.node);
    if !job.dir.fresh {
        match existing(sh, job) {
            Existing::Nothing => {}
            Existing::Correct(file) => return keep_file(sh, job, &file),
            // A file in the way is replaced, never written into: it may be a hard link to a
            // file outside the target, or read-only.
            Existing::Replace => {
                if let Err(e) = remove_entry(dir, &node.name) {
                    sh.problem(&job.path(), format!("removing existing entry: {e}"), false);
                    return;
                }
            }
        }
    }
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
    let file = match open_beneath(
        dir,
        &node.name,
        flags,
        Mode::from_bits_truncate(node.mode & 0o777),
    ) {
        Ok(fd) => File::from(fd),
        Err(e) => return sh.problem(&job.path(), format!("create: {e}"), false),
    };
    let lens = match write_content(sh, node, &file) {
        Ok(l) => l,
        Err((msg, damage)) => return sh.problem(&job.path(), msg, damage),
    };
    sh.c.bytes.fetch_add(node.size, Ordering::Relaxed);
    sh.progress.file_done(node.size);
    let chown = !job.dir.fresh || !owned_as_created(node);
    if let Err(e) = apply(sh, Access::Fd(file.as_fd()), node, chown, false, &|| {
        job.path()
    }) {
        return sh.problem(&job.path(), e, false);
    }
    bump(&sh.c.restored);
    if sh.verify {
        match verify(sh, &file, node, &lens) {
            Ok(()) => bump(&sh.c.verified),
            Err(e) => sh.problem(&job.path(), format!("verify: {e}"), false),
        }
    }
}

/// A file found already correct: only its metadata, through the descriptor it was checked by.
fn keep_file(sh: &Shared<'_>, job: &FileJob, file: &File) {
    bump(&sh.c.skipped);
    if sh.verify {
        bump(&sh.c.verified);
    }
    if let Err(e) = apply(sh, Access::Fd(file.as_fd()), &job.node, true, true, &|| {
        job.path()
    }) {
        sh.problem(&job.path(), e, false);
    }
    sh.progress.file_done(0);
}

/// Whether a special node is left out, counted by why.
fn left_out(sh: &Shared<'_>, kind: NodeKind) -> bool {
    let device = matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice);
    let special = device || matches!(kind, NodeKind::Fifo | NodeKind::Socket);
    let counter = if special && !sh.special_files {
        &sh.c.special_skipped
    } else if device && !sh.policy.privileged {
        &sh.c.withheld_devices
    } else if device && !sh.root {
        &sh.c.devices_skipped
    } else {
        return false;
    };
    bump(counter);
    true
}

fn file_type(kind: NodeKind) -> FileType {
    match kind {
        NodeKind::Fifo => FileType::Fifo,
        NodeKind::Socket => FileType::Socket,
        NodeKind::CharDevice => FileType::CharacterDevice,
        NodeKind::BlockDevice => FileType::BlockDevice,
        NodeKind::Symlink => FileType::Symlink,
        NodeKind::File => FileType::RegularFile,
        NodeKind::Dir => FileType::Directory,
    }
}

/// Create a symlink, fifo, socket or device node (worker side).
pub(super) fn restore_special(sh: &Shared<'_>, job: &FileJob) {
    let (dir, node) = (job.dir.fd.as_fd(), &job.node);
    if left_out(sh, node.kind) {
        return;
    }
    let name = node.name.as_slice();
    if !job.dir.fresh
        && let Err(e) = remove_entry(dir, name)
    {
        return sh.problem(&job.path(), format!("removing existing entry: {e}"), false);
    }
    let mode = Mode::from_bits_truncate(node.mode & 0o777);
    let r = match node.kind {
        NodeKind::Symlink => rustix::fs::symlinkat(OsStr::from_bytes(&node.target), dir, name),
        NodeKind::CharDevice | NodeKind::BlockDevice => {
            rustix::fs::mknodat(dir, name, file_type(node.kind), mode, node.rdev)
        }
        _ => rustix::fs::mknodat(dir, name, file_type(node.kind), mode, 0),
    };
    if let Err(e) = r {
        return sh.problem(&job.path(), format!("create: {e}"), false);
    }
    bump(&sh.c.others);
    let r = if node.kind == NodeKind::Symlink {
        symlink_meta(sh, dir, node, &|| job.path())
    } else {
        special_meta(sh, job)
    };
    if let Err(e) = r {
        sh.problem(&job.path(), e, false);
    }
}

/// Metadata of the fifo, socket or device just made: opened with `O_PATH | O_NOFOLLOW` (never
/// really opened: no fifo blocks, no device sees an open), checked with `fstat` to be a node of
/// that type, then changed through that descriptor.
pub(super) fn special_meta(sh: &Shared<'_>, job: &FileJob) -> Result<(), String> {
    let node = &job.node;
    let fd = open_beneath(
        job.dir.fd.as_fd(),
        &node.name,
        OFlags::PATH | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| format!("open: {e}"))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| format!("stat: {e}"))?;
    if FileType::from_raw_mode(st.st_mode) != file_type(node.kind) {
        return Err("replaced by another entry while restoring: metadata not applied".into());
    }
    let chown = !job.dir.fresh || !owned_as_created(node);
    apply(sh, Access::Path(fd.as_fd()), node, chown, true, &|| {
        job.path()
    })
}

/// Make the deferred hard links (after every file exists), each to the first name of its group.
pub(super) fn make_links(sh: &Shared<'_>, links: &Links, deferred: Vec<(Arc<DirState>, Node)>) {
    for (dir, node) in deferred {
        if let Some((first_dir, first_name)) = links.get(&(node.device, node.inode)) {
            if !dir.fresh {
                let _ = remove_entry(dir.fd.as_fd(), &node.name);
            }
            match rustix::fs::linkat(
                first_dir.fd.as_fd(),
                first_name.as_slice(),
                dir.fd.as_fd(),
                node.name.as_slice(),
                AtFlags::empty(),
            ) {
                Ok(()) => bump(&sh.c.others),
                Err(e) => sh.problem(
                    &dir.child_path(&node.name),
                    format!("hard link: {e}"),
                    false,
                ),
            }
        }
        sh.release(&dir);
    }
}
