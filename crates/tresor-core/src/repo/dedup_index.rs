//! The blobs a backup may deduplicate against, kept in local table files instead of memory:
//! a backup's memory is then bounded by its own host's data, not by the repository's.
//!
//! Which blobs count is the rule of [`Repository::load_dedup_set`] (format §9, §13): those of
//! this key's own index objects, and for a full key those of index objects whose signer is an
//! accepted full key. Each index object is read once per machine and key: its ids become a
//! table file ([`super::dedup_table`]) under `CACHE/<repository id>/dedup/<key>/<object id>`,
//! for any signer (a put-only key, which cannot open other writers' objects, records an empty
//! table naming their signer, so it never fetches them again). Index objects are named by the
//! hash of their bytes, so a table never goes stale; whether its signer counts is judged again
//! on every run against the current trust record. Tables of objects no longer listed (deleted
//! by prune) are removed.
//!
//! Cost of a backup: one listing of the index objects, one fetch of each object not seen
//! before, and in memory about 2 bytes per id of the tables that count (4 to 6 bytes with the
//! fanout); a lookup is a few in-memory probes per table and one `pread` per candidate.

use super::dedup_table::{self, Table};
use super::handle::Repository;
use super::index::IdSet;
use super::trust::Verdict;
use crate::error::Result;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use tresor_format::index::IndexFile;
use tresor_format::{BlobId, ObjectId};
use tresor_storage::Kind;

/// The repository's blobs this key deduplicates against, from local tables.
#[derive(Debug, Default)]
pub struct DedupIndex {
    /// Tables whose signer counts, smallest first (a host's own recent objects are small; a
    /// table's suffixes are read at its first lookup).
    tables: Vec<Table>,
    /// The table of the last hit, tried first (consecutive lookups of a backup tend to hit
    /// the same table).
    last_hit: std::cell::Cell<usize>,
    /// Ids of objects whose table could not be written (a full or read-only cache directory).
    memory: IdSet<BlobId>,
    /// Index objects fetched by this opening (those not seen before).
    pub fetched: usize,
}

impl DedupIndex {
    /// Whether the repository holds blob `id` for this key to deduplicate against.
    pub fn contains(&self, id: &BlobId) -> bool {
        if self.memory.contains(id) {
            return true;
        }
        let last = self.last_hit.get();
        if self.tables.get(last).is_some_and(|t| t.contains(id)) {
            return true;
        }
        let hit = (0..self.tables.len()).find(|&i| i != last && self.tables[i].contains(id));
        hit.inspect(|&i| self.last_hit.set(i)).is_some()
    }

    /// Number of ids that count (an id listed by two objects is counted twice).
    pub fn len(&self) -> u64 {
        self.tables.iter().map(Table::len).sum::<u64>() + self.memory.len() as u64
    }

    /// Whether no id counts.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held in memory by the tables (not counting ids kept in memory).
    pub fn memory(&self) -> usize {
        self.tables.iter().map(Table::memory).sum()
    }
}

/// The directory of this key's tables for a repository.
fn tables_dir(cache_dir: &Path, repo_id: &str, signer: &[u8; 32]) -> PathBuf {
    let key = &hex::encode(signer)[..16];
    cache_dir.join(repo_id).join("dedup").join(key)
}

