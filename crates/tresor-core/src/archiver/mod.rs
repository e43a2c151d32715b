//! Backup: walk the source, chunk and deduplicate file contents, write trees and a snapshot.
//!
//! ```text
//! lister thread (lister.rs): opens, lists and lstats the directories ahead, in the walker's order
//!   │ chunks of ≤ 128 entries, each with its lstat
//!   ▼
//! walker thread (this one)                         packer (see crate::repo::packer)
//!   for each directory, sorted by name bytes:
//!     lstat → Node
//!     file unchanged vs parent node?  → reuse its blob list, read nothing
//!     else read → keyed FastCDC → BLAKE3 id ──new id──▶ workers: compress, encrypt, pack
//!     directory done → Tree blob     ──new id──▶          uploader: pack → index object
//!   root tree → wait for packer → snapshot (packs, then index, then snapshot)
//! ```
//! Unchanged means: same size, mtime, ctime and inode as the node in the parent snapshot, and all
//! its blobs present in the index; then its extended attributes are the parent's too, as are
//! those (and a symlink's target) of any other entry with the same inode, size, mtime and ctime
//! (setting an attribute sets the ctime). A file that changes while it is read is read again (up
//! to three times); if it keeps changing, what was read is stored with the size read and a
//! warning.
//! Entries that cannot be read become warnings; the backup goes on and the snapshot is written.
//!
//! Memory is bounded by the index, the chunk buffer (2 × max chunk size), the packer's bounded
//! queues, the lister's bounded queue (32 chunks of ≤ 128 entries), the names of each directory
//! level being walked and one tree per level (the parent trees encoded, their nodes
//! decoded one at a time) — never by file sizes; the trees collected for the local tree cache
//! wait in an unnamed file in the cache directory, not in memory.

mod entries;
mod handoff;
mod known;
mod lister;
mod open;
mod paths;
mod pause;
mod prefetch;
#[cfg(test)]
mod races;
pub mod refresh;
mod scan;
mod walk;

pub use scan::Estimate;

use crate::error::Result;
use crate::exclude::PatternSet;
use crate::repo::Repository;
use crate::repo::cache::{CachedParent, OpenCache, TreeCache};
use crate::repo::index::Index;
use crate::repo::markers::PendingMarkers;
use crate::repo::packer::Packer;
use crate::{PROGRAM_VERSION, Progress};
use known::Known;
use refresh::Refresher;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tresor_format::snapshot::{Snapshot, SnapshotSummary};
use tresor_format::{BlobId, ObjectId};
use tresor_storage::Storage;

/// Which parent snapshot to compare against.
#[derive(Debug, Clone, Default)]
pub enum ParentChoice {
    /// The latest snapshot of the same host with the same paths.
    #[default]
    Auto,
    /// None: read every file.
    None,
    /// This snapshot.
    Id(ObjectId),
}

/// Backing up a stream (e.g. standard input) as one file.
pub struct StdinSource {
    /// File name to record, e.g. `db.sql`.
    pub filename: String,
    /// The stream.
    pub reader: Box<dyn Read + Send>,
}

/// What to back up and how.
pub struct BackupOptions {
    /// Absolute, normalised paths to back up.
    pub paths: Vec<PathBuf>,
    /// Exclude patterns.
    pub excludes: PatternSet,
    /// Skip directories that contain a file with one of these names.
    pub exclude_if_present: Vec<String>,
    /// Keep of a directory holding a valid `CACHEDIR.TAG` only the directory and that file
    /// (restic's `--exclude-caches`).
    pub exclude_caches: bool,
    /// Leave out every entry but directories whose size (`lstat`) is above this many bytes
    /// (restic's `--exclude-larger-than`); such entries are neither stored nor counted.
    pub exclude_larger_than: Option<u64>,
    /// Do not descend into other file systems (mount points are kept as empty directories).
    pub one_file_system: bool,
    /// Tags for the snapshot.
    pub tags: Vec<String>,
    /// Host name for the snapshot.
    pub hostname: String,
    /// User name for the snapshot.
    pub username: String,
    /// Snapshot time.
    pub time: jiff::ZonedDateTime,
    /// Parent selection.
    pub parent: ParentChoice,
    /// Encode everything but write nothing.
    pub dry_run: bool,
    /// Back up this stream instead of `paths`.
    pub stdin: Option<StdinSource>,
    /// Compression/encryption worker threads (≥ 1).
    pub workers: usize,
    /// Set to stop early; data written so far is indexed so the next backup reuses it.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Local cache directory; put-only keys keep their last snapshot's trees there
    /// ([`crate::repo::cache`]) to skip unchanged files.
    pub cache_dir: Option<PathBuf>,
    /// For tests: write a fresh start marker this often instead of every
    /// [`refresh::REFRESH`] (format §16.1). `None` in every real backup.
    pub marker_refresh: Option<Duration>,
}

