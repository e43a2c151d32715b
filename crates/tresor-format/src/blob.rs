//! Blob encoding (format §7).
//!
//! `inner = flag (1) || body length (u32 LE) || body || zero padding`, where `flag` is 0 for a
//! raw body and 1 for a zstd frame, and the padding brings `inner` to [`padded_len`] bytes:
//! Padmé, rounded up to a multiple of [`PAD_TO`] (64) bytes.
//! `stored = DataKey.encrypt(aad = blob type byte || blob id, inner)` (see [`crate::crypto`]).
//! Compression is chosen per blob: the zstd frame is kept only when it saves at least 1/32 of
//! the plaintext.
//!
//! **Padmé** is the padding scheme of Nikitin, Barman, Lueks, Underwood, Hubaux, Ford,
//! "Reducing Metadata Leakage from Encrypted Files and Communication with PURBs", Proceedings
//! on Privacy Enhancing Technologies (PETS) 2019, issue 4, §4 ([`padme`]): a length `L` is
//! rounded up to a multiple of `2^(E − S)`, `E = ⌊log2 L⌋`, `S = ⌊log2 E⌋ + 1`, so the padded
//! length has at most `S + 1` significant bits and reveals `O(log log L)` bits of `L`, at an
//! overhead below 12 % (below 3.2 % for `L` ≥ 64 KiB, where data chunks are). A 1 MiB chunk
//! lands in 32 KiB buckets; raw chunks between the default 256 KiB and 4 MiB bounds take one of
//! 129 stored lengths (one of 61 441 with 64-byte padding alone).

use crate::BlobId;
use crate::crypto::DataKey;
use crate::error::{FormatError, Result};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// Granularity of the inner blob encoding after Padmé, in bytes: [`padded_len`] is a multiple
/// of it.
pub const PAD_TO: usize = 64;

/// Padmé (Nikitin et al., PETS 2019, §4) of a length `L` in bytes: with `E = ⌊log2 L⌋`,
/// `S = ⌊log2 E⌋ + 1` and `z = E − S`, `L` rounded up to a multiple of `2^z`. Lengths below 2
/// are unchanged. Never less than `L`, less than `L + L/8` (the most is 11.6 %, at `L` = 129);
/// `L` must be below `2^63`.
pub const fn padme(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    let e = len.ilog2();
    let s = e.ilog2() + 1;
    let mask = (1u64 << (e - s)) - 1;
    (len + mask) & !mask
}

/// Length in bytes of the padded inner encoding of a blob whose unpadded inner encoding
/// (`flag || body length || body`) is `inner_len` bytes: [`padme`], rounded up to a multiple of
/// [`PAD_TO`] (format §7).
pub const fn padded_len(inner_len: usize) -> usize {
    (padme(inner_len as u64) as usize).div_ceil(PAD_TO) * PAD_TO
}

/// Stored length in bytes of a blob whose body (raw plaintext or zstd frame) is `body_len`
/// bytes: nonce, [`padded_len`] of `5 + body_len`, tag (format §7).
pub const fn stored_len(body_len: usize) -> usize {
    crate::crypto::BLOB_CRYPTO_OVERHEAD + padded_len(5 + body_len)
}

/// Largest plaintext of a data blob, bytes: the largest chunk the chunker can cut (16 MiB,
/// fastcdc's `MAXIMUM_MAX`, the upper bound of `chunker.max_size`, format §5). Readers refuse
/// a data blob that is (or decompresses to) more, without producing more than this.
pub const MAX_CHUNK_SIZE: usize = fastcdc::v2020::MAXIMUM_MAX;

const _: () = assert!(MAX_CHUNK_SIZE == 16 << 20);
const FLAG_RAW: u8 = 0;
const FLAG_ZSTD: u8 = 1;
const FLAG_FRAME: u8 = 2;

/// Largest plaintext of a frame (format §7, version 3), bytes: [`MAX_CHUNK_SIZE`], the bound of
/// a data blob. Readers refuse a frame declaring more before decompressing it.
pub const MAX_FRAME_SIZE: usize = MAX_CHUNK_SIZE;

