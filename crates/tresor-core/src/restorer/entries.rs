//! The workers' side: one file, symlink, fifo, socket or device at a time; hard links last.

use super::content::{Old, verify, write_content};
use super::differ::{DiffKind, describe, refused_type};
use super::dirs::{DirState, FileJob, remove_entry};
use super::existing::{Prior, left_alone, prior};
use super::meta::{Access, apply, final_mode_at_creation, owned_as_created, symlink_meta};
use super::temp::Temp;
use super::walk::Links;
use super::{Shared, bump};
use crate::fsmeta::open_beneath;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tresor_format::tree::{Node, NodeKind};

/// Restore one regular file (worker side): left alone, kept (metadata only), left for later
/// (its data still thawing: nothing written) or written anew — in a directory this restore
/// created under its own name, elsewhere under a temporary name renamed into place.
pub(super) fn restore_file(sh: &Shared<'_>, job: &FileJob) {
    let prior = if job.dir.fresh {
        Prior::Nothing
    } else {
        prior(sh, job)
    };
    match prior {
        Prior::Keep => {
            bump(&sh.c.kept);
            sh.progress.bytes_skipped(job.node.size);
            sh.progress.file_done(0);
        }
        Prior::Correct(file) => keep_file(sh, job, &file),
        _ if sh.thawing.waits(sh.reader.index(), &job.node) => {
            sh.thawing.skip(job);
            sh.progress.file_done(0);
        }
        Prior::Nothing if job.dir.fresh => write_new(sh, job),
        Prior::Nothing => write_file(sh, job, None, false),
        Prior::Replace { old, dir } => {
            let old = old.as_ref().map(|(file, size)| Old { file, size: *size });
            write_file(sh, job, old, dir);
        }
    }
}

/// Write the file under a temporary name (content, `--verify`, metadata, times last) and rename
/// it to its name; a directory in the way is removed just before. When its content cannot be
/// written (damage, or a local error), the temporary file is removed and whatever held the name
/// stays as it was.
fn write_file(sh: &Shared<'_>, job: &FileJob, old: Option<Old<'_>>, dir_in_way: bool) {
    let (dir, node) = (job.dir.fd.as_fd(), &job.node);
    let temp = match Temp::create(dir) {
        Ok(t) => t,
        Err(e) => return failed(sh, job, (format!("create: {e}"), false)),
    };
    if let Err(f) = fill(sh, job, &temp.file, old, true) {
        temp.discard(dir);
        return failed(sh, job, f);
    }
    if dir_in_way && let Err(e) = remove_entry(dir, &node.name) {
        temp.discard(dir);
        let msg = format!("removing the directory in the way: {e}");
        return failed(sh, job, (msg, false));
    }
    match temp.commit(dir, &node.name) {
        Ok(_) => bump(&sh.c.restored),
        Err(e) => failed(sh, job, (format!("rename into place: {e}"), false)),
    }
}

/// Write a file in a directory this restore created (empty, mode 0700 until its own metadata
/// is applied last): created `O_EXCL` under its name — no older file to keep, so no temporary
/// name and no `renameat`, which made parallel workers wait on the directory's lock. When its
/// content cannot be written (damage, or a local error) the file is removed again.
fn write_new(sh: &Shared<'_>, job: &FileJob) {
    let (dir, node) = (job.dir.fd.as_fd(), &job.node);
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
    // Created with its final permission bits when it can be (no chmod after: the umask is 0
    // during a restore).
    let mode = final_mode_at_creation(sh, node);
    let created = Mode::from_bits_truncate(mode.unwrap_or(0o600));
    let file = match open_beneath(dir, &node.name, flags, created) {
        Ok(fd) => File::from(fd),
        Err(e) => return failed(sh, job, (format!("create: {e}"), false)),
    };
    if let Err((msg, damage)) = fill(sh, job, &file, None, mode.is_none()) {
        let msg = match remove_written(dir, &node.name, &file) {
            Ok(()) => msg,
            Err(e) => format!("{msg}; the partly written file could not be removed: {e}"),
        };
        return failed(sh, job, (msg, damage));
    }
    bump(&sh.c.restored);
}

/// Remove `name` in `dir` if it is still `file` (the same device and inode).
fn remove_written(dir: BorrowedFd<'_>, name: &[u8], file: &File) -> rustix::io::Result<()> {
    let ours = rustix::fs::fstat(file)?;
    let there = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if (there.st_dev, there.st_ino) != (ours.st_dev, ours.st_ino) {
        return Err(rustix::io::Errno::EXIST);
    }
    rustix::fs::unlinkat(dir, name, AtFlags::empty())
}

/// A file not restored: its problem, and its hard-link group marked so that no further name
/// is linked to whatever holds its first name.
fn failed(sh: &Shared<'_>, job: &FileJob, (msg, damage): (String, bool)) {
    if job.node.links > 1 {
        sh.failed_links
            .lock()
            .expect("failed links lock")
            .insert((job.node.device, job.node.inode), damage);
    }
    sh.problem(&job.path(), msg, damage);
}