/// Outcome of a backup.
#[derive(Debug, Clone)]
pub struct BackupResult {
    /// The new snapshot (None in a dry run).
    pub snapshot_id: Option<ObjectId>,
    /// The parent snapshot used.
    pub parent: Option<ObjectId>,
    /// Statistics, as stored in the snapshot.
    pub summary: SnapshotSummary,
    /// One line per entry that could not be read (path: reason).
    pub warnings: Vec<String>,
    /// Problems with the repository that did not stop the backup and lost no source data, e.g.
    /// a start marker that could not be written (format §16.1).
    pub notices: Vec<String>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

fn find_parent(repo: &Repository, query: &ParentQuery) -> Result<Option<(ObjectId, Snapshot)>> {
    if !repo.key().can_read() {
        return Ok(None);
    }
    match &query.choice {
        ParentChoice::None => Ok(None),
        ParentChoice::Id(id) => Ok(Some((*id, repo.load_snapshot(id)?))),
        ParentChoice::Auto => {
            let (list, _) = repo.load_snapshots()?;
            let future = crate::repo::snapshots::future_after();
            Ok(list.into_iter().rev().find(|(id, s)| {
                let mut p = s.paths.clone();
                p.sort();
                s.hostname == query.hostname
                    && p == query.paths
                    && !crate::repo::snapshots::is_future(s, future)
                    && trusted_parent(repo, id)
            }))
        }
    }
}

/// What [`find_parent`] needs of the options, apart from them: they hold the stdin reader,
/// which another thread may not share.
struct ParentQuery {
    choice: ParentChoice,
    hostname: String,
    /// The snapshot's paths, sorted.
    paths: Vec<String>,
}

impl ParentQuery {
    fn of(opts: &BackupOptions) -> Self {
        let mut paths = snapshot_paths(opts);
        paths.sort();
        ParentQuery {
            choice: opts.parent.clone(),
            hostname: opts.hostname.clone(),
            paths,
        }
    }
}

/// Write the start marker ([`start_markers`]) and find the parent snapshot ([`find_parent`])
/// at the same time: the marker must be stored before the index is read (format §16.1), and
/// reading snapshots is not reading the index. The two `fsync`s of a start — the marker's and
/// the `seen` file's when the snapshot list grew ([`crate::repo::highwater`]) — then overlap
/// (each 0.5–1 ms of a one-file unchanged rerun on a local disk).
fn start_and_find_parent(
    repo: &Repository,
    opts: &BackupOptions,
    backup_start: jiff::Timestamp,
) -> (Started, Result<Option<(ObjectId, Snapshot)>>) {
    let query = ParentQuery::of(opts);
    if !repo.key().can_read() {
        return (start_markers(repo, opts, backup_start), Ok(None));
    }
    std::thread::scope(|s| {
        let parent = s.spawn(|| find_parent(repo, &query));
        let started = start_markers(repo, opts, backup_start);
        let parent = parent
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (started, parent)
    })
}

/// Whether snapshot `id` may be an automatic parent: a parent's file lists are taken over
/// without reading the files, so only snapshots of this key or of a full key qualify (as for
/// deduplication, format §13): a put-only host naming itself after this one could otherwise
/// make an unchanged-looking file's snapshot entry point at other content.
fn trusted_parent(repo: &Repository, id: &ObjectId) -> bool {
    repo.snapshot_signer(id).is_ok_and(|s| {
        s == repo.signer().public()
            || repo.trust().verdict(&s, id) == crate::repo::trust::Verdict::Full
    })
}

fn snapshot_paths(opts: &BackupOptions) -> Vec<String> {
    match &opts.stdin {
        Some(s) => vec![format!("/{}", s.filename)],
        None => opts.paths.iter().map(|p| p.display().to_string()).collect(),
    }
}

/// Refuse, before anything is written, a backup whose snapshot every reader would ignore: a
/// put-only key writes only for the host it is certified for (format §11).
fn check_host(repo: &Repository, hostname: &str) -> Result<()> {
    if repo.key_kind() != tresor_format::keyfile::KeyKind::PutOnly {
        return Ok(());
    }
    match repo.trust().certified_host(&repo.signer().public()) {
        Some(h) if h != hostname => Err(crate::CoreError::Invalid(format!(
            "this put-only key is certified for host {h:?}: readers would ignore its snapshot for host {hostname:?} (back up as {h:?}, or use a key made for {hostname:?})"
        ))),
        _ => Ok(()),
    }
}

/// Refuse what would put names into trees that readers refuse (format §10), before anything is
/// written: a stdin file name that is not one valid name, and paths that are not absolute and
/// normalised (as [`BackupOptions::paths`] must be). `/` itself is allowed: its listing is the
/// root tree.
fn check_names(opts: &BackupOptions) -> Result<()> {
    use std::path::Component;
    if let Some(s) = &opts.stdin
        && !tresor_format::tree::valid_name(s.filename.as_bytes())
    {
        return Err(crate::CoreError::Invalid(format!(
            "stdin file name {}: not a valid file name (not empty, not . or .., no / or NUL)",
            tresor_format::tree::escape_name(s.filename.as_bytes())
        )));
    }
    for p in &opts.paths {
        let comps = || p.components().skip(1);
        let normal: PathBuf = p.components().collect();
        if !p.is_absolute()
            || normal.as_os_str() != p.as_os_str()
            || comps().any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(crate::CoreError::Invalid(format!(
                "backup path {}: not absolute and normalised (no ., .., // or trailing /)",
                paths::shown(p)
            )));
        }
    }
    Ok(())
}

