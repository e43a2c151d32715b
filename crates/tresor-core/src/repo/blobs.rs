//! Reading blobs back: index lookup, range read, decrypt, decompress, verify id.
//!
//! A blob may be stored more than once (two hosts wrote it, or a forger uploaded a copy under
//! someone else's id). Copies are tried by trust (format §9): those a full key listed first,
//! then those listed by the signer of the snapshot being read ([`BlobReader::for_snapshot`]),
//! then the others, each group in index order. Any failure of a copy — a storage error, a short
//! read, failed authentication, a malformed body, another id, another length than listed — makes
//! the reader try the next one; only when no copy is intact are all failures reported.

use crate::error::{CoreError, Damage, Result};
use crate::repo::Repository;
use crate::repo::frames::FrameCache;
use crate::repo::index::{BlobLocation, Index, Lister};
use std::sync::Arc;
use tresor_format::BlobId;
use tresor_format::blob::{self, BlobType};
use tresor_format::tree::{EncodedTree, Tree};
use tresor_storage::Kind;

/// Reads blobs of one repository through its index.
pub struct BlobReader<'a> {
    repo: &'a Repository,
    index: &'a Index,
    /// Signer of the snapshot being read: its own listings come right after full keys'.
    signer: Option<[u8; 32]>,
    /// Recently decoded frames (format §7): the members of one frame cost one decompression.
    frames: Arc<FrameCache>,
}

impl<'a> BlobReader<'a> {
    /// A reader over `repo` using `index`, for no snapshot in particular: copies listed by full
    /// keys first, then the others.
    pub fn new(repo: &'a Repository, index: &'a Index) -> Self {
        Self::for_snapshot(repo, index, None)
    }

    /// A reader for the snapshot signed by `signer` (its signing public key, as
    /// [`Repository::snapshot_signer`] gives it): copies listed by full keys first, then those
    /// listed by `signer`, then the others.
    pub fn for_snapshot(repo: &'a Repository, index: &'a Index, signer: Option<[u8; 32]>) -> Self {
        BlobReader {
            repo,
            index,
            signer,
            frames: Arc::default(),
        }
    }

    /// This reader, keeping its decoded frames in `frames` (shared with other readers, such
    /// as the short-lived readers of one mount or copy).
    pub fn sharing_frames(mut self, frames: Arc<FrameCache>) -> Self {
        self.frames = frames;
        self
    }

