//! Index objects (format §9): which pack holds which blob.
//!
//! An index object is a signed envelope ([`crate::sign`], kind Index) around the postcard of
//! [`IndexEnvelope`]:
//! * `sealed`: the [`IndexFile`] (packs with their data keys and blobs; `supersedes`), postcard
//!   encoded and sealed with HPKE ([`crate::crypto::SealedKind::Index`]): full keys only;
//! * `dedup`: the list of (blob type, blob id) it adds, postcard encoded and encrypted under the
//!   *writer's* dedup key ([`dedup_key`]: derived from the writer's signing secret, associated
//!   data `"tresor dedup v2"`), so that the writer — a put-only key too — can deduplicate
//!   against its own index objects without reading anything else, and no other key can read it.
//!
//! The signature tells every reader which key wrote the object. Writers deduplicate against
//! their own index objects (their dedup lists) and, full keys only, against the sealed index
//! of other full keys' objects (format §9, §13). A put-only key learns no other writer's blob
//! ids.

use crate::BlobId;
use crate::ObjectId;
use crate::blob::BlobType;
use crate::crypto::{DataKey, MasterKey, SealedKind};
use crate::error::{FormatError, Result};
use crate::pack::{BlobEntry, BlobEntryV2, entries_version};
use crate::sign::{SignedKind, Signer, open_envelope};
use serde::{Deserialize, Serialize};

/// One pack as listed in an index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPack {
    /// Pack object id.
    pub id: ObjectId,
    /// The pack's data key.
    pub data_key: DataKey,
    /// The pack's blobs.
    pub blobs: Vec<BlobEntry>,
}

/// [`IndexPack`] as version 2 encodes it (also inside version-2 prune records).
#[derive(Serialize, Deserialize)]
pub(crate) struct IndexPackV2 {
    id: ObjectId,
    data_key: DataKey,
    blobs: Vec<BlobEntryV2>,
}

impl From<IndexPackV2> for IndexPack {
    fn from(p: IndexPackV2) -> Self {
        IndexPack {
            id: p.id,
            data_key: p.data_key,
            blobs: p.blobs.into_iter().map(BlobEntry::from).collect(),
        }
    }
}

impl From<&IndexPack> for IndexPackV2 {
    fn from(p: &IndexPack) -> Self {
        IndexPackV2 {
            id: p.id,
            data_key: p.data_key.clone(),
            blobs: p.blobs.iter().map(BlobEntryV2::from).collect(),
        }
    }
}

/// [`IndexFile`] as version 2 encodes it.
#[derive(Serialize, Deserialize)]
struct IndexFileV2 {
    version: u32,
    supersedes: Vec<ObjectId>,
    packs: Vec<IndexPackV2>,
}

/// The version entries of `packs` are encoded in when `version` is asked for (3 when one is
/// a frame member: version 2 cannot hold members).
pub(crate) fn packs_version(version: u32, packs: &[IndexPack]) -> u32 {
    entries_version(version, packs.iter().flat_map(|p| p.blobs.iter()))
}

/// An index object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IndexFile {
    /// Index version: [`crate::REPO_VERSION`] (3), or 2 in a version-2 repository.
    pub version: u32,
    /// Index objects this one replaces.
    pub supersedes: Vec<ObjectId>,
    /// Packs.
    pub packs: Vec<IndexPack>,
}

/// The signed body of an index object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEnvelope {
    /// The sealed [`IndexFile`].
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
    /// The encrypted dedup list.
    #[serde(with = "serde_bytes")]
    pub dedup: Vec<u8>,
}

const DEDUP_AAD: &[u8] = b"tresor dedup v2";

/// BLAKE3 `derive_key` context of [`dedup_key`].
pub const DEDUP_CONTEXT: &str = "tresor v2 dedup list";

/// The key of the dedup lists `writer` writes (format §3, §9):
/// `BLAKE3-derive_key("tresor v2 dedup list", writer's signing secret)`. Only the writer can
/// compute it: no other key — full or put-only — and not the storage can read its lists.
pub fn dedup_key(writer: &Signer) -> DataKey {
    DataKey(blake3::derive_key(
        DEDUP_CONTEXT,
        writer.secret().as_slice(),
    ))
}

