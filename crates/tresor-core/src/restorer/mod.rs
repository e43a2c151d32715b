//! Restore: write a snapshot's tree into a target directory.
//!
//! ```text
//! walker (this thread, iterative)                 N workers
//!   depth-first over trees; every name checked     file job: keep if already correct (its
//!   (valid, strictly increasing), depth ≤          content hashed against the blob ids, see
//!   MAX_TREE_DEPTH; leftover temporary files of    Overwrite), else write a new file under a
//!   an interrupted restore removed                 temporary name: blobs fetched, or copied
//!   dirs: mkdir (0700), open beneath parent  ──▶   from the old file where its content matches
//!   files ────────────────────────────────────▶    (large files: several threads; sparse
//!   symlinks, fifos, sockets, devices: created     files: holes); optional verify; metadata
//!                                                  through its fd, read back and compared;
//!                                                  then renamed into place; left for a
//!                                                  rerun (nothing written) when a blob's
//!                                                  pack is still thawing (`thawing.rs`)
//!   hardlinks: deferred until their first path exists
//! directory metadata is applied through the directory's own fd when the last entry below it is
//! done (a pending counter per directory), so read-only directories restore fully and their
//! mtimes stick.
//! ```
//!
//! Hostile snapshots and planted targets (format §13):
//! * **Names** are checked again here, whatever the tree decoder did: a name that is empty,
//!   `.`, `..` or holds `/` or NUL, and a name not strictly greater than the one before it in
//!   its tree (duplicate or unsorted) is damage naming the path; nothing is created for it and
//!   the rest restores. Directories nested deeper than
//!   [`tresor_format::tree::MAX_TREE_DEPTH`] are damage too.
//! * **Everything is opened beneath its directory** ([`crate::fsmeta::open_beneath`]:
//!   `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`, or a
//!   component walk with `O_NOFOLLOW`), so a symlink planted in the target is replaced, never
//!   followed. A file in the way is unlinked and created anew (`O_EXCL`), never written into: a
//!   hard link planted in the target cannot carry the write to a file outside it.
//! * **Metadata goes through the entry's own descriptor** (`fchown`, `fchmod`, `fsetxattr`,
//!   `futimens`; for fifos, sockets and devices an `O_PATH` descriptor checked with `fstat`
//!   and `/proc/self/fd/N`; symlinks only by no-follow calls): no name is resolved a second
//!   time after it was created, so replacing a name by a symlink cannot redirect a chmod.
//! * **Privileges** follow [`crate::metapolicy`]: setuid/setgid bits and file capabilities only with the
//!   owner; device nodes, setuid/setgid bits and `security.*`/`trusted.*` attributes only from
//!   snapshots of trusted writers (see [`RestoreOptions::privileged`]).
//!
//! Metadata order: owner (root only), mode, xattrs (after chown, which clears capabilities),
//! times. After applying, every entry is read back through the same descriptor: what the target
//! could not take (an owner without root or refused, a time outside the file system's range,
//! an attribute refused, a device node without root) is a [`Difference`] naming the path, the
//! value wanted and the value got.
//!
//! **No damaged file at its final name**: a file is written as `.tresor-restore-<random>`
//! beneath its directory and renamed to its name only when its content is complete (and
//! verified with [`RestoreOptions::verify`]) and its metadata applied. When a blob is missing
//! or corrupt the temporary file is removed: the name keeps what it held before (an older
//! version stays untouched), the problem names the path.

mod content;
pub mod differ;
mod dirs;
mod entries;
mod existing;
mod meta;
mod plan;
mod sample;
mod temp;
mod thawing;
mod walk;

use crate::Progress;
use crate::error::{CoreError, Result};
use crate::exclude::PatternSet;
use crate::fsmeta::is_root;
use crate::metapolicy::{Fate, MetaPolicy, XattrFilter};
use crate::repo::Repository;
use crate::repo::blobs::BlobReader;
use crate::repo::index::Index;
use crate::repo::tree::{self as ls, find_node};
use crossbeam_channel::bounded;
use differ::Diffs;
pub use differ::{DiffKind, Difference, DifferenceCounts};
use dirs::{DirState, FileJob};
pub use plan::{Action, ActionKind};
use rustix::fs::Mode;
pub use sample::{Entry, restore_entries};
use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thawing::Thawing;
pub use thawing::Waiting;
use tresor_format::ObjectId;
use tresor_format::snapshot::Snapshot;
use tresor_format::tree::{NodeKind, valid_name};
use walk::Walk;

