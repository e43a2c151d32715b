//! The walker: turns directories into trees, files into blob lists.

use super::entries::{Entries, Listing, decoded, find_node, gone_from, next_node};
use super::known::Known;
use super::lister::{CACHEDIR_TAG, DirsAhead, Entries as DirEntries, Prepared, Rules, Stated};
use super::open::{Listed, OpenError, open_regular};
use super::paths::{child_path, shown};
use super::prefetch::{Ahead, ParentTree, Source};
use super::{BackupOptions, StdinSource};
use crate::error::{CoreError, Result};
use crate::fsmeta::{
    EntryStat, NameCache, fd_path, lstat_at, node_from_metadata, read_file_xattrs, read_xattrs,
};
use crate::repo::Repository;
use crate::repo::blobs::BlobReader;
use crate::repo::cache::{Collected, TreeBytes, cached_tree};
use crate::repo::index::{IdMap, Index};
use crate::repo::packer::Packer;
use crate::{ItemOutcome, Progress};
use rustix::fs::OFlags;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tresor_format::blob::BlobType;
use tresor_format::chunker::Chunker;
use tresor_format::snapshot::SnapshotSummary;
use tresor_format::tree::{MAX_TREE_DEPTH, Node, NodeKind, Tree};
use tresor_format::{BlobId, FormatError};

/// A directory of the virtual root: backed-up paths and the directories leading to them.
enum VEntry {
    Real,
    Dir(BTreeMap<Vec<u8>, VEntry>),
}

/// Parent trees from the local cache of a put-only key, and whether to collect this run's trees.
pub(super) struct LocalParent {
    /// Cached parent trees, instead of reading them from the repository.
    pub trees: Option<IdMap<BlobId, TreeBytes>>,
    /// Collect every tree written, to save in the cache.
    pub collect: Option<Collected>,
}

/// What a walk produced besides the root tree.
pub(super) struct WalkOutcome {
    pub summary: SnapshotSummary,
    pub warnings: Vec<String>,
    pub packer: Packer,
    pub trees: Option<Collected>,
}

pub(super) struct Walker<'a> {
    repo: &'a Repository,
    reader: BlobReader<'a>,
    /// Parent trees from the local cache, instead of the repository (shared with the
    /// read-ahead thread, which validates them).
    cached: Option<Arc<IdMap<BlobId, TreeBytes>>>,
    /// Trees written in this run, for the local cache (put-only keys).
    collected: Option<Collected>,
    /// Parent trees read ahead (while [`Walker::save_root`] runs).
    ahead: Option<Ahead>,
    opts: &'a BackupOptions,
    packer: Packer,
    progress: &'a dyn Progress,
    known: Known,
    chunker: Chunker,
    buf: Vec<u8>,
    /// Directories opened, listed and `lstat`ed ahead ([`DirsAhead`]).
    dirs: DirsAhead,
    names: NameCache,
    stats: SnapshotSummary,
    warnings: Vec<String>,
}

/// The rules a backup's directories are prepared by ([`super::lister::prepare`]).
fn rules(opts: &BackupOptions) -> Rules {
    Rules {
        excludes: opts.excludes.clone(),
        exclude_if_present: opts.exclude_if_present.clone(),
        exclude_caches: opts.exclude_caches,
        one_file_system: opts.one_file_system,
    }
}

/// Whether walks list ahead on threads of their own (tests compare with walks that do not).
fn listers_allowed() -> bool {
    #[cfg(test)]
    return !tests::NO_LISTER.get();
    #[cfg(not(test))]
    true
}

/// A warning naming `path`.
fn io_err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", shown(path))
}

/// What became of an entry: the answer of each kind's `save_*`.
enum Kept {
    /// In its directory's tree.
    Yes,
    /// Left out: excluded, or it could not be read (warned).
    No,
    /// It is no longer what its `lstat` showed (replaced since): the warning, should that
    /// `lstat` have been fresh ([`Walker::save_stated`]).
    Changed(String),
}

/// The warning for a directory whose entries cannot be listed: it is stored without them.
fn unlistable(path: &Path, e: &std::io::Error) -> String {
    format!(
        "{}: cannot list the directory ({e}): stored with its metadata, without its entries",
        shown(path)
    )
}

impl<'a> Walker<'a> {
    pub(super) fn new(
        repo: &'a Repository,
        index: &'a Index,
        cache: LocalParent,
        dedup: Known,
        opts: &'a BackupOptions,
        packer: Packer,
        progress: &'a dyn Progress,
    ) -> Self {
        let LocalParent {
            trees: cached,
            collect: collect_trees,
        } = cache;
        let chunker = Chunker::new(&repo.config().chunker, &repo.key().chunker_key);
        let buf = vec![0u8; chunker.max_size() * 2];
        Walker {
            repo,
            reader: BlobReader::new(repo, index),
            cached: cached.map(Arc::new),
            collected: collect_trees,
            ahead: None,
            opts,
            packer,
            progress,
            known: dedup,
            chunker,
            buf,
            dirs: DirsAhead::new(rules(opts), listers_allowed()),
            names: NameCache::default(),
            stats: SnapshotSummary::default(),
            warnings: Vec::new(),
        }
    }

    pub(super) fn finish(self) -> WalkOutcome {
        let mut summary = self.stats;
        summary.errors = self.warnings.len() as u64;
        WalkOutcome {
            summary,
            warnings: self.warnings,
            packer: self.packer,
            trees: self.collected,
        }
    }

    pub(super) fn warn(&mut self, msg: String) {
        self.progress.error();
        self.warnings.push(msg);
    }

