//! `prune`: free the space of data no snapshot references, without locks (format §16).
//!
//! # Plan, then execute
//!
//! [`plan`] reads everything and writes nothing: the snapshots (listed first), the prune records,
//! the index objects, then the packs (listed last, so that every snapshot seen has its index
//! objects and packs seen too). It walks every snapshot's trees and marks every blob they use
//! (and which signers' snapshots use it), picks the stored copies of each used blob to keep by
//! trust ([`copies::choose`]: a full key's copy, each put-only user's own copy; a copy nobody
//! vouches for is read and verified before any other copy of that blob is condemned), and
//! decides per pack:
//!
//! * **keep** — all its blobs are used, or it is partly used and within the tolerance;
//! * **condemn** — no used blob (or a pack no index lists that the previous run saw unindexed
//!   already: left by an interrupted backup);
//! * **repack** — partly used: its used blobs are copied into new packs, then it is condemned.
//!   Candidates are taken, most unused first, until the unused bytes left in partly used packs
//!   are at most `max_unused` (restic's semantics: a percentage of the used bytes) or the
//!   repacked bytes would exceed `max_repack_size`;
//! * **unindexed** — a pack no index lists and no earlier run saw: left alone (a running backup
//!   indexes its packs before its snapshot); the next run condemns it if still unindexed;
//! * **resurrect** — a condemned pack (or an unindexed one) holding a blob that a snapshot uses
//!   and that no kept pack holds: it is indexed again;
//! * **delete** — a condemned pack whose generation is approved (below).
//!
//! [`PrunePlan::execute`] carries the plan out. Nothing is deleted on the spot: condemning
//! takes the pack out of the index and records it, with its index entries, in a *fossil* object
//! of a new *generation*; a later run deletes it once that is safe.
//!
//! # Two-phase deletion in repository time
//!
//! Backups take no locks. A backup reads the index (and the dedup lists) when it starts and
//! deduplicates against it until it ends, so it may reference a blob that a prune condemns
//! meanwhile. Two rules make that harmless:
//!
//! 1. **Readers still see condemned packs.** [`crate::repository::Repository::load_index`] merges
//!    the fossils of the live prune state after all index objects, so a snapshot that uses a
//!    condemned blob restores and checks clean. Writers never see them (the dedup lists are those
//!    of index objects only), so no backup that starts later can pick them up.
//! 2. **A generation is deleted only when every backup that could have seen its packs has
//!    ended,** judged from the repository's own history, never from a clock:
//!    * *Arming.* After a run has written the new index and deleted every index object it
//!      superseded, no index object (hence no dedup list) names a condemned pack. It then lists
//!      the snapshots and records that set `S` (ids) and the hosts `H` that wrote them in the
//!      generation. A run that cannot delete a superseded index object (crash, append-only
//!      storage) leaves the generation unarmed; a later run retries.
//!    * *Approval* (a later run): every host in `H` has a snapshot that is not in `S` (one
//!      that readers accept, that speaks for its host and is not dated in the future), and no
//!      pack appeared that no index lists (the sign of a backup uploading right now). A backup
//!      running at arming time must have started before it; a host runs one backup at a time,
//!      so the host's first snapshot outside `S` comes from that backup or a later one — either
//!      way that backup has ended and its snapshot is visible to the approving run.
//!    * *Resurrection.* Every run walks all snapshots; a used blob found only in a condemned pack
//!      makes that pack indexed again (an index object listing it is written before the record
//!      that stops listing it). The pack then belongs to no generation any more.
//!
//! Snapshot times and `backup_start` are never compared with anything, so a host with a wrong
//! clock cannot make a generation look old: only the *presence* of new snapshot ids counts.
//!    * *Backups without a snapshot yet.* A backup writes a start marker before it reads the
//!      index, and its snapshot lists it (format §16.1). Arming adds the hosts of markers no
//!      snapshot lists to `H`, so a backup that started before arming — including a host's very
//!      first backup — is waited for like any host with snapshots. Markers whose snapshot exists
//!      are deleted by prune.
//!
//! Assumption (as in Duplicacy's fossil collection): one backup at a time per host name. Hosts
//! that will never back up again block approval; [`PruneOptions::inactive_hosts`] lets the operator waive them —
//! safe exactly when that host has no backup running that started before the arming run.
//!
//! # Crash safety
//!
//! Write order of one run: new packs and their index objects (repack) → index object of
//! resurrected packs → fossil objects of the new generation → the new prune state (superseding
//! the old one; approved packs move to its `deleting` list) → the consolidated index object
//! (superseding the index objects it replaces) → deletion of superseded states and superseded
//! index objects → deletion of approved packs → arming (a second state superseding the first) →
//! deletion of fossils no live state references. At every point each used blob is in an index object or in a fossil of
//! the live state, and only packs no reader looks at are deleted; a run that dies is finished by
//! the next one (leftover superseded objects are deleted, `deleting` packs are deleted, unarmed
//! generations are armed).
//!
//! # Memory
//!
//! Blobs are kept in one sorted `Vec` of 40-byte entries (id, pack, length) with bit sets for
//! "used" and "chosen copy"; trees are looked up through an [`Index`] of tree blobs only; index
//! objects and fossils are streamed (read twice rather than held), and written in parts of about
//! [`PART_BLOBS`] blobs; the blob table is freed before the index objects are streamed again.

use crate::Progress;
use crate::error::{CoreError, Result};
use crate::index::{IdMap, IdSet, Index, Lister};
use crate::packer::Packer;
use crate::repository::{Defect, Judged, Repository, Skipped, rfc3339_utc};
use crate::trust::Verdict;
use serde::{Deserialize, Serialize};
use std::fmt;
use tresor_format::blob::{self, BlobType};
use tresor_format::crypto::SealedKind;
use tresor_format::index::{IndexFile, IndexPack};
use tresor_format::marker::Marker;
use tresor_format::pack;
use tresor_format::sign::{SignedKind, open_envelope};
use tresor_format::snapshot::Snapshot;
use tresor_format::tree::MAX_TREE_DEPTH;
use tresor_format::{BlobId, FormatError, ObjectId};
use tresor_storage::{ErrorKind, Kind};

pub mod copies;
mod keep;

/// Most blobs listed by one index object or fossil object written by prune and repair.
pub const PART_BLOBS: usize = 65_536;

/// Index objects listing fewer blobs than this are merged into the consolidated index object
/// when at least [`CONSOLIDATE_MIN`] of them exist.
pub const SMALL_INDEX_BLOBS: u64 = 4096;
/// See [`SMALL_INDEX_BLOBS`].
pub const CONSOLIDATE_MIN: usize = 8;

// ───────────────────────────── prune records (format §16) ─────────────────────────────

/// Magic at the start of the sealed plaintext of a prune record (separates it from index
/// objects, whose sealed plaintext starts with the version varint `0x02`).
pub const RECORD_MAGIC: &[u8; 4] = b"TPR2";

/// The prune state: pending generations of condemned packs and packs being deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PruneState {
    /// Record version, [`tresor_format::FORMAT_VERSION`] (2).
    pub version: u32,
    /// Prune run that wrote it (a counter: repository time, not a clock).
    pub run: u64,
    /// State records this one replaces.
    pub supersedes: Vec<ObjectId>,
    /// Generations of condemned packs awaiting deletion, oldest first.
    pub generations: Vec<Generation>,
    /// Packs approved for deletion (no reader uses them); a run deletes them right away.
    pub deleting: Vec<ObjectId>,
    /// Packs no index lists, seen by this run for the first time, sorted. The next run condemns
    /// those still unindexed (a running backup indexes its packs before its snapshot).
    pub unindexed: Vec<ObjectId>,
}

impl PruneState {
    fn is_empty(&self) -> bool {
        self.generations.is_empty() && self.deleting.is_empty() && self.unindexed.is_empty()
    }
    fn same_content(&self, other: &PruneState) -> bool {
        self.generations == other.generations
            && self.deleting == other.deleting
            && self.unindexed == other.unindexed
    }
}

/// Packs condemned by one prune run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    /// Prune run that condemned them.
    pub run: u64,
    /// Fossil objects listing the packs with their index entries.
    pub fossils: Vec<ObjectId>,
    /// Packs whose header could not be read (no entries): deleted with the generation, never
    /// read or resurrected.
    pub blind: Vec<ObjectId>,
    /// Number of packs.
    pub packs: u64,
    /// Their stored bytes.
    pub bytes: u64,
    /// Set once no index object names the packs any more.
    pub armed: Option<Arming>,
}

/// What the repository looked like when a generation was armed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arming {
    /// Prune run that armed it.
    pub run: u64,
    /// Snapshot ids present, sorted.
    pub snapshots: Vec<ObjectId>,
    /// Host names of those snapshots, sorted, unique.
    pub hosts: Vec<String>,
}

/// Condemned packs with their index entries (so they can be read and resurrected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FossilSet {
    /// Record version, [`tresor_format::FORMAT_VERSION`] (2).
    pub version: u32,
    /// Prune run that condemned them.
    pub run: u64,
    /// The packs.
    pub packs: Vec<FossilPack>,
}

/// One condemned pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FossilPack {
    /// Pack id, data key and blob entries (empty when its header could not be read).
    pub pack: IndexPack,
    /// Whether the entries come from a full key's index object (or were verified blob by blob);
    /// unverified packs are verified before they are indexed again.
    pub verified: bool,
}

/// Snapshots `forget` (or `repair snapshots --forget`) deleted: written before deleting them, so
/// that a client that saw them does not report them as hidden by the storage (format §16).
/// Never deleted by prune or repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetRecord {
    /// Record version, `1`.
    pub version: u32,
    /// The snapshots deleted, sorted.
    pub ids: Vec<ObjectId>,
}

/// A prune record (`prune/<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// The prune state.
    State(PruneState),
    /// Condemned packs.
    Fossils(FossilSet),
    /// Snapshots deleted on purpose.
    Forgotten(ForgetRecord),
}

/// Seal (to the repository key, HPKE kind index) and sign (this key, kind index) a record.
///
/// # Errors
/// Sealing failures.
pub fn seal_record(repo: &Repository, record: &Record) -> Result<Vec<u8>> {
    let mut plain = RECORD_MAGIC.to_vec();
    plain.extend(postcard::to_stdvec(record).map_err(|e| CoreError::Invalid(e.to_string()))?);
    let sealed = repo
        .key()
        .seal(SealedKind::Index, &plain, Some(&repo.signer().public()))?;
    Ok(repo.signer().envelope(SignedKind::Index, &sealed))
}

/// Verify, open and decode a stored record; returns its signer.
///
/// # Errors
/// Authentication and decoding failures as [`CoreError::Damaged`].
pub fn open_record(repo: &Repository, id: &ObjectId, stored: &[u8]) -> Result<([u8; 32], Record)> {
    decode_record(id, repo, stored).map_err(|(_, e)| e)
}