/// What a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BlobType {
    /// A chunk of file content.
    Data,
    /// An encoded [`crate::tree::Tree`].
    Tree,
}

impl BlobType {
    /// The largest plaintext a blob of this type holds, bytes: [`MAX_CHUNK_SIZE`] for data,
    /// [`crate::tree::MAX_TREE_SIZE`] for trees. Writers never store more and readers never
    /// decompress more (format §7).
    pub fn max_plaintext(self) -> usize {
        match self {
            BlobType::Data => MAX_CHUNK_SIZE,
            BlobType::Tree => crate::tree::MAX_TREE_SIZE,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            BlobType::Data => "a data blob",
            BlobType::Tree => "a tree blob",
        }
    }

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

/// Associated data of a frame of blobs of `blob_type`: the type byte and 32 zero bytes (a frame
/// holds several blobs: no single id to bind; each member is checked against its id instead).
fn frame_aad(blob_type: BlobType) -> [u8; 33] {
    let mut a = [0u8; 33];
    a[0] = blob_type.byte();
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
/// [`FormatError::Random`]; a plaintext over [`BlobType::max_plaintext`] is
/// [`FormatError::Malformed`].
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
/// A plaintext over [`BlobType::max_plaintext`] is [`FormatError::Malformed`] (`out` is then
/// unchanged): readers would refuse it.
pub fn encode_into(
    key: &DataKey,
    nonce: &[u8; 24],
    blob_type: BlobType,
    id: &BlobId,
    plaintext: &[u8],
    level: i32,
    out: &mut Vec<u8>,
) -> Result<usize> {
    too_large(blob_type, plaintext.len())?;
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
    seal_inner(key, nonce, &aad(blob_type, id), out, start, body_len)
}

/// Encode and encrypt a *frame* (format §7, flag 2) whose plaintext `plain` is the
/// concatenation of its members' plaintexts, with `nonce`, appending the stored bytes to `out`.
/// Returns their length, or `None` (with `out` unchanged) when compression is off or the zstd
/// frame would not save at least 1/32 of `plain`: the caller then stores the members alone.
///
/// The zstd frame declares its content size; the associated data is the type byte and 32 zero
/// bytes. The same nonce rule as [`encode_into`] applies.
///
/// # Errors
/// A `plain` over [`MAX_FRAME_SIZE`] is [`FormatError::Malformed`] (readers would refuse it).
pub fn encode_frame_into(
    key: &DataKey,
    nonce: &[u8; 24],
    blob_type: BlobType,
    plain: &[u8],
    level: i32,
    out: &mut Vec<u8>,
) -> Result<Option<usize>> {
    if plain.len() > MAX_FRAME_SIZE {
        return Err(FormatError::malformed(
            "frame",
            format!(
                "{} bytes, more than a frame holds ({MAX_FRAME_SIZE})",
                plain.len()
            ),
        ));
    }
    let start = out.len();
    out.extend_from_slice(nonce);
    out.extend_from_slice(&[FLAG_FRAME, 0, 0, 0, 0]);
    let Some(body_len) = compress_into(level, plain, out) else {
        out.truncate(start);
        return Ok(None);
    };
    seal_inner(key, nonce, &frame_aad(blob_type), out, start, body_len).map(Some)
}

/// Finish the stored bytes that start at `start` in `out` (nonce, flag, 4 bytes for the body
/// length, body): write the body length, pad, encrypt in place, append the tag. Returns the
/// stored length.
fn seal_inner(
    key: &DataKey,
    nonce: &[u8; 24],
    aad: &[u8],
    out: &mut Vec<u8>,
    start: usize,
    body_len: usize,
) -> Result<usize> {
    let inner_start = start + 24;
    let Ok(body_len32) = u32::try_from(body_len) else {
        out.truncate(start);
        return Err(FormatError::malformed("blob", "body over 4 GiB"));
    };
    out[inner_start + 1..inner_start + 5].copy_from_slice(&body_len32.to_le_bytes());
    out.resize(inner_start + padded_len(5 + body_len), 0);
    let tag = key.encrypt_in_place(nonce, aad, &mut out[inner_start..]);
    out.extend_from_slice(&tag);
    Ok(out.len() - start)
}

/// Decrypt and decode a blob's stored bytes and check that the plaintext hashes to `id`.
///
/// Never produces more than [`BlobType::max_plaintext`] bytes: a raw body over it, or a zstd
/// frame that declares or decompresses to more, is refused as malformed, and memory use while
/// refusing stays within about that bound.
///
/// # Errors
/// [`FormatError::Authentication`] for modified bytes, [`FormatError::Malformed`] for a bad
/// or too large body, [`FormatError::BlobIdMismatch`] when the content does not hash to `id`.
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
    let (flag, body) = split_inner(&stored, inner, "blob")?;
    let body_len = body.len();
    let plain = match flag {
        FLAG_RAW => {
            too_large(blob_type, body_len)?;
            stored.copy_within(body, 0);
            stored.truncate(body_len);
            stored
        }
        FLAG_ZSTD => decompress(&stored[body], blob_type)?,
        FLAG_FRAME => {
            return Err(FormatError::malformed(
                "blob",
                "a frame (flag 2) in an entry that is not a frame member",
            ));
        }
        f => return Err(FormatError::malformed("blob", format!("unknown flag {f}"))),
    };
    if BlobId::of(id_key, &plain) != *id {
        return Err(FormatError::BlobIdMismatch(*id));
    }
    Ok(plain)
}

/// The flag and the body's range of a decrypted `inner` within `stored`.
fn split_inner(
    stored: &[u8],
    inner: std::ops::Range<usize>,
    what: &'static str,
) -> Result<(u8, std::ops::Range<usize>)> {
    if inner.len() < 5 {
        return Err(FormatError::malformed(what, "too short"));
    }
    let at = inner.start;
    let body_len = u32::from_le_bytes(stored[at + 1..at + 5].try_into().expect("4 bytes")) as usize;
    let body = at + 5..at + 5 + body_len;
    if body.end > inner.end {
        return Err(FormatError::malformed(what, "body length"));
    }
    Ok((stored[at], body))
}

/// Decrypt and decompress a stored *frame* (format §7, flag 2) of blobs of `blob_type`: returns
/// its plaintext, the concatenation of its members' plaintexts. The members are not checked
/// here: [`frame_member`] checks each against its id.
///
/// The zstd frame MUST declare its content size, at most [`MAX_FRAME_SIZE`]: larger or
/// undeclared sizes are refused before anything is decompressed.
///
/// # Errors
/// [`FormatError::Authentication`] for modified bytes (or a blob that is not a frame),
/// [`FormatError::Malformed`] for flag 0 or 1, a bad body, a missing or too large declared
/// size, or a frame that does not decompress to its declared size.
pub fn decode_frame(key: &DataKey, blob_type: BlobType, stored: &[u8]) -> Result<Vec<u8>> {
    decode_frame_owned(key, blob_type, stored.to_vec())
}

/// [`decode_frame`] of stored bytes the caller owns (decrypted in place, not copied first).
///
/// # Errors
/// As [`decode_frame`].
pub fn decode_frame_owned(
    key: &DataKey,
    blob_type: BlobType,
    mut stored: Vec<u8>,
) -> Result<Vec<u8>> {
    let inner = key.decrypt_in_place(&frame_aad(blob_type), &mut stored, "frame")?;
    let (flag, body) = split_inner(&stored, inner, "frame")?;
    if flag != FLAG_FRAME {
        return Err(FormatError::malformed(
            "frame",
            format!("flag {flag} in a frame member's entry (a frame has flag 2)"),
        ));
    }
    let frame = &stored[body];
    let declared = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten()
        .ok_or_else(|| FormatError::malformed("frame", "zstd frame declares no content size"))?;
    if declared > MAX_FRAME_SIZE as u64 {
        return Err(FormatError::malformed(
            "frame",
            format!(
                "zstd frame declares {declared} bytes, more than a frame holds ({MAX_FRAME_SIZE})"
            ),
        ));
    }
    one_shot(frame, declared as usize).ok_or_else(|| {
        FormatError::malformed(
            "frame",
            "zstd frame does not decompress to its declared size",
        )
    })
}

/// The plaintext of the member `id` of a decoded frame: `frame[member..member + raw_length]`,
/// which must lie inside the frame and hash to `id`.
///
/// # Errors
/// [`FormatError::Malformed`] for a range outside the frame, [`FormatError::BlobIdMismatch`].
pub fn frame_member<'a>(
    frame: &'a [u8],
    id_key: &[u8; 32],
    id: &BlobId,
    member: u64,
    raw_length: u64,
) -> Result<&'a [u8]> {
    let slice = usize::try_from(member)
        .ok()
        .zip(usize::try_from(raw_length).ok())
        .and_then(|(m, n)| frame.get(m..m.checked_add(n)?))
        .ok_or_else(|| {
            FormatError::malformed(
                "frame",
                format!(
                    "member {id} at {member} + {raw_length} lies outside the frame's {} bytes",
                    frame.len()
                ),
            )
        })?;
    if BlobId::of(id_key, slice) != *id {
        return Err(FormatError::BlobIdMismatch(*id));
    }
    Ok(slice)
}