    fn cancelled(&self) -> bool {
        self.opts
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// Store a blob unless the repository or this run already has it.
    fn store(&mut self, blob_type: BlobType, id: BlobId, data: Vec<u8>) -> Result<()> {
        if !self.known.insert(id) {
            return Ok(());
        }
        self.packer.add(blob_type, id, data)
    }

    /// Store a directory's tree. The inner error: readers would refuse the tree (a name or field
    /// that breaks format §10, or more than [`tresor_format::tree::MAX_TREE_SIZE`] bytes), an
    /// error for that directory, not for the backup (it never happens for names read from a
    /// file system).
    fn store_tree(&mut self, tree: &Tree) -> Result<std::result::Result<BlobId, FormatError>> {
        #[cfg(test)]
        tests::ENCODED.set(tests::ENCODED.get() + 1);
        let bytes = match tree.encode_checked() {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let id = self.repo.key().blob_id(&bytes);
        if let Some(c) = &mut self.collected {
            c.push_encoded(id, &bytes);
        }
        self.store(BlobType::Tree, id, bytes)?;
        Ok(Ok(id))
    }

    /// The parent's tree id for a directory whose entries are exactly the parent tree's (same
    /// nodes, field by field): the same tree, so it is neither hashed nor stored again (when
    /// this run collects its trees for the local cache, its bytes are kept for it). `None` when
    /// anything differs, or when the parent tree is not among the blobs this key deduplicates
    /// against.
    fn unchanged_tree(
        &mut self,
        parent_id: Option<BlobId>,
        parent: Option<&ParentTree>,
        now: &Listing,
    ) -> Option<BlobId> {
        let id = parent_id?;
        let same_nodes = match now {
            Listing::Parent => parent.is_some(),
            Listing::Tree(t) => parent.is_some_and(|p| p.same_nodes(&t.nodes)),
        };
        if !same_nodes || !self.known.contains(&id) {
            return None;
        }
        if self.collected.is_none() {
            return Some(id);
        }
        // The cached encoding when there is one, else the parent's bytes (the same bytes: both
        // were checked against the id when read).
        let cached = self.cached.as_ref().and_then(|c| c.get(&id)).cloned();
        let bytes = match (cached, parent) {
            (Some(b), _) => b,
            (None, Some(p)) => TreeBytes::Held(p.bytes().clone()),
            (None, None) => return None,
        };
        if let Some(c) = &mut self.collected {
            c.push(id, bytes);
        }
        Some(id)
    }

    /// A parent tree, from the local cache or the repository; `None` when it cannot be read.
    fn parent_tree_quiet(&self, id: &BlobId) -> Option<ParentTree> {
        match &self.cached {
            Some(c) => cached_tree(c, id),
            None => self.reader.load_encoded_tree(id).ok(),
        }
    }

    fn load_parent_tree(&mut self, id: Option<BlobId>) -> Option<ParentTree> {
        let id = id?;
        if let Some(t) = self.ahead.as_mut().and_then(|a| a.take(&id)) {
            return Some(t);
        }
        if let Some(c) = &self.cached {
            return cached_tree(c, &id);
        }
        #[cfg(test)]
        tests::OWN_TREE_LOADS.set(tests::OWN_TREE_LOADS.get() + 1);
        match self.reader.load_encoded_tree(&id) {
            Ok(t) => Some(t),
            Err(e) => {
                self.warn(format!("parent tree {id}: {e} (files are read again)"));
                None
            }
        }
    }

    /// Back up the paths; the root tree's id. The parent trees are read (from the repository)
    /// or taken from the local cache, and validated, ahead on a thread of their own ([`Ahead`]).
    pub(super) fn save_root(&mut self, parent_root: Option<BlobId>) -> Result<BlobId> {
        let source = match &self.cached {
            Some(c) => Source::Cached(c.clone()),
            None => Source::Repository(BlobReader::new(self.reader.repo(), self.reader.index())),
        };
        std::thread::scope(|s| {
            self.ahead = parent_root.map(|r| Ahead::start(s, source, r));
            let saved = self.save_paths(parent_root);
            self.ahead = None;
            saved
        })
    }

    fn save_paths(&mut self, parent_root: Option<BlobId>) -> Result<BlobId> {
        if self.opts.paths.iter().any(|p| p.as_os_str() == "/") {
            return self.save_whole_root(parent_root);
        }
        let mut root = BTreeMap::new();
        for p in &self.opts.paths {
            let mut cur = &mut root;
            let comps: Vec<&OsStr> = p
                .components()
                .filter_map(|c| match c {
                    std::path::Component::Normal(n) => Some(n),
                    _ => None,
                })
                .collect();
            for (i, c) in comps.iter().enumerate() {
                let key = c.as_bytes().to_vec();
                if i + 1 == comps.len() {
                    cur.insert(key, VEntry::Real);
                    break;
                }
                let e = cur
                    .entry(key)
                    .or_insert_with(|| VEntry::Dir(BTreeMap::new()));
                match e {
                    VEntry::Dir(m) => cur = m,
                    VEntry::Real => break,
                }
            }
        }
        let parent = self.load_parent_tree(parent_root);
        let tree = self.save_virtual(Path::new("/"), &root, parent.as_ref())?;
        Ok(self.store_tree(&tree)??)
    }

    /// Backing up `/` itself: the root tree is the listing of `/` (other paths are below it).
    fn save_whole_root(&mut self, parent_root: Option<BlobId>) -> Result<BlobId> {
        let root = Path::new("/");
        let fd = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| CoreError::io(root, e.into()))?;
        let dev = fd_metadata_dev(&fd).map_err(|e| CoreError::io(root, e))?;
        let parent = self.load_parent_tree(parent_root);
        let fd = Arc::new(fd);
        let listed = match self.dirs.list_here(fd.clone(), root) {
            Ok(l) => l,
            Err(e) => {
                self.warn(unlistable(root, &e));
                return Err(CoreError::Invalid("/ cannot be listed".into()));
            }
        };
        let listing = self.save_dir(&fd, root, listed, parent.as_ref(), dev)?;
        let tree = match (listing, parent) {
            (Listing::Tree(t), _) => t,
            (Listing::Parent, Some(p)) => decoded(&p)?,
            (Listing::Parent, None) => Tree::default(),
        };
        Ok(self.store_tree(&tree)??)
    }

    fn save_virtual(
        &mut self,
        dir: &Path,
        children: &BTreeMap<Vec<u8>, VEntry>,
        parent: Option<&ParentTree>,
    ) -> Result<Tree> {
        // The leading components of the paths given: symlinks are followed (`/var/run`), but
        // O_DIRECTORY never opens (and blocks on) a FIFO put in a directory's place. O_PATH: only
        // entries below are looked up through it, so a directory that can be entered but not
        // listed (mode `--x`, as /home/USER often is) leads to the paths below it.
        let dirfd = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| CoreError::io(dir, e.into()))?;
        let mut nodes = Vec::new();
        for (name, entry) in children {
            let path = child_path(dir, name);
            let pnode = find_node(parent, name);
            match entry {
                VEntry::Real => {
                    let p = pnode.as_ref();
                    if let Some(n) = self.save_entry(dirfd.as_fd(), &path, name, p, None)? {
                        nodes.push(n);
                    }
                }
                VEntry::Dir(sub) => {
                    let meta = match std::fs::symlink_metadata(&path) {
                        Ok(m) => m,
                        Err(e) => {
                            let msg = io_err(&path, e);
                            self.warn(msg);
                            continue;
                        }
                    };
                    let mut node = node_from_metadata(
                        name.clone(),
                        NodeKind::Dir,
                        &EntryStat::from(&meta),
                        &mut self.names,
                    );
                    let ptree = self.load_parent_tree(pnode.and_then(|n| n.subtree));
                    let tree = self.save_virtual(&path, sub, ptree.as_ref())?;
                    node.subtree = Some(self.store_tree(&tree)??);
                    node.xattrs = read_xattrs(&path).unwrap_or_default();
                    nodes.push(node);
                }
            }
        }
        Ok(Tree { nodes })
    }

