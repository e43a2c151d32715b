//! Prune records (format §16): the prune state, the fossils of condemned packs, and forget
//! records.
//!
//! A prune record (`prune/<id>`) is a signed envelope ([`crate::sign`], kind Index) around an
//! HPKE sealed object ([`SealedKind::Index`], bound to the envelope's signer) of
//!
//! ```text
//! "TPR2" (RECORD_MAGIC) || postcard(Record)
//! ```
//!
//! The magic separates records from index objects, whose sealed plaintext starts with the
//! version varint `0x02`: a record stored under `index/` (or the reverse) does not decode. Which
//! records count (only full keys' ones) is for readers to judge; this module only encodes and
//! decodes.

use crate::ObjectId;
use crate::crypto::{MasterKey, SealedKind};
use crate::error::{FormatError, Result};
use crate::index::{IndexPack, IndexPackV2};
use crate::sign::{SignedKind, Signer, open_envelope};
use serde::{Deserialize, Serialize};

/// Magic at the start of the sealed plaintext of a prune record.
pub const RECORD_MAGIC: &[u8; 4] = b"TPR2";

/// The prune state: pending generations of condemned packs and packs being deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PruneState {
    /// Record version, [`crate::FORMAT_VERSION`] (2).
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
    /// Whether nothing is pending: no generation, nothing being deleted, nothing unindexed.
    pub fn is_empty(&self) -> bool {
        self.generations.is_empty() && self.deleting.is_empty() && self.unindexed.is_empty()
    }

    /// Whether `other` holds the same generations, `deleting` and `unindexed` lists (whatever
    /// its version, run and `supersedes`).
    pub fn same_content(&self, other: &PruneState) -> bool {
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
    /// Record version: [`crate::FORMAT_VERSION`] (2); 3 when an entry is a frame member
    /// ([`Record::encode`] sets it so: version 2's entries cannot hold members).
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
    /// Record version, [`crate::FORMAT_VERSION`] (2).
    pub version: u32,
    /// The snapshots deleted, sorted.
    pub ids: Vec<ObjectId>,
}

/// [`FossilPack`] as version 2 encodes it.
#[derive(Serialize, Deserialize)]
struct FossilPackV2 {
    pack: IndexPackV2,
    verified: bool,
}

/// [`FossilSet`] as version 2 encodes it.
#[derive(Serialize, Deserialize)]
struct FossilSetV2 {
    version: u32,
    run: u64,
    packs: Vec<FossilPackV2>,
}

/// [`Record`] as version 2 encodes it: fossil entries without `member`.
#[derive(Serialize, Deserialize)]
enum RecordV2 {
    State(PruneState),
    Fossils(FossilSetV2),
    Forgotten(ForgetRecord),
}

impl From<RecordV2> for Record {
    fn from(r: RecordV2) -> Self {
        match r {
            RecordV2::State(s) => Record::State(s),
            RecordV2::Forgotten(f) => Record::Forgotten(f),
            RecordV2::Fossils(f) => Record::Fossils(FossilSet {
                version: f.version,
                run: f.run,
                packs: f
                    .packs
                    .into_iter()
                    .map(|p| FossilPack {
                        pack: p.pack.into(),
                        verified: p.verified,
                    })
                    .collect(),
            }),
        }
    }
}

/// A prune record (`prune/<id>`); postcard encodes the variant as its index (0, 1, 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// The prune state.
    State(PruneState),
    /// Condemned packs.
    Fossils(FossilSet),
    /// Snapshots deleted on purpose.
    Forgotten(ForgetRecord),
}

impl Record {
    /// The record's version field.
    pub fn version(&self) -> u32 {
        match self {
            Record::State(s) => s.version,
            Record::Fossils(f) => f.version,
            Record::Forgotten(f) => f.version,
        }
    }

    /// The plaintext that is sealed: [`RECORD_MAGIC`] followed by the postcard encoding. A
    /// fossil set whose entries include a frame member is encoded as version 3 (version 2's
    /// entries cannot hold one), any other record in its version's layout.
    pub fn encode(&self) -> Vec<u8> {
        let mut plain = RECORD_MAGIC.to_vec();
        let body = match self {
            Record::Fossils(f) => {
                let entries = f.packs.iter().flat_map(|p| p.pack.blobs.iter());
                let version = crate::pack::entries_version(f.version, entries);
                if version == 2 {
                    let v2 = RecordV2::Fossils(FossilSetV2 {
                        version,
                        run: f.run,
                        packs: f
                            .packs
                            .iter()
                            .map(|p| FossilPackV2 {
                                pack: (&p.pack).into(),
                                verified: p.verified,
                            })
                            .collect(),
                    });
                    postcard::to_stdvec(&v2)
                } else {
                    let mut f = f.clone();
                    f.version = version;
                    postcard::to_stdvec(&Record::Fossils(f))
                }
            }
            r => postcard::to_stdvec(r),
        };
        plain.extend(body.expect("prune record serializes"));
        plain
    }