impl IndexFile {
    /// postcard encoding (before sealing), in its `version`'s layout (version 3 when an entry
    /// is a frame member, whatever `version` says: version 2 cannot hold members).
    pub fn encode(&self) -> Vec<u8> {
        let version = packs_version(self.version, &self.packs);
        if version == 2 {
            let v2 = IndexFileV2 {
                version,
                supersedes: self.supersedes.clone(),
                packs: self.packs.iter().map(IndexPackV2::from).collect(),
            };
            return postcard::to_stdvec(&v2).expect("index serializes");
        }
        let mut f = std::borrow::Cow::Borrowed(self);
        if f.version != version {
            f.to_mut().version = version;
        }
        postcard::to_stdvec(&*f).expect("index serializes")
    }

    /// Decode a sealed index's postcard (version 2 or 3).
    ///
    /// # Errors
    /// [`FormatError::Malformed`], [`FormatError::UnsupportedVersions`].
    pub fn decode(plain: &[u8]) -> Result<Self> {
        let version = crate::error::postcard_version(plain, "index")?;
        crate::check_repo_version("index", version)?;
        let malformed = |e| FormatError::malformed("index", e);
        if version == 2 {
            let f: IndexFileV2 = postcard::from_bytes(plain).map_err(malformed)?;
            return Ok(IndexFile {
                version,
                supersedes: f.supersedes,
                packs: f.packs.into_iter().map(IndexPack::from).collect(),
            });
        }
        postcard::from_bytes(plain).map_err(malformed)
    }

    /// The stored bytes: signed envelope (by `signer`) around the sealed index and the dedup list
    /// (under `signer`'s [`dedup_key`]).
    ///
    /// # Errors
    /// Only when sealing fails or randomness is unavailable.
    pub fn to_object(&self, key: &MasterKey, signer: &Signer) -> Result<Vec<u8>> {
        let sealed = key.seal(SealedKind::Index, &self.encode(), Some(&signer.public()))?;
        let list: Vec<(BlobType, BlobId)> = self
            .packs
            .iter()
            .flat_map(|p| p.blobs.iter().map(|b| (b.blob_type, b.id)))
            .collect();
        let dedup = dedup_key(signer).encrypt(
            DEDUP_AAD,
            postcard::to_stdvec(&list).expect("dedup list serializes"),
        )?;
        let body =
            postcard::to_stdvec(&IndexEnvelope { sealed, dedup }).expect("envelope serializes");
        Ok(signer.envelope(SignedKind::Index, &body))
    }

    /// Verify the signature and split an index object; returns the signer's public key.
    ///
    /// # Errors
    /// [`FormatError::Authentication`] for a bad signature, [`FormatError::Malformed`].
    pub fn envelope(stored: &[u8]) -> Result<([u8; 32], IndexEnvelope)> {
        let (signer, body) = open_envelope(SignedKind::Index, stored)?;
        let env =
            postcard::from_bytes(body).map_err(|e| FormatError::malformed("index envelope", e))?;
        Ok((signer, env))
    }

    /// The dedup list of an index object that `writer` wrote: only its writer can read it.
    ///
    /// # Errors
    /// [`FormatError::Authentication`] — also for another writer's list —,
    /// [`FormatError::Malformed`].
    pub fn dedup_list(writer: &Signer, env: &IndexEnvelope) -> Result<Vec<(BlobType, BlobId)>> {
        let plain = dedup_key(writer).decrypt(DEDUP_AAD, &env.dedup, "index dedup list")?;
        postcard::from_bytes(&plain).map_err(|e| FormatError::malformed("index dedup list", e))
    }

    /// Open a stored index object (full keys); returns the signer and the index.
    ///
    /// # Errors
    /// [`FormatError::PutOnlyKey`], [`FormatError::Authentication`], [`FormatError::Malformed`],
    /// [`FormatError::UnsupportedVersions`].
    pub fn open(key: &MasterKey, stored: &[u8]) -> Result<([u8; 32], Self)> {
        let (signer, env) = Self::envelope(stored)?;
        Ok((signer, Self::open_sealed(key, &env.sealed, &signer)?))
    }