    /// Back up one entry of an open directory. `None` when it is excluded, or cannot be read (a
    /// warning). (The entries of the directories the walk lists come with their `lstat`:
    /// [`Walker::save_stated`].)
    ///
    /// An excluded entry is never touched: the patterns match the path alone, so the exclusion
    /// is decided before any system call on the entry (no `lstat`, no open, no listing).
    fn save_entry(
        &mut self,
        dir: std::os::fd::BorrowedFd<'_>,
        path: &Path,
        name: &[u8],
        parent: Option<&Node>,
        dev: Option<u64>,
    ) -> Result<Option<Node>> {
        if self.opts.excludes.matches(path) {
            return Ok(None);
        }
        #[cfg(test)]
        super::lister::probe::touched(path);
        // statx on the directory fd: no path walk through /proc/self/fd (the rerun's main cost).
        let entry = Stated {
            name: name.to_vec(),
            meta: lstat_at(dir, name),
        };
        self.save_fresh(dir, path, &entry, parent, dev)
    }

    /// Back up one entry of a listed directory, `meta` its `lstat` from the listing
    /// ([`super::lister`]), which may be minutes old: an entry that is no longer of that type,
    /// or another file (replaced since, as editors save files), is looked at again — `lstat`
    /// now — and backed up as it is now.
    fn save_stated(
        &mut self,
        dir: std::os::fd::BorrowedFd<'_>,
        path: &Path,
        mut entry: Stated,
        parent: Option<&Node>,
        dev: Option<u64>,
    ) -> Result<Option<Node>> {
        if let Some(saved) = self.save_looked(dir, path, &entry, parent, dev, false)? {
            return Ok(saved);
        }
        #[cfg(test)]
        super::lister::probe::looked_again(path);
        entry.meta = lstat_at(dir, &entry.name);
        self.save_fresh(dir, path, &entry, parent, dev)
    }

    /// [`Walker::save_looked`] of an entry whose `lstat` was just made: what it is now is final
    /// (one that changed again is left out with the warning).
    fn save_fresh(
        &mut self,
        dir: std::os::fd::BorrowedFd<'_>,
        path: &Path,
        entry: &Stated,
        parent: Option<&Node>,
        dev: Option<u64>,
    ) -> Result<Option<Node>> {
        let looked = self.save_looked(dir, path, entry, parent, dev, true)?;
        Ok(looked.unwrap_or(None))
    }

    /// Back up one entry of an open directory, its name and `lstat`; `fresh`: that `lstat` was
    /// just made. The entry's node (`None`: left out, with a warning when it cannot be read),
    /// or `None` when it is not what an `lstat` that was not fresh showed (only then).
    fn save_looked(
        &mut self,
        dir: std::os::fd::BorrowedFd<'_>,
        path: &Path,
        entry: &Stated,
        parent: Option<&Node>,
        dev: Option<u64>,
        fresh: bool,
    ) -> Result<Option<Option<Node>>> {
        let name = &entry.name[..];
        if self.cancelled() {
            return Err(CoreError::Interrupted);
        }
        let meta = match &entry.meta {
            Ok(m) => *m,
            Err(e) => {
                self.warn(io_err(path, e));
                return Ok(Some(None));
            }
        };
        if too_large(self.opts.exclude_larger_than, &meta) {
            return Ok(Some(None));
        }
        let Some(kind) = meta.kind() else {
            self.warn(format!("{}: unknown file type, skipped", shown(path)));
            return Ok(Some(None));
        };
        let mut node = node_from_metadata(name.to_vec(), kind, &meta, &mut self.names);
        let parent = parent.filter(|p| p.kind == kind);
        let kept = match kind {
            NodeKind::Dir => self.save_dir_node(dir, path, &meta, parent, dev, &mut node)?,
            // read_file reads the extended attributes from the open file.
            NodeKind::File => self.save_file_node(dir, path, meta, parent, &mut node)?,
            NodeKind::Symlink => self.save_symlink(dir, name, path, parent, &mut node),
            _ => {
                self.stats.total_files_processed += 1;
                self.count_other(path, parent, &node);
                Kept::Yes
            }
        };
        if matches!(kept, Kept::Changed(_)) && !fresh {
            return Ok(None);
        }
        if kind == NodeKind::File {
            super::pause::after_file(self.stats.total_files_processed);
        }
        match kept {
            Kept::Changed(warning) => {
                self.warn(warning);
                return Ok(Some(None));
            }
            Kept::No => return Ok(Some(None)),
            Kept::Yes if kind == NodeKind::File => return Ok(Some(Some(node))),
            Kept::Yes => {}
        }
        if let Some(p) = same_inode_version(parent, &node) {
            node.xattrs = p.xattrs.clone();
            return Ok(Some(Some(node)));
        }
        #[cfg(test)]
        tests::XATTR_READS.set(tests::XATTR_READS.get() + 1);
        match read_xattrs(&fd_path(dir, name)) {
            Ok(x) => node.xattrs = x,
            Err(e) => self.warn(format!("{}: reading extended attributes: {e}", shown(path))),
        }
        Ok(Some(Some(node)))
    }

    /// The target of a symlink entry into `node.target`: [`Kept::No`] when it cannot be read (a
    /// warning), [`Kept::Changed`] when it is no longer a symlink.
    ///
    /// The target of a symlink unchanged since the parent ([`same_inode_version`]) is the
    /// parent's: a symlink's target cannot change without a new inode or ctime.
    fn save_symlink(
        &mut self,
        dir: std::os::fd::BorrowedFd<'_>,
        name: &[u8],
        path: &Path,
        parent: Option<&Node>,
        node: &mut Node,
    ) -> Kept {
        let read = match same_inode_version(parent, node) {
            Some(p) => Ok(p.target.clone()),
            None => rustix::fs::readlinkat(dir, name, Vec::new()).map(|t| t.into_bytes()),
        };
        match read {
            Ok(t) => {
                node.target = t;
                self.stats.total_files_processed += 1;
                self.count_other(path, parent, node);
                Kept::Yes
            }
            // Not a symlink (any more).
            Err(e @ rustix::io::Errno::INVAL) => Kept::Changed(io_err(path, e)),
            Err(e) => {
                self.warn(io_err(path, e));
                Kept::No
            }
        }
    }

    /// The subtree of a directory entry into `node.subtree`. [`Kept::No`] when the entry is to
    /// be left out: gone, excluded by a marker file, or its tree cannot be stored (each but the
    /// marker with a warning); [`Kept::Changed`] when it is no longer a directory.
    ///
    /// A directory that cannot be opened or listed (mode `--x` or `---` for this user, a read
    /// error) is kept with its own metadata and an empty listing, with a warning naming it: the
    /// snapshot shows that it exists, and the rest of the tree is backed up.
    fn save_dir_node(
        &mut self,
        dir: std::os::fd::BorrowedFd<'_>,
        path: &Path,
        meta: &EntryStat,
        parent: Option<&Node>,
        dev: Option<u64>,
        node: &mut Node,
    ) -> Result<Kept> {
        let (prepared, taken) = self.dirs.take(dir, path, &node.name, meta.dev, dev);
        let saved = match prepared {
            Prepared::NotOpened(e @ OpenError::Changed(_)) => Ok(Kept::Changed(io_err(path, e))),
            p => self.save_prepared(p, path, meta, parent, node),
        };
        self.dirs.done(taken);
        saved
    }