impl Repository {
    /// The blobs this key may deduplicate against, through table files under `cache_dir`
    /// (the module doc says how). An index object that cannot be read or opened is skipped, as
    /// by [`Repository::load_dedup_set`] (its blobs are written again); when a table cannot be
    /// written, that object's ids are kept in memory.
    ///
    /// # Errors
    /// Storage errors on listing the index objects.
    pub fn open_dedup_index(&self, cache_dir: &Path) -> Result<DedupIndex> {
        let me = self.signer.public();
        let dir = tables_dir(cache_dir, &self.config.id, &me);
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir);
        // Only names that are object ids become file names (a hostile listing names nothing
        // outside the directory).
        let listed: Vec<(ObjectId, u64)> = self
            .storage
            .list(Kind::Index)?
            .into_iter()
            .filter_map(|(name, size)| Some((name.parse::<ObjectId>().ok()?, size)))
            .collect();
        remove_unlisted(&dir, &listed);
        let mut out = DedupIndex::default();
        let mut tables = Vec::new();
        for (id, size) in listed {
            if let Some(t) = self.usable_table(&dir.join(id.to_hex()), &id, size, &mut out) {
                tables.push((id, t));
            }
        }
        // Objects a full key's object supersedes are left out, as readers leave them out
        // (format §9; only full keys retire index objects): a storage serving an old,
        // superseded object again cannot make a backup deduplicate against pruned data.
        let retired: std::collections::HashSet<ObjectId> = tables
            .iter()
            .filter(|(id, t)| self.trust.verdict(&t.signer, id) == Verdict::Full)
            .flat_map(|(_, t)| t.supersedes.iter().copied())
            .collect();
        out.tables = tables
            .into_iter()
            .filter(|(id, _)| !retired.contains(id))
            .map(|(_, t)| t)
            .collect();
        out.tables.sort_by_key(Table::len);
        Ok(out)
    }

    /// The table of index object `id` at `path` when its ids count for this key, built from
    /// the object when missing or damaged.
    fn usable_table(
        &self,
        path: &Path,
        id: &ObjectId,
        size: u64,
        out: &mut DedupIndex,
    ) -> Option<Table> {
        if let Some(t) = Table::open(path) {
            return self.counts_for_dedup(&t.signer, id).then_some(t);
        }
        // Missing, or damaged since it was written: from the object.
        let _ = std::fs::remove_file(path);
        let signer = self.build_table(path, id, size, out)?;
        if !self.counts_for_dedup(&signer, id) {
            return None;
        }
        Table::open(path)
    }

    /// Whether ids listed by object `id` of `signer` count for this key's deduplication.
    fn counts_for_dedup(&self, signer: &[u8; 32], id: &ObjectId) -> bool {
        *signer == self.signer.public()
            || (self.key().can_read() && self.trust.verdict(signer, id) == Verdict::Full)
    }

    /// Fetch index object `id` and write its table at `path`; returns its signer. When the
    /// table cannot be written, its ids that count go to `out`'s memory set (and no file is
    /// left at `path`). `None` when the object cannot be read or opened.
    fn build_table(
        &self,
        path: &Path,
        id: &ObjectId,
        size: u64,
        out: &mut DedupIndex,
    ) -> Option<[u8; 32]> {
        // Each copy is dropped as soon as the next is made, and only ids are decoded: the
        // peak is about the sealed part, its plaintext and the ids.
        let bytes = self.fetch(Kind::Index, id, Some(size)).ok()?;
        out.fetched += 1;
        let (signer, env) = IndexFile::envelope(&bytes).ok()?;
        drop(bytes);
        // A full key reads the sealed part, which names the objects it supersedes; a put-only
        // key reads its own dedup lists only.
        let (retired, mut ids): (Vec<ObjectId>, Vec<BlobId>) = if self.key().can_read() {
            IndexFile::sealed_blob_ids(self.key(), env.sealed, &signer).ok()?
        } else if signer == self.signer.public() {
            let list = IndexFile::dedup_list(&self.signer, &env).ok()?;
            drop(env);
            (Vec::new(), list.into_iter().map(|(_, b)| b).collect())
        } else {
            (Vec::new(), Vec::new())
        };
        if dedup_table::write(path, &signer, &retired, &mut ids).is_err()
            && self.counts_for_dedup(&signer, id)
        {
            out.memory.extend(ids);
        }
        Some(signer)
    }

    /// Write the tables of the index objects a backup by this key has just written (`stats`:
    /// each object with the packs it lists, and the packs), so that the next run need not fetch
    /// them again: the same ids the objects list, under this key's own signer. A table that
    /// cannot be written is only missing (the next run builds it from the object).
    pub fn write_own_dedup_tables(
        &self,
        cache_dir: &Path,
        stats: &crate::repo::packer::PackerStats,
    ) {
        let me = self.signer.public();
        let dir = tables_dir(cache_dir, &self.config.id, &me);
        let packs: std::collections::HashMap<ObjectId, &tresor_format::index::IndexPack> =
            stats.packs_written.iter().map(|p| (p.id, p)).collect();
        for (object, listed) in &stats.index_packs {
            let mut ids: Vec<BlobId> = listed
                .iter()
                .filter_map(|p| packs.get(p))
                .flat_map(|p| p.blobs.iter().map(|b| b.id))
                .collect();
            let path = dir.join(object.to_hex());
            if Table::open(&path).is_none() {
                let _ = dedup_table::write(&path, &me, &[], &mut ids);
            }
        }
    }
}

/// Remove the tables of objects no longer listed, and temporary files of interrupted writes.
fn remove_unlisted(dir: &Path, listed: &[(ObjectId, u64)]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let names: std::collections::HashSet<String> =
        listed.iter().map(|(id, _)| id.to_hex()).collect();
    for e in entries.flatten() {
        let name = e.file_name();
        let keep = name.to_str().is_some_and(|n| names.contains(n));
        if !keep {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
