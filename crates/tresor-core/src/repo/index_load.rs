//! Loading the index: every accepted index object, then the fossils of the live prune state
//! (format §9, §16); and the blobs a writer may deduplicate against.

use super::blobs::BlobReader;
use super::handle::{Defect, Judged, Repository, Skipped};
use super::index::{IdSet, Index, Lister, entry_end};
use super::records;
use super::trust::Verdict;
use crate::error::{CoreError, Result};
use tresor_format::blob::BlobType;
use tresor_format::index::IndexFile;
use tresor_format::tree::NodeKind;
use tresor_format::{BlobId, ObjectId};
use tresor_storage::{ErrorKind, Kind};

impl Repository {
    /// Load and merge all accepted index objects. Superseded, damaged and garbage objects and
    /// those of ignored signers are left out ([`Index::damaged_objects`] and
    /// [`Index::ignored_objects`] count them; `check` names them): they never stop a reader.
    ///
    /// # Errors
    /// [`CoreError::PutOnly`]; storage errors, also of reading an index object (a transient
    /// failure must not look like a smaller index).
    pub fn load_index(&self) -> Result<Index> {
        self.load_index_into(&Index::default)
    }

    /// [`Repository::load_index`] keeping only tree blobs ([`Index::trees_only`]): to read a
    /// parent snapshot's trees in memory proportional to the repository's trees.
    ///
    /// # Errors
    /// As [`Repository::load_index`].
    pub fn load_tree_index(&self) -> Result<Index> {
        self.load_index_into(&Index::trees_only)
    }

    /// The index a reader of one snapshot (or a directory of it) needs: every tree located,
    /// and of the data blobs only those named by the trees below `root` ([`Index::only`]),
    /// read with the snapshot signer's preference (`signer`, as
    /// [`BlobReader::for_snapshot`]). Costs reading every index object twice (once for the
    /// trees, once for the data blobs), for memory bounded by the repository's trees and the
    /// snapshot's own data rather than by all the data of the repository. Trees that do not
    /// load are skipped here (the reader reports them where it meets them).
    ///
    /// # Errors
    /// As [`Repository::load_index`].
    pub fn load_index_below(&self, root: &BlobId, signer: Option<[u8; 32]>) -> Result<Index> {
        let trees = self.load_tree_index()?;
        let wanted = data_blobs_below(&BlobReader::for_snapshot(self, &trees, signer), root);
        drop(trees);
        let wanted = std::sync::Arc::new(wanted);
        self.load_index_into(&|| Index::only(wanted.clone()))
    }

    /// [`Repository::load_index_lenient_into`], failing on an object that could not be read.
    fn load_index_into(&self, empty: &dyn Fn() -> Index) -> Result<Index> {
        let (index, skipped) = self.load_index_lenient_into(empty)?;
        match skipped.into_iter().find(|s| s.defect == Defect::Unreadable) {
            Some(s) => Err(s.error),
            None => Ok(index),
        }
    }

    /// Load and merge all accepted index objects; damaged and ignored ones are returned apart.
    /// Objects of full keys are merged first, so their blob locations are preferred.
    ///
    /// # Errors
    /// [`CoreError::PutOnly`], storage errors on listing.
    pub fn load_index_lenient(&self) -> Result<(Index, Vec<Skipped>)> {
        self.load_index_lenient_into(&Index::default)
    }

    /// [`Repository::load_index_lenient`] into a lean index ([`Index::lean`], sealed): trees
    /// located, data blobs known by id only. While loading, each index object's data entries
    /// become ids as it is read (one entry per pack is kept, the one that reaches furthest, for
    /// [`Index::listing_end`]), so that memory holds 32 bytes per data blob, not the decoded
    /// objects. What `check` without reading data uses.
    ///
    /// # Errors
    /// As [`Repository::load_index_lenient`].
    pub fn load_lean_index_lenient(&self) -> Result<(Index, Vec<Skipped>)> {
        self.load_index_lenient_into(&Index::lean)
    }

