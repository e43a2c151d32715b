//! Blob encoding (format §7).
//!
//! `inner = flag (1) || body length (u32 LE) || body || zero padding`, where `flag` is 0 for a
//! raw body and 1 for a zstd frame, and the padding brings `inner` to a multiple of
//! [`PAD_TO`] bytes (hides exact lengths at a cost of at most 63 bytes per blob).
//! `stored = DataKey.encrypt(aad = blob type byte || blob id, inner)` (see [`crate::crypto`]).
//! Compression is chosen per blob: the zstd frame is kept only when it saves at least 1/32 of
//! the plaintext.

use crate::BlobId;
use crate::crypto::DataKey;
use crate::error::{FormatError, Result};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// Padding granularity of the inner blob encoding, in bytes.
pub const PAD_TO: usize = 64;
const FLAG_RAW: u8 = 0;
const FLAG_ZSTD: u8 = 1;

/// What a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BlobType {
    /// A chunk of file content.
    Data,
    /// An encoded [`crate::tree::Tree`].
    Tree,
}

impl BlobType {
    /// The byte used in associated data.
    pub fn byte(self) -> u8 {
        match self {
            BlobType::Data => 0,
            BlobType::Tree => 1,
        }
    }
}

fn aad(blob_type: BlobType, id: &BlobId) -> [u8; 33] {
    let mut a = [0u8; 33];
    a[0] = blob_type.byte();
    a[1..].copy_from_slice(&id.0);
    a
}

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
}

fn compress(level: i32, plaintext: &[u8]) -> Option<Vec<u8>> {
    if level == 0 || plaintext.len() < 64 {
        return None;
    }
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().map(|(l, _)| *l) != Some(level) {
            *c = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        let (_, comp) = c.as_mut()?;
        let out = comp.compress(plaintext).ok()?;
        (out.len() < plaintext.len() - plaintext.len() / 32).then_some(out)
    })
}

/// Encode and encrypt a blob: returns the stored bytes.
///
/// # Errors
/// [`FormatError::Random`]; a body over 4 GiB is [`FormatError::Malformed`].
pub fn encode(
    key: &DataKey,
    blob_type: BlobType,
    id: &BlobId,
    plaintext: &[u8],
    level: i32,
) -> Result<Vec<u8>> {
    let compressed = compress(level, plaintext);
    let (flag, body) = match &compressed {
        Some(c) => (FLAG_ZSTD, c.as_slice()),
        None => (FLAG_RAW, plaintext),
    };
    let body_len =
        u32::try_from(body.len()).map_err(|_| FormatError::malformed("blob", "body over 4 GiB"))?;
    let unpadded = 5 + body.len();
    let padded = unpadded.div_ceil(PAD_TO) * PAD_TO;
    let mut inner = Vec::with_capacity(padded + crate::crypto::BLOB_CRYPTO_OVERHEAD);
    inner.push(flag);
    inner.extend_from_slice(&body_len.to_le_bytes());
    inner.extend_from_slice(body);
    inner.resize(padded, 0);
    key.encrypt(&aad(blob_type, id), inner)
}

/// Decrypt and decode a blob's stored bytes and check that the plaintext hashes to `id`.
///
/// # Errors
/// [`FormatError::Authentication`] for modified bytes, [`FormatError::Malformed`] for a bad
/// body, [`FormatError::BlobIdMismatch`] when the content does not hash to `id`.
pub fn decode(
    key: &DataKey,
    id_key: &[u8; 32],
    blob_type: BlobType,
    id: &BlobId,
    stored: &[u8],
) -> Result<Vec<u8>> {
    let inner = key.decrypt(&aad(blob_type, id), stored, "blob")?;
    if inner.len() < 5 {
        return Err(FormatError::malformed("blob", "too short"));
    }
    let body_len = u32::from_le_bytes(inner[1..5].try_into().expect("4 bytes")) as usize;
    let body = inner
        .get(5..5 + body_len)
        .ok_or_else(|| FormatError::malformed("blob", "body length"))?;
    let plain = match inner[0] {
        FLAG_RAW => body.to_vec(),
        FLAG_ZSTD => {
            zstd::stream::decode_all(body).map_err(|e| FormatError::malformed("blob", e))?
        }
        f => return Err(FormatError::malformed("blob", format!("unknown flag {f}"))),
    };
    if BlobId::of(id_key, &plain) != *id {
        return Err(FormatError::BlobIdMismatch(*id));
    }
    Ok(plain)
}
