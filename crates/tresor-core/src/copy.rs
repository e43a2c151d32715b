//! `copy`: snapshots from one repository into another with other keys.
//!
//! Blob ids are keyed by each repository's `id_key` (format §2), so copying means: read each
//! data blob from the source (verified against its source id), hash its plaintext under the
//! target's `id_key`, and store it unless the target has it (the blobs the target's key may
//! deduplicate against, [`Repository::load_dedup_set`], as a backup does: a put-only target
//! sees its own dedup lists only). Chunks are kept as they are (no re-chunking). Every tree is
//! rewritten bottom-up with the new ids; unchanged subtrees met again map through a memo. Then
//! the snapshot is written with the source's time, host, paths, tags, user, uid, gid, excludes,
//! summary and program version, and `original` = the source's `original` or its id (format
//! §11); `parent` and `markers` name objects of the source and are left out.
//!
//! **Identity.** A selected snapshot is skipped, reading no data, when the target already has
//! a snapshot whose `original` is the source snapshot's id (or its `original`), or (restic's
//! rule) one with the same time, host, paths and tags whose root tree is the copy's root
//! tree (known only after its trees were translated; then the data was read but nothing new
//! is written). A put-only target cannot read its snapshots: the caller passes what an earlier
//! run recorded ([`CopyOptions::copied`]).
//!
//! **Order and interruption.** Each snapshot gets its own packer: its packs, then its index
//! objects, then the snapshot (format §12). When a copy fails half-way, what was packed is
//! indexed before the error returns, so a second run deduplicates against it and writes only
//! what is still missing.
//!
//! **Memory.** The map source blob id → target blob id holds at most [`MAP_LIMIT`] entries
//! (64 bytes of ids each, about 10 MiB with the table); when it is full it is emptied and
//! refilled, which costs reading again blobs met again, never correctness.

use crate::Progress;
use crate::error::{CoreError, Result};
use crate::repo::Repository;
use crate::repo::blobs::BlobReader;
use crate::repo::index::{IdMap, IdSet, Index};
use crate::repo::packer::{Packer, PackerStats};
use serde::Serialize;
use tresor_format::blob::BlobType;
use tresor_format::keyfile::KeyKind;
use tresor_format::snapshot::Snapshot;
use tresor_format::tree::{MAX_TREE_DEPTH, Node, NodeKind, Tree};
use tresor_format::{BlobId, ObjectId};

/// The most entries the source → target blob id map holds in one run.
pub const MAP_LIMIT: usize = 131_072;

/// How to copy.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Compression and encryption threads of the target's packer (at least one is used).
    pub workers: usize,
    /// Source snapshot ids already copied into the target by earlier runs, as far as the
    /// caller knows (a put-only target's local record; a full target is read instead).
    pub copied: IdSet<ObjectId>,
    /// A local file to which the id of each source snapshot is appended (one hex id per line)
    /// as soon as its copy is written: a put-only target's record for later runs.
    pub record: Option<std::path::PathBuf>,
}

/// What happened to one selected snapshot.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CopiedSnapshot {
    /// The snapshot in the source repository.
    pub source: ObjectId,
    /// Its copy in the target: written by this run, or the one found there.
    pub target: Option<ObjectId>,
    /// Whether this run wrote the copy (`false`: the target had it, skipped).
    pub written: bool,
}

/// What `copy` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CopyReport {
    /// One entry per selected snapshot, in the order given.
    pub snapshots: Vec<CopiedSnapshot>,
    /// Data blobs stored in the target.
    pub data_blobs: u64,
    /// Tree blobs stored in the target.
    pub tree_blobs: u64,
    /// Bytes of data blobs read from the source (plaintext).
    pub bytes_read: u64,
    /// Bytes written to the target: packs, index objects and snapshots.
    pub bytes_written: u64,
    /// Objects written to the target: packs, index objects and snapshots.
    pub objects_written: u64,
    /// Problems that lost nothing, e.g. the local record that could not be written.
    pub notices: Vec<String>,
}