/// What restore does with an entry that is already at the place of a snapshot's entry
/// (restic 0.17's `--overwrite`, with restic's default). Directories are always entered and
/// get the snapshot's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overwrite {
    /// `always` (the default): a regular file stays only when its content is the snapshot's —
    /// cut at the snapshot's blob lengths, every piece's keyed hash equal to the blob id, same
    /// size — and then gets the snapshot's metadata; otherwise it is replaced by a new file, for
    /// which every piece of the old one that matches is copied and only the others fetched.
    /// Other entries are replaced.
    #[default]
    Always,
    /// `if-changed`: like `always`, but a regular file of the snapshot's size and mtime is
    /// trusted to be correct without reading it (except a file that would get setuid/setgid
    /// bits or a capability, and with `verify`).
    IfChanged,
    /// `if-newer`: an entry whose mtime is at least the snapshot's is left as it is (content
    /// and metadata); older ones as with `always`.
    IfNewer,
    /// `never`: every existing entry (other than a directory) is left as it is; only missing
    /// entries are restored.
    Never,
}

impl std::str::FromStr for Overwrite {
    type Err = CoreError;

    /// `always`, `if-changed`, `if-newer` or `never`.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "always" => Overwrite::Always,
            "if-changed" => Overwrite::IfChanged,
            "if-newer" => Overwrite::IfNewer,
            "never" => Overwrite::Never,
            _ => {
                return Err(CoreError::Invalid(format!(
                    "--overwrite {s:?}: use always, if-changed, if-newer or never"
                )));
            }
        })
    }
}

/// What to restore and how.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Target directory (created if missing).
    pub target: PathBuf,
    /// Path inside the snapshot to restore (its contents go into the target), as the bytes of
    /// its names (any but `/`); `/` for all.
    pub subpath: Vec<u8>,
    /// Restore only entries matching (or below a directory matching) these patterns.
    pub includes: PatternSet,
    /// Skip entries matching these patterns.
    pub excludes: PatternSet,
    /// Re-read every restored file and compare it with the snapshot.
    pub verify: bool,
    /// Worker threads writing files.
    pub workers: usize,
    /// Set owners when running as root (`false`: `--no-owner`, never chown). When true and not
    /// running as root, entries whose owner is not the snapshot's are counted as differences.
    pub owner: bool,
    /// What to do with entries already in the target.
    pub overwrite: Overwrite,
    /// Create fifos, sockets and device nodes (`false`: `--no-special-files`).
    pub special_files: bool,
    /// Which extended attributes to write.
    pub xattrs: XattrFilter,
    /// Apply privileged metadata: device nodes, setuid/setgid bits of files, `security.*` and
    /// `trusted.*` attributes. The caller sets it when the snapshot was signed by a full key
    /// ([`Repository::snapshot_verdict`]) or the admin passed `--trust-privileged`; otherwise
    /// they are withheld and counted in [`RestoreResult::withheld`].
    pub privileged: bool,
    /// The snapshot's signer ([`Repository::snapshot_signer`]): copies of blobs listed by full
    /// keys are read first, then that signer's, then others ([`BlobReader::for_snapshot`]).
    pub signer: Option<[u8; 32]>,
    /// `--dry-run`: write nothing, list in [`RestoreResult::actions`] what would be done
    /// (see [`plan`]).
    pub dry_run: bool,
    /// `--delete`: remove the entries of the target's directories that the snapshot lacks
    /// (never outside the target, never through a symlink; see [`plan`]).
    pub delete: bool,
    /// Data packs not to read, by id: those still thawing when a cold repository's wait ended
    /// (`tresor_core::thaw::Thawed::pending`). A file needing a blob whose indexed location
    /// lies in one is not restored (nothing written for it, no problem) but counted in
    /// [`RestoreResult::waiting`]; empty: every file is restored.
    pub skip_packs: HashSet<ObjectId>,
}