    /// Decode a sealed plaintext.
    ///
    /// # Errors
    /// [`FormatError::Malformed`] without the magic or for a bad encoding,
    /// [`FormatError::UnsupportedVersion`] for a record of another version.
    pub fn decode(plain: &[u8]) -> Result<Record> {
        let rest = plain
            .strip_prefix(RECORD_MAGIC.as_slice())
            .ok_or_else(|| FormatError::malformed("prune record", "not a prune record"))?;
        let malformed = |e| FormatError::malformed("prune record", e);
        // Variant index, then the variant's version: fossil sets may be version 3.
        let (variant, after) = postcard::take_from_bytes::<u32>(rest).map_err(malformed)?;
        let (version, _) = postcard::take_from_bytes::<u32>(after).map_err(malformed)?;
        let rec: Record = if variant == 1 && version == crate::REPO_VERSION {
            postcard::from_bytes(rest).map_err(malformed)?
        } else {
            postcard::from_bytes::<RecordV2>(rest)
                .map_err(malformed)?
                .into()
        };
        if rec.version() != crate::FORMAT_VERSION
            && !(variant == 1 && rec.version() == crate::REPO_VERSION)
        {
            return Err(FormatError::UnsupportedVersion {
                what: "prune record",
                found: rec.version(),
                supported: crate::FORMAT_VERSION,
            });
        }
        Ok(rec)
    }

    /// The stored bytes: sealed to the repository key (HPKE kind index, bound to `signer`) and
    /// signed by `signer` (kind index).
    ///
    /// # Errors
    /// Only when sealing fails.
    pub fn seal(&self, key: &MasterKey, signer: &Signer) -> Result<Vec<u8>> {
        let sealed = key.seal(SealedKind::Index, &self.encode(), Some(&signer.public()))?;
        Ok(signer.envelope(SignedKind::Index, &sealed))
    }

    /// Verify, open and decode stored bytes (needs a full key); returns the signer's public
    /// key and the record.
    ///
    /// # Errors
    /// [`FormatError::Authentication`], [`FormatError::PutOnlyKey`], and those of
    /// [`Record::decode`].
    pub fn open(key: &MasterKey, stored: &[u8]) -> Result<([u8; 32], Record)> {
        let (signer, sealed) = open_envelope(SignedKind::Index, stored)?;
        let plain = key.open(SealedKind::Index, sealed, Some(&signer))?;
        Ok((signer, Record::decode(&plain)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forget(version: u32) -> Record {
        Record::Forgotten(ForgetRecord {
            version,
            ids: vec![ObjectId([3; 32]), ObjectId([4; 32])],
        })
    }

    #[test]
    fn seal_open_round_trip_and_refusals() {
        let key = MasterKey::generate().unwrap();
        let signer = Signer::generate().unwrap();
        let rec = forget(crate::FORMAT_VERSION);
        let stored = rec.seal(&key, &signer).unwrap();
        assert_eq!(Record::open(&key, &stored).unwrap(), (signer.public(), rec));
        // Another repository's key, a put-only key: nothing.
        assert!(matches!(
            Record::open(&MasterKey::generate().unwrap(), &stored),
            Err(FormatError::Authentication { .. })
        ));
        assert!(matches!(
            Record::open(&key.put_only(), &stored),
            Err(FormatError::PutOnlyKey)
        ));
        // Not an index object, and an index object is not a record.
        assert!(crate::index::IndexFile::open(&key, &stored).is_err());
        let index = crate::index::IndexFile::default()
            .to_object(&key, &signer)
            .unwrap();
        assert!(Record::open(&key, &index).is_err());
        // Without the magic, and of another version.
        assert_eq!(
            Record::decode(b"TPR1\x02\x02").unwrap_err().to_string(),
            "malformed prune record: not a prune record"
        );
        assert_eq!(
            Record::decode(&forget(1).encode()).unwrap_err().to_string(),
            "unsupported prune record version 1 (this tresor reads version 2)"
        );
    }

    #[test]
    fn state_content() {
        let mut a = PruneState::default();
        assert!(a.is_empty());
        let b = PruneState {
            version: 2,
            run: 9,
            supersedes: vec![ObjectId([1; 32])],
            ..PruneState::default()
        };
        assert!(a.same_content(&b));
        a.unindexed.push(ObjectId([5; 32]));
        assert!(!a.is_empty());
        assert!(!a.same_content(&b));
    }
}
