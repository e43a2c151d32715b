//! The in-memory master index: blob id → pack, offset, length.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use tresor_format::blob::BlobType;
use tresor_format::crypto::DataKey;
use tresor_format::index::{IndexFile, IndexPack};
use tresor_format::pack::BlobEntry;
use tresor_format::{BlobId, ObjectId};

/// Hasher for ids that are already uniformly random (BLAKE3 outputs): uses their first 8 bytes.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
    }
}

/// A `HashMap` keyed by ids.
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
/// A `HashSet` of ids.
pub type IdSet<K> = std::collections::HashSet<K, BuildHasherDefault<IdHasher>>;

/// Where a blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    /// Position of the pack in [`Index::packs`].
    pub pack: u32,
    /// Data or tree.
    pub blob_type: BlobType,
    /// Offset in the pack, bytes.
    pub offset: u64,
    /// Stored length, bytes.
    pub length: u32,
    /// Plaintext length, bytes.
    pub raw_length: u32,
    /// For a member of a frame (format §7, flag 2): offset of its plaintext in the frame's
    /// plaintext, bytes; [`NOT_A_MEMBER`] for a blob stored alone. `offset` and `length` are
    /// then the frame's. Use [`BlobLocation::member`].
    pub member_at: u32,
}

/// [`BlobLocation::member_at`] of a blob stored alone.
pub const NOT_A_MEMBER: u32 = u32::MAX;

impl BlobLocation {
    /// The offset of this member's plaintext in its frame, or `None` for a blob stored alone.
    /// An entry's offset of `u32::MAX - 1` or more is kept as `u32::MAX - 1`: beyond every
    /// frame (at most 16 MiB), so reading it is damage.
    pub fn member(&self) -> Option<u64> {
        (self.member_at != NOT_A_MEMBER).then_some(u64::from(self.member_at))
    }

    /// [`BlobLocation::member_at`] for an entry's `member`.
    pub fn member_of(member: Option<u64>) -> u32 {
        match member {
            None => NOT_A_MEMBER,
            Some(m) => u32::try_from(m)
                .unwrap_or(NOT_A_MEMBER - 1)
                .min(NOT_A_MEMBER - 1),
        }
    }
}

/// Who vouches for a listing of a pack: the class of the signer of the index object (or prune
/// record) that listed it. Readers prefer copies by this (format §9): a full key's listings,
/// then those of the signer of the snapshot being read, then the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lister {
    /// An index object of a full key, or a prune fossil whose entries come from one or were
    /// verified blob by blob.
    Full,
    /// An index object of the put-only key with this signing public key.
    PutOnly([u8; 32]),
    /// A prune fossil whose entries were not verified (they came from a put-only key).
    Unverified,
}

/// A pack known to the index, as one index object listed it.
#[derive(Debug, Clone)]
pub struct PackInfo {
    /// Pack object id.
    pub id: ObjectId,
    /// The pack's data key.
    pub data_key: DataKey,
    /// Index object (or prune record) that listed it.
    pub index_id: ObjectId,
    /// Who signed that listing.
    pub lister: Lister,
}

/// All index objects merged. A pack listed by several index objects with the same data key is
/// known once (by the first listing: full keys' objects are merged first); listings of one pack
/// with different data keys (a forger's listing of another writer's pack) are kept apart, each
/// with its own entries, so that a false listing cannot hide the true one.
#[derive(Debug, Default)]
pub struct Index {
    blobs: IdMap<BlobId, BlobLocation>,
    /// Further locations of blobs stored more than once (tried when the first one fails).
    alternates: IdMap<BlobId, Vec<BlobLocation>>,
    packs: Vec<PackInfo>,
    pack_pos: IdMap<ObjectId, u32>,
    /// Further listings of a pack with other data keys (positions in `packs`).
    other_listings: IdMap<ObjectId, Vec<u32>>,
    index_ids: Vec<ObjectId>,
    /// Which data blobs are kept, and how (tree blobs always are, located).
    data: DataBlobs,
    /// Per listing (position in `packs`): where its furthest blob ends in the pack, bytes.
    listing_end: Vec<u64>,
    /// Index objects left out because readers ignore their signer (unknown or revoked key):
    /// a blob missing from this index may be listed there (messages say so).
    pub ignored_objects: usize,
    /// Index objects and prune records left out as damaged or garbage (`check` names them).
    pub damaged_objects: usize,
}