/// What restic's "similar snapshot" rule compares besides the tree: time, host, and the paths
/// and tags in any order.
#[derive(PartialEq, Eq)]
struct Look {
    time: String,
    host: String,
    paths: Vec<String>,
    tags: Vec<String>,
}

impl Look {
    fn of(s: &Snapshot) -> Self {
        let mut paths = s.paths.clone();
        paths.sort();
        let mut tags = s.tags.clone();
        tags.sort();
        Look {
            time: s.time.clone(),
            host: s.hostname.clone(),
            paths,
            tags,
        }
    }
}

/// What a full target's snapshots say about earlier copies.
#[derive(Default)]
struct Present {
    /// `original` of each target snapshot → that snapshot.
    originals: IdMap<ObjectId, ObjectId>,
    /// Each target snapshot's look, id and root tree.
    similar: Vec<(Look, ObjectId, BlobId)>,
}

impl Present {
    fn load(dst: &Repository) -> Result<Self> {
        let mut p = Present::default();
        if !dst.key().can_read() {
            return Ok(p);
        }
        let (list, _) = dst.load_snapshots()?;
        for (id, s) in list {
            if let Some(o) = s.original {
                p.originals.insert(o, id);
            }
            p.similar.push((Look::of(&s), id, s.tree));
        }
        Ok(p)
    }

    /// The target snapshot that looks like `s` and has the root `tree`.
    fn similar(&self, s: &Snapshot, tree: &BlobId) -> Option<ObjectId> {
        let look = Look::of(s);
        self.similar
            .iter()
            .find(|(l, _, r)| *l == look && r == tree)
            .map(|e| e.1)
    }
}

/// Refuse, before anything is written, snapshots a put-only target key may not write: those
/// of another host than the one it is certified for (readers would ignore them, format §11).
fn check_hosts(dst: &Repository, selected: &[(ObjectId, Snapshot)]) -> Result<()> {
    if dst.key_kind() != KeyKind::PutOnly {
        return Ok(());
    }
    let Some(host) = dst.trust().certified_host(&dst.signer().public()) else {
        return Ok(());
    };
    match selected.iter().find(|(_, s)| s.hostname != host) {
        Some((id, s)) => Err(CoreError::Invalid(format!(
            "the target key is a put-only key certified for host {host:?}: it cannot copy snapshot {} of host {:?} (select --host {host})",
            id.short(),
            s.hostname
        ))),
        None => Ok(()),
    }
}