impl RestoreOptions {
    /// Restore everything into `target`: no patterns, no verify, 2 workers, owners (as root),
    /// overwrite `always`, special files, the default xattr allow-list, privileged metadata
    /// withheld.
    pub fn new(target: PathBuf) -> Self {
        let none = PatternSet::new(&[]).expect("an empty pattern set compiles");
        RestoreOptions {
            target,
            subpath: "/".into(),
            includes: none.clone(),
            excludes: none,
            verify: false,
            workers: 2,
            owner: true,
            overwrite: Overwrite::Always,
            special_files: true,
            xattrs: XattrFilter::default(),
            privileged: false,
            signer: None,
            dry_run: false,
            delete: false,
            skip_packs: HashSet::new(),
        }
    }
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

/// Privileged metadata not applied because the snapshot's writer is not trusted with it
/// ([`RestoreOptions::privileged`] false).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Withheld {
    /// Device nodes not created.
    pub devices: u64,
    /// Files restored without their setuid/setgid bits.
    pub setid_files: u64,
    /// `security.*` and `trusted.*` attributes not written.
    pub xattrs: u64,
}

impl Withheld {
    /// Whether anything was withheld.
    pub fn any(&self) -> bool {
        self.devices + self.setid_files + self.xattrs > 0
    }
}

/// Outcome of a restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreResult {
    /// Files written.
    pub files_restored: u64,
    /// Files already correct in the target (content checked, or trusted by size and mtime with
    /// [`Overwrite::IfChanged`]): their content left as it was, their metadata applied.
    pub files_skipped: u64,
    /// Existing entries the overwrite mode left entirely as they were
    /// ([`Overwrite::Never`], [`Overwrite::IfNewer`]).
    pub entries_kept: u64,
    /// Directories created or updated.
    pub dirs: u64,
    /// Other entries (symlinks, fifos, sockets, devices, hardlinks).
    pub others: u64,
    /// Content bytes written (sizes of the files written).
    pub bytes_written: u64,
    /// Plaintext bytes of blobs fetched from the repository for them.
    pub bytes_fetched: u64,
    /// Blobs fetched from the repository for them.
    pub blobs_fetched: u64,
    /// Bytes copied from older files at the same place whose content matched the snapshot's
    /// blobs (instead of fetched).
    pub bytes_reused: u64,
    /// Files whose content was compared with the snapshot (with `verify`): those written and
    /// those found already correct.
    pub files_verified: u64,
    /// Whether ownership was left alone (not root, or [`RestoreOptions::owner`] false).
    pub owner_skipped: bool,
    /// Device nodes not created because we are not root.
    pub devices_skipped: u64,
    /// Fifos, sockets and devices not created because [`RestoreOptions::special_files`] is off.
    pub special_skipped: u64,
    /// Privileged metadata withheld from an untrusted writer's snapshot.
    pub withheld: Withheld,
    /// Files (target paths) whose setuid/setgid bits or capability were not applied because
    /// their owner was not restored.
    pub privileges_dropped: Vec<String>,
    /// Extended attributes not written because the allow-list leaves them out.
    pub xattrs_filtered: u64,
    /// What the target could not reproduce, sorted by path (at most [`differ::MAX_LISTED`];
    /// owners of a restore without root are only counted).
    pub differences: Vec<Difference>,
    /// Differences by kind, exact.
    pub difference_counts: DifferenceCounts,
    /// Temporary files of an interrupted restore that were removed.
    pub leftovers_removed: u64,
    /// Problems, one per entry.
    pub problems: Vec<RestoreProblem>,
    /// With [`RestoreOptions::dry_run`] every entry and what would be done with it; otherwise
    /// the entries removed by [`RestoreOptions::delete`]. Sorted by path.
    pub actions: Vec<Action>,
    /// Files not restored because their data lies in packs still thawing
    /// ([`RestoreOptions::skip_packs`]).
    pub waiting: Waiting,
    /// Wall time.
    pub elapsed: Duration,
}

impl RestoreResult {
    /// Whether anything differs from the snapshot (see [`RestoreResult::difference_counts`]).
    pub fn has_differences(&self) -> bool {
        self.difference_counts.total() > 0
    }
}