fn decode_record(id: &ObjectId, repo: &Repository, stored: &[u8]) -> Judged<([u8; 32], Record)> {
    let garbage = |e: &dyn fmt::Display| {
        (
            Defect::Garbage,
            CoreError::Damaged(format!("prune record {id}: {e}")),
        )
    };
    let (signer, body) = open_envelope(SignedKind::Index, stored).map_err(|e| garbage(&e))?;
    let plain = repo
        .key()
        .open(SealedKind::Index, body, Some(&signer))
        .map_err(|e| garbage(&e))?;
    let rest = plain
        .strip_prefix(RECORD_MAGIC.as_slice())
        .ok_or_else(|| garbage(&"not a prune record"))?;
    let rec: Record = postcard::from_bytes(rest).map_err(|e| garbage(&e))?;
    let version = match &rec {
        Record::State(s) => s.version,
        Record::Fossils(f) => f.version,
        Record::Forgotten(f) => f.version,
    };
    if version != tresor_format::FORMAT_VERSION {
        return Err((
            Defect::Damaged,
            CoreError::Damaged(format!(
                "prune record {id}: unsupported prune record version {version} (this tresor reads version {})",
                tresor_format::FORMAT_VERSION
            )),
        ));
    }
    Ok((signer, rec))
}

/// Read (bounded), open and judge one prune record: only a full key's records count.
fn load_record(repo: &Repository, id: &ObjectId, listed: Option<u64>) -> Judged<Record> {
    let bytes = repo.fetch(Kind::PruneRecord, id, listed)?;
    let (signer, rec) = decode_record(id, repo, &bytes)?;
    if repo.trust().verdict(&signer, id) != Verdict::Full {
        return Err((
            Defect::Ignored,
            CoreError::Untrusted(format!(
                "prune record {id} is not signed by a full key: ignored"
            )),
        ));
    }
    Ok(rec)
}

/// Write a prune record (creating `prune/` in repositories made before it existed); returns its
/// id and size.
///
/// # Errors
/// Sealing and storage errors.
pub(crate) fn write_record(repo: &Repository, record: &Record) -> Result<(ObjectId, u64)> {
    let bytes = seal_record(repo, record)?;
    match repo.write_object(Kind::PruneRecord, &bytes) {
        // Repositories made before prune existed have no `prune/` folder yet.
        Err(CoreError::Storage(e)) if e.kind == ErrorKind::NotFound => {
            repo.storage().create()?;
            Ok((
                repo.write_object(Kind::PruneRecord, &bytes)?,
                bytes.len() as u64,
            ))
        }
        r => r.map(|id| (id, bytes.len() as u64)),
    }
}

/// Names of the objects in `prune/`, sorted (empty when there is no such folder).
///
/// # Errors
/// Storage errors on listing.
pub fn record_names(repo: &Repository) -> Result<Vec<ObjectId>> {
    let mut v = list_records(repo)?;
    v.sort();
    Ok(v)
}

fn list_records(repo: &Repository) -> Result<Vec<ObjectId>> {
    Ok(list_records_sized(repo)?
        .into_iter()
        .map(|(id, _)| id)
        .collect())
}

fn list_records_sized(repo: &Repository) -> Result<Vec<(ObjectId, u64)>> {
    match repo.storage().list(Kind::PruneRecord) {
        Ok(l) => l
            .into_iter()
            .map(|(n, size)| Ok((n.parse()?, size)))
            .collect(),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// The prune records found in storage.
#[derive(Debug, Default)]
pub struct Records {
    /// Live states (not superseded by another), with their ids.
    pub states: Vec<(ObjectId, PruneState)>,
    /// States superseded by a live one (left by an interrupted prune).
    pub superseded: Vec<ObjectId>,
    /// Fossil objects present, referenced or not.
    pub fossils: Vec<ObjectId>,
    /// Forget records, with the snapshots each lists.
    pub forgotten: Vec<(ObjectId, Vec<ObjectId>)>,
    /// Records that are damaged, or not written by a full key (ignored).
    pub skipped: Vec<Skipped>,
}

impl Records {
    /// Fossil objects referenced by the live states.
    pub fn live_fossils(&self) -> Vec<ObjectId> {
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

/// Read every prune record. Records signed by anything but a certified full key are ignored
/// (reported in [`Records::skipped`] as untrusted). A record deleted while this runs (by a
/// concurrent prune replacing it) makes it list again, up to three times.
///
/// # Errors
/// Storage errors on listing.
pub fn load_records(repo: &Repository) -> Result<Records> {
    let mut attempt = 0;
    'again: loop {
        attempt += 1;
        let mut recs = Records::default();
        let mut ids = list_records_sized(repo)?;
        ids.sort();
        for (id, size) in ids {
            match load_record(repo, &id, Some(size)) {
                Ok(Record::State(s)) => recs.states.push((id, s)),
                Ok(Record::Fossils(_)) => recs.fossils.push(id),
                Ok(Record::Forgotten(f)) => recs.forgotten.push((id, f.ids)),
                Err((_, CoreError::Storage(e))) if e.kind == ErrorKind::NotFound && attempt < 3 => {
                    continue 'again;
                }
                Err((defect, error)) => recs.skipped.push(Skipped { id, error, defect }),
            }
        }
        let superseded: IdSet<ObjectId> = recs
            .states
            .iter()
            .flat_map(|(_, s)| s.supersedes.iter().copied())
            .collect();
        let (dead, live): (Vec<_>, Vec<_>) = std::mem::take(&mut recs.states)
            .into_iter()
            .partition(|(id, _)| superseded.contains(id));
        recs.states = live;
        recs.states.sort_by_key(|(id, s)| (s.run, *id));
        recs.superseded = dead.into_iter().map(|(id, _)| id).collect();
        return Ok(recs);
    }
}

/// Read one fossil object.
///
/// # Errors
/// Storage errors, damage, a record that is not a fossil object.
pub fn read_fossils(repo: &Repository, id: &ObjectId) -> Result<FossilSet> {
    read_fossils_judged(repo, id).map_err(|(_, e)| e)
}

fn read_fossils_judged(repo: &Repository, id: &ObjectId) -> Judged<FossilSet> {
    match load_record(repo, id, None)? {
        Record::Fossils(f) => Ok(f),
        Record::State(_) | Record::Forgotten(_) => Err((
            Defect::Damaged,
            CoreError::Damaged(format!(
                "prune record {id}: not a fossil record where fossils were expected"
            )),
        )),
    }
}

/// Add the condemned packs of the live prune state to a reader's index (after every index
/// object, so indexed copies are preferred). Problems go to `skipped`.
///
/// # Errors
/// Storage errors on listing.
pub fn merge_fossils(
    repo: &Repository,
    index: &mut Index,
    skipped: &mut Vec<Skipped>,
) -> Result<()> {
    let recs = load_records(repo)?;
    let live = recs.live_fossils();
    skipped.extend(recs.skipped);
    for f in live {
        match read_fossils_judged(repo, &f) {
            Ok(set) => {
                for p in &set.packs {
                    let lister = match p.verified {
                        true => Lister::Full,
                        false => Lister::Unverified,
                    };
                    index.add_pack(f, lister, &p.pack);
                }
            }
            Err((defect, error)) => skipped.push(Skipped {
                id: f,
                error,
                defect,
            }),
        }
    }
    Ok(())
}

// ───────────────────────────── options ─────────────────────────────

/// How much unused space partly used packs may keep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxUnused {
    /// A percentage of the used bytes (restic's `--max-unused 5%`).
    Percent(f64),
    /// An absolute number of bytes.
    Bytes(u64),
    /// Never repack for unused space.
    Unlimited,
}

impl MaxUnused {
    /// The tolerated unused bytes when `used` bytes are in use.
    pub fn limit(&self, used: u64) -> u64 {
        match *self {
            MaxUnused::Percent(p) => (used as f64 * p / 100.0) as u64,
            MaxUnused::Bytes(b) => b,
            MaxUnused::Unlimited => u64::MAX,
        }
    }
}

impl std::str::FromStr for MaxUnused {
    type Err = CoreError;
    /// `unlimited`, `N%` or `N` (percent), or a size with a unit (`500M`, `2G`: bytes).
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("unlimited") {
            return Ok(MaxUnused::Unlimited);
        }
        let bad = || CoreError::Invalid(format!("--max-unused {s:?}: use N%, a size or unlimited"));
        let num = t.strip_suffix('%').unwrap_or(t).trim();
        if let Ok(p) = num.parse::<f64>() {
            if !(0.0..=100.0).contains(&p) && t.ends_with('%') {
                return Err(bad());
            }
            if p.is_finite() && p >= 0.0 {
                return Ok(MaxUnused::Percent(p));
            }
            return Err(bad());
        }
        parse_size(t).map(MaxUnused::Bytes).map_err(|_| bad())
    }
}

/// Parse a size: a number of bytes with an optional binary unit `K`, `M`, `G`, `T` (also `KiB`,
/// `MB`… — all binary, as restic does).
///
/// # Errors
/// [`CoreError::Invalid`].
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    let stripped = upper
        .strip_suffix("IB")
        .or_else(|| upper.strip_suffix('B'))
        .unwrap_or(&upper);
    let (num, mul) = match stripped.chars().last() {
        Some('K') => (&stripped[..stripped.len() - 1], 1u64 << 10),
        Some('M') => (&stripped[..stripped.len() - 1], 1 << 20),
        Some('G') => (&stripped[..stripped.len() - 1], 1 << 30),
        Some('T') => (&stripped[..stripped.len() - 1], 1 << 40),
        _ => (stripped, 1),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| CoreError::Invalid(format!("size {s:?}: use a number with K, M, G or T")))?;
    if !v.is_finite() || v < 0.0 {
        return Err(CoreError::Invalid(format!("size {s:?} is negative")));
    }
    Ok((v * mul as f64) as u64)
}

/// Options of a prune run.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Unused space tolerated in partly used packs.
    pub max_unused: MaxUnused,
    /// At most this many bytes of packs are repacked in one run.
    pub max_repack_size: Option<u64>,
    /// Hosts the operator declares inactive: no backup of theirs started before the last
    /// arming run is still running. They no longer hold back deletion.
    pub inactive_hosts: Vec<String>,
    /// Compression and encryption threads for repacking.
    pub workers: usize,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            max_unused: MaxUnused::Percent(5.0),
            max_repack_size: None,
            inactive_hosts: Vec::new(),
            workers: 2,
        }
    }
}

// ───────────────────────────── the plan ─────────────────────────────

/// What happens to a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PackAction {
    /// Stays indexed.
    Keep,
    /// Taken out of the index into a new generation (unused, or unindexed).
    Condemn,
    /// Used blobs copied to new packs, then condemned.
    Repack,
    /// A condemned or unindexed pack with needed blobs: indexed again.
    Resurrect,
    /// Deleted in this run (its generation is approved).
    Delete,
    /// Listed by the index but missing from storage, and not needed: dropped from the index.
    Drop,
    /// Condemned earlier, still waiting.
    Wait,
    /// Unindexed, seen for the first time: left alone until the next run.
    Unindexed,
}

