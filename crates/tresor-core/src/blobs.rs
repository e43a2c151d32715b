//! Reading blobs back: index lookup, range read, decrypt, decompress, verify id.

use crate::error::{CoreError, Result};
use crate::index::{BlobLocation, Index};
use crate::repository::Repository;
use tresor_format::BlobId;
use tresor_format::blob::{self, BlobType};
use tresor_format::tree::Tree;
use tresor_storage::Kind;

/// Reads blobs of one repository through its index.
pub struct BlobReader<'a> {
    repo: &'a Repository,
    index: &'a Index,
}

impl<'a> BlobReader<'a> {
    /// A reader over `repo` using `index`.
    pub fn new(repo: &'a Repository, index: &'a Index) -> Self {
        BlobReader { repo, index }
    }

    /// The repository read from.
    pub fn repo(&self) -> &'a Repository {
        self.repo
    }

    /// The index in use.
    pub fn index(&self) -> &'a Index {
        self.index
    }

    /// "blob … is not in the index", saying when ignored index objects might list it.
    pub fn not_indexed(&self, id: &BlobId) -> String {
        match self.index.ignored_objects {
            0 => format!("blob {id} is not in the index"),
            n => format!(
                "blob {id} is not in the index ({n} index objects of unknown or revoked signers \
                 are ignored: see `tresor key signers`)"
            ),
        }
    }

    /// Load and verify a blob's plaintext.
    ///
    /// # Errors
    /// [`CoreError::Damaged`] when the blob is not indexed, its pack is missing or short, or the
    /// bytes fail authentication or do not hash to `id`.
    pub fn load(&self, id: &BlobId, blob_type: BlobType) -> Result<Vec<u8>> {
        self.repo.require_read("reading data")?;
        let loc = self
            .index
            .get(id)
            .ok_or_else(|| CoreError::Damaged(self.not_indexed(id)))?;
        let first = self.load_at(id, blob_type, loc);
        if first.is_ok() {
            return first;
        }
        // A blob stored twice (e.g. by two hosts) may be intact elsewhere.
        for alt in self.index.alternates(id) {
            if let Ok(plain) = self.load_at(id, blob_type, alt) {
                return Ok(plain);
            }
        }
        first
    }

    /// Load and verify the copy of blob `id` stored at `loc` (one of its locations in the
    /// index: [`Index::get`] or [`Index::alternates`]).
    ///
    /// # Errors
    /// As [`BlobReader::load`], for this copy only.
    pub fn load_at(&self, id: &BlobId, blob_type: BlobType, loc: &BlobLocation) -> Result<Vec<u8>> {
        if loc.blob_type != blob_type {
            return Err(CoreError::Damaged(format!(
                "blob {id} is indexed as {:?}, expected {blob_type:?}",
                loc.blob_type
            )));
        }
        let pack = self.index.pack(loc.pack);
        let stored = self
            .repo
            .storage()
            .read_range(
                Kind::Pack,
                &pack.id.to_hex(),
                loc.offset,
                u64::from(loc.length),
            )
            .map_err(|e| CoreError::Damaged(format!("blob {id} in pack {}: {e}", pack.id)))?;
        blob::decode_owned(
            &pack.data_key,
            &self.repo.key().id_key,
            blob_type,
            id,
            stored,
        )
        .map_err(|e| CoreError::Damaged(format!("blob {id} in pack {}: {e}", pack.id)))
    }

    /// Load and decode a tree.
    ///
    /// # Errors
    /// As [`BlobReader::load`], plus a malformed tree.
    pub fn load_tree(&self, id: &BlobId) -> Result<Tree> {
        let bytes = self.load(id, BlobType::Tree)?;
        Tree::decode(&bytes).map_err(|e| CoreError::Damaged(format!("tree {id}: {e}")))
    }
}