/// Leave out the backup paths that cannot be looked at (`lstat` fails: missing, or below a
/// directory this user cannot enter), as restic does: each is a warning, the others are backed
/// up and only they become the snapshot's `paths`. Excluded paths are not looked at. None left
/// is an error.
fn drop_unreadable_paths(opts: &mut BackupOptions) -> Result<Vec<String>> {
    if opts.stdin.is_some() {
        return Ok(Vec::new());
    }
    let mut warnings = Vec::new();
    let excludes = &opts.excludes;
    opts.paths.retain(|p| {
        if p.as_os_str() == "/" || excludes.matches(p) {
            return true;
        }
        match std::fs::symlink_metadata(p) {
            Ok(_) => true,
            Err(e) => {
                warnings.push(format!("{}: {e} (not backed up)", paths::shown(p)));
                false
            }
        }
    });
    if opts.paths.is_empty() && !warnings.is_empty() {
        return Err(crate::CoreError::Invalid(format!(
            "none of the backup paths can be read: {}",
            warnings.join("; ")
        )));
    }
    Ok(warnings)
}

/// Run a backup and write a snapshot.
///
/// Waits for the store (throttling, passing failures the storage retries) are reported to
/// `progress` ([`Progress::store_waiting`]) while it runs.
///
/// Backup paths that cannot be looked at are left out with a warning each (see
/// [`BackupResult::warnings`]); the others are backed up.
///
/// # Errors
/// [`crate::CoreError::Invalid`] for a stdin file name or a path that cannot become a tree name,
/// or a host name a put-only key is not certified for, or when none of the paths can be looked at
/// (before anything is written). Repository errors (storage failures, a full disk, damaged
/// index); unreadable *source* entries are not errors but [`BackupResult::warnings`]. [`crate::CoreError::Interrupted`] when
/// cancelled (after indexing what was written).
pub fn backup(
    repo: &Repository,
    opts: BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupResult> {
    crate::waiting::reported_to(repo.storage(), progress, || {
        run_backup(repo, opts, progress)
    })
}

/// A started backup's markers, their refresh thread and the warning when the first marker could
/// not be written ([`start_markers`]).
type Started = (Arc<Mutex<PendingMarkers>>, Option<Refresher>, Vec<String>);

/// Write the backup's first start marker (format §16.1, not in a dry run) and start its
/// refresh thread; the warning when the marker could not be written (then nothing refreshes).
fn start_markers(
    repo: &Repository,
    opts: &BackupOptions,
    backup_start: jiff::Timestamp,
) -> Started {
    let mut markers =
        PendingMarkers::load(opts.cache_dir.as_deref(), &repo.config().id, &opts.hostname);
    let every = opts.marker_refresh.unwrap_or(refresh::REFRESH);
    let started = backup_start.to_string();
    let first = refresh::Stamp::now();
    if opts.dry_run {
        return (Arc::new(Mutex::new(markers)), None, vec![]);
    }
    let secs = Some(refresh::refresh_secs(every));
    if let Err(e) = markers.start(repo, &opts.hostname, &started, secs) {
        let warning = format!(
            "could not write the backup start marker ({e}): a prune running meanwhile may delete data this backup relies on"
        );
        return (Arc::new(Mutex::new(markers)), None, vec![warning]);
    }
    let markers = Arc::new(Mutex::new(markers));
    let source = refresh::MarkerSource {
        storage: repo.storage().clone(),
        key: repo.key().clone(),
        signer: repo.signer_copy(),
        host: opts.hostname.clone(),
        started,
    };
    let refresher = Refresher::start(source, markers.clone(), every, first);
    (markers, Some(refresher), vec![])
}

/// The packer of a backup: index objects are written only while the markers refresh (format
/// §16.1).
fn new_packer(repo: &Repository, opts: &BackupOptions, refresher: Option<&Refresher>) -> Packer {
    let cfg = repo.config();
    let storage: Arc<dyn Storage> = match refresher {
        Some(r) => Arc::new(refresh::Guarded::new(repo.storage().clone(), r.liveness())),
        None => repo.storage().clone(),
    };
    Packer::with_version(
        storage,
        repo.key().clone(),
        repo.signer_copy(),
        cfg.pack_size,
        cfg.compression_level,
        cfg.version,
        opts.workers,
        opts.dry_run,
    )
}

/// The parent's trees from the local cache: a put-only key's automatic parent is whatever
/// its cache holds; any other key's cache is used when it holds the parent chosen from the
/// repository (`parent`).
fn cached_parent(
    repo: &Repository,
    opts: &BackupOptions,
    cache: Option<&TreeCache>,
    parent: Option<&(ObjectId, Snapshot)>,
) -> Option<CachedParent> {
    let cache = cache?;
    if !repo.key().can_read() {
        return match opts.parent {
            ParentChoice::Auto => cache.load(&repo.key().id_key),
            _ => None,
        };
    }
    let (id, _) = parent?;
    cache.load(&repo.key().id_key).filter(|c| c.snapshot == *id)
}

#[allow(clippy::too_many_lines, reason = "split by r12-core/r12-cli")]
fn run_backup(
    repo: &Repository,
    mut opts: BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupResult> {
    check_names(&opts)?;
    check_host(repo, &opts.hostname)?;
    let unreadable = drop_unreadable_paths(&mut opts)?;
    let started = Instant::now();
    let backup_start = jiff::Timestamp::now();
    crate::fsmeta::raise_fd_limit();
    // The start marker goes first, before the index is read (format §16.1): a prune that
    // condemns data this backup may deduplicate against then waits for this host.
    let ((markers, refresher, start_warnings), parent) =
        start_and_find_parent(repo, &opts, backup_start);
    let parent = parent?;
    let packer = new_packer(repo, &opts, refresher.as_ref());
    let put_only = !repo.key().can_read();
    // Kept per signing key (it survives `key passwd`, which changes the key file's id). Every
    // backup with a cache directory updates it, `--force` ones too.
    let cache = opts.cache_dir.as_ref().map(|dir| {
        TreeCache::new(
            dir,
            &repo.config().id,
            &hex::encode(repo.signer().public()),
            &opts.hostname,
            &snapshot_paths(&opts),
        )
    });
    let cached = cached_parent(repo, &opts, cache.as_ref(), parent.as_ref());
    let parent_tree_id = match &cached {
        Some(c) => Some(c.root),
        None => parent.as_ref().map(|(_, s)| s.tree),
    };
    // A put-only key's parent is the snapshot its cache holds (it cannot read the list).
    let parent_id = match &cached {
        Some(c) => Some(c.snapshot),
        None => parent.as_ref().map(|(id, _)| *id),
    };
    // The parent's trees come from the repository only when the cache does not hold them.
    let index = if !put_only && cached.is_none() && parent.is_some() {
        repo.load_tree_index()?
    } else {
        Index::default()
    };
    // The snapshot's paths name the stdin file (`/NAME`), so compute them before taking it.
    let paths = snapshot_paths(&opts);
    let stdin = opts.stdin.take();
    let dedup = match &opts.cache_dir {
        Some(dir) => Known::in_tables(repo.open_dedup_index(dir)?),
        None => Known::in_memory(repo.load_dedup_set()?),
    };
    let cached_head = cached
        .as_ref()
        .map(|c| (c.snapshot, c.root, c.file.clone()));
    let local = walk::LocalParent {
        trees: cached.map(|c| c.trees),
        // A dry run writes no cache: nothing to collect.
        collect: cache
            .as_ref()
            .filter(|_| !opts.dry_run)
            .map(|c| c.collector(&repo.key().id_key)),
    };
    let mut w = walk::Walker::new(repo, &index, local, dedup, &opts, packer, progress);
    for msg in unreadable {
        w.warn(msg);
    }
    let root = match stdin {
        Some(src) => w.save_stdin(src, parent_tree_id),
        None => w.save_root(parent_tree_id),
    };
    let walk::WalkOutcome {
        mut summary,
        mut warnings,
        packer,
        trees,
    } = w.finish();
    let root = match root {
        Ok(r) => r,
        Err(e) => {
            // Index what was written, so that the next backup reuses it.
            let _ = packer.finish();
            return Err(e);
        }
    };
    let stats = packer.finish()?;
    // The next run finds this run's index objects in its tables without fetching them.
    if let Some(dir) = opts.cache_dir.as_deref().filter(|_| !opts.dry_run) {
        repo.write_own_dedup_tables(dir, &stats);
    }
    summary.data_added = stats.bytes_written;
    summary.data_blobs = stats.data_blobs;
    summary.tree_blobs = stats.tree_blobs;
    summary.backup_start = backup_start.to_string();
    let mut snap = Snapshot {
        version: tresor_format::FORMAT_VERSION,
        time: opts.time.strftime("%Y-%m-%dT%H:%M:%S%.f%:z").to_string(),
        tree: root,
        paths,
        hostname: opts.hostname.clone(),
        username: opts.username.clone(),
        uid: rustix::process::getuid().as_raw(),
        gid: rustix::process::getgid().as_raw(),
        tags: opts.tags.clone(),
        excludes: opts.excludes.patterns().to_vec(),
        parent: parent_id,
        summary: None,
        program_version: PROGRAM_VERSION.into(),
        markers: vec![],
        original: None,
    };
    // The refresh thread stops before the snapshot takes the list of this backup's markers,
    // and the snapshot is written only if the markers kept refreshing (format §16.1).
    if let Some(live) = refresher.map(Refresher::stop) {
        live.check(refresh::Stamp::now())
            .map_err(crate::CoreError::Invalid)?;
    }
    snap.markers = markers.lock().expect("markers").ids().to_vec();
    summary.backup_end = jiff::Timestamp::now().to_string();
    snap.summary = Some(summary.clone());
    let snapshot_id = if opts.dry_run {
        None
    } else {
        let bytes = snap.seal(repo.key(), repo.signer())?;
        summary.data_added += bytes.len() as u64;
        let id = repo.write_object(tresor_storage::Kind::Snapshot, &bytes)?;
        let _ = markers.lock().expect("markers").done();
        Some(id)
    };
    if let (Some(cache), Some(trees), Some(id)) = (cache, trees, snapshot_id)
        && let Err(e) = save_cache(&cache, cached_head, (id, root), trees.into_trees())
    {
        warnings.push(format!(
            "local cache: {e} (the next backup reads every file again)"
        ));
    }
    Ok(BackupResult {
        snapshot_id,
        parent: parent_id,
        summary,
        warnings,
        notices: start_warnings,
        elapsed: started.elapsed(),
    })
}

/// Keep this backup's trees for the next one: when its root tree is the cached parent's
/// (`cached`: that snapshot, root and loaded file) and no tree read from the file failed its
/// check, only the snapshot id in the cache file changes ([`TreeCache::renew`]); otherwise the
/// file is written anew.
fn save_cache(
    cache: &TreeCache,
    cached: Option<(ObjectId, BlobId, Arc<OpenCache>)>,
    (id, root): (ObjectId, BlobId),
    trees: Vec<(BlobId, crate::repo::cache::TreeBytes)>,
) -> std::io::Result<()> {
    // A file that cannot be renewed (gone, changed, unreadable) is written anew.
    if let Some((old, ..)) = cached.filter(|(_, r, f)| *r == root && !f.damaged())
        && cache.renew(old, id, root).unwrap_or(false)
    {
        return Ok(());
    }
    cache.save(id, root, trees)
}
