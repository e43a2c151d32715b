//! `--dry-run` and `--delete` (restic's restore flags).
//!
//! * **Dry run**: the walk goes over the snapshot as for a restore, but directories are only
//!   opened (beneath their parent, never created) and the workers only look at what is at each
//!   entry's place ([`super::existing::prior`], which reads but never writes): every entry is
//!   listed as an [`Action`] — restore (nothing there), update (replaced), unchanged (already
//!   the snapshot's) or keep (left alone by `--overwrite`). Below a directory that is missing
//!   or in the way, everything is `restore`. Nothing is created, written, chmod-ed or removed;
//!   leftovers of an interrupted restore stay.
//! * **Delete**: in every directory of the target that existed and that the walk enters, the
//!   entries the snapshot's directory lacks are removed — only those the include / exclude
//!   patterns would have restored (restic's rule), by name beneath the directory's descriptor
//!   without following symlinks ([`super::dirs::remove_entry`]): a symlink in the target is
//!   removed itself, never what it points to. With the dry run they are only listed.

use super::dirs::{DirState, FileJob, ensure_dir, remove_entry};
use super::{RestoreOptions, Shared};
use crate::fsmeta::open_beneath;
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::Ordering;
use tresor_format::tree::{Node, NodeKind, Tree};

/// What restore does (or, with `--dry-run`, would do) with one entry of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ActionKind {
    /// Nothing is at its place: it is created.
    Restore,
    /// Something else is at its place: it is replaced.
    Update,
    /// A regular file already the snapshot's (content checked): only its metadata is applied.
    Unchanged,
    /// Left as it is by the `--overwrite` mode.
    Keep,
    /// Not in the snapshot: removed (`--delete`).
    Delete,
}

impl ActionKind {
    /// Its word in the listing and in JSON: `restore`, `update`, `unchanged`, `keep`, `delete`.
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Restore => "restore",
            ActionKind::Update => "update",
            ActionKind::Unchanged => "unchanged",
            ActionKind::Keep => "keep",
            ActionKind::Delete => "delete",
        }
    }
}

/// One entry of the listing: what happens at a target path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Action {
    /// The path in the target (the target as given, then names by the display rule).
    pub path: String,
    /// What happens there.
    pub kind: ActionKind,
}

impl Shared<'_> {
    pub(super) fn act(&self, kind: ActionKind, path: String) {
        self.actions
            .lock()
            .expect("actions lock")
            .push(Action { path, kind });
    }
}

/// The dry run's worker: list what would happen to `job`'s entry.
pub(super) fn plan_entry(sh: &Shared<'_>, job: &FileJob) {
    let kind = if job.dir.fresh {
        ActionKind::Restore
    } else {
        look(sh, job)
    };
    sh.act(kind, job.path());
}

fn look(sh: &Shared<'_>, job: &FileJob) -> ActionKind {
    use super::existing::{Prior, left_alone, prior};
    let name = job.node.name.as_slice();
    if job.node.kind == NodeKind::File {
        return match prior(sh, job) {
            Prior::Nothing => ActionKind::Restore,
            Prior::Keep => ActionKind::Keep,
            Prior::Correct(_) => ActionKind::Unchanged,
            Prior::Replace { .. } => ActionKind::Update,
        };
    }
    match rustix::fs::statat(job.dir.fd.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => ActionKind::Restore,
        Ok(st) if left_alone(job.dir.overwrite(sh.overwrite), &job.node, &st) => ActionKind::Keep,
        _ => ActionKind::Update,
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW);

/// Directory `name` in `dir` for the walk: created with [`ensure_dir`], or with the dry run
/// only opened when it is a directory already. Missing or in the way (dry run): a stand-in
/// descriptor (a duplicate of `dir`, never used for anything) marked fresh, and the action
/// listed. Returns the descriptor and whether it is fresh.
pub(super) fn directory(
    sh: &Shared<'_>,
    dir: &DirState,
    name: &[u8],
) -> std::io::Result<(OwnedFd, bool)> {
    if !sh.dry_run {
        return ensure_dir(dir.fd.as_fd(), name);
    }
    let kind = if dir.fresh {
        ActionKind::Restore
    } else {
        match open_beneath(dir.fd.as_fd(), name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => return Ok((fd, false)),
            Err(Errno::NOENT) => ActionKind::Restore,
            Err(_) => ActionKind::Update,
        }
    };
    sh.act(kind, dir.child_path(name));
    Ok((rustix::io::dup(dir.fd.as_fd())?, true))
}

/// With `--delete`: remove (dry run: list) the entries of existing directory `dir` that `tree`
/// lacks and the patterns select. `spath` is the directory's snapshot path ("" for the root),
/// `excluded` / `included` whether it or an ancestor matches an exclude / include pattern.
pub(super) fn delete_unexpected(
    sh: &Shared<'_>,
    opts: &RestoreOptions,
    dir: &DirState,
    tree: &Tree,
    (spath, excluded, included): (&str, bool, bool),
) {
    let fd = dir.fd.as_fd();
    // The marker of an interrupted restore stays until the directory is complete.
    let ours = |n: &[u8]| n == super::temp::MARKER && dir.interrupted.load(Ordering::Relaxed);
    for name in listing(fd) {
        if ours(&name) {
            continue;
        }
        if tree
            .nodes
            .binary_search_by(|n: &Node| n.name.as_slice().cmp(&name))
            .is_ok()
        {
            continue;
        }
        let p = format!("{spath}/{}", String::from_utf8_lossy(&name));
        let p = Path::new(&p);
        let selected = !(excluded || opts.excludes.matches(p))
            && (opts.includes.is_empty() || included || opts.includes.matches(p));
        if !selected {
            continue;
        }
        let path = dir.child_path(&name);
        if !sh.dry_run
            && let Err(e) = remove_entry(fd, &name)
        {
            sh.problem(&path, format!("delete: {e}"), false);
            continue;
        }
        sh.act(ActionKind::Delete, path);
    }
}

/// The names in directory `fd`, without `.` and `..`.
fn listing(fd: BorrowedFd<'_>) -> Vec<Vec<u8>> {
    let Ok(mut dir) = rustix::fs::Dir::read_from(fd) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while let Some(Ok(e)) = dir.read() {
        let name = e.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(name.to_vec());
        }
    }
    out
}
