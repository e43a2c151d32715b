//! The compact tables a plan is made from and executed with: packs, blob entries, index
//! objects, snapshots.

use super::report::{PackAction, PlannedPack};
use crate::repo::index::{IdMap, Index, Lister};
use tresor_format::blob::BlobType;
use tresor_format::index::IndexPack;
use tresor_format::record::PruneState;
use tresor_format::{BlobId, ObjectId};

/// The compact tables the plan was made from, kept for execution.
#[derive(Default)]
pub(super) struct Work {
    pub(super) packs: Vec<PackRec>,
    pub(super) pack_pos: IdMap<ObjectId, u32>,
    pub(super) index_objs: Vec<IndexObj>,
    /// Sorted by id.
    pub(super) entries: Vec<Entry>,
    /// Bit per entry: the copy of a used blob that is kept (or copied).
    pub(super) chosen: Vec<u64>,
    /// Live states and their ids.
    pub(super) states: Vec<(ObjectId, PruneState)>,
    pub(super) superseded_states: Vec<ObjectId>,
    pub(super) fossil_ids: Vec<ObjectId>,
    /// The state after this run, without the new generation (added on execution).
    pub(super) next_state: PruneState,
    /// Host of every snapshot seen (`None` for a snapshot that does not speak for its host).
    pub(super) hosts: IdMap<ObjectId, Option<String>>,
    /// Backup start markers listed by the snapshots the plan read (their backups ended).
    pub(super) resolved_markers: Resolved,
    /// Pack positions of orphans (unindexed packs) to condemn or resurrect.
    pub(super) orphans: Vec<u32>,
    /// Orphans whose header or name did not check out: condemned without entries.
    pub(super) blind: Vec<u32>,
    /// Index objects the consolidated object supersedes (positions).
    pub(super) affected: Vec<u32>,
    /// Index objects superseded already (ids).
    pub(super) leftovers: Vec<ObjectId>,
    pub(super) workers: usize,
    /// Hosts the operator declared inactive for this run.
    pub(super) inactive_hosts: Vec<String>,
    pub(super) executed: bool,
}

#[derive(Clone, Copy)]
pub(super) struct Entry {
    pub(super) id: [u8; 32],
    pub(super) pack: u32,
    pub(super) len: u32,
}

pub(super) struct IndexObj {
    pub(super) id: ObjectId,
    pub(super) full: bool,
    pub(super) superseded: bool,
    pub(super) blobs: u64,
}

pub(super) struct PackRec {
    pub(super) id: ObjectId,
    /// Stored size; `None` when the pack is not in storage.
    pub(super) size: Option<u64>,
    /// Accepted index objects listing it (positions in `index_objs`).
    pub(super) listings: Vec<u32>,
    /// Listed by a non-superseded index object.
    pub(super) live: bool,
    /// Listed by a full key's index object (with the data key of the entries in the tables),
    /// or verified.
    pub(super) trusted: bool,
    /// Data key of the listing whose entries are in the tables.
    pub(super) key: [u8; 32],
    /// Who signed that listing.
    pub(super) lister: Lister,
    /// Where that listing is: an index object, a fossil record, or the pack's own header.
    pub(super) source: Source,
    /// Listed with more than one data key (see [`resolve_conflicts`]).
    pub(super) conflict: bool,
    /// Newest pending generation holding it (position in the generations of all live states).
    pub(super) generation: Option<u32>,
    /// In a `deleting` list.
    pub(super) deleting: bool,
    pub(super) blobs: u32,
    pub(super) bytes: u64,
    pub(super) used_blobs: u32,
    pub(super) used_bytes: u64,
    pub(super) action: PackAction,
    /// Its cold class, asked once (`None`: not asked, or hot).
    pub(super) cold: Option<ColdPack>,
    /// Whether the storage was asked about `cold`.
    pub(super) cold_asked: bool,
}

/// A pack in a cold storage class (format §16.2).
#[derive(Clone, Copy)]
pub(super) struct ColdPack {
    /// Its class.
    pub(super) class: tresor_storage::cold::ColdClass,
    /// When its minimum storage duration ends (`None`: the storage did not say when it was
    /// stored).
    pub(super) due: Option<std::time::SystemTime>,
}

impl PackRec {
    pub(super) fn new(id: ObjectId) -> Self {
        PackRec {
            id,
            size: None,
            listings: Vec::new(),
            live: false,
            trusted: false,
            key: [0; 32],
            lister: Lister::Unverified,
            source: Source::Header,
            conflict: false,
            generation: None,
            deleting: false,
            blobs: 0,
            bytes: 0,
            used_blobs: 0,
            used_bytes: 0,
            action: PackAction::Keep,
            cold: None,
            cold_asked: false,
        }
    }
    pub(super) fn planned(&self) -> PlannedPack {
        PlannedPack {
            id: self.id,
            size: self.size.unwrap_or(self.bytes),
            blobs: self.blobs,
            used_blobs: self.used_blobs,
            used_bytes: self.used_bytes,
        }
    }
}

/// Where the entries of a pack in the tables come from (to read them again, e.g. to verify a
/// copy).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// The index object with this id.
    Index(ObjectId),
    /// The fossil record with this id.
    Fossil(ObjectId),
    /// The pack's own header.
    Header,
}

pub(super) fn bit(v: &[u64], i: usize) -> bool {
    v[i / 64] >> (i % 64) & 1 == 1
}
pub(super) fn set_bit(v: &mut [u64], i: usize) {
    v[i / 64] |= 1 << (i % 64);
}