#[derive(Default)]
struct Counters {
    restored: AtomicU64,
    skipped: AtomicU64,
    kept: AtomicU64,
    fetched: AtomicU64,
    blobs_fetched: AtomicU64,
    reused: AtomicU64,
    leftovers: AtomicU64,
    verified: AtomicU64,
    bytes: AtomicU64,
    others: AtomicU64,
    devices_skipped: AtomicU64,
    special_skipped: AtomicU64,
    withheld_devices: AtomicU64,
    withheld_setid: AtomicU64,
    withheld_xattrs: AtomicU64,
    xattrs_filtered: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

struct Shared<'a> {
    reader: BlobReader<'a>,
    policy: MetaPolicy,
    /// Running as root (device nodes can be made).
    root: bool,
    special_files: bool,
    verify: bool,
    overwrite: Overwrite,
    /// Owners are to be restored (not `--no-owner`); without root, differing owners are counted.
    owner_wanted: bool,
    problems: Mutex<Vec<RestoreProblem>>,
    dropped: Mutex<Vec<String>>,
    diffs: Diffs,
    /// Hard-link groups (device, inode) whose first name was not restored, and whether that
    /// was damage: their further names are not linked.
    failed_links: Mutex<HashMap<(u64, u64), bool>>,
    c: Counters,
    progress: &'a dyn Progress,
    /// Threads that fetch and write the blobs of one large file at once.
    file_threads: usize,
    /// Largest chunk of this repository (bounds what verify reads per blob).
    max_chunk: u64,
    /// `--dry-run`: nothing is written, [`Shared::actions`] lists what would be.
    dry_run: bool,
    actions: Mutex<Vec<Action>>,
    /// When kept ([`restore_entries`]): the path of each job's folder and the seconds the job
    /// took.
    timings: Option<Mutex<Vec<(String, f64)>>>,
    /// The packs still thawing, and the files left for later because of them.
    thawing: Thawing,
}

impl Shared<'_> {
    fn problem(&self, path: &str, message: String, damage: bool) {
        self.progress.error();
        self.problems
            .lock()
            .expect("problems lock")
            .push(RestoreProblem {
                path: path.into(),
                message,
                damage,
            });
    }

    /// Count the fate of a piece of privileged metadata; `dropped` marks the entry for the
    /// privileges warning.
    fn note(&self, fate: Fate, setid: bool, dropped: &mut bool) {
        match (fate, setid) {
            (Fate::Apply, _) => {}
            (Fate::Filtered, _) => bump(&self.c.xattrs_filtered),
            (Fate::Withheld, true) => bump(&self.c.withheld_setid),
            (Fate::Withheld, false) => bump(&self.c.withheld_xattrs),
            (Fate::Dropped, _) => *dropped = true,
        }
    }

    fn privileges_dropped(&self, path: String) {
        self.dropped.lock().expect("dropped lock").push(path);
    }

    /// One entry below `dir` is done; apply metadata of every directory that is now complete,
    /// through its own descriptor.
    fn release(&self, dir: &Arc<DirState>) {
        let mut cur = Some(dir.clone());
        while let Some(d) = cur {
            if d.pending.fetch_sub(1, Ordering::AcqRel) != 1 {
                return;
            }
            if d.marked.load(Ordering::Relaxed) {
                temp::unmark(d.fd.as_fd());
            }
            if let Some(node) = &d.node
                && !self.dry_run
                && let Err(e) = meta::dir_meta(self, &d, node)
            {
                self.problem(&d.path(), e, false);
            }
            cur = d.parent.clone();
        }
    }
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
    let (target_fd, fresh) = open_target(opts)?;
    let sh = shared(repo, index, opts, progress);
    let mut root_dir = DirState::root(target_fd, opts.target.display().to_string());
    root_dir.fresh = fresh;
    let root_dir = Arc::new(root_dir);
    // Files are created with their final permission bits; the umask must not mask them.
    let old_umask = rustix::process::umask(Mode::empty());
    let walked = run(&sh, opts, snapshot, &root_dir);
    rustix::process::umask(old_umask);
    let dirs = walked?;
    Ok(result(sh, dirs, started))
}