/// One pack in the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedPack {
    /// Pack id.
    pub id: ObjectId,
    /// Stored size, bytes.
    pub size: u64,
    /// Blobs in it.
    pub blobs: u32,
    /// Blobs in use.
    pub used_blobs: u32,
    /// Stored bytes of blobs in use.
    pub used_bytes: u64,
}

/// A pending generation as this run sees it.
#[derive(Debug, Clone, Serialize)]
pub struct GenerationStatus {
    /// Prune run that condemned it.
    pub run: u64,
    /// Condemned packs still held by it.
    pub packs: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Whether it is armed (no index object names its packs any more).
    pub armed: bool,
    /// Whether its packs are deleted in this run.
    pub approved: bool,
    /// Hosts that have not written a snapshot since it was armed.
    pub waiting_for: Vec<String>,
    /// Packs of it indexed again in this run.
    pub resurrected: usize,
    /// Why it waits, or that it is approved.
    pub reason: String,
}

/// A prune plan: what [`PrunePlan::execute`] will do. Serialisable (for `--json`) and printable.
#[derive(Serialize)]
pub struct PrunePlan {
    /// Number of this prune run (repository time: one more than the last recorded run).
    pub run: u64,
    /// Snapshots whose data is kept.
    pub snapshots: usize,
    /// Index objects read.
    pub index_objects: usize,
    /// Packs known (indexed, condemned or unindexed).
    pub packs: usize,
    /// Blob entries known.
    pub blobs: u64,
    /// Distinct blobs in use.
    pub used_blobs: u64,
    /// Stored bytes of the blobs in use (one copy each).
    pub used_bytes: u64,
    /// Stored bytes of indexed blobs not in use (or extra copies).
    pub unused_bytes: u64,
    /// Unused bytes tolerated in partly used packs after this run.
    pub max_unused_bytes: u64,
    /// Unused bytes left in kept packs after this run.
    pub unused_bytes_after: u64,
    /// Packs condemned because nothing uses them.
    pub condemn_unused: Vec<PlannedPack>,
    /// Packs condemned because no index lists them and an earlier run saw them unindexed too
    /// (left by interrupted backups).
    pub condemn_unindexed: Vec<PlannedPack>,
    /// Packs no index lists, seen for the first time (maybe a running backup's): remembered,
    /// condemned by the next run if still unindexed.
    pub unindexed_seen: Vec<PlannedPack>,
    /// Packs to repack (then condemned).
    pub repack: Vec<PlannedPack>,
    /// Blobs copied by the repack.
    pub repack_blobs: u64,
    /// Bytes copied by the repack.
    pub repack_bytes: u64,
    /// Indexed packs missing from storage, not needed: dropped from the index.
    pub drop_missing: Vec<ObjectId>,
    /// Condemned or unindexed packs indexed again.
    pub resurrect: Vec<ObjectId>,
    /// Packs deleted in this run.
    pub delete: Vec<PlannedPack>,
    /// Packs due for deletion that the storage still holds under a lock (S3 Object Lock
    /// retention or legal hold), with the time it ends (UTC, RFC 3339): not attempted, kept in
    /// the `deleting` list, and deleted by the first run after that time.
    pub locked: Vec<(PlannedPack, String)>,
    /// Bytes freed in this run.
    pub bytes_freed: u64,
    /// Bytes condemned in this run (freed by a later run).
    pub bytes_condemned: u64,
    /// Pending generations from earlier runs.
    pub generations: Vec<GenerationStatus>,
    /// Packs no index lists that appeared since the last run (they hold back approval).
    pub new_unindexed: usize,
    /// Index objects to be replaced by the consolidated index object.
    pub index_superseded: usize,
    /// Index objects already superseded, to be deleted.
    pub index_leftovers: usize,
    /// Objects no key wrote (bytes that do not match the name, a bad envelope, signature,
    /// sealing or encoding): deleted by this run. Objects of unknown or revoked signers are
    /// never garbage (they may be a lost key's), nor are objects a storage error kept from
    /// being read.
    pub garbage: Vec<GarbageObject>,
    /// Things worth knowing that are not errors.
    pub warnings: Vec<String>,
    /// The tables the plan was made from; taken apart by [`PrunePlan::execute`].
    #[serde(skip)]
    work: std::sync::Mutex<Work>,
}

impl fmt::Debug for PrunePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrunePlan(run {}, condemn {}+{}, repack {}, resurrect {}, delete {})",
            self.run,
            self.condemn_unused.len(),
            self.condemn_unindexed.len(),
            self.repack.len(),
            self.resurrect.len(),
            self.delete.len()
        )
    }
}

/// The compact tables the plan was made from, kept for execution.
#[derive(Default)]
struct Work {
    packs: Vec<PackRec>,
    pack_pos: IdMap<ObjectId, u32>,
    index_objs: Vec<IndexObj>,
    /// Sorted by id.
    entries: Vec<Entry>,
    /// Bit per entry: the copy of a used blob that is kept (or copied).
    chosen: Vec<u64>,
    /// Live states and their ids.
    states: Vec<(ObjectId, PruneState)>,
    superseded_states: Vec<ObjectId>,
    fossil_ids: Vec<ObjectId>,
    /// The state after this run, without the new generation (added on execution).
    next_state: PruneState,
    /// Host of every snapshot seen (`None` for a snapshot that does not speak for its host).
    hosts: IdMap<ObjectId, Option<String>>,
    /// Backup start markers listed by the snapshots the plan read (their backups ended).
    resolved_markers: Resolved,
    /// Pack positions of orphans (unindexed packs) to condemn or resurrect.
    orphans: Vec<u32>,
    /// Orphans whose header or name did not check out: condemned without entries.
    blind: Vec<u32>,
    /// Index objects the consolidated object supersedes (positions).
    affected: Vec<u32>,
    /// Index objects superseded already (ids).
    leftovers: Vec<ObjectId>,
    workers: usize,
    nothing_to_do: bool,
    executed: bool,
}

#[derive(Clone, Copy)]
struct Entry {
    id: [u8; 32],
    pack: u32,
    len: u32,
}

struct IndexObj {
    id: ObjectId,
    full: bool,
    superseded: bool,
    blobs: u64,
}

struct PackRec {
    id: ObjectId,
    /// Stored size; `None` when the pack is not in storage.
    size: Option<u64>,
    /// Accepted index objects listing it (positions in `index_objs`).
    listings: Vec<u32>,
    /// Listed by a non-superseded index object.
    live: bool,
    /// Listed by a full key's index object (with the data key of the entries in the tables),
    /// or verified.
    trusted: bool,
    /// Data key of the listing whose entries are in the tables.
    key: [u8; 32],
    /// Who signed that listing.
    lister: Lister,
    /// Where that listing is: an index object, a fossil record, or the pack's own header.
    source: Source,
    /// Listed with more than one data key (see [`resolve_conflicts`]).
    conflict: bool,
    /// Newest pending generation holding it (position in the generations of all live states).
    generation: Option<u32>,
    /// In a `deleting` list.
    deleting: bool,
    blobs: u32,
    bytes: u64,
    used_blobs: u32,
    used_bytes: u64,
    action: PackAction,
}

