//! Index objects (format §9): which pack holds which blob.
//!
//! An index object is a signed envelope ([`crate::sign`], kind Index) around the postcard of
//! [`IndexEnvelope`]:
//! * `sealed`: the [`IndexFile`] (packs with their data keys and blobs; `supersedes`), postcard
//!   encoded and sealed with HPKE ([`crate::crypto::SealedKind::Index`]): full keys only;
//! * `dedup`: the list of (blob type, blob id) it adds, postcard encoded and encrypted with the
//!   writers' dedup key ([`MasterKey::dedup_key`], associated data `"tresor dedup v2"`), so
//!   that put-only writers can deduplicate against it without reading anything else.
//!
//! The signature tells every reader which key wrote the object; writers deduplicate only
//! against their own index objects and those of full keys (format §13).

use crate::BlobId;
use crate::ObjectId;
use crate::blob::BlobType;
use crate::crypto::{DataKey, MasterKey, SealedKind};
use crate::error::{FormatError, Result};
use crate::pack::BlobEntry;
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

/// An index object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IndexFile {
    /// Index version, always [`crate::FORMAT_VERSION`].
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

impl IndexFile {
    /// postcard encoding (before sealing).
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("index serializes")
    }

    /// The stored bytes: signed envelope around the sealed index and the dedup list.
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
        let dedup = key.dedup_key().encrypt(
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

    /// The dedup list of an index object (any key can read it).
    ///
    /// # Errors
    /// [`FormatError::Authentication`], [`FormatError::Malformed`].
    pub fn dedup_list(key: &MasterKey, env: &IndexEnvelope) -> Result<Vec<(BlobType, BlobId)>> {
        let plain = key
            .dedup_key()
            .decrypt(DEDUP_AAD, &env.dedup, "index dedup list")?;
        postcard::from_bytes(&plain).map_err(|e| FormatError::malformed("index dedup list", e))
    }

    /// Open a stored index object (full keys); returns the signer and the index.
    ///
    /// # Errors
    /// [`FormatError::PutOnlyKey`], [`FormatError::Authentication`], [`FormatError::Malformed`],
    /// [`FormatError::UnsupportedVersion`].
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
        crate::error::check_postcard_version(&plain, "index", crate::FORMAT_VERSION)?;
        let f: IndexFile =
            postcard::from_bytes(&plain).map_err(|e| FormatError::malformed("index", e))?;
        if f.version != crate::FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion {
                what: "index",
                found: f.version,
                supported: crate::FORMAT_VERSION,
            });
        }
        Ok(f)
    }
}