/// The state the walk and the workers share for a restore with `opts`.
fn shared<'a>(
    repo: &'a Repository,
    index: &'a Index,
    opts: &RestoreOptions,
    progress: &'a dyn Progress,
) -> Shared<'a> {
    let root = is_root();
    Shared {
        reader: BlobReader::for_snapshot(repo, index, opts.signer),
        policy: MetaPolicy {
            owner: root && opts.owner,
            privileged: opts.privileged,
            xattrs: opts.xattrs.clone(),
        },
        root,
        special_files: opts.special_files,
        verify: opts.verify,
        overwrite: opts.overwrite,
        owner_wanted: opts.owner,
        problems: Mutex::new(Vec::new()),
        dropped: Mutex::new(Vec::new()),
        diffs: Diffs::default(),
        failed_links: Mutex::new(HashMap::new()),
        c: Counters::default(),
        progress,
        // As many as the file workers (at most twice the cores): from a local repository one
        // per core, where more would only contend; from S3 or a server more, as they also wait
        // for the network.
        file_threads: (2 * cores()).min(opts.workers.max(1)),
        max_chunk: u64::from(repo.config().chunker.max_size),
        dry_run: opts.dry_run,
        actions: Mutex::new(Vec::new()),
        timings: None,
        thawing: Thawing::new(index, &opts.skip_packs),
    }
}

/// The target, created if missing — with the dry run only opened, and when missing a stand-in
/// (`/`, never used) marked fresh.
fn open_target(opts: &RestoreOptions) -> Result<(OwnedFd, bool)> {
    let t = &opts.target;
    let missing = opts.dry_run && std::fs::symlink_metadata(t).is_err();
    if !opts.dry_run {
        std::fs::create_dir_all(t).map_err(|e| CoreError::io(t, e))?;
    }
    let open = if missing { Path::new("/") } else { t.as_path() };
    let fd = std::fs::File::open(open).map_err(|e| CoreError::io(t, e))?;
    Ok((fd.into(), missing))
}

/// Walk the snapshot with workers writing files, then make the deferred hard links; returns
/// the number of directories.
fn run(
    sh: &Shared<'_>,
    opts: &RestoreOptions,
    snapshot: &Snapshot,
    root: &Arc<DirState>,
) -> Result<u64> {
    if ls::components(&opts.subpath).iter().any(|c| !valid_name(c)) {
        return Err(CoreError::Invalid(format!(
            "{}: `..` is not a name in a snapshot path",
            tresor_format::tree::display_bytes(&opts.subpath)
        )));
    }
    let start = find_node(&sh.reader, &snapshot.tree, &opts.subpath)?;
    let prefix = ls::normalize(&opts.subpath);
    // The whole snapshot: its summary is the total. Part of it: the walk counts as it goes.
    let whole = start.is_none() && opts.includes.is_empty() && opts.excludes.is_empty();
    let summary = snapshot.summary.as_ref().filter(|_| whole);
    if let Some(s) = summary {
        sh.progress
            .set_total(s.total_files_processed, s.total_bytes_processed);
    }
    // A single file is restored on this thread.
    let single = matches!(&start, Some(n) if n.kind != NodeKind::Dir);
    let workers = if single { 0 } else { opts.workers.max(1) };
    let dirs = with_workers(sh, opts, &prefix, workers, |w| {
        w.count_total(summary.is_none());
        match &start {
            None => w.run(root, &snapshot.tree),
            Some(n) if n.kind == NodeKind::Dir => match n.subtree {
                Some(s) => w.run(root, &s),
                None => Ok(()),
            },
            Some(n) => w.single(root, n.clone()),
        }
    })?;
    Ok(dirs)
}

/// Run `feed`, which hands entries to the walk, with `workers` file workers (0: the jobs are
/// done on this thread once `feed` is through), then make the deferred hard links (with
/// `--dry-run`, list them); the number of directories walked.
fn with_workers<'a>(
    sh: &Shared<'a>,
    opts: &RestoreOptions,
    prefix: &[u8],
    workers: usize,
    feed: impl FnOnce(&mut Walk<'_, 'a>) -> Result<()>,
) -> Result<u64> {
    let (links, deferred, dirs) = std::thread::scope(|scope| -> Result<_> {
        let (tx, rx) = bounded::<FileJob>(256);
        for _ in 0..workers {
            let rx = rx.clone();
            scope.spawn(move || work(sh, &rx));
        }
        let mut w = Walk::new(sh, opts, tx, prefix);
        feed(&mut w)?;
        // Scoped workers are joined when the scope ends; hardlinks are made after that.
        let walked = w.finish();
        if workers == 0 {
            work(sh, &rx);
        }
        Ok(walked)
    })?;
    if sh.dry_run {
        for (dir, node) in deferred {
            plan::plan_entry(sh, &FileJob { dir, node });
        }
    } else {
        entries::make_links(sh, &links, deferred);
    }
    Ok(dirs)
}

