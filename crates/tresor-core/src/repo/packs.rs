//! Packs read back whole or by their header: the mechanics prune and repair share.

use super::handle::Repository;
use crate::error::{CoreError, Damage, Result};
use std::fmt;
use tresor_format::crypto::DataKey;
use tresor_format::index::IndexPack;
use tresor_format::pack::BlobEntry;
use tresor_format::{ObjectId, blob, pack};
use tresor_storage::Kind;

/// Read a pack's header by two range reads (trailer, then header), checking that no blob it
/// lists extends into the header.
///
/// # Errors
/// Storage errors; [`CoreError::Damaged`] naming the pack for a header that does not open.
pub fn read_pack_header(repo: &Repository, id: &ObjectId, size: u64) -> Result<pack::PackHeader> {
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
pub fn stored_blob(bytes: &[u8], offset: u64, length: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(length).ok()?)?;
    bytes.get(start..end)
}

/// Decodes the blobs of one pack read whole. A frame (format §7) is decoded once for the
/// members that follow each other (entries in pack order do): the last frame decoded is kept,
/// so memory stays within one frame (16 MiB) whatever the pack holds.
pub struct WholePack<'a> {
    bytes: &'a [u8],
    data_key: &'a DataKey,
    id_key: &'a [u8; 32],
    /// The last frame decoded: (offset, length, type byte) and its plaintext or what was wrong.
    last: Option<((u64, u64, u8), Decoded)>,
}

/// A decoded frame's plaintext, or what is wrong with it.
type Decoded = std::result::Result<Vec<u8>, String>;

impl<'a> WholePack<'a> {
    /// A decoder of the blobs of `bytes` (a pack read whole) under `data_key`.
    pub fn new(bytes: &'a [u8], data_key: &'a DataKey, id_key: &'a [u8; 32]) -> Self {
        WholePack {
            bytes,
            data_key,
            id_key,
            last: None,
        }
    }

    /// The verified plaintext of the blob of entry `e` (alone or a frame member), or what is
    /// wrong with it, in words.
    pub fn blob(&mut self, e: &BlobEntry) -> std::result::Result<Vec<u8>, String> {
        let stored = stored_blob(self.bytes, e.offset, e.length)
            .ok_or_else(|| "beyond the end of the pack".to_string())?;
        let Some(member) = e.member else {
            return blob::decode(self.data_key, self.id_key, e.blob_type, &e.id, stored)
                .map_err(|err| err.to_string());
        };
        let at = (e.offset, e.length, e.blob_type.byte());
        if self.last.as_ref().map(|l| l.0) != Some(at) {
            let frame = blob::decode_frame(self.data_key, e.blob_type, stored);
            self.last = Some((at, frame.map_err(|err| err.to_string())));
        }
        let frame = self.last.as_ref().expect("just set").1.as_ref()?;
        blob::frame_member(frame, self.id_key, &e.id, member, e.raw_length)
            .map(<[u8]>::to_vec)
            .map_err(|err| err.to_string())
    }
}

/// The stored bytes each entry of `blobs` accounts for: its `length` for a blob stored alone;
/// for a frame member, a share of the frame's `length` in proportion to its plaintext among
/// the frame's members listed in `blobs` (so the shares of a frame add up to about its length).
pub fn stored_shares(blobs: &[BlobEntry]) -> Vec<u64> {
    let mut plain: std::collections::HashMap<(u64, u64), u64> = Default::default();
    for b in blobs.iter().filter(|b| b.member.is_some()) {
        let t = plain.entry((b.offset, b.length)).or_default();
        *t = t.saturating_add(b.raw_length);
    }
    blobs
        .iter()
        .map(|b| match b.member {
            None => b.length,
            Some(_) => {
                let total = plain[&(b.offset, b.length)].max(1);
                let share = u128::from(b.length) * u128::from(b.raw_length) / u128::from(total);
                u64::try_from(share).unwrap_or(u64::MAX)
            }
        })
        .collect()
}

/// Read a whole pack and decode every listed blob (verifies the entries blob by blob).
///
/// # Errors
/// Storage errors; [`CoreError::Damaged`] for a blob beyond the pack's end,
/// [`Damage::BlobDoesNotVerify`] for one that does not verify.
pub fn verify_pack(repo: &Repository, p: &IndexPack) -> Result<()> {
    let bytes = repo.read_object(Kind::Pack, &p.id)?;
    let mut whole = WholePack::new(&bytes, &p.data_key, &repo.key().id_key);
    for b in &p.blobs {
        if stored_blob(&bytes, b.offset, b.length).is_none() {
            let m = format!("pack {}: blob {} beyond its end", p.id, b.id);
            return Err(CoreError::Damaged(m));
        }
        whole.blob(b).map_err(|e| {
            let m = format!(
                "pack {}: blob {} does not verify ({e}): damaged or forged",
                p.id, b.id
            );
            CoreError::damage(Damage::BlobDoesNotVerify, m)
        })?;
    }
    Ok(())
}
