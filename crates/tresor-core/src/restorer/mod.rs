//! Restore: write a snapshot's tree into a target directory.
//!
//! ```text
//! walker (this thread)                            N workers
//!   depth-first over trees                         file job: skip if already correct
//!   dirs: mkdir (0700) relative to parent fd  ──▶  (regular file, same size and mtime), else
//!   files ─────────────────────────────────────▶  replace, write blobs (large files: several
//!   symlinks, fifos, sockets, devices: created     threads; sparse files: holes), metadata,
//!   hardlinks: deferred until their first path     optional verify (re-read, re-hash)
//!   exists
//! directory metadata is applied when the last entry below it is done (a pending counter per
//! directory), so read-only directories restore fully and their mtimes stick.
//! ```
//! Safety in a non-empty target: every entry is addressed relative to an open directory fd with
//! `O_NOFOLLOW`, so a symlink planted in the target is replaced, never followed. A file in the
//! way is unlinked and created anew (`O_EXCL`), never written into: a hard link planted in the
//! target cannot carry the write to a file outside it, and read-only files are replaced too. Metadata order: owner (root only), mode, xattrs
//! (after chown, which clears capabilities), times. The mtime is set last, which is what lets a
//! re-run skip files that are already complete.

use crate::Progress;
use crate::blobs::BlobReader;
use crate::error::{CoreError, Result};
use crate::exclude::PatternSet;
use crate::fsmeta::{fd_path, is_root, write_xattrs};
use crate::index::Index;
use crate::ls::find_node;
use crate::repository::Repository;
use crossbeam_channel::bounded;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tresor_format::blob::BlobType;
use tresor_format::snapshot::Snapshot;
use tresor_format::tree::{Node, NodeKind};
use tresor_storage::direct::Bounce;

/// What to restore and how.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Target directory (created if missing).
    pub target: PathBuf,
    /// Path inside the snapshot to restore (its contents go into the target); `/` for all.
    pub subpath: String,
    /// Restore only entries matching (or below a directory matching) these patterns.
    pub includes: PatternSet,
    /// Skip entries matching these patterns.
    pub excludes: PatternSet,
    /// Re-read every restored file and compare it with the snapshot.
    pub verify: bool,
    /// Worker threads writing files.
    pub workers: usize,
}

/// One problem met during restore.
#[derive(Debug, Clone)]
pub struct RestoreProblem {
    /// Path in the target.
    pub path: String,
    /// What went wrong.
    pub message: String,
    /// Whether repository data was missing or corrupt (as opposed to a local write problem).
    pub damage: bool,
}

/// Outcome of a restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreResult {
    /// Files written.
    pub files_restored: u64,
    /// Files already correct in the target, left as they were.
    pub files_skipped: u64,
    /// Directories created or updated.
    pub dirs: u64,
    /// Other entries (symlinks, fifos, sockets, devices, hardlinks).
    pub others: u64,
    /// Content bytes written.
    pub bytes_written: u64,
    /// Files whose content was compared with the snapshot (with `verify`): those written and
    /// those found already correct.
    pub files_verified: u64,
    /// Whether ownership was left alone because we are not root.
    pub owner_skipped: bool,
    /// Device nodes not created because we are not root.
    pub devices_skipped: u64,
    /// Problems, one per entry.
    pub problems: Vec<RestoreProblem>,
    /// Wall time.
    pub elapsed: Duration,
}

struct DirState {
    fd: OwnedFd,
    /// Created empty by this restore: entries need no check for what is already there.
    fresh: bool,
    parent: Option<Arc<DirState>>,
    name: Vec<u8>,
    node: Option<Node>,
    path: String,
    pending: AtomicUsize,
}

struct FileJob {
    dir: Arc<DirState>,
    node: Node,
    path: String,
}

struct Shared<'a> {
    reader: BlobReader<'a>,
    owner: bool,
    verify: bool,
    problems: Mutex<Vec<RestoreProblem>>,
    restored: AtomicU64,
    skipped: AtomicU64,
    verified: AtomicU64,
    bytes: AtomicU64,
    others: AtomicU64,
    devices_skipped: AtomicU64,
    progress: &'a dyn Progress,
    /// Threads that fetch and write the blobs of one large file at once.
    file_threads: usize,
}