    /// The repository read from.
    pub fn repo(&self) -> &'a Repository {
        self.repo
    }

    /// The index in use.
    pub fn index(&self) -> &'a Index {
        self.index
    }

    /// The snapshot signer whose copies are preferred after full keys', if any.
    pub fn signer(&self) -> Option<[u8; 32]> {
        self.signer
    }

    /// "blob … is not in the index", saying when ignored or damaged index objects might list it.
    pub fn not_indexed(&self, id: &BlobId) -> String {
        let mut why = Vec::new();
        if self.index.ignored_objects > 0 {
            why.push(format!(
                "{} index objects of unknown or revoked signers are ignored",
                self.index.ignored_objects
            ));
        }
        if self.index.damaged_objects > 0 {
            why.push(format!(
                "{} damaged index objects are skipped",
                self.index.damaged_objects
            ));
        }
        match why.is_empty() {
            true => format!("blob {id} is not in the index"),
            false => format!("blob {id} is not in the index ({})", why.join("; ")),
        }
    }

    /// The error for a blob that is not indexed: [`Damage::NotIndexed`] with
    /// [`BlobReader::not_indexed`] as its message.
    pub fn not_indexed_error(&self, id: &BlobId) -> CoreError {
        let damage = Damage::NotIndexed {
            ignored: self.index.ignored_objects,
            damaged: self.index.damaged_objects,
        };
        CoreError::damage(damage, self.not_indexed(id))
    }

    /// How much this reader trusts a copy: 0 (full key), 1 (the snapshot's signer), 2 (others).
    fn rank(&self, loc: &BlobLocation) -> u8 {
        match self.index.pack(loc.pack).lister {
            Lister::Full => 0,
            Lister::PutOnly(s) if Some(s) == self.signer => 1,
            _ => 2,
        }
    }

    /// Every location of blob `id`, the preferred first (see the module documentation).
    pub fn candidates(&self, id: &BlobId) -> Vec<&'a BlobLocation> {
        let mut v: Vec<&BlobLocation> = self.index.locations(id).collect();
        if v.len() > 1 {
            v.sort_by_key(|l| self.rank(l)); // stable: index order within a rank
        }
        v
    }

    /// The preferred location of blob `id` (the copy [`BlobReader::load`] tries first), or
    /// `None` when it is not indexed. Its `raw_length` is the length readers position by; a
    /// copy whose plaintext has another length is not used.
    pub fn location(&self, id: &BlobId) -> Option<&'a BlobLocation> {
        self.index.locations(id).min_by_key(|l| self.rank(l))
    }

    /// Load and verify a blob's plaintext, trying its copies in order of preference. A copy
    /// whose plaintext hashes to `id` but whose listing gives another length is returned only
    /// when no copy matches its listing (callers that position data by listed lengths check
    /// the length themselves).
    ///
    /// # Errors
    /// [`Damage::NotIndexed`] when the blob is not indexed; [`CoreError::Damaged`] when no copy
    /// is intact (naming every copy and what is wrong with it); a storage error (not damage)
    /// when every copy failed with one.
    pub fn load(&self, id: &BlobId, blob_type: BlobType) -> Result<Vec<u8>> {
        self.repo.require_read("reading data")?;
        let candidates = self.candidates(id);
        if candidates.is_empty() {
            return Err(self.not_indexed_error(id));
        }
        let mut failures = Vec::new();
        // A copy that hashes to `id` but has another length than its listing says is authentic
        // content under a wrong index entry: used only when no copy matches its listing.
        let mut authentic = None;
        for loc in candidates {
            match self.load_copy(id, blob_type, loc) {
                Ok(plain) if plain.len() as u64 == u64::from(loc.raw_length) => return Ok(plain),
                Ok(plain) => {
                    failures.push(self.length_mismatch(id, loc, plain.len()));
                    authentic.get_or_insert(plain);
                }
                Err(e) => failures.push(e),
            }
        }
        if let Some(plain) = authentic {
            return Ok(plain);
        }
        if failures.len() == 1 || failures.iter().all(|e| matches!(e, CoreError::Storage(_))) {
            return Err(failures.swap_remove(0));
        }
        let all: Vec<String> = failures
            .iter()
            .map(|e| match e {
                CoreError::Damaged(m) => m.clone(),
                e => e.to_string(),
            })
            .collect();
        Err(CoreError::Damaged(format!(
            "no intact copy of blob {id} among {}: {}",
            all.len(),
            all.join("; ")
        )))
    }

    /// Load and verify the copy of blob `id` stored at `loc` (one of its locations in the
    /// index: [`Index::get`] or [`Index::alternates`]). The plaintext must hash to `id` and be
    /// `loc.raw_length` bytes long.
    ///
    /// # Errors
    /// [`CoreError::Damaged`] when this copy is indexed with another type or an impossible
    /// length, its pack is missing or short, or its bytes fail authentication, decoding, the id
    /// or the length check; other storage errors as they are.
    pub fn load_at(&self, id: &BlobId, blob_type: BlobType, loc: &BlobLocation) -> Result<Vec<u8>> {
        let plain = self.load_copy(id, blob_type, loc)?;
        if plain.len() as u64 != u64::from(loc.raw_length) {
            return Err(self.length_mismatch(id, loc, plain.len()));
        }
        Ok(plain)
    }

    /// The damage of a copy whose verified plaintext is `len` bytes, not its listed length.
    fn length_mismatch(&self, id: &BlobId, loc: &BlobLocation, len: usize) -> CoreError {
        let pack = self.index.pack(loc.pack);
        CoreError::Damaged(format!(
            "blob {id} in pack {}: {len} bytes, but indexed as {} (listed in index {})",
            pack.id,
            loc.raw_length,
            pack.index_id.short()
        ))
    }

    /// [`BlobReader::load_at`] without the length check: the plaintext hashes to `id`.
    fn load_copy(&self, id: &BlobId, blob_type: BlobType, loc: &BlobLocation) -> Result<Vec<u8>> {
        let pack = self.index.pack(loc.pack);
        let damaged = |e: &dyn std::fmt::Display| {
            CoreError::Damaged(format!("blob {id} in pack {}: {e}", pack.id))
        };
        if loc.blob_type != blob_type {
            return Err(damaged(&format!(
                "indexed as {:?}, expected {blob_type:?}",
                loc.blob_type
            )));
        }
        let max = match loc.member() {
            Some(_) => tresor_format::blob::stored_len(tresor_format::blob::MAX_FRAME_SIZE) as u64,
            None => crate::repo::limits::max_stored_blob(blob_type, self.repo.config()),
        };
        if u64::from(loc.length) > max {
            return Err(damaged(&format!(
                "indexed with {} stored bytes, more than a blob can have ({max})",
                loc.length
            )));
        }
        let read = || {
            let name = pack.id.to_hex();
            let len = u64::from(loc.length);
            let storage = self.repo.storage();
            storage
                .read_range(Kind::Pack, &name, loc.offset, len)
                .map_err(|e| match CoreError::from(e) {
                    e if e.is_damage() => damaged(&e),
                    e => e,
                })
        };
        let id_key = &self.repo.key().id_key;
        let Some(member) = loc.member() else {
            return blob::decode_owned(&pack.data_key, id_key, blob_type, id, read()?)
                .map_err(|e| damaged(&e));
        };
        let key = (loc.pack, loc.offset, loc.length, blob_type.byte());
        let frame = self.frames.get_or_load(key, || {
            blob::decode_frame_owned(&pack.data_key, blob_type, read()?).map_err(|e| damaged(&e))
        })?;
        let raw = u64::from(loc.raw_length);
        match blob::frame_member(&frame, id_key, id, member, raw) {
            Ok(plain) => Ok(plain.to_vec()),
            Err(e) => self
                .member_by_header(id, loc, member, &frame)
                .ok_or_else(|| damaged(&e)),
        }
    }

    /// A frame member whose listed length does not check out, located by its pack's own header
    /// instead (two range reads): the writer's entry for the same id, frame and member offset.
    /// Its plaintext when that entry's length gives bytes that hash to `id` — a listing's
    /// lengths are only a writer's claim, the frame's bytes and the id decide (the caller then
    /// sees a verified blob of another length than listed, as for a blob stored alone).
    fn member_by_header(
        &self,
        id: &BlobId,
        loc: &BlobLocation,
        member: u64,
        frame: &[u8],
    ) -> Option<Vec<u8>> {
        let pack = self.index.pack(loc.pack);
        let size = self
            .repo
            .storage()
            .size(Kind::Pack, &pack.id.to_hex())
            .ok()?;
        let header = super::packs::read_pack_header(self.repo, &pack.id, size).ok()?;
        let id_key = &self.repo.key().id_key;
        header
            .blobs
            .iter()
            .filter(|b| b.id == *id && b.offset == loc.offset && b.member == Some(member))
            .find_map(|b| blob::frame_member(frame, id_key, id, member, b.raw_length).ok())
            .map(<[u8]>::to_vec)
    }

    /// Load and decode a tree.
    ///
    /// # Errors
    /// As [`BlobReader::load`], plus a malformed tree.
    pub fn load_tree(&self, id: &BlobId) -> Result<Tree> {
        let bytes = self.load(id, BlobType::Tree)?;
        Tree::decode(&bytes).map_err(|e| CoreError::Damaged(format!("tree {id}: {e}")))
    }

    /// Load a tree and validate it whole, keeping it encoded ([`EncodedTree`]: its nodes are
    /// decoded one at a time when asked for).
    ///
    /// # Errors
    /// As [`BlobReader::load_tree`].
    pub fn load_encoded_tree(&self, id: &BlobId) -> Result<EncodedTree<bytes::Bytes>> {
        let bytes = self.load(id, BlobType::Tree)?;
        EncodedTree::decode(bytes.into()).map_err(|e| CoreError::Damaged(format!("tree {id}: {e}")))
    }
}