/// Which data blobs an [`Index`] keeps, and how.
#[derive(Debug, Default)]
enum DataBlobs {
    /// Every one, located.
    #[default]
    All,
    /// None ([`Index::trees_only`]).
    Skipped,
    /// Their ids only, apart from the located blobs: sorted and deduplicated by
    /// [`Index::seal`] ([`Index::lean`]).
    Ids(Vec<BlobId>),
    /// Those in the set, located ([`Index::only`]).
    Only(Arc<IdSet<BlobId>>),
}

/// Where the blob of entry `b` ends in its pack: offset + stored length, bytes (a length beyond
/// 32 bits counts as `u32::MAX`, as [`BlobLocation::length`] keeps it).
pub fn entry_end(b: &BlobEntry) -> u64 {
    let length = u64::from(u32::try_from(b.length).unwrap_or(u32::MAX));
    b.offset.saturating_add(length)
}

impl Index {
    /// An empty index that keeps only tree blobs of the packs added to it (data blobs are
    /// skipped): what reading a parent snapshot's trees needs, in memory proportional to the
    /// repository's trees, not its data.
    pub fn trees_only() -> Index {
        Index {
            data: DataBlobs::Skipped,
            ..Index::default()
        }
    }

    /// An empty index that keeps every tree blob and of the data blobs only those in `wanted`:
    /// what reading one snapshot needs ([`crate::Repository::load_index_below`]), in memory
    /// proportional to the repository's trees and that snapshot's data.
    pub fn only(wanted: Arc<IdSet<BlobId>>) -> Index {
        Index {
            data: DataBlobs::Only(wanted),
            ..Index::default()
        }
    }

    /// Whether this index locates a blob of this type and id when a pack lists it (trees
    /// always; data blobs unless the index is trees-only or lean, or the blob is not wanted).
    pub fn locates(&self, blob_type: BlobType, id: &BlobId) -> bool {
        blob_type == BlobType::Tree
            || match &self.data {
                DataBlobs::All => true,
                DataBlobs::Only(wanted) => wanted.contains(id),
                DataBlobs::Skipped | DataBlobs::Ids(_) => false,
            }
    }

    /// Whether every blob a pack lists is kept with its location (no filter of any kind).
    pub fn locates_all(&self) -> bool {
        matches!(self.data, DataBlobs::All)
    }

    /// An empty index that locates tree blobs only and keeps the ids of data blobs apart, 32
    /// bytes each in one sorted vector ([`Index::contains`] answers for them, [`Index::get`]
    /// does not): what `check` without reading data needs — every tree read, every data blob
    /// known to be indexed — in about a third of a full index's memory (at 20 million blobs,
    /// 640 MB instead of 3.5 GB). Call [`Index::seal`] after the last pack is added.
    pub fn lean() -> Index {
        Index {
            data: DataBlobs::Ids(Vec::new()),
            ..Index::default()
        }
    }

    /// Whether data blob ids are kept apart ([`Index::lean`]).
    pub fn is_lean(&self) -> bool {
        matches!(self.data, DataBlobs::Ids(_))
    }

    /// Add data blob ids to a lean index (no-op otherwise); [`Index::seal`] afterwards.
    pub fn add_data_ids(&mut self, mut ids: Vec<BlobId>) {
        if let DataBlobs::Ids(v) = &mut self.data {
            ids.append(v);
            *v = ids;
        }
    }

    /// Sort and deduplicate a lean index's data blob ids (in place): needed before
    /// [`Index::contains`] answers for them after packs were added.
    pub fn seal(&mut self) {
        if let DataBlobs::Ids(v) = &mut self.data {
            v.sort_unstable();
            v.dedup();
            v.shrink_to_fit();
        }
    }

    /// Where the furthest blob listing `pos` places in its pack ends, bytes (offset + stored
    /// length; lengths beyond 32 bits count as `u32::MAX`): the pack is at least this long plus
    /// its trailer.
    pub fn listing_end(&self, pos: u32) -> u64 {
        self.listing_end[pos as usize]
    }

    /// Add every pack of an index object signed by `lister`.
    pub fn add_file(&mut self, index_id: ObjectId, lister: Lister, f: &IndexFile) {
        self.index_ids.push(index_id);
        for p in &f.packs {
            self.add_pack(index_id, lister, p);
        }
    }