/// Files with at least this many blobs are written by [`Shared::file_threads`] threads at once
/// (positional writes), so that restoring one large file uses every core.
const PARALLEL_MIN_BLOBS: usize = 4;

impl Shared<'_> {
    fn problem(&self, path: &str, message: String, damage: bool) {
        self.problems
            .lock()
            .expect("problems lock")
            .push(RestoreProblem {
                path: path.into(),
                message,
                damage,
            });
    }

    /// One entry below `dir` is done; apply metadata of every directory that is now complete.
    fn release(&self, dir: &Arc<DirState>) {
        let mut cur = Some(dir.clone());
        while let Some(d) = cur {
            if d.pending.fetch_sub(1, Ordering::AcqRel) != 1 {
                return;
            }
            if let (Some(p), Some(node)) = (&d.parent, &d.node)
                && let Err(e) = apply_metadata(p.fd.as_fd(), &d.name, node, self.owner)
            {
                self.problem(&d.path, e, false);
            }
            cur = d.parent.clone();
        }
    }
}

fn ts(t: tresor_format::tree::Timestamp) -> Timespec {
    Timespec {
        tv_sec: t.secs,
        tv_nsec: t.nanos.into(),
    }
}

/// Apply owner, mode, xattrs and times to `name` in `dir`, in that order.
fn apply_metadata(
    dir: BorrowedFd<'_>,
    name: &[u8],
    node: &Node,
    owner: bool,
) -> std::result::Result<(), String> {
    let symlink = node.kind == NodeKind::Symlink;
    if owner {
        rustix::fs::chownat(
            dir,
            name,
            Some(rustix::fs::Uid::from_raw(node.uid)),
            Some(rustix::fs::Gid::from_raw(node.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| format!("chown: {e}"))?;
    }
    if !symlink {
        rustix::fs::chmodat(
            dir,
            name,
            Mode::from_bits_truncate(node.mode),
            AtFlags::empty(),
        )
        .map_err(|e| format!("chmod: {e}"))?;
    }
    if !node.xattrs.is_empty() {
        write_xattrs(&fd_path(dir, name), &node.xattrs)?;
    }
    let times = Timestamps {
        last_access: ts(node.atime),
        last_modification: ts(node.mtime),
    };
    rustix::fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| format!("set times: {e}"))
}

/// Remove whatever is at `name` in `dir` (a directory recursively), not following symlinks.
fn remove_entry(dir: BorrowedFd<'_>, name: &[u8]) -> std::io::Result<()> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            std::fs::remove_dir_all(fd_path(dir, name))
        }
        Ok(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(Into::into),
    }
}

fn open_dir_at(dir: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Create (or reuse) directory `name` in `dir` and open it; true when newly created.
fn ensure_dir(dir: BorrowedFd<'_>, name: &[u8]) -> std::io::Result<(OwnedFd, bool)> {
    match rustix::fs::mkdirat(dir, name, Mode::from_bits_truncate(0o700)) {
        Ok(()) => return Ok((open_dir_at(dir, name)?, true)),
        Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            // Make sure we can fill it, even if an earlier run left it read-only.
            let _ =
                rustix::fs::chmodat(dir, name, Mode::from_bits_truncate(0o700), AtFlags::empty());
            Ok((open_dir_at(dir, name)?, false))
        }
        Ok(_) => {
            remove_entry(dir, name)?;
            rustix::fs::mkdirat(dir, name, Mode::from_bits_truncate(0o700))?;
            Ok((open_dir_at(dir, name)?, true))
        }
        Err(e) => Err(e.into()),
    }
}