    /// [`Walker::save_dir_node`] for the directory as [`super::lister::prepare`] found it.
    fn save_prepared(
        &mut self,
        prepared: Prepared,
        path: &Path,
        meta: &EntryStat,
        parent: Option<&Node>,
        node: &mut Node,
    ) -> Result<Kept> {
        let ptree = match &prepared {
            Prepared::NotOpened(_) | Prepared::Excluded => None,
            _ => self.load_parent_tree(parent.and_then(|p| p.subtree)),
        };
        let listing = match prepared {
            Prepared::NotOpened(OpenError::Io(e)) if e.kind() != std::io::ErrorKind::NotFound => {
                self.warn(unlistable(path, &e));
                Listing::Tree(Tree::default())
            }
            Prepared::NotOpened(e) => {
                self.warn(io_err(path, e));
                return Ok(Kept::No);
            }
            Prepared::Excluded => return Ok(Kept::No),
            Prepared::Cache(fd) => {
                Listing::Tree(self.cache_dir(&fd, path, ptree.as_ref(), meta.dev)?)
            }
            Prepared::OtherFs => Listing::Tree(Tree::default()),
            // Not listable: kept without entries.
            Prepared::Listed(_, Err(e)) => {
                self.warn(unlistable(path, &e));
                Listing::Tree(Tree::default())
            }
            Prepared::Listed(fd, Ok(entries)) => {
                self.save_dir(&fd, path, entries, ptree.as_ref(), meta.dev)?
            }
        };
        let same = self.unchanged_tree(parent.and_then(|p| p.subtree), ptree.as_ref(), &listing);
        let stored = match (same, &listing, &ptree) {
            (Some(id), _, _) => Ok(id),
            (None, Listing::Tree(t), _) => self.store_tree(t)?,
            (None, Listing::Parent, Some(p)) => self.store_tree(&decoded(p)?)?,
            // Not made: the parent's entries without a parent tree are none.
            (None, Listing::Parent, None) => self.store_tree(&Tree::default())?,
        };
        let id = match stored {
            Ok(id) => id,
            Err(e) => {
                self.warn(io_err(path, e));
                return Ok(Kept::No);
            }
        };
        let outcome = match parent {
            None => {
                self.stats.dirs_new += 1;
                ItemOutcome::New
            }
            Some(p) if p.subtree == Some(id) => {
                self.stats.dirs_unmodified += 1;
                ItemOutcome::Unchanged
            }
            Some(_) => {
                self.stats.dirs_changed += 1;
                ItemOutcome::Modified
            }
        };
        self.progress.item_done(path, true, outcome);
        node.subtree = Some(id);
        Ok(Kept::Yes)
    }

    /// The content of a regular file entry into `node` (unchanged since the parent: its blob
    /// list, without reading). [`Kept::No`] when it cannot be read (a warning),
    /// [`Kept::Changed`] when it is no longer the file its `lstat` showed.
    fn save_file_node(
        &mut self,
        dir: std::os::fd::BorrowedFd<'_>,
        path: &Path,
        meta: EntryStat,
        parent: Option<&Node>,
        node: &mut Node,
    ) -> Result<Kept> {
        let unchanged = parent.filter(|p| {
            p.size == node.size
                && p.mtime == node.mtime
                && p.ctime == node.ctime
                && p.inode == node.inode
                && p.content.iter().all(|b| self.known.contains(b))
        });
        if let Some(p) = unchanged {
            node.content = p.content.clone();
            node.xattrs = p.xattrs.clone();
            self.stats.files_unmodified += 1;
            self.stats.total_files_processed += 1;
            self.stats.total_bytes_processed += node.size;
            self.progress.bytes_skipped(node.size);
            self.progress.file_done(0);
            self.progress.item_done(path, false, ItemOutcome::Unchanged);
            return Ok(Kept::Yes);
        }
        let name = node.name.clone();
        match self.read_file(dir, &name, path, node, meta)? {
            Kept::Yes => {}
            other => return Ok(other),
        }
        let outcome = if parent.is_some() {
            self.stats.files_changed += 1;
            ItemOutcome::Modified
        } else {
            self.stats.files_new += 1;
            ItemOutcome::New
        };
        self.progress.item_done(path, false, outcome);
        // Only what is stored counts as processed (not a file left out with a warning).
        self.stats.total_files_processed += 1;
        self.stats.total_bytes_processed += node.size;
        Ok(Kept::Yes)
    }

    fn count_other(&mut self, path: &Path, parent: Option<&Node>, node: &Node) {
        let outcome = match parent {
            None => ItemOutcome::New,
            Some(p)
                if p.mtime == node.mtime && p.ctime == node.ctime && p.target == node.target =>
            {
                ItemOutcome::Unchanged
            }
            Some(_) => ItemOutcome::Modified,
        };
        match outcome {
            ItemOutcome::New => self.stats.files_new += 1,
            ItemOutcome::Unchanged => self.stats.files_unmodified += 1,
            ItemOutcome::Modified => self.stats.files_changed += 1,
        }
        self.progress.file_done(0);
        self.progress.item_done(path, false, outcome);
    }

    /// The listing of a cache directory (`--exclude-caches`): its `CACHEDIR.TAG` alone,
    /// backed up like any file (it may be gone by now: then nothing).
    fn cache_dir(
        &mut self,
        fd: &OwnedFd,
        path: &Path,
        parent: Option<&ParentTree>,
        dev: u64,
    ) -> Result<Tree> {
        let child = child_path(path, CACHEDIR_TAG);
        let pnode = find_node(parent, CACHEDIR_TAG);
        let tag = self.save_entry(fd.as_fd(), &child, CACHEDIR_TAG, pnode.as_ref(), Some(dev))?;
        let nodes: Vec<Node> = tag.into_iter().collect();
        if let Some(p) = parent {
            self.count_deleted(p, &gone_from(p, &nodes));
        }
        Ok(Tree { nodes })
    }

    /// Back up the entries of an open directory, listed with their `lstat` a chunk at a time;
    /// [`Listing::Parent`] when they are exactly the parent tree's.
    fn save_dir(
        &mut self,
        fd: &OwnedFd,
        path: &Path,
        mut listed: DirEntries,
        parent: Option<&ParentTree>,
        dev: u64,
    ) -> Result<Listing> {
        let mut entries = Entries::new(parent);
        // Both sorted by name bytes: the parent's nodes are found in one pass, each decoded
        // when its entry is looked at.
        let mut next = 0;
        loop {
            for entry in std::mem::take(&mut listed.chunk) {
                let child = child_path(path, &entry.name);
                let pnode = parent.and_then(|p| next_node(p, &mut next, &entry.name));
                let p = pnode.as_ref().map(|(_, n)| n);
                if let Some(n) = self.save_stated(fd.as_fd(), &child, entry, p, Some(dev))? {
                    entries.push(n, pnode.as_ref().map(|(i, n)| (*i, n)))?;
                }
            }
            if !self.dirs.next_chunk(path, &mut listed)? {
                break;
            }
        }
        if let Some(p) = parent {
            self.count_deleted(p, &entries.gone());
        }
        entries.finish()
    }