    /// Open the sealed part of an index object whose envelope `signer` signed (the signer is
    /// bound in the associated data, format §3).
    ///
    /// # Errors
    /// As [`IndexFile::open`].
    pub fn open_sealed(key: &MasterKey, sealed: &[u8], signer: &[u8; 32]) -> Result<Self> {
        let plain = key.open(SealedKind::Index, sealed, Some(signer))?;
        Self::decode(&plain)
    }
}

/// Something decoded that contributes blob ids ([`IndexFile::sealed_blob_ids`]).
trait Ids {
    fn ids_into(self, out: &mut Vec<BlobId>);
}

impl Ids for BlobEntry {
    fn ids_into(self, out: &mut Vec<BlobId>) {
        out.push(self.id);
    }
}

impl Ids for BlobEntryV2 {
    fn ids_into(self, out: &mut Vec<BlobId>) {
        out.push(self.id());
    }
}

/// A sequence decoded element by element, keeping only the elements' blob ids.
struct Flat<T>(Vec<BlobId>, std::marker::PhantomData<T>);

impl<T> Ids for Flat<T> {
    fn ids_into(self, out: &mut Vec<BlobId>) {
        out.extend(self.0);
    }
}

impl<'de, T: Deserialize<'de> + Ids> Deserialize<'de> for Flat<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Ids> serde::de::Visitor<'de> for Visit<T> {
            type Value = Vec<BlobId>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Vec<BlobId>, A::Error> {
                // A declared length is not trusted for more than 65,536 elements up front.
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(e) = seq.next_element::<T>()? {
                    e.ids_into(&mut out);
                }
                Ok(out)
            }
        }
        let v = d.deserialize_seq(Visit::<T>(std::marker::PhantomData))?;
        Ok(Flat(v, std::marker::PhantomData))
    }
}

/// An [`IndexPack`] (or [`IndexPackV2`]) keeping only its blobs' ids.
#[derive(Deserialize)]
#[serde(bound = "E: Deserialize<'de> + Ids")]
struct PackIds<E> {
    #[allow(dead_code, reason = "decoded to reach the blobs")]
    id: ObjectId,
    #[allow(dead_code, reason = "decoded to reach the blobs")]
    data_key: DataKey,
    blobs: Flat<E>,
}

impl<E> Ids for PackIds<E> {
    fn ids_into(self, out: &mut Vec<BlobId>) {
        self.blobs.ids_into(out);
    }
}

/// An [`IndexFile`] (or `IndexFileV2`) keeping only its blobs' ids.
#[derive(Deserialize)]
#[serde(bound = "E: Deserialize<'de> + Ids")]
struct FileIds<E> {
    #[allow(dead_code, reason = "checked before decoding")]
    version: u32,
    supersedes: Vec<ObjectId>,
    packs: Flat<PackIds<E>>,
}