fn restore_file(sh: &Shared<'_>, job: &FileJob) {
    let dir = job.dir.fd.as_fd();
    let name = job.node.name.as_slice();
    let node = &job.node;
    // In a directory this restore created, nothing can be in the way.
    let (already, existed) = if job.dir.fresh {
        (false, false)
    } else {
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => (
                st.st_size as u64 == node.size
                    && st.st_mtime == node.mtime.secs
                    && st.st_mtime_nsec as u32 == node.mtime.nanos,
                true,
            ),
            Ok(_) => {
                if let Err(e) = remove_entry(dir, name) {
                    sh.problem(&job.path, format!("removing existing entry: {e}"), false);
                    return;
                }
                (false, false)
            }
            Err(_) => (false, false),
        }
    };
    if already && (!sh.verify || verify_file(sh, job).is_ok()) {
        sh.skipped.fetch_add(1, Ordering::Relaxed);
        if sh.verify {
            sh.verified.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(e) = apply_metadata(dir, name, node, sh.owner) {
            sh.problem(&job.path, e, false);
        }
        sh.progress.file_done(0);
        return;
    }
    // A file in the way is replaced, never written into: it may be a hard link to a file outside
    // the target, or read-only.
    if existed && let Err(e) = remove_entry(dir, name) {
        sh.problem(&job.path, format!("removing existing file: {e}"), false);
        return;
    }
    let file = match write_content(sh, job) {
        Ok(f) => f,
        Err((msg, damage)) => {
            sh.problem(&job.path, msg, damage);
            return;
        }
    };
    // The file is new (an existing one was removed above).
    if let Err(e) = file_metadata(&file, dir, node, sh.owner, false) {
        sh.problem(&job.path, e, false);
        return;
    }
    drop(file);
    sh.restored.fetch_add(1, Ordering::Relaxed);
    if sh.verify {
        match verify_file(sh, job) {
            Ok(()) => {
                sh.verified.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => sh.problem(&job.path, format!("verify: {e}"), false),
        }
    }
}

/// Metadata of a file just written, through its open descriptor, in the order owner, mode,
/// xattrs, times. The file was created with its permission bits (umask 0), so chmod is needed
/// only for setuid/setgid/sticky bits, after a chown, or for a file that existed before.
fn file_metadata(
    file: &std::fs::File,
    dir: BorrowedFd<'_>,
    node: &Node,
    owner: bool,
    existed: bool,
) -> std::result::Result<(), String> {
    let (euid, egid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    let chowned = owner && (existed || node.uid != euid || node.gid != egid);
    if chowned {
        rustix::fs::fchown(
            file,
            Some(rustix::fs::Uid::from_raw(node.uid)),
            Some(rustix::fs::Gid::from_raw(node.gid)),
        )
        .map_err(|e| format!("chown: {e}"))?;
    }
    if existed || chowned || node.mode & 0o7000 != 0 {
        rustix::fs::fchmod(file, Mode::from_bits_truncate(node.mode))
            .map_err(|e| format!("chmod: {e}"))?;
    }
    if !node.xattrs.is_empty() {
        write_xattrs(&fd_path(dir, &node.name), &node.xattrs)?;
    }
    let times = Timestamps {
        last_access: ts(node.atime),
        last_modification: ts(node.mtime),
    };
    rustix::fs::futimens(file, &times).map_err(|e| format!("set times: {e}"))
}

fn write_content(
    sh: &Shared<'_>,
    job: &FileJob,
) -> std::result::Result<std::fs::File, (String, bool)> {
    let dir = job.dir.fd.as_fd();
    let node = &job.node;
    let fd = rustix::fs::openat(
        dir,
        node.name.as_slice(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_bits_truncate(node.mode & 0o777),
    )
    .map_err(|e| (format!("create: {e}"), false))?;
    let mut f = std::fs::File::from(fd);
    // Large files use every core; sparse files use the positional path for its holes.
    if (node.content.len() >= PARALLEL_MIN_BLOBS && sh.file_threads > 1) || node.sparse {
        write_parallel(sh, dir, node, &f)?;
        sh.bytes.fetch_add(node.size, Ordering::Relaxed);
        sh.progress.file_done(node.size);
        return Ok(f);
    }
    // A small, dense file: its blobs in order.
    let mut written = 0u64;
    for id in &node.content {
        let data = sh
            .reader
            .load(id, BlobType::Data)
            .map_err(|e| (e.to_string(), true))?;
        f.write_all(&data)
            .map_err(|e| (format!("write: {e}"), false))?;
        written += data.len() as u64;
        sh.progress.bytes_read(data.len() as u64);
    }
    if written != node.size {
        return Err((
            format!("content is {written} bytes, snapshot says {}", node.size),
            true,
        ));
    }
    sh.bytes.fetch_add(written, Ordering::Relaxed);
    sh.progress.file_done(written);
    Ok(f)
}

/// Write a file's blobs with [`Shared::file_threads`] threads, each taking the next blob,
/// loading it and writing it at its offset (from the index's plaintext lengths). The file is
/// first extended to its size, so the all-zero blocks of sparse files are simply not written
/// (holes, see [`write_nonzero_at`]).
fn write_parallel(
    sh: &Shared<'_>,
    dir: BorrowedFd<'_>,
    node: &Node,
    f: &std::fs::File,
) -> std::result::Result<(), (String, bool)> {
    let index = sh.reader.index();
    let mut offsets = Vec::with_capacity(node.content.len() + 1);
    let mut end = 0u64;
    for id in &node.content {
        let loc = index
            .get(id)
            .ok_or_else(|| (sh.reader.not_indexed(id), true))?;
        offsets.push(end);
        end += u64::from(loc.raw_length);
    }
    offsets.push(end);
    if end != node.size {
        return Err((
            format!("content is {end} bytes, snapshot says {}", node.size),
            true,
        ));
    }
    f.set_len(end)
        .map_err(|e| (format!("truncate: {e}"), false))?;
    // A second descriptor that bypasses the page cache, where the file system allows it.
    let direct = rustix::fs::openat(
        dir,
        node.name.as_slice(),
        OFlags::WRONLY | OFlags::DIRECT | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
    .map(std::fs::File::from);
    let next = AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let failed: Mutex<Option<(String, bool)>> = Mutex::new(None);
    let work = || {
        let mut bounce = Bounce::default();
        while !stop.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(id) = node.content.get(i) else {
                break;
            };
            let r = (|| {
                let data = sh
                    .reader
                    .load(id, BlobType::Data)
                    .map_err(|e| (e.to_string(), true))?;
                let want = offsets[i + 1] - offsets[i];
                if data.len() as u64 != want {
                    return Err((
                        format!("blob {id} is {} bytes, the index says {want}", data.len()),
                        true,
                    ));
                }
                let written = if node.sparse {
                    write_nonzero_at(f, direct.as_ref(), &data, offsets[i], &mut bounce)
                } else {
                    write_at(f, direct.as_ref(), &data, offsets[i], &mut bounce)
                };
                written.map_err(|e| (format!("write: {e}"), false))?;
                sh.progress.bytes_read(want);
                Ok(())
            })();
            if let Err(e) = r {
                stop.store(true, Ordering::Relaxed);
                failed.lock().expect("failed lock").get_or_insert(e);
                break;
            }
        }
    };
    let threads = sh.file_threads.min(node.content.len());
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    match failed.into_inner().expect("failed lock") {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

const DIRECT_ALIGN: u64 = tresor_storage::direct::ALIGN as u64;

/// Write `data` at `off`: the whole 4 KiB blocks inside it through `direct` (an `O_DIRECT`
/// descriptor of the same file, via the aligned `bounce` buffer), the partial blocks at its two
/// ends through `f` (the page cache). A block never gets both kinds of write: a block that
/// holds the boundary between two blobs is written in two buffered parts. On virtual machines
/// copying into fresh page-cache pages is the largest cost of restoring a large file. Without
/// `direct`, or when the file system refuses it (`EINVAL`), everything goes through `f`.
fn write_at(
    f: &std::fs::File,
    direct: Option<&std::fs::File>,
    data: &[u8],
    off: u64,
    bounce: &mut Bounce,
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let end = off + data.len() as u64;
    let (a, b) = (
        off.next_multiple_of(DIRECT_ALIGN),
        end / DIRECT_ALIGN * DIRECT_ALIGN,
    );
    let Some(direct) = direct.filter(|_| a < b) else {
        return f.write_all_at(data, off);
    };
    let buf = bounce.buf();
    let mut pos = a;
    while pos < b {
        let n = ((b - pos) as usize).min(buf.len());
        let from = (pos - off) as usize;
        buf[..n].copy_from_slice(&data[from..from + n]);
        match direct.write_all_at(&buf[..n], pos) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                return f
                    .write_all_at(&data[from..], pos)
                    .and_then(|()| f.write_all_at(&data[..(a - off) as usize], off));
            }
            Err(e) => return Err(e),
        }
        pos += n as u64;
    }
    f.write_all_at(&data[..(a - off) as usize], off)?;
    f.write_all_at(&data[(b - off) as usize..], b)
}

/// [`write_at`] for sparse files: 4 KiB blocks (aligned in the file) that hold only zeros are
/// not written, so they stay holes of the file, which was extended to its size beforehand.
fn write_nonzero_at(
    f: &std::fs::File,
    direct: Option<&std::fs::File>,
    data: &[u8],
    off: u64,
    bounce: &mut Bounce,
) -> std::io::Result<()> {
    let block = DIRECT_ALIGN as usize;
    let mut i = 0usize;
    let mut run: Option<usize> = None;
    while i < data.len() {
        let end = (((off as usize + i) / block + 1) * block - off as usize).min(data.len());
        let zero = data[i..end].iter().all(|b| *b == 0);
        match (zero, run) {
            (false, None) => run = Some(i),
            (true, Some(start)) => {
                write_at(f, direct, &data[start..i], off + start as u64, bounce)?;
                run = None;
            }
            _ => {}
        }
        i = end;
    }
    if let Some(start) = run {
        write_at(f, direct, &data[start..], off + start as u64, bounce)?;
    }
    Ok(())
}

/// Re-read a restored file and compare every piece with the blob ids of the snapshot.
fn verify_file(sh: &Shared<'_>, job: &FileJob) -> std::result::Result<(), String> {
    let fd = rustix::fs::openat(
        job.dir.fd.as_fd(),
        job.node.name.as_slice(),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| e.to_string())?;
    let mut f = std::fs::File::from(fd);
    let index = sh.reader.index();
    let mut buf = Vec::new();
    for id in &job.node.content {
        let loc = index
            .get(id)
            .ok_or_else(|| format!("blob {id} not in index"))?;
        buf.resize(loc.raw_length as usize, 0);
        f.read_exact(&mut buf)
            .map_err(|e| format!("reading back: {e}"))?;
        if sh.reader_key_id(&buf) != *id {
            return Err(format!("content differs from the snapshot at blob {id}"));
        }
    }
    let mut rest = [0u8; 1];
    if f.read(&mut rest).map_err(|e| e.to_string())? != 0 {
        return Err("file is longer than in the snapshot".into());
    }
    Ok(())
}

impl Shared<'_> {
    fn reader_key_id(&self, data: &[u8]) -> tresor_format::BlobId {
        self.reader.repo().key().blob_id(data)
    }
}

struct Walk<'s, 'a> {
    sh: &'s Shared<'a>,
    opts: &'s RestoreOptions,
    jobs: crossbeam_channel::Sender<FileJob>,
    links: HashMap<(u64, u64), (Arc<DirState>, Vec<u8>)>,
    deferred_links: Vec<(Arc<DirState>, Node, String)>,
    needed: Option<HashSet<String>>,
    dirs: u64,
}

impl Walk<'_, '_> {
    fn selected(&self, path: &str) -> bool {
        let p = std::path::Path::new(path);
        !self.opts.excludes.matches_or_ancestor(p)
            && (self.opts.includes.is_empty() || self.opts.includes.matches_or_ancestor(p))
    }

    fn restore_tree(
        &mut self,
        dir: &Arc<DirState>,
        tree_id: &tresor_format::BlobId,
        prefix: &str,
    ) -> Result<()> {
        let tree = match self.sh.reader.load_tree(tree_id) {
            Ok(t) => t,
            Err(e) => {
                self.sh.problem(&dir.path, e.to_string(), true);
                return Ok(());
            }
        };
        for node in tree.nodes {
            let path = format!("{}/{}", prefix.trim_end_matches('/'), node.name_lossy());
            let wanted = self.selected(&path);
            let descend = node.kind == NodeKind::Dir
                && self.needed.as_ref().is_some_and(|n| n.contains(&path));
            if !wanted && !descend {
                continue;
            }
            let target_path = format!(
                "{}{}",
                dir.path,
                &path[prefix.trim_end_matches('/').len()..]
            );
            dir.pending.fetch_add(1, Ordering::AcqRel);
            self.restore_node(dir, node, &path, &target_path)?;
        }
        Ok(())
    }

    fn restore_node(
        &mut self,
        dir: &Arc<DirState>,
        node: Node,
        path: &str,
        target_path: &str,
    ) -> Result<()> {
        let fd = dir.fd.as_fd();
        let name = node.name.clone();
        match node.kind {
            NodeKind::Dir => {
                self.dirs += 1;
                let (sub, fresh) = match ensure_dir(fd, &name) {
                    Ok(f) => f,
                    Err(e) => {
                        self.sh
                            .problem(target_path, format!("create directory: {e}"), false);
                        self.sh.release(dir);
                        return Ok(());
                    }
                };
                let subtree = node.subtree;
                let state = Arc::new(DirState {
                    fd: sub,
                    fresh,
                    parent: Some(dir.clone()),
                    name,
                    node: Some(node),
                    path: target_path.to_string(),
                    pending: AtomicUsize::new(1),
                });
                if let Some(t) = subtree {
                    self.restore_tree(&state, &t, path)?;
                }
                self.sh.release(&state);
                Ok(())
            }
            NodeKind::File => {
                if node.links > 1 {
                    let key = (node.device, node.inode);
                    if self.links.contains_key(&key) {
                        self.deferred_links
                            .push((dir.clone(), node, target_path.to_string()));
                        return Ok(());
                    }
                    self.links.insert(key, (dir.clone(), name));
                }
                let job = FileJob {
                    dir: dir.clone(),
                    node,
                    path: target_path.to_string(),
                };
                self.jobs
                    .send(job)
                    .map_err(|_| CoreError::Invalid("restore workers stopped".into()))?;
                Ok(())
            }
            _ => {
                // Symlinks, fifos, sockets, devices: created by the workers too.
                let job = FileJob {
                    dir: dir.clone(),
                    node,
                    path: target_path.to_string(),
                };
                self.jobs
                    .send(job)
                    .map_err(|_| CoreError::Invalid("restore workers stopped".into()))?;
                Ok(())
            }
        }
    }
}

/// Create a symlink, fifo, socket or device node (worker side).
fn restore_special(sh: &Shared<'_>, job: &FileJob) {
    let (fd, node, target_path) = (job.dir.fd.as_fd(), &job.node, job.path.as_str());
    let name = node.name.as_slice();
    if !job.dir.fresh
        && let Err(e) = remove_entry(fd, name)
    {
        sh.problem(target_path, format!("removing existing entry: {e}"), false);
        return;
    }
    let mode = Mode::from_bits_truncate(node.mode);
    let r = match node.kind {
        NodeKind::Symlink => rustix::fs::symlinkat(OsStr::from_bytes(&node.target), fd, name),
        NodeKind::Fifo => rustix::fs::mknodat(fd, name, FileType::Fifo, mode, 0),
        NodeKind::Socket => rustix::fs::mknodat(fd, name, FileType::Socket, mode, 0),
        NodeKind::CharDevice | NodeKind::BlockDevice if !sh.owner => {
            sh.devices_skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        NodeKind::CharDevice => {
            rustix::fs::mknodat(fd, name, FileType::CharacterDevice, mode, node.rdev)
        }
        NodeKind::BlockDevice => {
            rustix::fs::mknodat(fd, name, FileType::BlockDevice, mode, node.rdev)
        }
        NodeKind::File | NodeKind::Dir => unreachable!("files and directories are not special"),
    };
    if let Err(e) = r {
        sh.problem(target_path, format!("create: {e}"), false);
        return;
    }
    sh.others.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = apply_metadata(fd, name, node, sh.owner) {
        sh.problem(target_path, e, false);
    }
}

/// Directories (snapshot paths) that lead to an included entry: walked when includes are given.
fn needed_dirs(
    reader: &BlobReader<'_>,
    tree: &tresor_format::BlobId,
    prefix: &str,
    includes: &PatternSet,
    out: &mut HashSet<String>,
) -> Result<bool> {
    let t = reader.load_tree(tree)?;
    let mut any = false;
    for n in &t.nodes {
        let path = format!("{}/{}", prefix.trim_end_matches('/'), n.name_lossy());
        let hit = includes.matches(std::path::Path::new(&path));
        let below = match (n.kind, n.subtree) {
            (NodeKind::Dir, Some(s)) if !hit => needed_dirs(reader, &s, &path, includes, out)?,
            _ => false,
        };
        if below {
            out.insert(path);
        }
        any |= hit || below;
    }
    Ok(any)
}

/// Restore `snapshot` (or its `subpath`) into `opts.target`.
///
/// # Errors
/// Fatal problems only (target not creatable, subpath missing, root tree unreadable). Problems
/// with single entries are collected in [`RestoreResult::problems`].
pub fn restore(
    repo: &Repository,
    index: &Index,
    snapshot: &Snapshot,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreResult> {
    repo.require_read("restore")?;
    let started = Instant::now();
    crate::fsmeta::raise_fd_limit();
    let reader = BlobReader::new(repo, index);
    std::fs::create_dir_all(&opts.target).map_err(|e| CoreError::io(&opts.target, e))?;
    let target_fd: OwnedFd = std::fs::File::open(&opts.target)
        .map_err(|e| CoreError::io(&opts.target, e))?
        .into();
    let start = find_node(&reader, &snapshot.tree, &opts.subpath)?;
    let prefix = ls::normalize(&opts.subpath);
    let owner = is_root();
    let sh = Shared {
        reader,
        owner,
        verify: opts.verify,
        problems: Mutex::new(Vec::new()),
        restored: AtomicU64::new(0),
        skipped: AtomicU64::new(0),
        verified: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        others: AtomicU64::new(0),
        devices_skipped: AtomicU64::new(0),
        progress,
        // Twice the cores: writes bypassing the page cache wait for the disk.
        file_threads: (2 * std::thread::available_parallelism().map_or(1, |n| n.get()))
            .min(opts.workers.max(1)),
    };
    let root = Arc::new(DirState {
        fd: target_fd,
        fresh: false,
        parent: None,
        name: Vec::new(),
        node: None,
        path: opts.target.display().to_string(),
        pending: AtomicUsize::new(1),
    });
    let mut result = RestoreResult {
        owner_skipped: !owner,
        ..Default::default()
    };
    // Files are created with their final permission bits; the umask must not mask them.
    let old_umask = rustix::process::umask(Mode::empty());
    let (links, deferred) = std::thread::scope(|scope| -> Result<_> {
        let (tx, rx) = bounded::<FileJob>(256);
        let sh = &sh;
        for _ in 0..opts.workers.max(1) {
            let rx = rx.clone();
            scope.spawn(move || {
                for job in rx.iter() {
                    if job.node.kind == NodeKind::File {
                        restore_file(sh, &job);
                    } else {
                        restore_special(sh, &job);
                    }
                    sh.release(&job.dir);
                }
            });
        }
        let needed = if opts.includes.is_empty() {
            None
        } else {
            let mut set = HashSet::new();
            match &start {
                None => {
                    needed_dirs(&sh.reader, &snapshot.tree, "/", &opts.includes, &mut set)?;
                }
                Some(n) if n.kind == NodeKind::Dir => {
                    if let Some(s) = n.subtree {
                        needed_dirs(&sh.reader, &s, &prefix, &opts.includes, &mut set)?;
                    }
                }
                Some(_) => {}
            }
            Some(set)
        };
        let mut w = Walk {
            sh,
            opts,
            jobs: tx,
            links: HashMap::new(),
            deferred_links: Vec::new(),
            needed,
            dirs: 0,
        };
        match &start {
            None => w.restore_tree(&root, &snapshot.tree, "/")?,
            Some(n) if n.kind == NodeKind::Dir => {
                if let Some(s) = n.subtree {
                    w.restore_tree(&root, &s, &prefix)?;
                }
            }
            Some(n) => {
                root.pending.fetch_add(1, Ordering::AcqRel);
                let tp = format!("{}/{}", root.path, n.name_lossy());
                w.restore_node(&root, n.clone(), &prefix, &tp)?;
            }
        }
        let Walk {
            jobs,
            links,
            deferred_links,
            dirs,
            ..
        } = w;
        drop(jobs);
        result.dirs = dirs;
        // Scoped workers are joined when the scope ends; hardlinks are made after that.
        Ok((links, deferred_links))
    })?;
    {
        for (dir, node, path) in deferred {
            let (first_dir, first_name) = &links[&(node.device, node.inode)];
            let _ = remove_entry(dir.fd.as_fd(), &node.name);
            match rustix::fs::linkat(
                first_dir.fd.as_fd(),
                first_name.as_slice(),
                dir.fd.as_fd(),
                node.name.as_slice(),
                AtFlags::empty(),
            ) {
                Ok(()) => result.others += 1,
                Err(e) => sh.problem(&path, format!("hard link: {e}"), false),
            }
            sh.release(&dir);
        }
    }
    rustix::process::umask(old_umask);
    result.others += sh.others.load(Ordering::Relaxed);
    result.devices_skipped = sh.devices_skipped.load(Ordering::Relaxed);
    result.files_restored = sh.restored.load(Ordering::Relaxed);
    result.files_skipped = sh.skipped.load(Ordering::Relaxed);
    result.files_verified = sh.verified.load(Ordering::Relaxed);
    result.bytes_written = sh.bytes.load(Ordering::Relaxed);
    result.problems = sh.problems.into_inner().expect("problems lock");
    result.elapsed = started.elapsed();
    Ok(result)
}

use crate::ls;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;

    /// Pieces of odd lengths at odd offsets, written out of order through the O_DIRECT + edge
    /// path (on the test machine's temp folder and on tmpfs), give exactly the expected file;
    /// untouched ranges stay holes of zeros.
    #[test]
    fn positional_writes_with_direct_interiors_and_buffered_edges() {
        let mut dirs = vec![tempfile::tempdir().unwrap()];
        if let Ok(d) = tempfile::tempdir_in("/dev/shm") {
            dirs.push(d);
        }
        let lens = [
            1usize,
            4095,
            4096,
            4097,
            8191,
            70_000,
            1 << 20,
            3 << 20,
            123,
            5 << 20,
            9000,
        ];
        let mut pieces = Vec::new();
        let mut off = 0u64;
        for (i, &len) in lens.iter().enumerate() {
            let data: Vec<u8> = (0..len)
                .map(|k| (k as u8).wrapping_mul(7).wrapping_add(i as u8 + 1))
                .collect();
            pieces.push((off, data));
            off += len as u64;
            if i == 6 {
                off += 10_000; // a hole between pieces
            }
        }
        let size = off + 777; // and one at the end
        for dir in &dirs {
            let path = dir.path().join("f");
            let f = std::fs::File::create(&path).unwrap();
            f.set_len(size).unwrap();
            let direct = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(&path)
                .ok();
            let mut bounce = Bounce::default();
            for (off, data) in pieces.iter().rev() {
                write_at(&f, direct.as_ref(), data, *off, &mut bounce).unwrap();
            }
            drop((f, direct));
            let mut want = vec![0u8; size as usize];
            for (off, data) in &pieces {
                want[*off as usize..*off as usize + data.len()].copy_from_slice(data);
            }
            let got = std::fs::read(&path).unwrap();
            assert_eq!(got.len(), want.len());
            assert!(got == want, "content differs in {}", dir.path().display());
        }
    }
}