/// Frames that declare at most this many bytes are decompressed in one call into a buffer of
/// that size; others (and frames without a declared size) are streamed.
const ONE_SHOT_MAX: u64 = 64 << 20;

thread_local! {
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Refuse a plaintext of `len` bytes that a blob of `blob_type` cannot hold.
fn too_large(blob_type: BlobType, len: usize) -> Result<()> {
    let cap = blob_type.max_plaintext();
    if len > cap {
        return Err(FormatError::malformed(
            "blob",
            format!("{len} bytes, more than {} holds ({cap})", blob_type.noun()),
        ));
    }
    Ok(())
}

/// Decompress one zstd frame into at most `blob_type.max_plaintext()` bytes. A frame that
/// declares its size (as every frame tresor writes does) is decompressed in one call into a
/// buffer of that size; others are streamed and cut off after the cap.
fn decompress(frame: &[u8], blob_type: BlobType) -> Result<Vec<u8>> {
    let declared = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten();
    if let Some(n) = declared {
        too_large(blob_type, usize::try_from(n).unwrap_or(usize::MAX))
            .map_err(|_| declared_too_large(blob_type, n))?;
    }
    if let Some(n) = declared.filter(|n| *n <= ONE_SHOT_MAX)
        && let Some(out) = one_shot(frame, n as usize)
    {
        return Ok(out);
    }
    decompress_capped(frame, blob_type)
}

/// Decompress `frame` in one call into a buffer of its declared size `n`; `None` when it fails
/// or gives another size.
fn one_shot(frame: &[u8], n: usize) -> Option<Vec<u8>> {
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = zstd::bulk::Decompressor::new().ok();
        }
        let d = d.as_mut()?;
        let mut out = Vec::with_capacity(n);
        match d.decompress_to_buffer(frame, &mut out) {
            Ok(got) if got == n => Some(out),
            _ => None,
        }
    })
}