pub(super) fn range_of(entries: &[Entry], id: &[u8; 32]) -> std::ops::Range<usize> {
    let start = entries.partition_point(|e| e.id < *id);
    let mut end = start;
    while end < entries.len() && entries[end].id == *id {
        end += 1;
    }
    start..end
}

#[derive(Default)]
pub(super) struct Tables {
    pub(super) packs: Vec<PackRec>,
    pub(super) pack_pos: IdMap<ObjectId, u32>,
    pub(super) entries: Vec<Entry>,
    pub(super) trees: Index,
}

impl Tables {
    pub(super) fn pos(&mut self, id: ObjectId) -> (u32, bool) {
        if let Some(p) = self.pack_pos.get(&id) {
            return (*p, false);
        }
        let p = self.packs.len() as u32;
        self.packs.push(PackRec::new(id));
        self.pack_pos.insert(id, p);
        (p, true)
    }

    /// Add an index object's listing of a pack: its entries when the pack is new; a listing
    /// with another data key than the first marks a conflict ([`resolve_conflicts`]).
    pub(super) fn add_listing(&mut self, obj: u32, index: ObjectId, lister: Lister, p: &IndexPack) {
        let (pos, new) = self.pos(p.id);
        if new {
            self.add_entries(pos, Source::Index(index), lister, p);
        }
        let rec = &mut self.packs[pos as usize];
        rec.listings.push(obj);
        if rec.key == p.data_key.0 {
            rec.trusted |= lister == Lister::Full;
        } else {
            rec.conflict = true;
        }
    }

    /// Add a pack's blob entries (once per pack), as `lister` listed them in `source`.
    pub(super) fn add_entries(&mut self, pos: u32, source: Source, lister: Lister, p: &IndexPack) {
        let rec = &mut self.packs[pos as usize];
        rec.key = p.data_key.0;
        rec.lister = lister;
        rec.source = source;
        let source = match source {
            Source::Index(id) | Source::Fossil(id) => id,
            Source::Header => p.id,
        };
        rec.blobs = p.blobs.len() as u32;
        // A frame's stored bytes are shared among its members (format §7).
        let shares = crate::repo::packs::stored_shares(&p.blobs);
        rec.bytes = shares.iter().fold(0u64, |a, b| a.saturating_add(*b));
        let mut trees = Vec::new();
        for (b, share) in p.blobs.iter().zip(shares) {
            self.entries.push(Entry {
                id: b.id.0,
                pack: pos,
                len: share.min(u64::from(u32::MAX)) as u32,
            });
            if b.blob_type == BlobType::Tree {
                trees.push(b.clone());
            }
        }
        if !trees.is_empty() {
            self.trees.add_pack(
                source,
                lister,
                &IndexPack {
                    id: p.id,
                    data_key: p.data_key.clone(),
                    blobs: trees,
                },
            );
        }
    }
}

/// A snapshot as prune needs it.
pub(super) struct SnapInfo {
    pub(super) id: ObjectId,
    pub(super) host: String,
    /// Its `time` (RFC 3339, as its writer wrote it): shown, never compared with a clock.
    pub(super) time: String,
    pub(super) tree: BlobId,
    pub(super) signer: [u8; 32],
    /// Its signer's bit in the user sets of blobs ([`Signers`]) when it speaks for its
    /// host (readers accept it, and a put-only key wrote only for the host it is certified
    /// for); `None` for a snapshot readers ignore (its data is kept all the same).
    pub(super) user: Option<u8>,
    /// Whether it counts for approval: it speaks for its host and is not dated in the future.
    pub(super) counts: bool,
}

/// Backup start markers listed by snapshots that speak for their host: marker id → that host.
/// A marker is *resolved* (its backup ended) only by a snapshot of its own host (format §16.1).
pub(super) type Resolved = IdMap<ObjectId, String>;

impl Work {
    pub(super) fn chosen_in(&self, id: &BlobId, pos: u32) -> bool {
        range_of(&self.entries, &id.0).any(|k| self.entries[k].pack == pos && bit(&self.chosen, k))
    }

    pub(super) fn live_fossils(&self) -> Vec<ObjectId> {
        let mut v: Vec<ObjectId> = self
            .states
            .iter()
            .flat_map(|(_, s)| s.generations.iter().flat_map(|g| g.fossils.iter().copied()))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// The bit of the user sets that stands for every signer beyond the first 63.
const MORE: u8 = 63;

/// The signers of the snapshots that count, numbered for the per-blob user sets: bit `i` of a
/// set is signer `i` (for `i` < 63); bit 63 stands for all the others.
#[derive(Default)]
pub(super) struct Signers(Vec<[u8; 32]>);

impl Signers {
    /// The bit of `signer` in user sets.
    pub(super) fn bit(&mut self, signer: [u8; 32]) -> u8 {
        match self.0.iter().position(|s| *s == signer) {
            Some(i) => (i as u8).min(MORE),
            None => {
                self.0.push(signer);
                ((self.0.len() - 1) as u8).min(MORE)
            }
        }
    }

    /// The users in `set`, by name, into `out`; returns whether there are others.
    pub(super) fn users(&self, set: u64, out: &mut Vec<[u8; 32]>) -> bool {
        out.clear();
        for (i, s) in self.0.iter().enumerate().take(MORE as usize) {
            if set >> i & 1 == 1 {
                out.push(*s);
            }
        }
        set >> MORE & 1 == 1
    }
}