impl IndexFile {
    /// The index objects the sealed part of an index object supersedes, and the blob ids it
    /// lists (every pack's, in order), without holding its decoded packs: memory is the sealed
    /// bytes (dropped once decrypted), the plaintext and the ids. The signer is bound as in
    /// [`IndexFile::open_sealed`].
    ///
    /// # Errors
    /// As [`IndexFile::open`].
    pub fn sealed_blob_ids(
        key: &MasterKey,
        sealed: Vec<u8>,
        signer: &[u8; 32],
    ) -> Result<(Vec<ObjectId>, Vec<BlobId>)> {
        let plain = key.open(SealedKind::Index, &sealed, Some(signer))?;
        drop(sealed);
        let version = crate::error::postcard_version(&plain, "index")?;
        crate::check_repo_version("index", version)?;
        let malformed = |e| FormatError::malformed("index", e);
        if version == 2 {
            let f: FileIds<BlobEntryV2> = postcard::from_bytes(&plain).map_err(malformed)?;
            return Ok((f.supersedes, f.packs.0));
        }
        let f: FileIds<BlobEntry> = postcard::from_bytes(&plain).map_err(malformed)?;
        Ok((f.supersedes, f.packs.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobType;

    fn index() -> IndexFile {
        let entry = |n: u8, blob_type| BlobEntry {
            blob_type,
            id: BlobId([n; 32]),
            offset: u64::from(n) * 104,
            length: 104,
            raw_length: 10,
            member: None,
        };
        IndexFile {
            version: crate::FORMAT_VERSION,
            supersedes: vec![],
            packs: vec![IndexPack {
                id: ObjectId([9; 32]),
                data_key: DataKey([8; 32]),
                blobs: vec![entry(1, BlobType::Data), entry(2, BlobType::Tree)],
            }],
        }
    }

    #[test]
    fn sealed_blob_ids_are_every_entrys_id_in_order() {
        let key = MasterKey::generate().unwrap();
        let signer = Signer::generate().unwrap();
        let mut f = index();
        f.supersedes = vec![ObjectId([3; 32]), ObjectId([4; 32])];
        f.packs.push(IndexPack {
            id: ObjectId([7; 32]),
            data_key: DataKey([6; 32]),
            blobs: vec![],
        });
        let mut third = f.packs[0].clone();
        third.blobs[0].id = BlobId([5; 32]);
        third.blobs[1].member = Some(3);
        f.packs.push(third);
        for version in [2, 3] {
            f.version = version;
            // A member would make the writer encode version 3.
            f.packs[2].blobs[1].member = (version == 3).then_some(3);
            assert_eq!(f.encode()[0], version as u8, "encoded as version {version}");
            let stored = f.to_object(&key, &signer).unwrap();
            let (s, env) = IndexFile::envelope(&stored).unwrap();
            let (retired, ids) = IndexFile::sealed_blob_ids(&key, env.sealed.clone(), &s).unwrap();
            assert_eq!(retired, f.supersedes);
            let want: Vec<BlobId> = f
                .packs
                .iter()
                .flat_map(|p| p.blobs.iter().map(|b| b.id))
                .collect();
            assert_eq!(ids, want);
            assert_eq!(
                ids,
                vec![
                    BlobId([1; 32]),
                    BlobId([2; 32]),
                    BlobId([5; 32]),
                    BlobId([2; 32])
                ]
            );
            // Bound to its signer, and any flipped byte is refused.
            assert!(IndexFile::sealed_blob_ids(&key, env.sealed.clone(), &[0; 32]).is_err());
            for i in (0..env.sealed.len()).step_by(5) {
                let mut b = env.sealed.clone();
                b[i] ^= 1;
                assert!(IndexFile::sealed_blob_ids(&key, b, &s).is_err());
            }
        }
    }

    #[test]
    fn only_the_writer_reads_its_dedup_list() {
        let key = MasterKey::generate().unwrap();
        let (a, b) = (Signer::generate().unwrap(), Signer::generate().unwrap());
        let stored = index().to_object(&key.put_only(), &a).unwrap();
        let (signer, env) = IndexFile::envelope(&stored).unwrap();
        assert_eq!(signer, a.public());
        let want = vec![
            (BlobType::Data, BlobId([1; 32])),
            (BlobType::Tree, BlobId([2; 32])),
        ];
        assert_eq!(IndexFile::dedup_list(&a, &env).unwrap(), want);
        // Another writer (put-only or full: the list is not under any repository key) cannot.
        assert!(matches!(
            IndexFile::dedup_list(&b, &env),
            Err(FormatError::Authentication { .. })
        ));
        let admin = key.admin().unwrap();
        assert!(IndexFile::dedup_list(&admin, &env).is_err());
        // Nor does version 1's key, derived from the id key every key holds.
        let v1 = DataKey(blake3::derive_key("tresor v1 dedup list", &key.id_key));
        assert!(v1.decrypt(DEDUP_AAD, &env.dedup, "dedup").is_err());
        // The key: derive_key("tresor v2 dedup list", signing secret), one per writer.
        let want_key = blake3::derive_key("tresor v2 dedup list", a.secret().as_slice());
        assert_eq!(dedup_key(&a).0, want_key);
        assert_ne!(dedup_key(&a).0, dedup_key(&b).0);
        let plain = DataKey(want_key)
            .decrypt(DEDUP_AAD, &env.dedup, "dedup")
            .unwrap();
        assert_eq!(plain, postcard::to_stdvec(&want).unwrap());
        // A full key reads the sealed part of anyone's object.
        assert_eq!(
            IndexFile::open(&key, &stored).unwrap(),
            (a.public(), index())
        );
    }
}