/// Copy the `selected` snapshots of `src` (read through `src_index`) into `dst`.
///
/// `progress` sees the phase `"copying"` with one step per snapshot and the bytes of the data
/// blobs read.
///
/// # Errors
/// [`CoreError::PutOnly`] when `src` cannot read; [`CoreError::Invalid`] for a put-only target
/// and a snapshot of another host (before anything is written); damage of the source (a blob
/// or tree that does not verify) and storage errors. What was packed before an error is indexed.
pub fn copy(
    src: &Repository,
    src_index: &Index,
    dst: &Repository,
    selected: &[(ObjectId, Snapshot)],
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport> {
    src.require_read("copy (the source)")?;
    check_hosts(dst, selected)?;
    let present = Present::load(dst)?;
    let mut c = Copier {
        src,
        index: src_index,
        dst,
        signer: None,
        known: dst.load_dedup_set()?,
        map: IdMap::default(),
        report: CopyReport::default(),
        progress,
        frames: Default::default(),
    };
    progress.phase("copying", "snapshots", selected.len() as u64);
    for (id, snap) in selected {
        let origin = snap.original.unwrap_or(*id);
        let found = present
            .originals
            .get(&origin)
            .or_else(|| present.originals.get(id))
            .copied();
        let entry = match found {
            Some(t) => skipped(*id, Some(t)),
            None if opts.copied.contains(id) => skipped(*id, None),
            None => c.copy_one(*id, snap, &present, opts.workers)?,
        };
        if let (true, Some(p)) = (entry.written, &opts.record)
            && let Err(e) = append_record(p, id)
        {
            c.report.notices.push(format!(
                "local record {}: {e} (a later copy with this key copies snapshot {} again)",
                p.display(),
                id.short()
            ));
        }
        c.report.snapshots.push(entry);
        progress.file_done(0);
    }
    Ok(c.report)
}

/// The source snapshot ids a record file lists (none when it cannot be read).
pub fn read_record(path: &std::path::Path) -> IdSet<ObjectId> {
    std::fs::read_to_string(path)
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

fn append_record(path: &std::path::Path, id: &ObjectId) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(format!("{}\n", id.to_hex()).as_bytes())
}

fn skipped(source: ObjectId, target: Option<ObjectId>) -> CopiedSnapshot {
    CopiedSnapshot {
        source,
        target,
        written: false,
    }
}

/// The state of one run.
struct Copier<'a> {
    src: &'a Repository,
    index: &'a Index,
    dst: &'a Repository,
    /// Signer of the snapshot being copied (its copies are preferred after full keys').
    signer: Option<[u8; 32]>,
    /// Blob ids the target has (or this run stored).
    known: IdSet<BlobId>,
    /// Source blob id → target blob id, at most [`MAP_LIMIT`] entries.
    map: IdMap<BlobId, BlobId>,
    report: CopyReport,
    progress: &'a dyn Progress,
    /// Decoded frames (format §7), shared by the readers of the run.
    frames: std::sync::Arc<crate::repo::frames::FrameCache>,
}

/// A tree being rewritten: its nodes still to do (reversed), the directory node whose subtree
/// is being rewritten, and the nodes done.
struct Frame {
    src: BlobId,
    todo: Vec<Node>,
    pending: Option<Node>,
    nodes: Vec<Node>,
}

impl Frame {
    fn new(src: BlobId, tree: Tree) -> Self {
        let mut todo = tree.nodes;
        todo.reverse();
        Frame {
            src,
            todo,
            pending: None,
            nodes: Vec::new(),
        }
    }
}