    fn load_index_lenient_into(&self, empty: &dyn Fn() -> Index) -> Result<(Index, Vec<Skipped>)> {
        self.require_read("reading the index")?;
        // A concurrent prune replaces index objects and prune records (format §16): when a
        // listed object vanishes before it is read, or the prune records change meanwhile, the
        // view may be torn, so load again.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let records = records::record_names(self)?;
            let (index, skipped) = self.load_index_once(empty())?;
            let raced = skipped.iter().any(
                |s| matches!(&s.error, CoreError::Storage(e) if e.kind == ErrorKind::NotFound),
            ) || records::record_names(self)? != records;
            if !raced || attempt >= 8 {
                return Ok((index, skipped));
            }
            std::thread::sleep(std::time::Duration::from_millis(10 * attempt));
        }
    }

    /// Read, open and judge one index object (`listed`: its size from a listing); returns who
    /// listed its packs.
    pub(crate) fn open_index(
        &self,
        id: &ObjectId,
        listed: Option<u64>,
    ) -> Judged<(Lister, IndexFile)> {
        let bytes = self.fetch(Kind::Index, id, listed)?;
        let (signer, f) = IndexFile::open(self.key(), &bytes).map_err(|e| {
            (
                Defect::of_format(&e),
                CoreError::Damaged(format!("index {id}: {e}")),
            )
        })?;
        Ok(match self.judge("index", id, &signer)? {
            Verdict::Full => (Lister::Full, f),
            _ => (Lister::PutOnly(signer), f),
        })
    }

    fn load_index_once(&self, mut index: Index) -> Result<(Index, Vec<Skipped>)> {
        let mut files = Vec::new();
        let mut skipped = Vec::new();
        // A lean index's data ids, per object (range in `staged`) until superseding is known.
        let mut staged: Vec<BlobId> = Vec::new();
        let mut ranges: Vec<(ObjectId, std::ops::Range<usize>)> = Vec::new();
        for (name, size) in self.storage.list(Kind::Index)? {
            let id: ObjectId = name.parse()?;
            match self.open_index(&id, Some(size)) {
                Ok((lister, mut f)) => {
                    // Held until all are read: keep only what the index will.
                    if index.is_lean() {
                        let start = staged.len();
                        stage_data_ids(&mut f, &mut staged);
                        ranges.push((id, start..staged.len()));
                    } else if !index.locates_all() {
                        for p in &mut f.packs {
                            p.blobs.retain(|b| index.locates(b.blob_type, &b.id));
                            p.blobs.shrink_to_fit();
                        }
                    }
                    files.push((lister != Lister::Full, id, lister, f));
                }
                Err((defect, error)) => skipped.push(Skipped { id, error, defect }),
            }
        }
        files.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        // Only full keys may retire index objects (prune, repair): a put-only key could otherwise
        // hide other writers' data.
        let superseded: std::collections::HashSet<ObjectId> = files
            .iter()
            .filter(|(not_full, ..)| !not_full)
            .flat_map(|(.., f)| f.supersedes.iter().copied())
            .collect();
        for (_, id, lister, f) in files {
            if !superseded.contains(&id) {
                index.add_file(id, lister, &f);
            }
        }
        // Compacted in place: the staged ids of superseded objects are dropped.
        let mut kept = 0;
        for (id, range) in ranges {
            if !superseded.contains(&id) {
                let n = range.len();
                staged.copy_within(range, kept);
                kept += n;
            }
        }
        staged.truncate(kept);
        index.add_data_ids(staged);
        // Packs condemned by prune stay readable until they are deleted (format §16).
        records::merge_fossils(self, &mut index, &mut skipped)?;
        index.seal();
        index.ignored_objects = skipped
            .iter()
            .filter(|s| s.defect == Defect::Ignored)
            .count();
        index.damaged_objects = skipped
            .iter()
            .filter(|s| matches!(s.defect, Defect::Garbage | Defect::Damaged))
            .count();
        Ok((index, skipped))
    }

    /// The blobs a writer may deduplicate against (format §9, §13): those in the dedup lists of
    /// this key's own index objects (sealed for their writer alone), and — for a full key —
    /// those of the index objects of full keys, whose sealed index it opens. A put-only key
    /// sees its own lists only: no other writer's blob ids.
    ///
    /// # Errors
    /// Storage errors on listing. Unreadable index objects are skipped (their blobs are written
    /// again).
    pub fn load_dedup_set(&self) -> Result<IdSet<BlobId>> {
        let me = self.signer.public();
        let full = self.key().can_read();
        let mut lists: Vec<(ObjectId, Vec<BlobId>)> = Vec::new();
        let mut retired = std::collections::HashSet::new();
        for (name, size) in self.storage.list(Kind::Index)? {
            let id: ObjectId = name.parse()?;
            let Ok(bytes) = self.fetch(Kind::Index, &id, Some(size)) else {
                continue;
            };
            let Ok((signer, env)) = IndexFile::envelope(&bytes) else {
                continue;
            };
            let verdict = self.trust.verdict(&signer, &id);
            if full && (signer == me || verdict == Verdict::Full) {
                // As readers: objects a full key's object supersedes are left out (format §9).
                if let Ok((sup, ids)) = IndexFile::sealed_blob_ids(self.key(), env.sealed, &signer)
                {
                    if verdict == Verdict::Full {
                        retired.extend(sup);
                    }
                    lists.push((id, ids));
                }
            } else if signer == me
                && let Ok(list) = IndexFile::dedup_list(&self.signer, &env)
            {
                lists.push((id, list.into_iter().map(|(_, b)| b).collect()));
            }
        }
        let mut set = IdSet::default();
        for (id, ids) in lists {
            if !retired.contains(&id) {
                set.extend(ids);
            }
        }
        Ok(set)
    }
}

/// The data blobs the trees below `root` name, read through `reader` (each tree once; trees
/// that do not load are skipped, and nesting is bounded by the number of distinct trees).
fn data_blobs_below(reader: &BlobReader<'_>, root: &BlobId) -> IdSet<BlobId> {
    let mut wanted = IdSet::default();
    let mut seen: IdSet<BlobId> = IdSet::default();
    let mut stack = vec![*root];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Ok(tree) = reader.load_tree(&id) else {
            continue;
        };
        for n in tree.nodes {
            match (n.kind, n.subtree) {
                (NodeKind::Dir, Some(sub)) => stack.push(sub),
                _ => wanted.extend(n.content),
            }
        }
    }
    wanted
}

/// Move the data blob ids of `f` to `staged`, keeping per pack its tree entries and the data
/// entry that reaches furthest into the pack (so that [`Index::listing_end`] stays exact).
fn stage_data_ids(f: &mut IndexFile, staged: &mut Vec<BlobId>) {
    for p in &mut f.packs {
        let is_data = |b: &tresor_format::pack::BlobEntry| b.blob_type != BlobType::Tree;
        let furthest = p
            .blobs
            .iter()
            .filter(|b| is_data(b))
            .max_by_key(|b| entry_end(b))
            .cloned();
        staged.extend(p.blobs.iter().filter(|b| is_data(b)).map(|b| b.id));
        p.blobs.retain(|b| !is_data(b));
        p.blobs.extend(furthest);
        p.blobs.shrink_to_fit();
    }
}
