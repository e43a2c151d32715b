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

/// Compress `plaintext` into `out` after its current end; returns the frame length, or `None`
/// (with `out` unchanged) when the frame would not save at least 1/32 of the plaintext.
fn compress_into(level: i32, plaintext: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    if level == 0 || plaintext.len() < 64 {
        return None;
    }
    let start = out.len();
    let limit = plaintext.len() - plaintext.len() / 32;
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().map(|(l, _)| *l) != Some(level) {
            *c = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        let (_, comp) = c.as_mut()?;
        // Room for a frame just under the limit: a larger one is useless, and zstd reports
        // "destination too small" for it, which counts as incompressible.
        out.reserve(limit);
        let mut cursor = std::io::Cursor::new(&mut *out);
        cursor.set_position(start as u64);
        let n = match comp.compress_to_buffer(plaintext, &mut cursor) {
            Ok(n) if n < limit => n,
            _ => {
                out.truncate(start);
                return None;
            }
        };
        Some(n)
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
    let mut nonce = [0u8; 24];
    crate::error::random_fill(&mut nonce)?;
    let mut out = Vec::new();
    encode_into(key, &nonce, blob_type, id, plaintext, level, &mut out)?;
    Ok(out)
}

/// Encode and encrypt a blob with `nonce`, appending the stored bytes to `out`; returns their
/// length. The same stored bytes as [`encode`] with that nonce, without intermediate copies.
///
/// The caller MUST NOT use a nonce twice with one data key (format §7): [`crate::pack`] uses a
/// random 16-byte prefix per pack and a blob counter.
///
/// # Errors
/// A body over 4 GiB is [`FormatError::Malformed`] (`out` is then unchanged).
pub fn encode_into(
    key: &DataKey,
    nonce: &[u8; 24],
    blob_type: BlobType,
    id: &BlobId,
    plaintext: &[u8],
    level: i32,
    out: &mut Vec<u8>,
) -> Result<usize> {
    let start = out.len();
    out.extend_from_slice(nonce);
    let inner_start = out.len();
    out.extend_from_slice(&[FLAG_ZSTD, 0, 0, 0, 0]);
    let body_len = match compress_into(level, plaintext, out) {
        Some(n) => n,
        None => {
            out[inner_start] = FLAG_RAW;
            out.extend_from_slice(plaintext);
            plaintext.len()
        }
    };
    let Ok(body_len32) = u32::try_from(body_len) else {
        out.truncate(start);
        return Err(FormatError::malformed("blob", "body over 4 GiB"));
    };
    out[inner_start + 1..inner_start + 5].copy_from_slice(&body_len32.to_le_bytes());
    let unpadded = 5 + body_len;
    let padded = unpadded.div_ceil(PAD_TO) * PAD_TO;
    out.resize(inner_start + padded, 0);
    let tag = key.encrypt_in_place(nonce, &aad(blob_type, id), &mut out[inner_start..]);
    out.extend_from_slice(&tag);
    Ok(out.len() - start)
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
    decode_owned(key, id_key, blob_type, id, stored.to_vec())
}

/// [`decode`] of stored bytes the caller owns: decrypts them in place and, for a raw body,
/// returns the same buffer (no copy of the blob).
///
/// # Errors
/// As [`decode`].
pub fn decode_owned(
    key: &DataKey,
    id_key: &[u8; 32],
    blob_type: BlobType,
    id: &BlobId,
    mut stored: Vec<u8>,
) -> Result<Vec<u8>> {
    let inner = key.decrypt_in_place(&aad(blob_type, id), &mut stored, "blob")?;
    if inner.len() < 5 {
        return Err(FormatError::malformed("blob", "too short"));
    }
    let at = inner.start;
    let body_len = u32::from_le_bytes(stored[at + 1..at + 5].try_into().expect("4 bytes")) as usize;
    let body = at + 5..at + 5 + body_len;
    if body.end > inner.end {
        return Err(FormatError::malformed("blob", "body length"));
    }
    let plain = match stored[at] {
        FLAG_RAW => {
            stored.copy_within(body, 0);
            stored.truncate(body_len);
            stored
        }
        FLAG_ZSTD => decompress(&stored[body])?,
        f => return Err(FormatError::malformed("blob", format!("unknown flag {f}"))),
    };
    if BlobId::of(id_key, &plain) != *id {
        return Err(FormatError::BlobIdMismatch(*id));
    }
    Ok(plain)
}

/// Frames that declare at most this many bytes are decompressed in one call into a buffer of
/// that size; others (and frames without a declared size) are streamed.
const ONE_SHOT_MAX: u64 = 64 << 20;

thread_local! {
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn decompress(frame: &[u8]) -> Result<Vec<u8>> {
    let declared = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten();
    if let Some(n) = declared.filter(|n| *n <= ONE_SHOT_MAX) {
        let one_shot = DECOMPRESSOR.with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = zstd::bulk::Decompressor::new().ok();
            }
            let d = d.as_mut()?;
            let mut out = Vec::with_capacity(n as usize);
            match d.decompress_to_buffer(frame, &mut out) {
                Ok(got) if got as u64 == n => Some(out),
                _ => None,
            }
        });
        if let Some(out) = one_shot {
            return Ok(out);
        }
    }
    zstd::stream::decode_all(frame).map_err(|e| FormatError::malformed("blob", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(n: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn encode_into_appends_what_decode_reads_back() {
        let key = DataKey([7; 32]);
        let id_key = [9u8; 32];
        let text = b"tresor blob encoding ".repeat(500);
        let random = pseudo_random(70_000);
        let mut out = b"prefix".to_vec();
        let mut spans = Vec::new();
        for (i, plain) in [&text[..], &random[..], b"tiny"].into_iter().enumerate() {
            let id = BlobId::of(&id_key, plain);
            let start = out.len();
            let mut nonce = [0u8; 24];
            nonce[16] = i as u8;
            let n = encode_into(&key, &nonce, BlobType::Data, &id, plain, 3, &mut out).unwrap();
            assert_eq!(out.len(), start + n);
            assert_eq!(&out[start..start + 24], &nonce);
            spans.push((start, n, id, plain.to_vec()));
        }
        assert_eq!(&out[..6], b"prefix");
        for (start, n, id, plain) in &spans {
            let stored = &out[*start..*start + *n];
            assert_eq!(
                decode(&key, &id_key, BlobType::Data, id, stored).unwrap(),
                *plain
            );
            // Stored length per §7: 40 + 64 × ceil((5 + body) / 64).
            assert_eq!((n - 40) % PAD_TO, 0);
        }
        // Text compresses (zstd flag), random data is stored raw: its length is exact.
        assert!(spans[0].1 < text.len() / 4, "{}", spans[0].1);
        assert_eq!(spans[1].1, 40 + (5 + random.len()).div_ceil(64) * 64);
        // The same bytes as `encode` gives for the same nonce: decode with the wrong type fails.
        let (start, n, id, _) = &spans[0];
        assert!(decode(&key, &id_key, BlobType::Tree, id, &out[*start..*start + *n]).is_err());
    }

    #[test]
    fn compression_off_stores_raw() {
        let key = DataKey([1; 32]);
        let plain = vec![0u8; 10_000];
        let id = BlobId::of(&[2; 32], &plain);
        let mut out = Vec::new();
        let n = encode_into(&key, &[0; 24], BlobType::Data, &id, &plain, 0, &mut out).unwrap();
        assert_eq!(n, 40 + (5 + plain.len()).div_ceil(64) * 64);
        let n3 = encode(&key, BlobType::Data, &id, &plain, 3).unwrap().len();
        assert!(n3 < 200, "{n3}");
    }
}