impl PackRec {
    fn new(id: ObjectId) -> Self {
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
        }
    }
    fn planned(&self) -> PlannedPack {
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
enum Source {
    /// The index object with this id.
    Index(ObjectId),
    /// The fossil record with this id.
    Fossil(ObjectId),
    /// The pack's own header.
    Header,
}

fn bit(v: &[u64], i: usize) -> bool {
    v[i / 64] >> (i % 64) & 1 == 1
}
fn set_bit(v: &mut [u64], i: usize) {
    v[i / 64] |= 1 << (i % 64);
}

fn range_of(entries: &[Entry], id: &[u8; 32]) -> std::ops::Range<usize> {
    let start = entries.partition_point(|e| e.id < *id);
    let mut end = start;
    while end < entries.len() && entries[end].id == *id {
        end += 1;
    }
    start..end
}

struct Tables {
    packs: Vec<PackRec>,
    pack_pos: IdMap<ObjectId, u32>,
    entries: Vec<Entry>,
    trees: Index,
}

impl Tables {
    fn pos(&mut self, id: ObjectId) -> (u32, bool) {
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
    fn add_listing(&mut self, obj: u32, index: ObjectId, lister: Lister, p: &IndexPack) {
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
    fn add_entries(&mut self, pos: u32, source: Source, lister: Lister, p: &IndexPack) {
        let rec = &mut self.packs[pos as usize];
        rec.key = p.data_key.0;
        rec.lister = lister;
        rec.source = source;
        let source = match source {
            Source::Index(id) | Source::Fossil(id) => id,
            Source::Header => p.id,
        };
        rec.blobs = p.blobs.len() as u32;
        rec.bytes = p.blobs.iter().fold(0u64, |a, b| a.saturating_add(b.length));
        let mut trees = Vec::new();
        for b in &p.blobs {
            self.entries.push(Entry {
                id: b.id.0,
                pack: pos,
                len: b.length.min(u64::from(u32::MAX)) as u32,
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

/// Read a pack's header by two range reads (trailer, then header).
pub(crate) fn read_pack_header(
    repo: &Repository,
    id: &ObjectId,
    size: u64,
) -> Result<pack::PackHeader> {
    let name = id.to_hex();
    let damaged = |e: &dyn fmt::Display| CoreError::Damaged(format!("pack {id}: header: {e}"));
    if size < pack::TRAILER_LEN {
        return Err(damaged(&"shorter than its trailer"));
    }
    let trailer = repo.storage().read_range(
        Kind::Pack,
        &name,
        size - pack::TRAILER_LEN,
        pack::TRAILER_LEN,
    )?;
    let hlen = pack::parse_trailer(&trailer).map_err(|e| damaged(&e))?;
    let start = size
        .checked_sub(pack::TRAILER_LEN + hlen)
        .ok_or_else(|| damaged(&"header length beyond pack start"))?;
    let sealed = repo.storage().read_range(Kind::Pack, &name, start, hlen)?;
    let h = pack::open_header(repo.key(), &sealed).map_err(|e| damaged(&e))?;
    if let Some(b) = h
        .blobs
        .iter()
        .find(|b| b.offset.saturating_add(b.length) > start)
    {
        return Err(damaged(&format!("blob {} extends into the header", b.id)));
    }
    Ok(h)
}

/// The stored bytes `offset..offset + length` of a pack read whole, if they lie within it.
fn stored_blob(bytes: &[u8], offset: u64, length: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(length).ok()?)?;
    bytes.get(start..end)
}

/// Read a whole pack and decode every listed blob (verifies the entries blob by blob).
fn verify_pack(repo: &Repository, p: &IndexPack) -> Result<()> {
    let bytes = repo.read_object(Kind::Pack, &p.id)?;
    for b in &p.blobs {
        let stored = stored_blob(&bytes, b.offset, b.length).ok_or_else(|| {
            CoreError::Damaged(format!("pack {}: blob {} beyond its end", p.id, b.id))
        })?;
        blob::decode(&p.data_key, &repo.key().id_key, b.blob_type, &b.id, stored).map_err(
            |e| {
                CoreError::Damaged(format!(
                    "pack {}: blob {} does not verify ({e}): damaged or forged; run `tresor check --read-data`",
                    p.id, b.id
                ))
            },
        )?;
    }
    Ok(())
}

pub(crate) fn require_full_signer(repo: &Repository) -> Result<()> {
    if repo
        .trust()
        .verdict(&repo.signer().public(), &ObjectId::default())
        == Verdict::Full
    {
        Ok(())
    } else {
        Err(CoreError::Invalid(
            "prune and repair need a certified, unrevoked full key (only full keys may retire index objects)"
                .into(),
        ))
    }
}

/// A snapshot as prune needs it.
struct SnapInfo {
    id: ObjectId,
    host: String,
    tree: BlobId,
    signer: [u8; 32],
    /// Its signer's bit in the user sets of blobs ([`keep::Signers`]) when it speaks for its
    /// host (readers accept it, and a put-only key wrote only for the host it is certified
    /// for); `None` for a snapshot readers ignore (its data is kept all the same).
    user: Option<u8>,
    /// Whether it counts for approval: it speaks for its host and is not dated in the future.
    counts: bool,
}

/// Backup start markers listed by snapshots that speak for their host: marker id → that host.
/// A marker is *resolved* (its backup ended) only by a snapshot of its own host (format §16.1).
type Resolved = IdMap<ObjectId, String>;

/// Record the markers that snapshot `s` (signed by `signer`) lists, if it speaks for its host:
/// a put-only key's snapshot naming another host, or listing other hosts' markers, resolves
/// nothing.
fn resolve_markers(
    repo: &Repository,
    id: &ObjectId,
    signer: &[u8; 32],
    s: &Snapshot,
    r: &mut Resolved,
) {
    if repo.trust().speaks_for(signer, id, &s.hostname) {
        for m in &s.markers {
            r.insert(*m, s.hostname.clone());
        }
    }
}

/// Open a marker: its signer and host.
fn open_marker(repo: &Repository, id: &ObjectId) -> Result<([u8; 32], String)> {
    let b = repo.read_object(Kind::Marker, id)?;
    let (signer, m) = Marker::open(repo.key(), &b)?;
    Ok((signer, m.hostname))
}

/// Backup start markers (format §16.1) no snapshot of their host lists, by host: each may be a
/// backup that is still running. Markers that cannot be opened, and markers whose signer may
/// not write for their host, are reported in `warnings` and skipped.
fn open_markers(
    repo: &Repository,
    resolved: &Resolved,
    warnings: &mut Vec<String>,
) -> Result<Vec<(ObjectId, String)>> {
    let names = match repo.storage().list(Kind::Marker) {
        Ok(l) => l,
        // Repositories made before markers existed have no `markers/` folder.
        Err(e) if e.kind == ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for (name, _) in names {
        let Ok(id) = name.parse::<ObjectId>() else {
            continue;
        };
        match open_marker(repo, &id) {
            Ok((_, host)) if resolved.get(&id) == Some(&host) => {}
            Ok((signer, host)) if repo.trust().speaks_for(&signer, &id, &host) => {
                out.push((id, host))
            }
            Ok((_, host)) => warnings.push(format!(
                "backup start marker {id} for host {host:?}: its signer may not write for that host; ignored"
            )),
            Err(CoreError::Storage(e)) if e.kind == ErrorKind::NotFound => {}
            Err(e) => warnings.push(format!("backup start marker {id}: {e}; ignored")),
        }
    }
    Ok(out)
}

/// Open a snapshot whatever its signer (prune keeps the data of ignored snapshots too: they
/// may become trusted again, e.g. after a paper key import); returns its signer too.
/// `listed`: its size from a listing.
fn open_snapshot_any(
    repo: &Repository,
    id: &ObjectId,
    listed: Option<u64>,
) -> Judged<([u8; 32], Snapshot)> {
    let bytes = repo.fetch(Kind::Snapshot, id, listed)?;
    Snapshot::open(repo.key(), &bytes).map_err(|e| {
        (
            Defect::of_format(&e),
            CoreError::Damaged(format!("snapshot {id}: {e}")),
        )
    })
}

/// An object that no key wrote (format §16, "Garbage"): deleted by the run that finds it.
#[derive(Debug, Clone, Serialize)]
pub struct GarbageObject {
    /// Its kind: `snapshot`, `index` or `marker`.
    #[serde(serialize_with = "kind_name")]
    pub kind: Kind,
    /// Its id.
    pub id: ObjectId,
    /// Why it is garbage.
    pub reason: String,
}

fn kind_name<S: serde::Serializer>(k: &Kind, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&k.to_string())
}

/// What a run makes of an object it could not use: garbage is deleted, an object that is only
/// damaged (too large, unknown version) is skipped with a warning, a storage error stops the
/// run (nothing may be concluded from a transient failure). `Ok(())` means: go on without it.
fn triage(
    kind: Kind,
    id: ObjectId,
    (defect, error): (Defect, CoreError),
    what: &str,
    garbage: &mut Vec<GarbageObject>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    match defect {
        Defect::Unreadable => match error {
            // Deleted meanwhile (forget, or a concurrent prune's replacement).
            CoreError::Storage(e) if e.kind == ErrorKind::NotFound => Ok(()),
            e => Err(e),
        },
        Defect::Garbage => {
            let reason = match error {
                CoreError::Damaged(m) => m,
                e => e.to_string(),
            };
            garbage.push(GarbageObject { kind, id, reason });
            Ok(())
        }
        Defect::Damaged | Defect::Ignored => {
            warnings.push(format!("{error}: skipped ({what})"));
            Ok(())
        }
    }
}

/// 1. Every snapshot, whatever its signer (listed first: every snapshot seen has its index
///    objects and packs seen later), numbering the signers of those that speak for their host
///    in `signers`. Also returns the markers they list.
fn plan_snapshots(
    repo: &Repository,
    signers: &mut keep::Signers,
    garbage: &mut Vec<GarbageObject>,
    warnings: &mut Vec<String>,
) -> Result<(Vec<SnapInfo>, Resolved)> {
    let mut names = repo.storage().list(Kind::Snapshot)?;
    names.sort();
    let mut snaps = Vec::with_capacity(names.len());
    let mut resolved_markers = Resolved::default();
    let future = crate::snapshots::future_after();
    for (name, size) in names {
        let id: ObjectId = name.parse()?;
        match open_snapshot_any(repo, &id, Some(size)) {
            Ok((signer, s)) => {
                resolve_markers(repo, &id, &signer, &s, &mut resolved_markers);
                let speaks = repo.trust().speaks_for(&signer, &id, &s.hostname);
                snaps.push(SnapInfo {
                    id,
                    counts: speaks && !crate::snapshots::is_future(&s, future),
                    user: speaks.then(|| signers.bit(signer)),
                    host: s.hostname,
                    tree: s.tree,
                    signer,
                });
            }
            Err(e) => triage(
                Kind::Snapshot,
                id,
                e,
                "no data is kept for it; `tresor forget` removes it",
                garbage,
                warnings,
            )?,
        }
    }
    Ok((snaps, resolved_markers))
}

/// Backup start markers that do not open: garbage (a marker that opens, whatever its state,
/// is for arming to judge).
fn plan_markers(
    repo: &Repository,
    garbage: &mut Vec<GarbageObject>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let names = match repo.storage().list(Kind::Marker) {
        Ok(l) => l,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for (name, size) in names {
        let Ok(id) = name.parse::<ObjectId>() else {
            continue;
        };
        let opened = repo.fetch(Kind::Marker, &id, Some(size)).and_then(|b| {
            Marker::open(repo.key(), &b).map_err(|e| {
                (
                    Defect::of_format(&e),
                    CoreError::Damaged(format!("backup start marker {id}: {e}")),
                )
            })
        });
        if let Err(e) = opened {
            triage(Kind::Marker, id, e, "left in place", garbage, warnings)?;
        }
    }
    Ok(())
}

/// 3. Every index object: its packs and their entries go to the tables (a full key's listing
///    of a pack preferred; see [`resolve_conflicts`] for listings with other data keys).
///    Returns the objects and those a full key's object supersedes.
fn plan_index(
    repo: &Repository,
    t: &mut Tables,
    garbage: &mut Vec<GarbageObject>,
    warnings: &mut Vec<String>,
) -> Result<(Vec<IndexObj>, IdSet<ObjectId>)> {
    let mut index_objs: Vec<IndexObj> = Vec::new();
    let mut superseded: IdSet<ObjectId> = IdSet::default();
    let mut index_names = repo.storage().list(Kind::Index)?;
    index_names.sort();
    for (name, size) in index_names {
        let id: ObjectId = name.parse()?;
        let (signer, f) = match open_index_any(repo, &id, Some(size)) {
            Ok(x) => x,
            Err(e) => {
                let what = "its packs count as unindexed; `tresor repair index` replaces it";
                triage(Kind::Index, id, e, what, garbage, warnings)?;
                continue;
            }
        };
        let verdict = repo.trust().verdict(&signer, &id);
        if !matches!(verdict, Verdict::Full | Verdict::PutOnly) {
            warnings.push(format!(
                "index {id} is signed by an unknown or revoked key: ignored (its packs count as unindexed)"
            ));
            continue;
        }
        let full = verdict == Verdict::Full;
        let lister = if full {
            superseded.extend(f.supersedes.iter().copied());
            Lister::Full
        } else {
            Lister::PutOnly(signer)
        };
        let obj = index_objs.len() as u32;
        index_objs.push(IndexObj {
            id,
            full,
            superseded: false,
            blobs: f.packs.iter().map(|p| p.blobs.len() as u64).sum(),
        });
        for p in &f.packs {
            t.add_listing(obj, id, lister, p);
        }
    }
    Ok((index_objs, superseded))
}

/// Packs listed with different data keys (a forger listed another writer's pack): the pack's
/// own header decides which key is true; when the entries in the tables are not that listing's,
/// they are replaced by the header's (not trusted: verified before they are indexed again).
fn resolve_conflicts(repo: &Repository, t: &mut Tables, warnings: &mut Vec<String>) -> Result<()> {
    let conflicts: Vec<usize> = (0..t.packs.len())
        .filter(|&p| t.packs[p].conflict)
        .collect();
    if conflicts.is_empty() {
        return Ok(());
    }
    let sizes: IdMap<ObjectId, u64> = repo
        .storage()
        .list(Kind::Pack)?
        .into_iter()
        .filter_map(|(n, s)| n.parse().ok().map(|id| (id, s)))
        .collect();
    let mut replace = Vec::new();
    for pos in conflicts {
        let id = t.packs[pos].id;
        let Some(&size) = sizes.get(&id) else {
            continue;
        };
        match read_pack_header(repo, &id, size) {
            Ok(h) if h.data_key.0 != t.packs[pos].key => replace.push((pos as u32, h)),
            Ok(_) => {}
            Err(e @ CoreError::Storage(_)) => return Err(e),
            Err(e) => warnings.push(format!("pack {id} is listed with different keys: {e}")),
        }
        warnings.push(format!(
            "pack {id} is listed with different data keys: its header decides (`tresor check` \
             names the false listings)"
        ));
    }
    let replaced: IdSet<u32> = replace.iter().map(|(p, _)| *p).collect();
    t.entries.retain(|e| !replaced.contains(&e.pack));
    for (pos, h) in replace {
        let id = t.packs[pos as usize].id;
        let ip = IndexPack {
            id,
            data_key: h.data_key,
            blobs: h.blobs,
        };
        t.add_entries(pos, Source::Header, Lister::Unverified, &ip);
        t.packs[pos as usize].trusted = false;
    }
    Ok(())
}

/// "nested deeper than … directories" (format §10).
pub(crate) fn too_deep() -> String {
    format!("nested deeper than {MAX_TREE_DEPTH} directories")
}

/// Steps 6 and 7 of [`plan`]: choose the copies to keep ([`copies::choose`]), decide per
/// indexed pack, then read the copies that must be verified before the packs decided on may
/// go; when any was read, choose and decide again (a copy that failed is replaced by the next).
/// Each round reads at least one copy not read before, so the loop ends.
///
/// # Errors
/// [`CoreError::Damaged`] when a used blob has no intact copy in storage; storage errors of
/// reading a copy.
fn keep_and_decide(
    repo: &Repository,
    entries: &[Entry],
    marked: &keep::Marked,
    signers: &keep::Signers,
    packs: &mut [PackRec],
    opts: &PruneOptions,
    warnings: &mut Vec<String>,
) -> Result<(Vec<u64>, u64, u64, keep::Decision)> {
    let mut checks = std::collections::HashMap::new();
    loop {
        for p in packs.iter_mut() {
            (p.used_blobs, p.used_bytes, p.action) = (0, 0, PackAction::Keep);
        }
        let mut missing = marked.missing.clone();
        let t = keep::Tables {
            entries,
            marked,
            signers,
            checks: &checks,
        };
        let (chosen, used_blobs, used_bytes) = keep::choose_copies(&t, packs, &mut missing);
        if !missing.is_empty() {
            return Err(CoreError::Damaged(format!(
                "snapshots use data that is not stored: {}; run `tresor check`, then `tresor repair index` or `tresor repair snapshots`",
                missing.join("; ")
            )));
        }
        let d = keep::decide(packs, used_bytes, opts);
        let requests = keep::verify_requests(&t, packs);
        if requests.is_empty() {
            return Ok((chosen, used_blobs, used_bytes, d));
        }
        keep::verify_copies(repo, packs, entries, &requests, &mut checks, warnings)?;
    }
}

/// Make a plan. Reads the whole repository's metadata; writes nothing.
///
/// # Errors
/// [`CoreError::PutOnly`]; [`CoreError::Invalid`] without a full key; [`CoreError::Damaged`]
/// when an index object, prune record, snapshot or tree cannot be read, or a used blob is
/// stored nowhere (prune would otherwise lose track of data: run `check`, then `repair`).
#[allow(
    clippy::cognitive_complexity,
    clippy::too_many_lines,
    reason = "split by r12-core/r12-cli"
)]
pub fn plan(repo: &Repository, opts: &PruneOptions) -> Result<PrunePlan> {
    repo.require_read("prune")?;
    require_full_signer(repo)?;
    let mut warnings = Vec::new();

    let mut garbage = Vec::new();
    let mut signers = keep::Signers::default();
    let (snaps, resolved_markers) =
        plan_snapshots(repo, &mut signers, &mut garbage, &mut warnings)?;
    plan_markers(repo, &mut garbage, &mut warnings)?;

    // 2. Prune records.
    let recs = load_records(repo)?;
    for s in &recs.skipped {
        match &s.error {
            CoreError::Untrusted(m) => warnings.push(m.clone()),
            e => {
                return Err(CoreError::Damaged(format!(
                    "prune record {}: {e}; run `tresor repair index`",
                    s.id
                )));
            }
        }
    }

    // 3. Index objects.
    let mut t = Tables {
        packs: Vec::new(),
        pack_pos: IdMap::default(),
        entries: Vec::new(),
        trees: Index::default(),
    };
    let (mut index_objs, superseded) = plan_index(repo, &mut t, &mut garbage, &mut warnings)?;
    resolve_conflicts(repo, &mut t, &mut warnings)?;
    for o in &mut index_objs {
        o.superseded = superseded.contains(&o.id);
    }
    for rec in &mut t.packs {
        rec.live = rec
            .listings
            .iter()
            .any(|o| !index_objs[*o as usize].superseded);
    }
    let leftovers: Vec<ObjectId> = index_objs
        .iter()
        .filter(|o| o.superseded)
        .map(|o| o.id)
        .collect();

    // Fossils of the live states (newest generation wins) and deleting lists.
    let mut gen_list: Vec<(usize, usize)> = Vec::new(); // (state, generation)
    for (si, (_, st)) in recs.states.iter().enumerate() {
        for gi in 0..st.generations.len() {
            gen_list.push((si, gi));
        }
    }
    gen_list.sort_by_key(|&(si, gi)| recs.states[si].1.generations[gi].run);
    let mut gen_packs: Vec<Vec<u32>> = vec![Vec::new(); gen_list.len()];
    for (g, &(si, gi)) in gen_list.iter().enumerate() {
        for f in &recs.states[si].1.generations[gi].fossils {
            let set = read_fossils(repo, f)
                .map_err(|e| CoreError::Damaged(format!("{e}; run `tresor repair index`")))?;
            for fp in &set.packs {
                let (pos, new) = t.pos(fp.pack.id);
                if new {
                    let lister = match fp.verified {
                        true => Lister::Full,
                        false => Lister::Unverified,
                    };
                    t.add_entries(pos, Source::Fossil(*f), lister, &fp.pack);
                }
                let rec = &mut t.packs[pos as usize];
                rec.generation = Some(g as u32);
                rec.trusted |= fp.verified;
                gen_packs[g].push(pos);
            }
        }
        for b in &recs.states[si].1.generations[gi].blind {
            let (pos, _) = t.pos(*b);
            t.packs[pos as usize].generation = Some(g as u32);
            gen_packs[g].push(pos);
        }
    }
    for (_, st) in &recs.states {
        for d in &st.deleting {
            let (pos, _) = t.pos(*d);
            t.packs[pos as usize].deleting = true;
        }
    }

    // 4. Packs in storage, last.
    for (name, size) in repo.storage().list(Kind::Pack)? {
        let Ok(id) = name.parse::<ObjectId>() else {
            continue;
        };
        let (pos, _) = t.pos(id);
        t.packs[pos as usize].size = Some(size);
    }
    let seen_before: IdSet<ObjectId> = recs
        .states
        .iter()
        .flat_map(|(_, s)| s.unindexed.iter().copied())
        .collect();
    let mut orphans = Vec::new();
    let mut blind: Vec<u32> = Vec::new();
    let mut new_unindexed = 0usize;
    for pos in 0..t.packs.len() as u32 {
        let rec = &t.packs[pos as usize];
        if rec.size.is_none() || rec.live || rec.generation.is_some() || rec.deleting {
            continue;
        }
        orphans.push(pos);
        if !seen_before.contains(&rec.id) {
            new_unindexed += 1;
        }
        if rec.listings.is_empty() {
            // Read whole: a pack stored under a wrong name (a copy, or modified) must not be
            // listed anywhere readers look (it is condemned without entries).
            let id = rec.id;
            let header = match repo.fetch(Kind::Pack, &id, rec.size) {
                Ok(b) => pack::read_header(repo.key(), &b).map_err(CoreError::from),
                // A transient failure must not condemn a pack blind.
                Err((Defect::Unreadable, e)) => return Err(e),
                Err((_, e)) => Err(e),
            };
            match header {
                Ok(h) => t.add_entries(
                    pos,
                    Source::Header,
                    Lister::Unverified,
                    &IndexPack {
                        id,
                        data_key: h.data_key,
                        blobs: h.blobs,
                    },
                ),
                Err(e) => {
                    blind.push(pos);
                    warnings.push(format!(
                        "unindexed pack {id}: {e}: condemned without its entries"
                    ));
                }
            }
        }
    }

    // 5. Mark what the snapshots use.
    let mut entries = std::mem::take(&mut t.entries);
    entries.sort_unstable_by(|a, b| a.id.cmp(&b.id).then(a.pack.cmp(&b.pack)));
    let marked = keep::mark_used(repo, &snaps, &entries, &t.trees)?;
    drop(t.trees);

    // 6., 7. Choose the stored copies of each used blob to keep, decide per indexed pack, and
    //    verify the copies that must be verified before others go — until none is left.
    let packs = &mut t.packs;
    let (chosen, used_blobs, used_bytes, d) = keep_and_decide(
        repo,
        &entries,
        &marked,
        &signers,
        packs,
        opts,
        &mut warnings,
    )?;
    let keep::Decision {
        unused_bytes,
        max_unused_bytes,
        unused_after,
        repack_blobs,
        repack_bytes,
    } = d;

    // 8. Earlier generations: approval and deletion.
    let mut hosts: IdMap<ObjectId, Option<String>> = IdMap::default();
    for s in &snaps {
        hosts.insert(s.id, s.user.map(|_| s.host.clone()));
    }
    let mut generations = Vec::new();
    let mut approved = vec![false; gen_list.len()];
    for (g, &(si, gi)) in gen_list.iter().enumerate() {
        let gen_ = &recs.states[si].1.generations[gi];
        let mut status = GenerationStatus {
            run: gen_.run,
            packs: 0,
            bytes: 0,
            armed: gen_.armed.is_some(),
            approved: false,
            waiting_for: Vec::new(),
            resurrected: 0,
            reason: String::new(),
        };
        for &pos in &gen_packs[g] {
            let p = &packs[pos as usize];
            if p.generation == Some(g as u32) && !p.live {
                status.packs += 1;
                status.bytes += p.size.unwrap_or(0);
                if p.action == PackAction::Resurrect {
                    status.resurrected += 1;
                }
            }
        }
        match &gen_.armed {
            None => {
                status.reason =
                    "not armed yet: index objects naming its packs were still present".into();
            }
            Some(a) => {
                status.waiting_for = a
                    .hosts
                    .iter()
                    .filter(|h| !opts.inactive_hosts.contains(h))
                    .filter(|h| {
                        !snaps.iter().any(|s| {
                            s.counts && &s.host == *h && a.snapshots.binary_search(&s.id).is_err()
                        })
                    })
                    .cloned()
                    .collect();
                if !status.waiting_for.is_empty() {
                    status.reason = format!(
                        "waiting for a new snapshot of {}",
                        status
                            .waiting_for
                            .iter()
                            .map(|h| format!("{h:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                } else if new_unindexed > 0 {
                    status.reason = format!(
                        "{new_unindexed} packs no index lists appeared (a backup may be running)"
                    );
                } else {
                    status.approved = true;
                    approved[g] = true;
                    status.reason =
                        "approved: every host has written a snapshot since it was armed".into();
                }
            }
        }
        generations.push(status);
    }
    let mut delete = Vec::new();
    let mut bytes_freed = 0u64;
    for p in packs.iter_mut() {
        if p.live || p.size.is_none() || p.action == PackAction::Resurrect {
            continue;
        }
        let by_generation = p.generation.is_some_and(|g| approved[g as usize]);
        if by_generation || (p.deleting && p.generation.is_none()) {
            p.action = PackAction::Delete;
            delete.push(p.planned());
            bytes_freed += p.size.unwrap_or(0);
        } else if p.generation.is_some() {
            p.action = PackAction::Wait;
        }
    }

    // Packs under an S3 Object Lock are planned around: never attempted, kept for a later run
    // (see `Repository::lock_end` on clocks).
    let mut locked = Vec::new();
    let mut unlocked = Vec::with_capacity(delete.len());
    for d in delete {
        match repo.lock_end(Kind::Pack, &d.id) {
            Ok(Some(until)) => {
                bytes_freed -= d.size;
                locked.push((d, rfc3339_utc(until)));
            }
            Ok(_) => unlocked.push(d),
            Err(e) if e.kind == ErrorKind::NotFound => unlocked.push(d),
            Err(e) => {
                warnings.push(format!(
                    "pack {}: could not ask the storage whether it is locked ({e}); kept for a later run",
                    d.id
                ));
                bytes_freed -= d.size;
                locked.push((d, String::new()));
            }
        }
    }
    let delete = unlocked;
    if !locked.is_empty() {
        let ids: IdSet<ObjectId> = locked.iter().map(|(d, _)| d.id).collect();
        for p in packs.iter_mut() {
            if p.action == PackAction::Delete && ids.contains(&p.id) {
                p.action = PackAction::Wait;
            }
        }
    }

    // Orphans: resurrected when needed; condemned when an earlier run saw them unindexed
    // already; else remembered.
    let mut condemn_unindexed = Vec::new();
    let mut unindexed_seen = Vec::new();
    for &pos in &orphans {
        let p = &mut packs[pos as usize];
        if p.action == PackAction::Resurrect {
            continue;
        }
        if seen_before.contains(&p.id) {
            p.action = PackAction::Condemn;
            condemn_unindexed.push(p.planned());
        } else {
            p.action = PackAction::Unindexed;
            unindexed_seen.push(p.planned());
        }
    }

    // The consolidated index replaces every live index object that lists a changed pack, and
    // small objects of full keys when there are many.
    let mut affected: Vec<u32> = Vec::new();
    let mut is_affected = vec![false; index_objs.len()];
    for p in packs.iter() {
        if p.live
            && matches!(
                p.action,
                PackAction::Condemn | PackAction::Repack | PackAction::Drop
            )
        {
            for &o in &p.listings {
                if !index_objs[o as usize].superseded {
                    is_affected[o as usize] = true;
                }
            }
        }
    }
    let small: Vec<usize> = (0..index_objs.len())
        .filter(|&o| {
            let x = &index_objs[o];
            !x.superseded && x.full && x.blobs < SMALL_INDEX_BLOBS
        })
        .collect();
    if small.iter().filter(|&&o| !is_affected[o]).count() >= CONSOLIDATE_MIN {
        for o in small {
            is_affected[o] = true;
        }
    }
    for (o, a) in is_affected.iter().enumerate() {
        if *a {
            affected.push(o as u32);
        }
    }

    let bytes_condemned: u64 = packs
        .iter()
        .filter(|p| {
            p.size.is_some()
                && (matches!(p.action, PackAction::Repack) || (p.action == PackAction::Condemn))
        })
        .map(|p| p.size.unwrap_or(0))
        .sum();
    let condemn_unused: Vec<PlannedPack> = packs
        .iter()
        .filter(|p| p.live && p.action == PackAction::Condemn)
        .map(PackRec::planned)
        .collect();
    let repack: Vec<PlannedPack> = packs
        .iter()
        .filter(|p| p.action == PackAction::Repack)
        .map(PackRec::planned)
        .collect();
    let drop_missing: Vec<ObjectId> = packs
        .iter()
        .filter(|p| p.action == PackAction::Drop)
        .map(|p| p.id)
        .collect();
    let resurrect: Vec<ObjectId> = packs
        .iter()
        .filter(|p| p.action == PackAction::Resurrect)
        .map(|p| p.id)
        .collect();

    // The next state, before the new generation is added.
    let run = recs.states.iter().map(|(_, s)| s.run).max().unwrap_or(0) + 1;
    let mut next_state = PruneState {
        version: tresor_format::FORMAT_VERSION,
        run,
        supersedes: recs.states.iter().map(|(id, _)| *id).collect(),
        generations: Vec::new(),
        deleting: delete
            .iter()
            .chain(locked.iter().map(|(d, _)| d))
            .map(|d| d.id)
            .collect(),
        unindexed: unindexed_seen.iter().map(|p| p.id).collect(),
    };
    next_state.deleting.sort();
    next_state.unindexed.sort();
    for (g, &(si, gi)) in gen_list.iter().enumerate() {
        if !approved[g] {
            next_state
                .generations
                .push(recs.states[si].1.generations[gi].clone());
        }
    }
    let unarmed = next_state.generations.iter().any(|g| g.armed.is_none());
    let live_fossils = recs.live_fossils();
    let old_state_same = recs.states.len() == 1 && recs.states[0].1.same_content(&next_state);
    let nothing_to_do = condemn_unused.is_empty()
        && condemn_unindexed.is_empty()
        && repack.is_empty()
        && drop_missing.is_empty()
        && resurrect.is_empty()
        && delete.is_empty()
        && locked.is_empty()
        && affected.is_empty()
        && leftovers.is_empty()
        && recs.superseded.is_empty()
        && !unarmed
        && garbage.is_empty()
        && (old_state_same || (recs.states.is_empty() && next_state.is_empty()))
        && recs
            .fossils
            .iter()
            .all(|f| live_fossils.binary_search(f).is_ok());

    let blobs = entries.len() as u64;
    let index_superseded = affected.len();
    let index_leftovers = leftovers.len();
    Ok(PrunePlan {
        run,
        snapshots: snaps.len(),
        index_objects: index_objs.len(),
        packs: packs.len(),
        blobs,
        used_blobs,
        used_bytes,
        unused_bytes,
        max_unused_bytes,
        unused_bytes_after: unused_after,
        condemn_unused,
        condemn_unindexed,
        unindexed_seen,
        repack,
        repack_blobs,
        repack_bytes,
        drop_missing,
        resurrect,
        delete,
        locked,
        bytes_freed,
        bytes_condemned,
        generations,
        new_unindexed,
        index_superseded,
        index_leftovers,
        garbage,
        warnings,
        work: std::sync::Mutex::new(Work {
            packs: t.packs,
            pack_pos: t.pack_pos,
            index_objs,
            entries,
            chosen,
            states: recs.states,
            superseded_states: recs.superseded,
            fossil_ids: recs.fossils,
            next_state,
            hosts,
            resolved_markers,
            orphans,
            blind,
            affected,
            leftovers,
            workers: opts.workers.max(1),
            nothing_to_do,
            executed: false,
        }),
    })
}

// ───────────────────────────── execution ─────────────────────────────

/// What a prune run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneStats {
    /// The run number.
    pub run: u64,
    /// Packs repacked (their used blobs copied).
    pub packs_repacked: usize,
    /// Blobs copied.
    pub blobs_repacked: u64,
    /// New packs written by the repack.
    pub packs_written: u64,
    /// Bytes written: packs, index objects and prune records.
    pub bytes_written: u64,
    /// Index objects written.
    pub index_written: usize,
    /// Index objects deleted.
    pub index_deleted: usize,
    /// Packs condemned (freed by a later run).
    pub packs_condemned: usize,
    /// Their bytes.
    pub bytes_condemned: u64,
    /// Packs indexed again.
    pub packs_resurrected: usize,
    /// Packs deleted.
    pub packs_deleted: usize,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Prune records written.
    pub records_written: usize,
    /// Prune records deleted.
    pub records_deleted: usize,
    /// Backup start markers deleted (their snapshots exist).
    pub markers_deleted: usize,
    /// Garbage objects deleted ([`PrunePlan::garbage`]).
    pub garbage_deleted: usize,
    /// Whether the pending generations are armed after this run.
    pub armed: bool,
    /// Objects the storage refused to delete (append-only storage, object lock): `kind id: error`.
    pub undeletable: Vec<String>,
    /// Objects due for deletion but still locked by the storage (S3 Object Lock), not
    /// attempted: `kind id: locked until TIME`. A later run deletes them.
    pub locked: Vec<String>,
    /// Other problems met on the way that did not stop the run.
    pub warnings: Vec<String>,
}

/// Streams index packs into index objects of about [`PART_BLOBS`] blobs each.
pub(crate) struct IndexWriter<'a> {
    repo: &'a Repository,
    buf: Vec<IndexPack>,
    blobs: usize,
    dry_run: bool,
    /// Objects written.
    pub written: Vec<ObjectId>,
    /// Bytes written.
    pub bytes: u64,
}

impl<'a> IndexWriter<'a> {
    pub(crate) fn new(repo: &'a Repository, dry_run: bool) -> Self {
        IndexWriter {
            repo,
            buf: Vec::new(),
            blobs: 0,
            dry_run,
            written: Vec::new(),
            bytes: 0,
        }
    }
    pub(crate) fn push(&mut self, p: IndexPack) -> Result<()> {
        self.blobs += p.blobs.len();
        self.buf.push(p);
        if self.blobs >= PART_BLOBS {
            self.flush(Vec::new())?;
        }
        Ok(())
    }
    fn flush(&mut self, supersedes: Vec<ObjectId>) -> Result<()> {
        let file = IndexFile {
            version: tresor_format::FORMAT_VERSION,
            supersedes,
            packs: std::mem::take(&mut self.buf),
        };
        self.blobs = 0;
        let bytes = file.to_object(self.repo.key(), self.repo.signer())?;
        let id = if self.dry_run {
            ObjectId::of(&bytes)
        } else {
            self.repo.write_object(Kind::Index, &bytes)?
        };
        self.bytes += bytes.len() as u64;
        self.written.push(id);
        Ok(())
    }
    /// Write what is buffered; the last object carries `supersedes` (written even when empty
    /// if `supersedes` is not).
    pub(crate) fn finish(&mut self, supersedes: Vec<ObjectId>) -> Result<()> {
        if !self.buf.is_empty() || !supersedes.is_empty() {
            self.flush(supersedes)?;
        }
        Ok(())
    }
}

struct FossilWriter<'a> {
    repo: &'a Repository,
    run: u64,
    buf: Vec<FossilPack>,
    blobs: usize,
    written: Vec<ObjectId>,
    bytes: u64,
    packs: u64,
    pack_bytes: u64,
}

impl FossilWriter<'_> {
    fn push(&mut self, p: FossilPack, size: u64) -> Result<()> {
        self.blobs += p.pack.blobs.len() + 1;
        self.packs += 1;
        self.pack_bytes += size;
        self.buf.push(p);
        if self.blobs >= PART_BLOBS {
            self.flush()?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let rec = Record::Fossils(FossilSet {
            version: tresor_format::FORMAT_VERSION,
            run: self.run,
            packs: std::mem::take(&mut self.buf),
        });
        self.blobs = 0;
        let (id, n) = write_record(self.repo, &rec)?;
        self.written.push(id);
        self.bytes += n;
        Ok(())
    }
}

/// Delete the backup start markers that snapshots of their own host list (their backups have
/// ended), also when a run has nothing else to do.
fn delete_resolved_markers(repo: &Repository, resolved: &Resolved, stats: &mut PruneStats) {
    if resolved.is_empty() {
        return;
    }
    if let Ok(list) = repo.storage().list(Kind::Marker) {
        for (name, _) in list {
            if let Ok(id) = name.parse::<ObjectId>()
                && let Some(host) = resolved.get(&id)
                && open_marker(repo, &id).is_ok_and(|(_, h)| h == *host)
                && delete_object(repo, Kind::Marker, &id, stats)
            {
                stats.markers_deleted += 1;
            }
        }
    }
}

/// Delete an object unless the storage holds it under a lock (then it is reported in
/// [`PruneStats::locked`] and not attempted). Returns whether it is gone.
fn delete_object(repo: &Repository, kind: Kind, id: &ObjectId, stats: &mut PruneStats) -> bool {
    if let Ok(Some(until)) = repo.lock_end(kind, id) {
        stats
            .locked
            .push(format!("{kind} {id}: locked until {}", rfc3339_utc(until)));
        return false;
    }
    match repo.storage().delete(kind, &id.to_hex()) {
        Ok(()) => true,
        Err(e) if e.kind == ErrorKind::NotFound => true,
        Err(e) if e.kind == ErrorKind::PermissionDenied => {
            stats
                .undeletable
                .push(format!("{kind} {id}: {}", e.message));
            false
        }
        Err(e) => {
            stats
                .warnings
                .push(format!("could not delete {kind} {id}: {e}"));
            false
        }
    }
}

impl Work {
    fn chosen_in(&self, id: &BlobId, pos: u32) -> bool {
        range_of(&self.entries, &id.0).any(|k| self.entries[k].pack == pos && bit(&self.chosen, k))
    }

    fn live_fossils(&self) -> Vec<ObjectId> {
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

/// Record the snapshots present and the hosts that must write a new one before the generation
/// may be deleted: the hosts of those snapshots (those that speak for their host: a put-only
/// key naming another host is ignored, as readers ignore it), and the hosts of backup start
/// markers no snapshot lists (a backup that may have started before the condemned packs left the index —
/// for a host without snapshots yet, its first backup). Markers are listed after the snapshots,
/// so a backup that ends in between counts as running: the safe side.
fn arming(
    repo: &Repository,
    run: u64,
    known: &IdMap<ObjectId, Option<String>>,
    resolved: &Resolved,
    warnings: &mut Vec<String>,
) -> Result<Arming> {
    let mut snapshots = repo.snapshot_ids()?;
    snapshots.sort();
    let mut hosts: Vec<String> = Vec::new();
    let mut resolved = resolved.clone();
    for id in &snapshots {
        match known.get(id) {
            Some(h) => hosts.extend(h.iter().cloned()),
            None => {
                if let Ok((signer, s)) = open_snapshot_any(repo, id, None) {
                    resolve_markers(repo, id, &signer, &s, &mut resolved);
                    if repo.trust().speaks_for(&signer, id, &s.hostname) {
                        hosts.push(s.hostname);
                    }
                }
            }
        }
    }
    for (_, host) in open_markers(repo, &resolved, warnings)? {
        hosts.push(host);
    }
    hosts.sort();
    hosts.dedup();
    Ok(Arming {
        run,
        snapshots,
        hosts,
    })
}

/// Open an index object (whatever its signer) with as few copies of it in memory at once as
/// possible. `listed`: its size from a listing.
fn open_index_any(
    repo: &Repository,
    id: &ObjectId,
    listed: Option<u64>,
) -> Judged<([u8; 32], IndexFile)> {
    let bad = |e: FormatError| {
        (
            Defect::of_format(&e),
            CoreError::Damaged(format!("index {id}: {e}")),
        )
    };
    let stored = repo.fetch(Kind::Index, id, listed)?;
    let (signer, env) = IndexFile::envelope(&stored).map_err(bad)?;
    drop(stored);
    let sealed = env.sealed;
    drop(env.dedup);
    let file = IndexFile::open_sealed(repo.key(), &sealed, &signer).map_err(bad)?;
    Ok((signer, file))
}

fn open_index(repo: &Repository, id: &ObjectId) -> Result<([u8; 32], IndexFile)> {
    open_index_any(repo, id, None).map_err(|(_, e)| e)
}

impl PrunePlan {
    /// Whether executing would change nothing.
    pub fn is_empty(&self) -> bool {
        self.work.lock().map(|w| w.nothing_to_do).unwrap_or(false)
    }

    /// Carry the plan out (see the module documentation for the order of writes). `progress`
    /// hears of every byte repacked.
    ///
    /// # Errors
    /// Storage write failures, and [`CoreError::Damaged`] when a pack that must be indexed again
    /// does not verify. Whatever was written before an error leaves a consistent repository
    /// that the next run completes; failures to delete are reported in the stats, not raised.
    /// A plan is executed once; a second call is [`CoreError::Invalid`].
    #[allow(
        clippy::cognitive_complexity,
        clippy::too_many_lines,
        reason = "split by r12-core/r12-cli"
    )]
    pub fn execute(&self, repo: &Repository, progress: &dyn Progress) -> Result<PruneStats> {
        require_full_signer(repo)?;
        let mut guard = self
            .work
            .lock()
            .map_err(|_| CoreError::Invalid("prune plan poisoned".into()))?;
        if guard.executed {
            return Err(CoreError::Invalid(
                "this prune plan was executed already".into(),
            ));
        }
        guard.executed = true;
        let w = &mut *guard;
        let mut stats = PruneStats {
            run: self.run,
            ..PruneStats::default()
        };
        if w.nothing_to_do {
            delete_resolved_markers(repo, &w.resolved_markers, &mut stats);
            stats.armed = w
                .states
                .iter()
                .all(|(_, s)| s.generations.iter().all(|g| g.armed.is_some()));
            return Ok(stats);
        }
        let mut actions: Vec<PackAction> = w.packs.iter().map(|p| p.action).collect();

        // 0. Garbage: no reader uses it, so it goes first.
        for g in &self.garbage {
            if delete_object(repo, g.kind, &g.id, &mut stats) {
                stats.garbage_deleted += 1;
            }
        }

        // 1. Repack: copy the chosen used blobs of repacked packs into new packs.
        let cfg = repo.config();
        let packer = Packer::new(
            repo.storage().clone(),
            repo.key().clone(),
            repo.signer_copy(),
            cfg.pack_size,
            cfg.compression_level,
            w.workers,
            false,
        );
        // A blob kept in several packs (copies no full key vouched for) is copied once.
        let mut copied: IdSet<BlobId> = IdSet::default();
        for (pos, p) in w.packs.iter().enumerate() {
            if p.action != PackAction::Repack {
                continue;
            }
            let r = (|| -> Result<u64> {
                let bytes = repo.read_object(Kind::Pack, &p.id)?;
                let h = pack::read_header(repo.key(), &bytes)?;
                let mut n = 0;
                for b in &h.blobs {
                    if !w.chosen_in(&b.id, pos as u32) || copied.contains(&b.id) {
                        continue;
                    }
                    let stored = stored_blob(&bytes, b.offset, b.length).ok_or_else(|| {
                        CoreError::Damaged(format!("pack {}: blob {} beyond its end", p.id, b.id))
                    })?;
                    let plain =
                        blob::decode(&h.data_key, &repo.key().id_key, b.blob_type, &b.id, stored)?;
                    progress.bytes_read(b.length);
                    packer.add(b.blob_type, b.id, plain)?;
                    copied.insert(b.id);
                    n += 1;
                }
                Ok(n)
            })();
            match r {
                Ok(n) => {
                    stats.packs_repacked += 1;
                    stats.blobs_repacked += n;
                }
                Err(e @ CoreError::Storage(_)) if !e.is_damage() => return Err(e),
                Err(e) => {
                    stats
                        .warnings
                        .push(format!("pack {} not repacked, kept: {e}", p.id));
                    actions[pos] = PackAction::Keep;
                }
            }
        }
        let pstats = packer.finish()?;
        // The blob table is not needed any more: give its memory back before streaming the
        // index objects again.
        w.entries = Vec::new();
        w.chosen = Vec::new();
        stats.packs_written = pstats.packs;
        stats.bytes_written += pstats.bytes_written;
        stats.index_written += pstats.index_objects.len();

        // 2. Resurrect: an index object listing condemned or unindexed packs with needed blobs.
        let mut rz = IndexWriter::new(repo, false);
        let resurrect_pos: IdSet<ObjectId> = w
            .packs
            .iter()
            .filter(|p| p.action == PackAction::Resurrect)
            .map(|p| p.id)
            .collect();
        if !resurrect_pos.is_empty() {
            let mut done: IdSet<ObjectId> = IdSet::default();
            for f in w.live_fossils() {
                let set = read_fossils(repo, &f)?;
                for fp in set.packs {
                    if resurrect_pos.contains(&fp.pack.id) && done.insert(fp.pack.id) {
                        if !fp.verified {
                            verify_pack(repo, &fp.pack)?;
                        }
                        rz.push(fp.pack)?;
                    }
                }
            }
            for &pos in &w.orphans {
                let p = &w.packs[pos as usize];
                if p.action == PackAction::Resurrect && done.insert(p.id) {
                    let h = read_pack_header(repo, &p.id, p.size.unwrap_or(0))?;
                    let ip = IndexPack {
                        id: p.id,
                        data_key: h.data_key,
                        blobs: h.blobs,
                    };
                    if !p.trusted {
                        verify_pack(repo, &ip)?;
                    }
                    rz.push(ip)?;
                }
            }
            rz.finish(Vec::new())?;
            stats.packs_resurrected = done.len();
        }
        stats.index_written += rz.written.len();
        stats.bytes_written += rz.bytes;

        // 3. One pass over the affected index objects: condemned packs into fossils of a new
        //    generation, kept packs into the consolidated index (all but its last part).
        let mut fossils = FossilWriter {
            repo,
            run: self.run,
            buf: Vec::new(),
            blobs: 0,
            written: Vec::new(),
            bytes: 0,
            packs: 0,
            pack_bytes: 0,
        };
        let mut consolidated = IndexWriter::new(repo, false);
        let mut emitted = vec![false; w.packs.len()];
        let affected: IdSet<u32> = w.affected.iter().copied().collect();
        for &o in &w.affected {
            let obj = &w.index_objs[o as usize];
            let (_, f) = open_index(repo, &obj.id)?;
            for ip in f.packs {
                let Some(&pos) = w.pack_pos.get(&ip.id) else {
                    continue;
                };
                let p = &w.packs[pos as usize];
                // A listing with another key than the pack's (a forger's) is never passed on.
                if emitted[pos as usize] || ip.data_key.0 != p.key {
                    continue;
                }
                match actions[pos as usize] {
                    PackAction::Condemn | PackAction::Repack => {
                        emitted[pos as usize] = true;
                        stats.packs_condemned += 1;
                        stats.bytes_condemned += p.size.unwrap_or(0);
                        fossils.push(
                            FossilPack {
                                pack: ip,
                                verified: p.trusted,
                            },
                            p.size.unwrap_or(0),
                        )?;
                    }
                    PackAction::Keep => {
                        // Listed elsewhere too, by an object that stays: nothing to do.
                        let stays = p.listings.iter().any(|l| {
                            !affected.contains(l) && !w.index_objs[*l as usize].superseded
                        });
                        emitted[pos as usize] = true;
                        if !stays {
                            if !p.trusted {
                                verify_pack(repo, &ip)?;
                            }
                            consolidated.push(ip)?;
                        }
                    }
                    _ => {}
                }
            }
        }
        // Packs condemned whose affected listings all had a false key: their entries come from
        // their headers, like those of orphans.
        let listed_falsely = (0..w.packs.len() as u32).filter(|&pos| {
            let p = &w.packs[pos as usize];
            p.conflict
                && p.live
                && !emitted[pos as usize]
                && matches!(
                    actions[pos as usize],
                    PackAction::Condemn | PackAction::Repack
                )
        });
        let mut blind = Vec::new();
        for pos in w.orphans.iter().copied().chain(listed_falsely) {
            let p = &w.packs[pos as usize];
            // (Orphans are never repacked: only indexed packs are.)
            if !matches!(
                actions[pos as usize],
                PackAction::Condemn | PackAction::Repack
            ) {
                continue;
            }
            stats.packs_condemned += 1;
            let header = if w.blind.contains(&pos) {
                Err(CoreError::Damaged("unreadable".into()))
            } else {
                read_pack_header(repo, &p.id, p.size.unwrap_or(0))
            };
            let ip = match header {
                Ok(h) => IndexPack {
                    id: p.id,
                    data_key: h.data_key,
                    blobs: h.blobs,
                },
                Err(_) => {
                    // No entries to list: readers must not see it; deleted with the generation.
                    blind.push(p.id);
                    stats.bytes_condemned += p.size.unwrap_or(0);
                    continue;
                }
            };
            stats.bytes_condemned += p.size.unwrap_or(0);
            fossils.push(
                FossilPack {
                    pack: ip,
                    verified: p.trusted,
                },
                p.size.unwrap_or(0),
            )?;
        }
        fossils.flush()?;
        stats.records_written += fossils.written.len();
        stats.bytes_written += fossils.bytes;

        // 4. The new state: after the fossils and the resurrection index, before the index
        //    objects that stop listing the condemned packs are superseded.
        let mut state = w.next_state.clone();
        let blind_count = blind.len() as u64;
        let blind_bytes: u64 = blind
            .iter()
            .filter_map(|b| w.pack_pos.get(b))
            .map(|&pos| w.packs[pos as usize].size.unwrap_or(0))
            .sum();
        if !fossils.written.is_empty() || !blind.is_empty() {
            state.generations.push(Generation {
                run: self.run,
                fossils: fossils.written.clone(),
                blind,
                packs: fossils.packs + blind_count,
                bytes: fossils.pack_bytes + blind_bytes,
                armed: None,
            });
        }
        let mut current: Vec<ObjectId> = w.states.iter().map(|(id, _)| *id).collect();
        let changed = !(w.states.len() == 1 && w.states[0].1.same_content(&state));
        if !state.is_empty() && changed {
            state.supersedes = current.clone();
            let (id, n) = write_record(repo, &Record::State(state.clone()))?;
            stats.records_written += 1;
            stats.bytes_written += n;
            for old in &current {
                if delete_object(repo, Kind::PruneRecord, old, &mut stats) {
                    stats.records_deleted += 1;
                }
            }
            current = vec![id];
        }

        // 5. The consolidated index: its last part supersedes the affected objects.
        let supersedes: Vec<ObjectId> = w
            .affected
            .iter()
            .map(|&o| w.index_objs[o as usize].id)
            .collect();
        consolidated.finish(supersedes.clone())?;
        stats.index_written += consolidated.written.len();
        stats.bytes_written += consolidated.bytes;

        // 6. Superseded objects: states, fossils no state references, index objects.
        for old in &w.superseded_states {
            if delete_object(repo, Kind::PruneRecord, old, &mut stats) {
                stats.records_deleted += 1;
            }
        }
        let mut gone_index = true;
        for id in supersedes.iter().chain(w.leftovers.iter()) {
            if delete_object(repo, Kind::Index, id, &mut stats) {
                stats.index_deleted += 1;
            } else {
                gone_index = false;
            }
        }

        // 7. Approved packs (those under an object lock stay in the `deleting` list).
        let mut all_deleted = self.locked.is_empty();
        for p in &w.packs {
            if p.action == PackAction::Delete {
                if delete_object(repo, Kind::Pack, &p.id, &mut stats) {
                    stats.packs_deleted += 1;
                    stats.bytes_freed += p.size.unwrap_or(0);
                } else {
                    all_deleted = false;
                }
            }
        }

        // 8. Arm: once no index object names a condemned pack, record the snapshots present.
        if state.generations.iter().any(|g| g.armed.is_none()) {
            let superseded_ids: IdSet<ObjectId> = supersedes
                .iter()
                .chain(w.leftovers.iter())
                .copied()
                .collect();
            let present = repo.storage().list(Kind::Index)?;
            let clean = gone_index
                && !present.iter().any(|(n, _)| {
                    n.parse()
                        .is_ok_and(|id: ObjectId| superseded_ids.contains(&id))
                });
            if clean {
                let arming = arming(
                    repo,
                    self.run,
                    &w.hosts,
                    &w.resolved_markers,
                    &mut stats.warnings,
                )?;
                for g in &mut state.generations {
                    if g.armed.is_none() {
                        g.armed = Some(arming.clone());
                    }
                }
                state.supersedes = current.clone();
                let (id, n) = write_record(repo, &Record::State(state.clone()))?;
                stats.records_written += 1;
                stats.bytes_written += n;
                for old in &current {
                    if delete_object(repo, Kind::PruneRecord, old, &mut stats) {
                        stats.records_deleted += 1;
                    }
                }
                current = vec![id];
            } else {
                stats.warnings.push(
                    "condemned packs are not armed yet: superseded index objects could not be deleted (the next prune retries)"
                        .into(),
                );
            }
        }
        if state.is_empty()
            || (state.generations.is_empty() && state.unindexed.is_empty() && all_deleted)
        {
            for old in &current {
                if delete_object(repo, Kind::PruneRecord, old, &mut stats) {
                    stats.records_deleted += 1;
                }
            }
        }
        let referenced: IdSet<ObjectId> = state
            .generations
            .iter()
            .flat_map(|g| g.fossils.iter().copied())
            .collect();
        for f in &w.fossil_ids {
            if !referenced.contains(f) && delete_object(repo, Kind::PruneRecord, f, &mut stats) {
                stats.records_deleted += 1;
            }
        }
        // 10. Backup start markers whose snapshot exists have done their job.
        delete_resolved_markers(repo, &w.resolved_markers, &mut stats);
        stats.armed = state.generations.iter().all(|g| g.armed.is_some());
        Ok(stats)
    }
}

fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

impl fmt::Display for PrunePlan {
    #[allow(clippy::too_many_lines, reason = "split by r12-core/r12-cli")]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sum = |v: &[PlannedPack]| v.iter().map(|p| p.size).sum::<u64>();
        writeln!(
            f,
            "prune run {}: {} snapshots, {} packs, {} blobs ({} used, {}; unused {})",
            self.run,
            self.snapshots,
            self.packs,
            self.blobs,
            self.used_blobs,
            size(self.used_bytes),
            size(self.unused_bytes)
        )?;
        writeln!(
            f,
            "condemn: {} unused packs ({}), {} unindexed packs ({}) — freed by a later run",
            self.condemn_unused.len(),
            size(sum(&self.condemn_unused)),
            self.condemn_unindexed.len(),
            size(sum(&self.condemn_unindexed))
        )?;
        writeln!(
            f,
            "repack: {} packs ({}), copying {} blobs ({}); unused after: {} (tolerated {})",
            self.repack.len(),
            size(sum(&self.repack)),
            self.repack_blobs,
            size(self.repack_bytes),
            size(self.unused_bytes_after),
            size(self.max_unused_bytes)
        )?;
        if !self.unindexed_seen.is_empty() {
            writeln!(
                f,
                "unindexed: {} packs ({}) no index lists, seen for the first time — condemned by the next run if still unindexed",
                self.unindexed_seen.len(),
                size(sum(&self.unindexed_seen))
            )?;
        }
        if !self.drop_missing.is_empty() {
            writeln!(
                f,
                "drop from the index: {} packs missing from storage",
                self.drop_missing.len()
            )?;
        }
        if !self.resurrect.is_empty() {
            writeln!(
                f,
                "resurrect: {} condemned or unindexed packs hold data snapshots use",
                self.resurrect.len()
            )?;
        }
        if !self.locked.is_empty() {
            let until = self
                .locked
                .iter()
                .map(|(_, t)| t.as_str())
                .max()
                .unwrap_or_default();
            writeln!(
                f,
                "locked: {} packs ({}) due for deletion are still under the storage's object lock (until {until} at the latest): not attempted, deleted by a prune run after that",
                self.locked.len(),
                size(self.locked.iter().map(|(p, _)| p.size).sum())
            )?;
        }
        for g in &self.generations {
            writeln!(
                f,
                "generation of run {}: {} packs ({}){}: {}",
                g.run,
                g.packs,
                size(g.bytes),
                if g.resurrected > 0 {
                    format!(", {} resurrected", g.resurrected)
                } else {
                    String::new()
                },
                g.reason
            )?;
        }
        writeln!(
            f,
            "delete now: {} packs, {} freed",
            self.delete.len(),
            size(self.bytes_freed)
        )?;
        if self.index_superseded + self.index_leftovers > 0 {
            writeln!(
                f,
                "index: {} objects consolidated, {} superseded objects removed",
                self.index_superseded, self.index_leftovers
            )?;
        }
        for g in &self.garbage {
            writeln!(
                f,
                "garbage (no key wrote it; deleted by this run): {} {}: {}",
                g.kind, g.id, g.reason
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        if self.is_empty() {
            writeln!(f, "nothing to do")?;
        }
        Ok(())
    }
}