/// The cores this process may use, asked once (the drill restores thousands of single files,
/// and asking reads the cgroup's files each time).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A file worker: restore (or plan) every job until the walk is done.
fn work(sh: &Shared<'_>, rx: &crossbeam_channel::Receiver<FileJob>) {
    for job in rx.iter() {
        let began = sh.timings.as_ref().map(|_| Instant::now());
        if sh.dry_run {
            plan::plan_entry(sh, &job);
        } else if job.node.kind == NodeKind::File {
            if sh.progress.shows_current_file() {
                sh.progress.current_file(Path::new(&job.path()));
            }
            entries::restore_file(sh, &job);
        } else {
            entries::restore_special(sh, &job);
            sh.progress.file_done(0);
        }
        if let (Some(t), Some(began)) = (&sh.timings, began) {
            let took = began.elapsed().as_secs_f64();
            t.lock().expect("timings lock").push((job.dir.path(), took));
        }
        sh.release(&job.dir);
    }
}

fn result(sh: Shared<'_>, dirs: u64, started: Instant) -> RestoreResult {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let c = &sh.c;
    let (differences, difference_counts) = sh.diffs.finish();
    RestoreResult {
        files_restored: get(&c.restored),
        files_skipped: get(&c.skipped),
        entries_kept: get(&c.kept),
        dirs,
        others: get(&c.others),
        bytes_written: get(&c.bytes),
        bytes_fetched: get(&c.fetched),
        blobs_fetched: get(&c.blobs_fetched),
        bytes_reused: get(&c.reused),
        files_verified: get(&c.verified),
        owner_skipped: !sh.policy.owner,
        devices_skipped: get(&c.devices_skipped),
        special_skipped: get(&c.special_skipped),
        withheld: Withheld {
            devices: get(&c.withheld_devices),
            setid_files: get(&c.withheld_setid),
            xattrs: get(&c.withheld_xattrs),
        },
        privileges_dropped: sh.dropped.into_inner().expect("dropped lock"),
        xattrs_filtered: get(&c.xattrs_filtered),
        differences,
        difference_counts,
        leftovers_removed: get(&c.leftovers),
        problems: sh.problems.into_inner().expect("problems lock"),
        actions: {
            let mut a = sh.actions.into_inner().expect("actions lock");
            a.sort();
            a
        },
        waiting: sh.thawing.finish(),
        elapsed: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::KeyOwner;
    use std::os::fd::AsFd;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use tresor_format::config::Config;
    use tresor_format::keyfile::KdfParams;
    use tresor_format::tree::{Node, Timestamp};

    /// Run `f` with a [`Shared`] over an empty in-memory repository.
    fn with_shared(policy: MetaPolicy, f: impl FnOnce(&Shared<'_>)) {
        let storage = Arc::new(tresor_storage::memory::MemoryStorage::new());
        let owner = KeyOwner {
            host: "h".into(),
            username: "u".into(),
            created: "2026-01-01T00:00:00Z".into(),
        };
        let kdf = KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        };
        let repo = Repository::init(storage, "pw", kdf, &owner, Config::new().unwrap()).unwrap();
        let index = Index::default();
        let sh = Shared {
            reader: BlobReader::new(&repo, &index),
            policy,
            root: is_root(),
            special_files: true,
            verify: false,
            overwrite: Overwrite::Always,
            owner_wanted: true,
            problems: Mutex::new(Vec::new()),
            dropped: Mutex::new(Vec::new()),
            diffs: Diffs::default(),
            failed_links: Mutex::new(HashMap::new()),
            c: Counters::default(),
            progress: &crate::NoProgress,
            file_threads: 1,
            max_chunk: 1 << 20,
            dry_run: false,
            actions: Mutex::new(Vec::new()),
            timings: None,
            thawing: Thawing::default(),
        };
        f(&sh);
    }

    fn node(name: &str, kind: NodeKind, mode: u32) -> Node {
        let t = Timestamp {
            secs: 1_000_000_000,
            nanos: 7,
        };
        Node {
            mode,
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
            mtime: t,
            atime: t,
            ctime: t,
            links: 1,
            ..Node::bare(name.as_bytes(), kind)
        }
    }

    fn policy() -> MetaPolicy {
        MetaPolicy {
            owner: is_root(),
            privileged: true,
            xattrs: XattrFilter::default(),
        }
    }

    /// The issue's attack: a directory's name replaced by a symlink to an outside file after
    /// the directory was created. Its metadata still goes to the directory (through its fd);
    /// the outside file keeps its mode and mtime.
    #[test]
    fn directory_metadata_goes_through_its_fd_even_when_its_name_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let (target, outside) = (tmp.path().join("t"), tmp.path().join("outside"));
        std::fs::create_dir(&target).unwrap();
        std::fs::write(&outside, b"do not touch").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
        let before = std::fs::metadata(&outside).unwrap();
        let root_fd: OwnedFd = std::fs::File::open(&target).unwrap().into();
        let root = Arc::new(DirState::root(root_fd, target.display().to_string()));
        let (fd, fresh) = dirs::ensure_dir(root.fd.as_fd(), b"d").unwrap();
        assert!(fresh);
        let d = Arc::new(DirState::child(
            &root,
            fd,
            fresh,
            node("d", NodeKind::Dir, 0o2777),
        ));
        std::fs::rename(target.join("d"), target.join("moved")).unwrap();
        std::os::unix::fs::symlink(&outside, target.join("d")).unwrap();
        with_shared(policy(), |sh| {
            sh.release(&d);
            assert!(sh.problems.lock().unwrap().is_empty());
        });
        let after = std::fs::metadata(&outside).unwrap();
        assert_eq!(after.mode() & 0o7777, 0o644);
        assert_eq!(
            (after.mtime(), after.mtime_nsec()),
            (before.mtime(), before.mtime_nsec())
        );
        assert_eq!(std::fs::read(&outside).unwrap(), b"do not touch");
        let moved = std::fs::symlink_metadata(target.join("moved")).unwrap();
        assert!(moved.is_dir());
        assert_eq!(moved.mode() & 0o7777, 0o2777);
        assert_eq!((moved.mtime(), moved.mtime_nsec()), (1_000_000_000, 7));
    }

    /// A fifo's metadata goes through an O_PATH descriptor: a fifo named in the tree gets its
    /// mode and times, and one replaced by a symlink before its metadata is refused, leaving
    /// the symlink's target alone.
    #[test]
    fn special_files_get_metadata_through_an_o_path_fd() {
        let tmp = tempfile::tempdir().unwrap();
        let (target, outside) = (tmp.path().join("t"), tmp.path().join("outside"));
        std::fs::create_dir(&target).unwrap();
        std::fs::write(&outside, b"x").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o600)).unwrap();
        let root_fd: OwnedFd = std::fs::File::open(&target).unwrap().into();
        let root = Arc::new(DirState::root(root_fd, target.display().to_string()));
        let old_umask = rustix::process::umask(Mode::empty());
        with_shared(policy(), |sh| {
            let job = FileJob {
                dir: root.clone(),
                node: node("fifo", NodeKind::Fifo, 0o640),
            };
            entries::restore_special(sh, &job);
            assert!(sh.problems.lock().unwrap().is_empty());
            let m = std::fs::symlink_metadata(target.join("fifo")).unwrap();
            assert!(std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()));
            assert_eq!(m.mode() & 0o7777, 0o640);
            assert_eq!((m.mtime(), m.mtime_nsec()), (1_000_000_000, 7));
            // The name now holds a symlink to the outside file: no metadata goes through it.
            std::os::unix::fs::symlink(&outside, target.join("fifo2")).unwrap();
            let job = FileJob {
                dir: root.clone(),
                node: node("fifo2", NodeKind::Fifo, 0o4777),
            };
            let err = entries::special_meta(sh, &job).unwrap_err();
            assert!(err.contains("replaced by another entry"), "{err}");
        });
        rustix::process::umask(old_umask);
        let m = std::fs::metadata(&outside).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o600);
    }

    #[test]
    fn names_must_be_valid_and_strictly_increasing() {
        use walk::name_problem;
        for bad in [&b""[..], b".", b"..", b"a/b", b"/", b"../x", b"a\0b"] {
            assert!(name_problem(None, bad).is_some(), "{bad:?}");
        }
        assert!(name_problem(None, b"...").is_none());
        assert!(name_problem(Some(b"a"), b"b").is_none());
        assert!(name_problem(Some(b"b"), b"b").is_some(), "duplicate");
        assert!(name_problem(Some(b"b"), b"a").is_some(), "unsorted");
        assert!(name_problem(Some(b"a"), b"a\xff").is_none());
    }
}