    /// Count the parent's nodes `gone` (indices) as deleted, and every file below those that
    /// were directories.
    fn count_deleted(&mut self, parent: &ParentTree, gone: &[usize]) {
        let mut memo = HashMap::new();
        for n in gone.iter().filter_map(|&i| parent.node(i).ok()) {
            let files = match (n.kind, n.subtree) {
                (NodeKind::Dir, Some(id)) => self.files_below(id, &mut memo),
                (NodeKind::Dir, None) => 0,
                _ => 1,
            };
            self.stats.files_deleted = self.stats.files_deleted.saturating_add(files);
        }
    }

    /// Entries that are not directories in parent tree `root` and every tree below it. Each
    /// distinct tree is read once and its count reused (`memo`): a parent whose deleted
    /// directories share subtrees — the same content twice, or trees built as a lattice, each
    /// level listing the next twice — costs one visit per tree, not one per path. No deep call
    /// stack (one frame per level on the heap, at most [`MAX_TREE_DEPTH`]); a tree that cannot
    /// be read counts 0.
    fn files_below(&self, root: BlobId, memo: &mut HashMap<BlobId, u64>) -> u64 {
        /// A tree being counted: its entries so far and its subtrees not yet added.
        struct Frame {
            id: BlobId,
            files: u64,
            dirs: Vec<BlobId>,
        }
        // Counted from the validated tree without decoding its nodes: every directory has
        // one subtree and nothing else has one (format §10).
        let open = |id: BlobId| {
            let (files, dirs) = self.parent_tree_quiet(&id).map_or((0, Vec::new()), |t| {
                let dirs: Vec<BlobId> = t.subtrees().iter().rev().copied().collect();
                ((t.len() - dirs.len()) as u64, dirs)
            });
            Frame { id, files, dirs }
        };
        if let Some(n) = memo.get(&root) {
            return *n;
        }
        // A tree being counted is in `memo` as 0 until done: a cycle (not possible with
        // keyed ids) would end there.
        memo.insert(root, 0);
        let mut stack = vec![open(root)];
        while let Some(top) = stack.last_mut() {
            match top.dirs.pop() {
                Some(d) => match memo.get(&d) {
                    Some(n) => top.files = top.files.saturating_add(*n),
                    None if stack.len() < MAX_TREE_DEPTH => {
                        memo.insert(d, 0);
                        stack.push(open(d));
                    }
                    None => {}
                },
                None => {
                    let done = stack.pop().expect("the loop's top");
                    memo.insert(done.id, done.files);
                    if let Some(up) = stack.last_mut() {
                        up.files = up.files.saturating_add(done.files);
                    }
                }
            }
        }
        memo.get(&root).copied().unwrap_or(0)
    }

    /// Read and chunk a file into `node.content` and its extended attributes into
    /// `node.xattrs`; the node's metadata is the open file's, `node.size` the bytes read.
    /// `lstat` is the entry's metadata from the directory walk. Returns [`Kept::No`] (with a
    /// warning) when the file cannot be read, [`Kept::Changed`] when it is no longer the listed
    /// file.
    ///
    /// The file is opened relative to `dir` (no path lookup) without blocking or following a
    /// symlink, and must be the regular file listed (same device and inode: not a FIFO or
    /// another file swapped in meanwhile, see [`super::open`]). It is read up to the size
    /// `fstat` of the open file gives; it counts as stable when `fstat` after reading shows the
    /// same inode, size, mtime and ctime as before and the bytes read match the size.
    fn read_file(
        &mut self,
        dir: std::os::fd::BorrowedFd<'_>,
        name: &[u8],
        path: &Path,
        node: &mut Node,
        lstat: EntryStat,
    ) -> Result<Kept> {
        let listed = Listed {
            dev: lstat.dev,
            ino: lstat.ino,
        };
        self.progress.current_file(path);
        for attempt in 0..3 {
            let (file, before) = match open_regular(dir, name, Some(listed)) {
                Ok(f) => f,
                Err(e @ OpenError::Changed(_)) => return Ok(Kept::Changed(io_err(path, e))),
                Err(e) => {
                    self.warn(io_err(path, e));
                    return Ok(Kept::No);
                }
            };
            let mut limited = (&file).take(before.size);
            let (content, size) = match self.chunk_stream(&mut limited)? {
                Ok(r) => r,
                Err(e) => {
                    self.warn(io_err(path, e));
                    return Ok(Kept::No);
                }
            };
            let after = file.metadata().ok().map(|m| EntryStat::from(&m));
            let stable = after
                .as_ref()
                .is_some_and(|a| same_version(&before, a) && a.size == size);
            if stable || attempt == 2 {
                if !stable {
                    self.warn(format!(
                        "{}: file changed while it was read; stored {size} bytes as read",
                        shown(path)
                    ));
                }
                let fresh =
                    node_from_metadata(node.name.clone(), NodeKind::File, &before, &mut self.names);
                *node = Node {
                    content,
                    size,
                    ..fresh
                };
                match read_file_xattrs(&file) {
                    Ok(x) => node.xattrs = x,
                    Err(e) => {
                        self.warn(format!("{}: reading extended attributes: {e}", shown(path)))
                    }
                }
                return Ok(Kept::Yes);
            }
        }
        unreachable!("loop returns on its last attempt")
    }