fn declared_too_large(blob_type: BlobType, n: u64) -> FormatError {
    FormatError::malformed(
        "blob",
        format!(
            "zstd frame declares {n} bytes, more than {} holds ({})",
            blob_type.noun(),
            blob_type.max_plaintext()
        ),
    )
}

/// Stream-decompress `frame`, reading at most one byte beyond the cap: memory stays within
/// about the cap (and the decoder's window, limited to the cap for data blobs) whatever the
/// frame claims.
fn decompress_capped(frame: &[u8], blob_type: BlobType) -> Result<Vec<u8>> {
    use std::io::Read;
    let cap = blob_type.max_plaintext();
    let malformed = |e: std::io::Error| FormatError::malformed("blob", e);
    let mut decoder = zstd::stream::read::Decoder::with_buffer(frame).map_err(malformed)?;
    if blob_type == BlobType::Data {
        // 2^24 = MAX_CHUNK_SIZE: no back-reference of a data blob reaches further.
        decoder.window_log_max(24).map_err(malformed)?;
    }
    let mut out = Vec::new();
    decoder
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(malformed)?;
    if out.len() > cap {
        return Err(FormatError::malformed(
            "blob",
            format!(
                "zstd frame decompresses to more than {} holds ({cap})",
                blob_type.noun()
            ),
        ));
    }
    Ok(out)
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
            // Stored length per §7: 40 + padded_len(5 + body).
            assert_eq!((n - 40) % PAD_TO, 0);
            assert_eq!(padded_len(n - 40), n - 40);
        }
        // Text compresses (zstd flag), random data is stored raw: its length is exact.
        assert!(spans[0].1 < text.len() / 4, "{}", spans[0].1);
        assert_eq!(spans[1].1, stored_len(random.len()));
        // 70 005 bytes of inner: E = 16, S = 5, so a multiple of 2^11 = 2048.
        assert_eq!(spans[1].1, 40 + 71_680);
        // The same bytes as `encode` gives for the same nonce: decode with the wrong type fails.
        let (start, n, id, _) = &spans[0];
        assert!(decode(&key, &id_key, BlobType::Tree, id, &out[*start..*start + *n]).is_err());
    }

    /// A zstd frame of `total` zero bytes (a multiple of 128 KiB) made of RLE blocks, 4 bytes
    /// per 128 KiB: 1 GiB is 32 774 bytes. With `declare`, the header states the size.
    fn zero_bomb(total: u64, declare: bool) -> Vec<u8> {
        let mut f = vec![0x28, 0xb5, 0x2f, 0xfd];
        // Frame header descriptor (content size field of 8 bytes or none, no single segment),
        // then the window descriptor: 2^(10 + 7) = 128 KiB.
        f.push(if declare { 0xc0 } else { 0x00 });
        f.push(7 << 3);
        if declare {
            f.extend_from_slice(&total.to_le_bytes());
        }
        let blocks = total / (128 << 10);
        for i in 0..blocks {
            let last = u32::from(i + 1 == blocks);
            let header = ((128u32 << 10) << 3) | (1 << 1) | last; // RLE block of 128 KiB
            f.extend_from_slice(&header.to_le_bytes()[..3]);
            f.push(0);
        }
        f
    }

    /// Stored bytes of a blob whose inner encoding is `flag || len || body || padding`.
    fn craft(key: &DataKey, t: BlobType, id: &BlobId, flag: u8, body: &[u8]) -> Vec<u8> {
        let mut inner = vec![flag];
        inner.extend_from_slice(&(body.len() as u32).to_le_bytes());
        inner.extend_from_slice(body);
        inner.resize(padded_len(inner.len()), 0);
        key.encrypt(&aad(t, id), inner).unwrap()
    }

    #[test]
    fn decompression_bombs_are_refused_within_the_cap() {
        let key = DataKey([3; 32]);
        let id_key = [4u8; 32];
        let id = BlobId([5; 32]);
        let bomb = zero_bomb(1 << 30, false);
        assert_eq!(bomb.len(), 6 + 8192 * 4);
        // It is a real zstd frame of zeros, without a declared size.
        let mut head = vec![0u8; 1 << 20];
        std::io::Read::read_exact(
            &mut zstd::stream::read::Decoder::new(&bomb[..]).unwrap(),
            &mut head,
        )
        .unwrap();
        assert!(head.iter().all(|b| *b == 0));
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&bomb).ok(),
            Some(None)
        );
        let stored = craft(&key, BlobType::Data, &id, FLAG_ZSTD, &bomb);
        let e = decode(&key, &id_key, BlobType::Data, &id, &stored).unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed blob: zstd frame decompresses to more than a data blob holds (16777216)"
        );
        // Declared sizes over the cap are refused before anything is decompressed.
        let declared = zero_bomb(1 << 30, true);
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&declared).ok(),
            Some(Some(1 << 30))
        );
        for (t, cap) in [(BlobType::Data, 16 << 20), (BlobType::Tree, 256 << 20)] {
            let stored = craft(&key, t, &id, FLAG_ZSTD, &declared);
            let e = decode(&key, &id_key, t, &id, &stored).unwrap_err();
            let noun = t.noun();
            assert_eq!(
                e.to_string(),
                format!(
                    "malformed blob: zstd frame declares 1073741824 bytes, more than {noun} holds ({cap})"
                )
            );
        }
    }

    #[test]
    fn frames_must_declare_a_size_within_the_cap() {
        let key = DataKey([3; 32]);
        let frame_of = |body: &[u8], flag| {
            let mut inner = vec![flag];
            inner.extend_from_slice(&(body.len() as u32).to_le_bytes());
            inner.extend_from_slice(body);
            inner.resize(padded_len(inner.len()), 0);
            key.encrypt(&frame_aad(BlobType::Data), inner).unwrap()
        };
        // 1 GiB declared: refused before decompressing, so fast and without allocating it.
        let t = std::time::Instant::now();
        let e = decode_frame(
            &key,
            BlobType::Data,
            &frame_of(&zero_bomb(1 << 30, true), FLAG_FRAME),
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "malformed frame: zstd frame declares 1073741824 bytes, more than a frame holds (16777216)"
        );
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        // No declared size: malformed, whatever it would decompress to.
        let e = decode_frame(
            &key,
            BlobType::Data,
            &frame_of(&zero_bomb(1 << 17, false), FLAG_FRAME),
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "malformed frame: zstd frame declares no content size"
        );
        // Exactly the cap, declared: decodes.
        let cap = zero_bomb(MAX_FRAME_SIZE as u64, true);
        let plain = decode_frame(&key, BlobType::Data, &frame_of(&cap, FLAG_FRAME)).unwrap();
        assert_eq!(plain.len(), MAX_FRAME_SIZE);
        // Flag 0 or 1 under a frame's associated data: malformed.
        for flag in [FLAG_RAW, FLAG_ZSTD] {
            let e = decode_frame(&key, BlobType::Data, &frame_of(b"body", flag)).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "malformed frame: flag {flag} in a frame member's entry (a frame has flag 2)"
                )
            );
        }
        // Flag 2 under a single blob's associated data: malformed.
        let id = BlobId([1; 32]);
        let stored = craft(&key, BlobType::Data, &id, FLAG_FRAME, &cap);
        assert_eq!(
            decode(&key, &[4; 32], BlobType::Data, &id, &stored)
                .unwrap_err()
                .to_string(),
            "malformed blob: a frame (flag 2) in an entry that is not a frame member"
        );
        // Writers refuse a frame over the cap.
        let big = vec![0u8; MAX_FRAME_SIZE + 1];
        let mut out = Vec::new();
        assert!(encode_frame_into(&key, &[0; 24], BlobType::Data, &big, 3, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn raw_bodies_over_the_cap_are_refused() {
        let key = DataKey([3; 32]);
        let body = vec![0u8; MAX_CHUNK_SIZE + 1];
        let id = BlobId::of(&[4; 32], &body);
        let stored = craft(&key, BlobType::Data, &id, FLAG_RAW, &body);
        let e = decode(&key, &[4; 32], BlobType::Data, &id, &stored).unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed blob: 16777217 bytes, more than a data blob holds (16777216)"
        );
        // Writers refuse to make such a blob.
        let e = encode(&key, BlobType::Data, &id, &body, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed blob: 16777217 bytes, more than a data blob holds (16777216)"
        );
        // The same body is a tree's business up to 256 MiB.
        let id = BlobId::of(&[4; 32], &body);
        let stored = craft(&key, BlobType::Tree, &id, FLAG_RAW, &body);
        assert_eq!(
            decode(&key, &[4; 32], BlobType::Tree, &id, &stored)
                .unwrap()
                .len(),
            body.len()
        );
    }

    #[test]
    fn honest_frames_up_to_the_cap_decode() {
        let key = DataKey([3; 32]);
        let id_key = [4u8; 32];
        // Exactly the cap, compressed by the writer (declared size: the one-shot path).
        let full = vec![7u8; MAX_CHUNK_SIZE];
        let id = BlobId::of(&id_key, &full);
        let stored = encode(&key, BlobType::Data, &id, &full, 3).unwrap();
        assert!(stored.len() < 4096, "{}", stored.len());
        assert_eq!(
            decode(&key, &id_key, BlobType::Data, &id, &stored).unwrap(),
            full
        );
        // A frame without a declared size (a streaming compressor) is streamed under the cap.
        let text = b"no declared size ".repeat(60_000);
        let frame = zstd::stream::encode_all(&text[..], 3).unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&frame).ok(),
            Some(None)
        );
        let id = BlobId::of(&id_key, &text);
        let stored = craft(&key, BlobType::Data, &id, FLAG_ZSTD, &frame);
        assert_eq!(
            decode(&key, &id_key, BlobType::Data, &id, &stored).unwrap(),
            text
        );
        // So is a frame of exactly the cap without a declared size.
        let frame = zero_bomb(MAX_CHUNK_SIZE as u64, false);
        let zeros = vec![0u8; MAX_CHUNK_SIZE];
        let id = BlobId::of(&id_key, &zeros);
        let stored = craft(&key, BlobType::Data, &id, FLAG_ZSTD, &frame);
        assert_eq!(
            decode(&key, &id_key, BlobType::Data, &id, &stored).unwrap(),
            zeros
        );
    }

    #[test]
    fn compression_off_stores_raw() {
        let key = DataKey([1; 32]);
        let plain = vec![0u8; 10_000];
        let id = BlobId::of(&[2; 32], &plain);
        let mut out = Vec::new();
        let n = encode_into(&key, &[0; 24], BlobType::Data, &id, &plain, 0, &mut out).unwrap();
        // 10 005 bytes of inner: E = 13, S = 4, a multiple of 2^9 = 512.
        assert_eq!(n, 40 + 10_240);
        assert_eq!(n, stored_len(plain.len()));
        let n3 = encode(&key, BlobType::Data, &id, &plain, 3).unwrap().len();
        assert!(n3 < 200, "{n3}");
    }

    #[test]
    fn padme_follows_the_paper() {
        // (L, Padmé(L)) worked by hand from §4 of the paper.
        let cases = [
            (0u64, 0u64),
            (1, 1),
            (2, 2),
            (3, 3),
            (5, 5),
            (9, 10),
            (63, 64),
            (100, 104),
            (1000, 1024),
            (129, 144),
            (1025, 1088),
            (65_537, 67_584),
            (1 << 20, 1 << 20),
            ((1 << 20) + 1, (1 << 20) + (1 << 15)),
            ((4 << 20) + 5, (4 << 20) + (1 << 17)),
            ((16 << 20) + 5, (16 << 20) + (1 << 19)),
        ];
        for (l, want) in cases {
            assert_eq!(padme(l), want, "L = {l}");
        }
        // Never shorter; overhead below 1/8 (the most is 15/129, 11.6 %); idempotent.
        for l in (2..200_000u64).chain((1..64).map(|k| (1u64 << 40) + k * 977)) {
            let p = padme(l);
            assert!(p >= l && (p - l) * 8 < l, "L = {l}: {p}");
            assert_eq!(padme(p), p, "L = {l}");
        }
        // Below 1 KiB the 64-byte rounding decides, from 1 KiB on Padmé does.
        assert_eq!(padded_len(5), 64);
        assert_eq!(padded_len(65), 128);
        assert_eq!(padded_len(1000), 1024);
        assert_eq!(padded_len(1025), 1088);
        assert_eq!(padded_len(10_005), 10_240);
        assert_eq!(stored_len(0), 104);
        // Raw chunks between the default bounds (256 KiB to 4 MiB) fall into 129 stored
        // lengths (61 441 with 64-byte padding alone).
        let lengths = |pad: fn(usize) -> usize| {
            let mut v: Vec<usize> = ((256 << 10)..=(4 << 20)).map(|n| pad(5 + n)).collect();
            v.dedup();
            v.len()
        };
        assert_eq!(lengths(padded_len), 129);
        assert_eq!(lengths(|n| n.div_ceil(64) * 64), 61_441);
    }
}