    /// Add one pack as listed by `index_id` (signed by `lister`). A pack already known with the
    /// same data key is skipped; with another data key it is added as a further listing. A blob
    /// already known keeps its first location; later ones are alternates. Lengths that do not
    /// fit 32 bits are kept as `u32::MAX` (no stored blob is that long: readers refuse it).
    pub fn add_pack(&mut self, index_id: ObjectId, lister: Lister, p: &IndexPack) {
        let pos = self.packs.len() as u32;
        if let Some(&first) = self.pack_pos.get(&p.id) {
            let others = self.other_listings.get(&p.id).map(Vec::as_slice);
            if std::iter::once(&first)
                .chain(others.unwrap_or_default())
                .any(|&i| self.packs[i as usize].data_key.0 == p.data_key.0)
            {
                return;
            }
            self.other_listings.entry(p.id).or_default().push(pos);
        } else {
            self.pack_pos.insert(p.id, pos);
        }
        self.packs.push(PackInfo {
            id: p.id,
            data_key: p.data_key.clone(),
            index_id,
            lister,
        });
        self.listing_end
            .push(p.blobs.iter().map(entry_end).max().unwrap_or(0));
        for b in &p.blobs {
            if b.blob_type != BlobType::Tree
                && let DataBlobs::Ids(v) = &mut self.data
            {
                v.push(b.id);
            }
            if !self.locates(b.blob_type, &b.id) {
                continue;
            }
            let loc = BlobLocation {
                pack: pos,
                blob_type: b.blob_type,
                offset: b.offset,
                length: u32::try_from(b.length).unwrap_or(u32::MAX),
                raw_length: u32::try_from(b.raw_length).unwrap_or(u32::MAX),
                member_at: BlobLocation::member_of(b.member),
            };
            match self.blobs.entry(b.id) {
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(loc);
                }
                std::collections::hash_map::Entry::Occupied(_) => {
                    self.alternates.entry(b.id).or_default().push(loc)
                }
            }
        }
    }

    /// Other locations of a blob stored more than once.
    pub fn alternates(&self, id: &BlobId) -> &[BlobLocation] {
        self.alternates.get(id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every location of a blob, first one first (empty when it is not indexed).
    pub fn locations(&self, id: &BlobId) -> impl Iterator<Item = &BlobLocation> {
        self.blobs
            .get(id)
            .into_iter()
            .chain(self.alternates(id).iter())
    }

    /// Location of a blob.
    pub fn get(&self, id: &BlobId) -> Option<&BlobLocation> {
        self.blobs.get(id)
    }

    /// Whether the blob is indexed (in a lean index: a data blob's id, once sealed).
    pub fn contains(&self, id: &BlobId) -> bool {
        self.blobs.contains_key(id)
            || matches!(&self.data, DataBlobs::Ids(v) if v.binary_search(id).is_ok())
    }

    /// The pack at a position.
    pub fn pack(&self, pos: u32) -> &PackInfo {
        &self.packs[pos as usize]
    }

    /// All packs.
    pub fn packs(&self) -> &[PackInfo] {
        &self.packs
    }

    /// Position of a pack's first listing by id.
    pub fn pack_position(&self, id: &ObjectId) -> Option<u32> {
        self.pack_pos.get(id).copied()
    }

    /// All located blobs (not a lean index's data blobs).
    pub fn blobs(&self) -> impl Iterator<Item = (&BlobId, &BlobLocation)> {
        self.blobs.iter()
    }

    /// Every stored copy of every located blob, alternates included (not a lean index's data
    /// blobs).
    pub fn all_locations(&self) -> impl Iterator<Item = (&BlobId, &BlobLocation)> {
        self.blobs.iter().chain(
            self.alternates
                .iter()
                .flat_map(|(id, v)| v.iter().map(move |l| (id, l))),
        )
    }

    /// Number of blobs (in a sealed lean index, an id listed both as a tree and as data counts
    /// twice).
    pub fn len(&self) -> usize {
        let ids = match &self.data {
            DataBlobs::Ids(v) => v.len(),
            _ => 0,
        };
        self.blobs.len() + ids
    }

    /// Whether no blob is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index objects merged in.
    pub fn index_ids(&self) -> &[ObjectId] {
        &self.index_ids
    }
}
