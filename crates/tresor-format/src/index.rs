//! Index objects (format §9): which pack holds which blob.
//!
//! Encoded with postcard and sealed with HPKE ([`crate::crypto::SealedKind::Index`]). An index
//! object lists packs with their data keys and blobs; `supersedes` names index objects that this
//! one replaces (written by prune and `repair index`), which readers then ignore.

use crate::ObjectId;
use crate::crypto::{DataKey, MasterKey, SealedKind};
use crate::error::{FormatError, Result};
use crate::pack::BlobEntry;
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
    /// Index version, always 1.
    pub version: u32,
    /// Index objects this one replaces.
    pub supersedes: Vec<ObjectId>,
    /// Packs.
    pub packs: Vec<IndexPack>,
}

impl IndexFile {
    /// postcard encoding (before sealing).
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("index serializes")
    }

    /// Encode and seal: the stored bytes.
    ///
    /// # Errors
    /// Only when sealing fails.
    pub fn seal(&self, key: &MasterKey) -> Result<Vec<u8>> {
        key.seal(SealedKind::Index, &self.encode())
    }

    /// Open stored bytes.
    ///
    /// # Errors
    /// [`FormatError::Authentication`], [`FormatError::Malformed`], [`FormatError::UnsupportedVersion`].
    pub fn open(key: &MasterKey, stored: &[u8]) -> Result<Self> {
        let plain = key.open(SealedKind::Index, stored)?;
        let f: IndexFile =
            postcard::from_bytes(&plain).map_err(|e| FormatError::malformed("index", e))?;
        if f.version != 1 {
            return Err(FormatError::UnsupportedVersion {
                what: "index",
                found: f.version,
                supported: 1,
            });
        }
        Ok(f)
    }
}