    /// Chunk a stream, store new blobs; returns (blob ids, bytes read). The inner result holds
    /// read errors of the source; the outer one repository errors.
    fn chunk_stream(&mut self, r: &mut dyn Read) -> Result<std::io::Result<(Vec<BlobId>, u64)>> {
        let max = self.chunker.max_size();
        let mut buf = std::mem::take(&mut self.buf);
        let (mut start, mut end, mut eof) = (0usize, 0usize, false);
        let mut ids = Vec::new();
        let mut total = 0u64;
        let result = loop {
            // A large file (or a long stream) does not delay a requested stop until its end.
            if self.cancelled() {
                break Err(CoreError::Interrupted);
            }
            if end - start < max && !eof {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
                while end < buf.len() && !eof {
                    match r.read(&mut buf[end..]) {
                        Ok(0) => eof = true,
                        Ok(n) => end += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            self.buf = buf;
                            return Ok(Err(e));
                        }
                    }
                }
            }
            if start == end {
                break Ok(Ok((ids, total)));
            }
            let n = self.chunker.next_cut(&buf[start..end]);
            let chunk = &buf[start..start + n];
            let id = self.repo.key().blob_id(chunk);
            ids.push(id);
            if self.known.insert(id) {
                let mut data = self.packer.buffer();
                data.extend_from_slice(chunk);
                if let Err(e) = self.packer.add(BlobType::Data, id, data) {
                    break Err(e);
                }
            }
            start += n;
            total += n as u64;
            self.stats.bytes_read += n as u64;
            self.progress.bytes_read(n as u64);
        };
        self.buf = buf;
        if result.is_ok() {
            self.progress.file_done(total);
        }
        result
    }

    pub(super) fn save_stdin(
        &mut self,
        mut src: StdinSource,
        parent_root: Option<BlobId>,
    ) -> Result<BlobId> {
        let parent = self.load_parent_tree(parent_root);
        let (content, size) = self
            .chunk_stream(&mut src.reader)?
            .map_err(|e| CoreError::io("stdin", e))?;
        let now = jiff::Timestamp::now();
        let ts = tresor_format::tree::Timestamp {
            secs: now.as_second(),
            nanos: now.subsec_nanosecond() as u32,
        };
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        let name = src.filename.into_bytes();
        let node = Node {
            mode: 0o644,
            uid,
            gid,
            user: self.names.user(uid),
            group: self.names.group(gid),
            mtime: ts,
            atime: ts,
            ctime: ts,
            size,
            links: 1,
            content,
            ..Node::bare(&name, NodeKind::File)
        };
        self.stats.total_files_processed = 1;
        self.stats.total_bytes_processed = size;
        match find_node(parent.as_ref(), &name) {
            Some(p) if p.content == node.content => self.stats.files_unmodified = 1,
            Some(_) => self.stats.files_changed = 1,
            None => self.stats.files_new = 1,
        }
        Ok(self.store_tree(&Tree { nodes: vec![node] })??)
    }
}

/// The parent's node when `now` is the same inode in the same version: same kind, inode, size,
/// mtime and ctime (nanoseconds included). Then its extended attributes (and a symlink's
/// target) are the parent's and are not read again: setting or removing an attribute, like any
/// change of an inode, sets its ctime (the rule that unchanged files' contents rely on, too).
fn same_inode_version<'p>(parent: Option<&'p Node>, now: &Node) -> Option<&'p Node> {
    parent.filter(|p| {
        p.kind == now.kind
            && p.inode == now.inode
            && p.size == now.size
            && p.mtime == now.mtime
            && p.ctime == now.ctime
    })
}

fn same_version(a: &EntryStat, b: &EntryStat) -> bool {
    a.size == b.size && a.mtime == b.mtime && a.ctime == b.ctime && a.ino == b.ino
}

/// Device id of an open file (`st_dev`).
fn fd_metadata_dev(fd: &OwnedFd) -> std::io::Result<u64> {
    Ok(rustix::fs::fstat(fd).map_err(std::io::Error::from)?.st_dev)
}

