//! Packs (format §8).
//!
//! ```text
//! pack = blob_0 || blob_1 || … || blob_n-1 || sealed header || header length (u32 LE) || "TPK1"
//! ```
//! Each `blob_i` is a stored blob ([`crate::blob`]). The header is a postcard-encoded
//! [`PackHeader`] sealed with HPKE ([`crate::crypto::SealedKind::PackHeader`]); it holds the pack's
//! data key and one [`BlobEntry`] per blob. A pack is named by the BLAKE3 of all its bytes.

use crate::BlobId;
use crate::blob::{self, BlobType};
use crate::crypto::{DataKey, MasterKey, SealedKind};
use crate::error::{FormatError, Result};
use serde::{Deserialize, Serialize};

/// Trailer magic.
pub const PACK_MAGIC: &[u8; 4] = b"TPK1";
/// Length of the trailer (header length + magic).
pub const TRAILER_LEN: u64 = 8;

/// Where a blob sits in a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobEntry {
    /// Data or tree.
    pub blob_type: BlobType,
    /// Blob id.
    pub id: BlobId,
    /// Offset of the stored blob in the pack, in bytes.
    pub offset: u64,
    /// Length of the stored blob, in bytes.
    pub length: u64,
    /// Length of the plaintext, in bytes.
    pub raw_length: u64,
}

/// The decrypted pack header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackHeader {
    /// Pack header version, always 1.
    pub version: u32,
    /// The key every blob of this pack is encrypted with.
    pub data_key: DataKey,
    /// The blobs, in pack order.
    pub blobs: Vec<BlobEntry>,
}

/// Builds one pack in memory. Blobs are encrypted as they are added.
pub struct PackBuilder {
    data_key: DataKey,
    buf: Vec<u8>,
    blobs: Vec<BlobEntry>,
    compression_level: i32,
}

impl PackBuilder {
    /// An empty pack with a fresh data key.
    ///
    /// # Errors
    /// [`FormatError::Random`].
    pub fn new(compression_level: i32, capacity: usize) -> Result<Self> {
        Ok(PackBuilder {
            data_key: DataKey::generate()?,
            buf: Vec::with_capacity(capacity),
            blobs: Vec::new(),
            compression_level,
        })
    }

    /// Encode, encrypt and append a blob; returns its stored length in bytes.
    ///
    /// # Errors
    /// See [`blob::encode`].
    pub fn add(&mut self, blob_type: BlobType, id: BlobId, plaintext: &[u8]) -> Result<u64> {
        let stored = blob::encode(
            &self.data_key,
            blob_type,
            &id,
            plaintext,
            self.compression_level,
        )?;
        let entry = BlobEntry {
            blob_type,
            id,
            offset: self.buf.len() as u64,
            length: stored.len() as u64,
            raw_length: plaintext.len() as u64,
        };
        self.buf.extend_from_slice(&stored);
        self.blobs.push(entry);
        Ok(stored.len() as u64)
    }

    /// Bytes of blob data so far.
    pub fn size(&self) -> u64 {
        self.buf.len() as u64
    }

    /// Number of blobs so far.
    pub fn len(&self) -> usize {
        self.blobs.len()
    }

    /// Whether no blob was added.
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Append the sealed header and trailer; returns the pack bytes and its header.
    ///
    /// # Errors
    /// Only when sealing fails (invalid public key).
    pub fn finish(self, key: &MasterKey) -> Result<(Vec<u8>, PackHeader)> {
        let header = PackHeader {
            version: 1,
            data_key: self.data_key,
            blobs: self.blobs,
        };
        let mut buf = self.buf;
        let sealed = key.seal(SealedKind::PackHeader, &encode_header(&header))?;
        buf.extend_from_slice(&sealed);
        buf.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        buf.extend_from_slice(PACK_MAGIC);
        Ok((buf, header))
    }
}

/// postcard encoding of a header (before sealing); used for test vectors.
pub fn encode_header(h: &PackHeader) -> Vec<u8> {
    postcard::to_stdvec(h).expect("pack header serializes")
}

/// Parse the 8-byte trailer; returns the sealed header length in bytes.
///
/// # Errors
/// [`FormatError::Malformed`] when the magic is wrong.
pub fn parse_trailer(trailer: &[u8]) -> Result<u64> {
    if trailer.len() != TRAILER_LEN as usize || &trailer[4..] != PACK_MAGIC {
        return Err(FormatError::malformed(
            "pack",
            "bad trailer (truncated or not a pack)",
        ));
    }
    Ok(u64::from(u32::from_le_bytes(
        trailer[..4].try_into().expect("4 bytes"),
    )))
}

/// Open a sealed header.
///
/// # Errors
/// [`FormatError::Authentication`], [`FormatError::Malformed`], [`FormatError::UnsupportedVersion`].
pub fn open_header(key: &MasterKey, sealed: &[u8]) -> Result<PackHeader> {
    let plain = key.open(SealedKind::PackHeader, sealed)?;
    crate::error::check_postcard_version(&plain, "pack header", 1)?;
    let h: PackHeader =
        postcard::from_bytes(&plain).map_err(|e| FormatError::malformed("pack header", e))?;
    if h.version != 1 {
        return Err(FormatError::UnsupportedVersion {
            what: "pack header",
            found: h.version,
            supported: 1,
        });
    }
    Ok(h)
}

/// Read the header of a whole pack held in memory, checking that the blobs fit before it.
///
/// # Errors
/// As [`open_header`], plus [`FormatError::Malformed`] for a truncated pack.
pub fn read_header(key: &MasterKey, pack: &[u8]) -> Result<PackHeader> {
    let n = pack.len() as u64;
    if n < TRAILER_LEN {
        return Err(FormatError::malformed("pack", "shorter than its trailer"));
    }
    let hlen = parse_trailer(&pack[(n - TRAILER_LEN) as usize..])?;
    let start = n
        .checked_sub(TRAILER_LEN + hlen)
        .ok_or_else(|| FormatError::malformed("pack", "header length beyond pack start"))?;
    let h = open_header(key, &pack[start as usize..(n - TRAILER_LEN) as usize])?;
    if let Some(b) = h
        .blobs
        .iter()
        .find(|b| b.offset.saturating_add(b.length) > start)
    {
        return Err(FormatError::malformed(
            "pack",
            format!("blob {} extends into the header", b.id),
        ));
    }
    Ok(h)
}
