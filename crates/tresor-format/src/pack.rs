//! Packs (format §8).
//!
//! ```text
//! pack = blob_0 || blob_1 || … || blob_n-1 || sealed header || header length (u32 LE) || "TPK2"
//! ```
//! Each `blob_i` is a stored blob ([`crate::blob`]). The header is a postcard-encoded
//! [`PackHeader`] sealed with HPKE ([`crate::crypto::SealedKind::PackHeader`], associated data the
//! sealed header alone: packs are not signed); it holds the pack's
//! data key and one [`BlobEntry`] per blob. A pack is named by the BLAKE3 of all its bytes.

use crate::BlobId;
use crate::blob::{self, BlobType};
use crate::crypto::{DataKey, MasterKey, SealedKind};
use crate::error::{FormatError, Result};
use serde::{Deserialize, Serialize};

/// Trailer magic.
pub const PACK_MAGIC: &[u8; 4] = b"TPK2";
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
    /// Pack header version, always [`crate::FORMAT_VERSION`].
    pub version: u32,
    /// The key every blob of this pack is encrypted with.
    pub data_key: DataKey,
    /// The blobs, in pack order.
    pub blobs: Vec<BlobEntry>,
}

/// Builds one pack in memory. Blobs are encrypted as they are added.
///
/// Blob nonces (format §7): a random 16-byte prefix drawn once per pack, followed by the blob's
/// position in the pack as a u64 LE. Every pack has a fresh random data key, so nonces never
/// repeat under one key, and no system call is made per blob.
pub struct PackBuilder {
    data_key: DataKey,
    nonce_prefix: [u8; 16],
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
        Self::with_buffer(compression_level, Vec::with_capacity(capacity))
    }

    /// An empty pack with a fresh data key, built in `buf` (cleared first): lets a caller reuse
    /// the buffer of a pack it has written.
    ///
    /// # Errors
    /// [`FormatError::Random`].
    pub fn with_buffer(compression_level: i32, mut buf: Vec<u8>) -> Result<Self> {
        buf.clear();
        let mut nonce_prefix = [0u8; 16];
        crate::error::random_fill(&mut nonce_prefix)?;
        Ok(PackBuilder {
            data_key: DataKey::generate()?,
            nonce_prefix,
            buf,
            blobs: Vec::new(),
            compression_level,
        })
    }

    /// Encode, encrypt and append a blob; returns its stored length in bytes.
    ///
    /// # Errors
    /// See [`blob::encode`].
    pub fn add(&mut self, blob_type: BlobType, id: BlobId, plaintext: &[u8]) -> Result<u64> {
        let mut nonce = [0u8; 24];
        nonce[..16].copy_from_slice(&self.nonce_prefix);
        nonce[16..].copy_from_slice(&(self.blobs.len() as u64).to_le_bytes());
        let offset = self.buf.len() as u64;
        let length = blob::encode_into(
            &self.data_key,
            &nonce,
            blob_type,
            &id,
            plaintext,
            self.compression_level,
            &mut self.buf,
        )? as u64;
        self.blobs.push(BlobEntry {
            blob_type,
            id,
            offset,
            length,
            raw_length: plaintext.len() as u64,
        });
        Ok(length)
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
            version: crate::FORMAT_VERSION,
            data_key: self.data_key,
            blobs: self.blobs,
        };
        let mut buf = self.buf;
        let sealed = key.seal(SealedKind::PackHeader, &encode_header(&header), None)?;
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
    let plain = key.open(SealedKind::PackHeader, sealed, None)?;
    crate::error::check_postcard_version(&plain, "pack header", crate::FORMAT_VERSION)?;
    let h: PackHeader =
        postcard::from_bytes(&plain).map_err(|e| FormatError::malformed("pack header", e))?;
    if h.version != crate::FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion {
            what: "pack header",
            found: h.version,
            supported: crate::FORMAT_VERSION,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    #[test]
    fn blob_nonces_are_distinct_within_a_pack_and_across_packs() {
        let key = MasterKey::generate().unwrap();
        let mut nonces = std::collections::HashSet::new();
        for _ in 0..3 {
            let mut b = PackBuilder::new(3, 1 << 16).unwrap();
            for i in 0..50u32 {
                let plain = i.to_le_bytes().repeat(30);
                let id = BlobId::of(&key.id_key, &plain);
                b.add(BlobType::Data, id, &plain).unwrap();
            }
            let (bytes, header) = b.finish(&key).unwrap();
            assert_eq!(read_header(&key, &bytes).unwrap(), header);
            for e in &header.blobs {
                let nonce = &bytes[e.offset as usize..e.offset as usize + 24];
                assert!(nonces.insert(nonce.to_vec()), "nonce repeated");
            }
        }
        assert_eq!(nonces.len(), 150);
    }
}