/// Whether `--exclude-larger-than` leaves this entry out: not a directory, larger than `max`.
pub(super) fn too_large(max: Option<u64>, meta: &EntryStat) -> bool {
    max.is_some_and(|m| !meta.is_dir() && meta.size > m)
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::{Path, PathBuf};

    thread_local! {
        /// Parent trees this thread's walker read itself (not ahead, [`super::Ahead`]).
        pub(in crate::archiver) static OWN_TREE_LOADS: std::cell::Cell<u64> =
            const { std::cell::Cell::new(0) };
    }

    thread_local! {
        /// Entries (not regular files) whose extended attributes this thread's walker read.
        pub(in crate::archiver) static XATTR_READS: std::cell::Cell<u64> =
            const { std::cell::Cell::new(0) };
    }

    thread_local! {
        /// This thread's walks prepare every directory themselves (no lister).
        pub(in crate::archiver) static NO_LISTER: std::cell::Cell<bool> =
            const { std::cell::Cell::new(false) };
    }

    thread_local! {
        /// Trees this thread's walker encoded (and hashed) to store them.
        pub(in crate::archiver) static ENCODED: std::cell::Cell<u64> =
            const { std::cell::Cell::new(0) };
    }

    use crate::archiver::{BackupOptions, ParentChoice, backup};
    use crate::exclude::PatternSet;
    use crate::repo::{KeyOwner, Repository};
    use std::sync::Arc;

    /// A repository in memory, for a walk's tests.
    pub(in crate::archiver) fn repository() -> Repository {
        let owner = KeyOwner {
            host: "h".into(),
            username: "u".into(),
            created: "2026-11-30T00:00:00Z".into(),
        };
        let kdf = tresor_format::keyfile::KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        };
        let storage = Arc::new(tresor_storage::memory::MemoryStorage::new());
        let config = tresor_format::config::Config::new().unwrap();
        Repository::init(storage, "pw", kdf, &owner, config).unwrap()
    }

    /// Options backing up `paths` without `excludes`, no parent, one worker.
    pub(in crate::archiver) fn options(paths: Vec<PathBuf>, excludes: &[&str]) -> BackupOptions {
        let excludes: Vec<String> = excludes.iter().map(|s| s.to_string()).collect();
        BackupOptions {
            paths,
            excludes: PatternSet::new(&excludes).unwrap(),
            exclude_if_present: vec![],
            exclude_caches: false,
            exclude_larger_than: None,
            one_file_system: false,
            tags: vec![],
            hostname: "h".into(),
            username: "u".into(),
            time: jiff::ZonedDateTime::now(),
            parent: ParentChoice::None,
            dry_run: false,
            stdin: None,
            workers: 1,
            cancel: None,
            cache_dir: None,
            marker_refresh: None,
        }
    }

    /// Every path the walker looked at while backing up `paths` (this thread).
    fn touched_by(paths: Vec<PathBuf>, excludes: &[&str]) -> (Vec<PathBuf>, Vec<String>) {
        use crate::archiver::lister::probe::{TOUCHED, TouchLog};
        let log = TouchLog::default();
        TOUCHED.set(Some(log.clone()));
        let r = backup(&repository(), options(paths, excludes), &crate::NoProgress).unwrap();
        TOUCHED.set(None);
        let seen = std::mem::take(&mut *log.lock().unwrap());
        (seen, r.warnings)
    }

    /// Trees encoded by one backup of `src` (parent: the latest), its root tree and summary.
    fn encoded_by(
        repo: &Repository,
        src: &Path,
    ) -> (u64, tresor_format::snapshot::SnapshotSummary) {
        ENCODED.set(0);
        let mut opts = options(vec![src.to_path_buf()], &[]);
        opts.parent = ParentChoice::Auto;
        let r = backup(repo, opts, &crate::NoProgress).unwrap();
        assert_eq!(r.warnings, Vec::<String>::new());
        (ENCODED.get(), r.summary)
    }

    /// One backup of `src` with the latest snapshot as parent: the result, the extended
    /// attributes of how many entries (not regular files) were read, and the trees encoded.
    fn rerun(repo: &Repository, src: &Path) -> (crate::archiver::BackupResult, u64, u64) {
        XATTR_READS.set(0);
        ENCODED.set(0);
        let mut opts = options(vec![src.to_path_buf()], &[]);
        opts.parent = ParentChoice::Auto;
        let r = backup(repo, opts, &crate::NoProgress).unwrap();
        assert_eq!(r.warnings, Vec::<String>::new());
        (r, XATTR_READS.get(), ENCODED.get())
    }

    /// The node at the absolute path `path` in snapshot `id`.
    fn node_at(
        repo: &Repository,
        id: &tresor_format::ObjectId,
        path: &Path,
    ) -> tresor_format::tree::Node {
        let index = repo.load_index().unwrap();
        let reader = crate::repo::blobs::BlobReader::new(repo, &index);
        let mut tree = reader
            .load_tree(&repo.load_snapshot(id).unwrap().tree)
            .unwrap();
        let names: Vec<_> = path.iter().skip(1).collect();
        for (i, name) in names.iter().enumerate() {
            let node = tree.find(name.as_encoded_bytes()).unwrap().clone();
            if i + 1 == names.len() {
                return node;
            }
            tree = reader.load_tree(&node.subtree.unwrap()).unwrap();
        }
        unreachable!("an empty path")
    }

    /// A rerun reads neither the extended attributes nor the symlink targets of entries that
    /// are the same inode in the same version (inode, size, mtime, ctime) as in the parent: it
    /// takes the parent's, and the snapshot is the same tree. A changed attribute (which sets
    /// the ctime) and a symlink replaced by one with another target of the same length are read
    /// and recorded, and only those entries are read.
    #[test]
    fn unchanged_entries_keep_the_parents_xattrs_and_targets() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("d/e")).unwrap();
        xattr::set(src.join("d"), "user.tag", b"one").unwrap();
        std::os::unix::fs::symlink("target-a", src.join("d/l")).unwrap();
        std::fs::write(src.join("d/e/f"), b"f").unwrap();
        let repo = repository();
        // src, d, e and l
        let (first, reads, _) = rerun(&repo, &src);
        assert_eq!(reads, 4);
        let first_id = first.snapshot_id.unwrap();
        let (again, reads, _) = rerun(&repo, &src);
        assert_eq!(reads, 0, "nothing unchanged is read again");
        let again_id = again.snapshot_id.unwrap();
        // The tree of src (those above it hold /tmp, which other programs change).
        let tree = |id| node_at(&repo, id, &src).subtree;
        assert_eq!(tree(&again_id), tree(&first_id));
        assert_eq!(
            node_at(&repo, &again_id, &src.join("d")).xattrs[0].value,
            b"one"
        );
        assert_eq!(
            node_at(&repo, &again_id, &src.join("d/l")).target,
            b"target-a"
        );
        // ctime moves on a clock tick (a few ms): let the changes land on another one.
        std::thread::sleep(std::time::Duration::from_millis(50));
        xattr::set(src.join("d"), "user.tag", b"two").unwrap();
        std::fs::remove_file(src.join("d/l")).unwrap();
        std::os::unix::fs::symlink("target-b", src.join("d/l")).unwrap();
        // d (its attribute; the new symlink changed its mtime too) and l
        let (changed, reads, _) = rerun(&repo, &src);
        assert_eq!(reads, 2);
        let id = changed.snapshot_id.unwrap();
        assert_eq!(node_at(&repo, &id, &src.join("d")).xattrs[0].value, b"two");
        assert_eq!(node_at(&repo, &id, &src.join("d/l")).target, b"target-b");
        let s = changed.summary;
        assert_eq!((s.files_changed, s.files_unmodified), (1, 1));
    }

    /// A file whose ctime alone changed (its mode set to what it was) is read again and recorded
    /// with the new ctime; its directory and the ones above get new trees (a tree is reused by
    /// id only when every field of every node matches), the sibling directory keeps its tree.
    #[test]
    fn a_new_ctime_alone_is_recorded_and_changes_the_trees_above() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        for d in ["a/b", "c"] {
            std::fs::create_dir_all(src.join(d)).unwrap();
            std::fs::write(src.join(d).join("x"), d).unwrap();
        }
        let repo = repository();
        let (first, _, _) = rerun(&repo, &src);
        let before = node_at(&repo, &first.snapshot_id.unwrap(), &src.join("a/b/x"));
        std::thread::sleep(std::time::Duration::from_millis(50));
        let x = src.join("a/b/x");
        std::fs::set_permissions(&x, std::fs::Permissions::from_mode(before.mode)).unwrap();
        let (r, _, encoded) = rerun(&repo, &src);
        let id = r.snapshot_id.unwrap();
        let after = node_at(&repo, &id, &x);
        let ctime = std::fs::symlink_metadata(&x).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            (after.ctime.secs, i64::from(after.ctime.nanos)),
            (ctime.ctime(), ctime.ctime_nsec())
        );
        assert_ne!(after.ctime, before.ctime);
        let same_but_ctime = tresor_format::tree::Node {
            ctime: after.ctime,
            ..before.clone()
        };
        assert_eq!(after, same_but_ctime);
        let s = r.summary;
        assert_eq!((s.files_changed, s.files_unmodified), (1, 1));
        // b, a, src; c is unchanged
        assert_eq!((s.dirs_changed, s.dirs_unmodified), (3, 1));
        let virtual_dirs = src.components().count() as u64 - 1;
        assert_eq!(encoded, virtual_dirs + 3);
        let first_c = node_at(&repo, &first.snapshot_id.unwrap(), &src.join("c"));
        assert_eq!(node_at(&repo, &id, &src.join("c")).subtree, first_c.subtree);
    }

    /// Entries gone since the parent are counted, those below a deleted directory too, whatever
    /// their place among the entries that stay (first, between, last), and the entries that stay
    /// are matched with their parent nodes (unchanged).
    #[test]
    fn deleted_entries_are_counted_wherever_they_sort() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("m/sub")).unwrap();
        for f in ["a", "b", "c", "d", "z", "m/sub/1", "m/sub/2", "m/x"] {
            std::fs::write(src.join(f), f).unwrap();
        }
        let repo = repository();
        rerun(&repo, &src);
        for f in ["a", "c", "z"] {
            std::fs::remove_file(src.join(f)).unwrap();
        }
        std::fs::remove_dir_all(src.join("m/sub")).unwrap();
        let (r, _, _) = rerun(&repo, &src);
        let s = r.summary;
        assert_eq!(
            (s.files_deleted, s.files_unmodified, s.files_new),
            (5, 3, 0)
        );
        assert_eq!((s.dirs_changed, s.dirs_unmodified, s.dirs_new), (2, 0, 0));
    }

    /// The tree of `src` in a backup with `parent` and `excludes`, and how many parent trees the
    /// walker read itself (not ahead).
    fn src_tree(
        repo: &Repository,
        src: &Path,
        parent: ParentChoice,
        excludes: &[&str],
    ) -> (tresor_format::BlobId, u64) {
        OWN_TREE_LOADS.set(0);
        let mut opts = options(vec![src.to_path_buf()], excludes);
        opts.parent = parent;
        let r = backup(repo, opts, &crate::NoProgress).unwrap();
        assert_eq!(r.warnings, Vec::<String>::new());
        let node = node_at(repo, &r.snapshot_id.unwrap(), src);
        (node.subtree.unwrap(), OWN_TREE_LOADS.get())
    }

    /// Parent trees are read ahead: an unchanged rerun reads none itself. After directories were
    /// removed, added, replaced by a file and a file by a directory, and one is excluded now, the
    /// rerun with the parent (skipping the trees read ahead that it no longer needs) stores
    /// exactly the tree a backup without a parent stores, reading no parent tree itself.
    #[test]
    fn parent_trees_read_ahead_give_the_same_tree() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        for d in ["a", "b/c", "d", "f/g", "h/i"] {
            std::fs::create_dir_all(src.join(d)).unwrap();
            std::fs::write(src.join(d).join("x"), d).unwrap();
        }
        std::fs::write(src.join("e"), b"e").unwrap();
        let repo = repository();
        let (first, _) = src_tree(&repo, &src, ParentChoice::Auto, &[]);
        let (again, own) = src_tree(&repo, &src, ParentChoice::Auto, &[]);
        assert_eq!((again, own), (first, 0));
        std::fs::remove_dir_all(src.join("b/c")).unwrap();
        std::fs::remove_dir_all(src.join("d")).unwrap();
        std::fs::write(src.join("d"), b"now a file").unwrap();
        std::fs::remove_file(src.join("e")).unwrap();
        std::fs::create_dir_all(src.join("e/new")).unwrap();
        std::fs::write(src.join("h/i/x"), b"changed").unwrap();
        let (with_parent, own) = src_tree(&repo, &src, ParentChoice::Auto, &["f"]);
        assert_eq!(own, 0);
        assert_ne!(with_parent, first);
        let (without, _) = src_tree(&repo, &src, ParentChoice::None, &["f"]);
        assert_eq!(with_parent, without);
    }

    /// A backup whose directories are listed ahead (the lister) stores the tree a backup that
    /// lists every directory itself stores, for a directory of several chunks with
    /// subdirectories on both sides of chunk boundaries, and its rerun reuses every tree.
    #[test]
    fn listing_ahead_gives_the_same_tree() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        let n = 2 * crate::archiver::lister::CHUNK + 9;
        for i in 0..n {
            let p = src.join(format!("{i:04}"));
            if i % 50 == 0 {
                std::fs::create_dir_all(p.join("sub")).unwrap();
                std::fs::write(p.join("sub/f"), p.to_str().unwrap()).unwrap();
            } else {
                std::fs::create_dir_all(&src).unwrap();
                std::fs::write(&p, p.to_str().unwrap()).unwrap();
            }
        }
        let repo = repository();
        use crate::archiver::lister::probe::FROM_LISTER;
        NO_LISTER.set(true);
        let (here, _) = src_tree(&repo, &src, ParentChoice::None, &["*7"]);
        NO_LISTER.set(false);
        assert_eq!(FROM_LISTER.get(), 0);
        let (ahead, _) = src_tree(&repo, &src, ParentChoice::None, &["*7"]);
        // Every directory below the top came from the lister: 6 `NNNN` and their `sub`.
        assert_eq!(FROM_LISTER.replace(0), 12);
        assert_eq!(ahead, here);
        let (again, own) = src_tree(&repo, &src, ParentChoice::Auto, &["*7"]);
        assert_eq!((again, own), (here, 0));
        let index = repo.load_index().unwrap();
        let tree = crate::repo::blobs::BlobReader::new(&repo, &index)
            .load_tree(&here)
            .unwrap();
        assert_eq!(tree.nodes.len(), (0..n).filter(|i| i % 10 != 7).count());
    }

    /// A rerun encodes no tree of an unchanged directory: it takes the parent's tree id. Only the
    /// virtual directories above the source (always rebuilt) and the changed directory with its
    /// ancestors are encoded again, and the counts of unchanged and changed directories stay.
    #[test]
    fn unchanged_directories_reuse_the_parent_tree() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        for d in ["a/b/c", "d/e", "f"] {
            std::fs::create_dir_all(src.join(d)).unwrap();
            std::fs::write(src.join(d).join("x"), d).unwrap();
        }
        let repo = repository();
        // `/` and each directory above src: built from the paths given, encoded on every run
        let virtual_dirs = src.components().count() as u64 - 1;
        let (first, s1) = encoded_by(&repo, &src);
        assert_eq!((first, s1.dirs_new), (virtual_dirs + 7, 7));
        let (rerun, s2) = encoded_by(&repo, &src);
        assert_eq!(
            rerun, virtual_dirs,
            "only the virtual directories are encoded"
        );
        assert_eq!(
            (s2.dirs_unmodified, s2.dirs_changed, s2.files_unmodified),
            (7, 0, 3)
        );
        std::fs::write(src.join("a/b/c/x"), "changed!").unwrap();
        let (changed, s3) = encoded_by(&repo, &src);
        // c, b, a and src itself
        assert_eq!(changed, virtual_dirs + 4);
        assert_eq!(
            (s3.dirs_unmodified, s3.dirs_changed, s3.files_changed),
            (3, 4, 1)
        );
    }

    /// Excluded entries are decided by their path alone: the walker never looks at them (no
    /// `lstat`, so no open or listing either), nor at anything below an excluded directory; a
    /// negation brings back a file the patterns excluded before.
    #[test]
    fn excluded_entries_are_never_looked_at() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        for d in ["keep/sub", "cache/deep", "x/node_modules/m"] {
            std::fs::create_dir_all(src.join(d)).unwrap();
        }
        for f in [
            "keep/a.txt",
            "keep/b.tmp",
            "keep/sub/c.tmp",
            "keep/important.tmp",
            "cache/deep/d",
            "x/node_modules/m/e",
            "x/y",
        ] {
            std::fs::write(src.join(f), f).unwrap();
        }
        let excludes = ["*.tmp", "cache/", "node_modules", "!important.tmp"];
        let (seen, warnings) = touched_by(vec![src.clone()], &excludes);
        assert_eq!(warnings, Vec::<String>::new());
        let mut rel: Vec<String> = seen
            .iter()
            .map(|p| p.strip_prefix(&src).unwrap().display().to_string())
            .collect();
        rel.sort();
        assert_eq!(
            rel,
            [
                "",
                "keep",
                "keep/a.txt",
                "keep/important.tmp",
                "keep/sub",
                "x",
                "x/y"
            ]
        );
        // Nothing excluded: everything is looked at (the check above can fail).
        let (all, _) = touched_by(vec![src.clone()], &[]);
        assert_eq!(all.len(), 15, "{all:?}");
    }
}
