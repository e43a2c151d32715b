//! What a backup need not store again: the blobs of the repository this key deduplicates
//! against, and those this run already stored.

use crate::repo::dedup_index::DedupIndex;
use crate::repo::index::IdSet;
use tresor_format::BlobId;

/// The blobs a backup knows are stored: this run's in memory, the repository's either in
/// memory ([`crate::Repository::load_dedup_set`], without a cache directory) or in local tables
/// ([`DedupIndex`], memory bounded by the host's own data).
pub(super) struct Known {
    run: IdSet<BlobId>,
    tables: Option<DedupIndex>,
}

impl Known {
    /// The repository's blobs held in memory (this run's are added to the same set).
    pub(super) fn in_memory(set: IdSet<BlobId>) -> Self {
        Known {
            run: set,
            tables: None,
        }
    }

    /// The repository's blobs in local tables.
    pub(super) fn in_tables(tables: DedupIndex) -> Self {
        Known {
            run: IdSet::default(),
            tables: Some(tables),
        }
    }

    /// Whether blob `id` is stored (in the repository or by this run).
    pub(super) fn contains(&self, id: &BlobId) -> bool {
        self.run.contains(id) || self.tables.as_ref().is_some_and(|t| t.contains(id))
    }

    /// Record that this run stores `id`; `false` when it is stored already (nothing to do).
    pub(super) fn insert(&mut self, id: BlobId) -> bool {
        if self.tables.as_ref().is_some_and(|t| t.contains(&id)) {
            return false;
        }
        self.run.insert(id)
    }
}