impl Copier<'_> {
    fn reader(&self) -> BlobReader<'_> {
        BlobReader::for_snapshot(self.src, self.index, self.signer)
            .sharing_frames(self.frames.clone())
    }

    fn remember(&mut self, from: BlobId, to: BlobId) {
        if self.map.len() >= MAP_LIMIT {
            self.map.clear();
        }
        self.map.insert(from, to);
    }

    /// Store `bytes` as a blob of `t` in the target unless it has it; its target id.
    fn store(&mut self, packer: &Packer, t: BlobType, bytes: Vec<u8>) -> Result<BlobId> {
        let id = BlobId::of(&self.dst.key().id_key, &bytes);
        if self.known.insert(id) {
            packer.add(t, id, bytes)?;
        }
        Ok(id)
    }

    /// The target id of data blob `id` of the source, copied when the target lacks it.
    fn data(&mut self, packer: &Packer, id: &BlobId) -> Result<BlobId> {
        if let Some(t) = self.map.get(id) {
            return Ok(*t);
        }
        let bytes = self.reader().load(id, BlobType::Data)?;
        self.report.bytes_read += bytes.len() as u64;
        self.progress.bytes_read(bytes.len() as u64);
        let new = self.store(packer, BlobType::Data, bytes)?;
        self.remember(*id, new);
        Ok(new)
    }

    fn load_tree(&self, id: &BlobId, depth: usize) -> Result<Tree> {
        if depth > MAX_TREE_DEPTH {
            return Err(CoreError::Damaged(format!(
                "tree {id}: {}",
                crate::repo::limits::too_deep()
            )));
        }
        self.reader().load_tree(id)
    }

    /// A tree whose nodes are all done: encoded with the target's ids and stored.
    fn finish(&mut self, packer: &Packer, f: Frame) -> Result<BlobId> {
        let bytes = Tree { nodes: f.nodes }.encode_checked()?;
        let new = self.store(packer, BlobType::Tree, bytes)?;
        self.remember(f.src, new);
        Ok(new)
    }

    /// The target id of source tree `root` and everything below it, walking with an explicit
    /// stack (deep trees need no deep call stack; depth bounded by [`MAX_TREE_DEPTH`]).
    fn tree(&mut self, packer: &Packer, root: BlobId) -> Result<BlobId> {
        if let Some(t) = self.map.get(&root) {
            return Ok(*t);
        }
        let mut stack = vec![Frame::new(root, self.load_tree(&root, 0)?)];
        loop {
            let depth = stack.len();
            let top = stack.last_mut().expect("the stack ends with its root");
            let Some(mut n) = top.todo.pop() else {
                let done = stack.pop().expect("the stack ends with its root");
                let new = self.finish(packer, done)?;
                let Some(parent) = stack.last_mut() else {
                    return Ok(new);
                };
                let mut n = parent.pending.take().expect("a subtree was being copied");
                n.subtree = Some(new);
                parent.nodes.push(n);
                continue;
            };
            match (n.kind, n.subtree) {
                (NodeKind::Dir, Some(sub)) => match self.map.get(&sub) {
                    Some(t) => {
                        n.subtree = Some(*t);
                        top.nodes.push(n);
                    }
                    None => {
                        top.pending = Some(n);
                        let tree = self.load_tree(&sub, depth)?;
                        stack.push(Frame::new(sub, tree));
                    }
                },
                _ => {
                    let content = std::mem::take(&mut n.content);
                    for b in &content {
                        let new = self.data(packer, b)?;
                        n.content.push(new);
                    }
                    let top = stack.last_mut().expect("the stack ends with its root");
                    top.nodes.push(n);
                }
            }
        }
    }

    fn packer(&self, workers: usize) -> Packer {
        let cfg = self.dst.config();
        Packer::with_version(
            self.dst.storage().clone(),
            self.dst.key().clone(),
            self.dst.signer_copy(),
            cfg.pack_size,
            cfg.compression_level,
            cfg.version,
            workers.max(1),
            false,
        )
    }

    fn count(&mut self, stats: &PackerStats) {
        self.report.data_blobs += stats.data_blobs;
        self.report.tree_blobs += stats.tree_blobs;
        self.report.bytes_written += stats.bytes_written;
        self.report.objects_written += stats.packs + stats.index_objects.len() as u64;
    }

    /// Copy one snapshot: its blobs and trees, then (once they are indexed) the snapshot.
    fn copy_one(
        &mut self,
        id: ObjectId,
        snap: &Snapshot,
        present: &Present,
        workers: usize,
    ) -> Result<CopiedSnapshot> {
        self.signer = self.src.snapshot_signer(&id).ok();
        let packer = self.packer(workers);
        let root = match self.tree(&packer, snap.tree) {
            Ok(r) => r,
            Err(e) => {
                // Index what was written, so that the next run reuses it.
                if let Ok(stats) = packer.finish() {
                    self.count(&stats);
                }
                return Err(e);
            }
        };
        let stats = packer.finish()?;
        self.count(&stats);
        if let Some(t) = present.similar(snap, &root) {
            return Ok(skipped(id, Some(t)));
        }
        let copy = Snapshot {
            tree: root,
            parent: None,
            markers: vec![],
            original: Some(snap.original.unwrap_or(id)),
            ..snap.clone()
        };
        let bytes = copy.seal(self.dst.key(), self.dst.signer())?;
        let target = self
            .dst
            .write_object(tresor_storage::Kind::Snapshot, &bytes)?;
        self.report.bytes_written += bytes.len() as u64;
        self.report.objects_written += 1;
        Ok(CopiedSnapshot {
            source: id,
            target: Some(target),
            written: true,
        })
    }
}