/// Content, verify and metadata of the new file `f` (under its temporary name, or its own in a
/// directory this restore created); `chmod`: its permission bits are still to be set.
///
/// # Errors
/// Damage or a local error writing or verifying the content; metadata problems are reported
/// on their own and do not keep the file from its name.
fn fill(
    sh: &Shared<'_>,
    job: &FileJob,
    f: &File,
    old: Option<Old<'_>>,
    chmod: bool,
) -> Result<(), (String, bool)> {
    let node = &job.node;
    let lens = write_content(sh, node, f, old)?;
    sh.c.bytes.fetch_add(node.size, Ordering::Relaxed);
    sh.progress.file_done(node.size);
    if sh.verify {
        verify(sh, f, node, &lens).map_err(|e| (format!("verify: {e}"), false))?;
        bump(&sh.c.verified);
    }
    // A new file belongs to us (in a directory this restore made, whose setgid bit is not set
    // yet): no chown needed when that is the node's owner already.
    let chown = !job.dir.fresh || !owned_as_created(node);
    if let Err(e) = apply(sh, Access::Fd(f.as_fd()), node, chown, chmod, &|| {
        job.path()
    }) {
        sh.problem(&job.path(), e, false);
    }
    Ok(())
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
    sh.progress.bytes_skipped(job.node.size);
    sh.progress.file_done(0);
}

/// Whether a special node is left out, counted by why; a device node that cannot be made
/// without root is a difference naming it.
fn left_out(sh: &Shared<'_>, job: &FileJob) -> bool {
    let kind = job.node.kind;
    let device = matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice);
    let special = device || matches!(kind, NodeKind::Fifo | NodeKind::Socket);
    let counter = if special && !sh.special_files {
        &sh.c.special_skipped
    } else if device && !sh.policy.privileged {
        &sh.c.withheld_devices
    } else if device && !sh.root {
        not_created(sh, job, "not running as root".into());
        &sh.c.devices_skipped
    } else {
        return false;
    };
    bump(counter);
    true
}

/// A difference: the entry was not created, and why.
fn not_created(sh: &Shared<'_>, job: &FileJob, why: String) {
    let got = format!("not created: {why}");
    sh.diffs
        .add(job.path(), DiffKind::Entry, describe(&job.node), got, true);
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

/// Create a symlink, fifo, socket or device node (worker side). What held its name goes
/// first (unless the overwrite mode leaves it); a type of entry the target refuses is a
/// difference, not an error.
pub(super) fn restore_special(sh: &Shared<'_>, job: &FileJob) {
    let (dir, node) = (job.dir.fd.as_fd(), &job.node);
    if left_out(sh, job) {
        return;
    }
    let name = node.name.as_slice();
    if !job.dir.fresh {
        if let Ok(seen) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            && left_alone(job.dir.overwrite(sh.overwrite), node, &seen)
        {
            return bump(&sh.c.kept);
        }
        if let Err(e) = remove_entry(dir, name) {
            return sh.problem(&job.path(), format!("removing existing entry: {e}"), false);
        }
    }
    let mode = Mode::from_bits_truncate(node.mode & 0o777);
    let r = match node.kind {
        NodeKind::Symlink => rustix::fs::symlinkat(OsStr::from_bytes(&node.target), dir, name),
        NodeKind::CharDevice | NodeKind::BlockDevice => {
            rustix::fs::mknodat(dir, name, file_type(node.kind), mode, node.rdev)
        }
        _ => rustix::fs::mknodat(dir, name, file_type(node.kind), mode, 0),
    };
    match r {
        Ok(()) => {}
        Err(e) if refused_type(e) => return not_created(sh, job, e.to_string()),
        Err(e) => return sh.problem(&job.path(), format!("create: {e}"), false),
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

/// Make the deferred hard links (after every file exists and was renamed into place), each to
/// the first name of its group — not when that name's file failed (its problem is repeated for
/// each further name, and what holds the name stays), not when it waits for a thaw (each
/// further name waits too), and not where the overwrite mode leaves the entry alone. A name that is already a link to the first name stays.
pub(super) fn make_links(sh: &Shared<'_>, links: &Links, deferred: Vec<(Arc<DirState>, Node)>) {
    let failed = std::mem::take(&mut *sh.failed_links.lock().expect("failed links lock"));
    for (dir, node) in deferred {
        if let Some((first_dir, first_name)) = links.get(&(node.device, node.inode)) {
            let path = || dir.child_path(&node.name);
            let key = (node.device, node.inode);
            match failed.get(&key) {
                _ if sh.thawing.link_waits(key, path) => {}
                Some(damage) => {
                    let first = first_dir.child_path(first_name);
                    let msg = format!("hard link to {first}, which was not restored");
                    sh.problem(&path(), msg, *damage);
                }
                None => link_one(sh, (first_dir, first_name), &dir, &node),
            }
        }
        sh.progress.bytes_skipped(node.size);
        sh.progress.file_done(0);
        sh.release(&dir);
    }
}

/// Link `node`'s name in `dir` to the first name of its group.
fn link_one(
    sh: &Shared<'_>,
    (first_dir, first_name): (&Arc<DirState>, &Vec<u8>),
    dir: &DirState,
    node: &Node,
) {
    let (fd, name) = (dir.fd.as_fd(), node.name.as_slice());
    if !dir.fresh
        && let Ok(seen) = rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW)
    {
        let first = rustix::fs::statat(
            first_dir.fd.as_fd(),
            first_name.as_slice(),
            AtFlags::SYMLINK_NOFOLLOW,
        );
        let same = first.is_ok_and(|f| (f.st_dev, f.st_ino) == (seen.st_dev, seen.st_ino));
        if same {
            return bump(&sh.c.others);
        }
        if left_alone(dir.overwrite(sh.overwrite), node, &seen) {
            return bump(&sh.c.kept);
        }
        let _ = remove_entry(fd, name);
    }
    match rustix::fs::linkat(
        first_dir.fd.as_fd(),
        first_name.as_slice(),
        fd,
        name,
        AtFlags::empty(),
    ) {
        Ok(()) => bump(&sh.c.others),
        Err(e) => sh.problem(&dir.child_path(name), format!("hard link: {e}"), false),
    }
}
