//! Packs read back whole or by their header: the mechanics prune and repair share.

use super::handle::Repository;
use crate::error::{CoreError, Damage, Result};
use std::fmt;
use tresor_format::index::IndexPack;
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

/// Read a whole pack and decode every listed blob (verifies the entries blob by blob).
///
/// # Errors
/// Storage errors; [`CoreError::Damaged`] for a blob beyond the pack's end,
/// [`Damage::BlobDoesNotVerify`] for one that does not verify.
pub fn verify_pack(repo: &Repository, p: &IndexPack) -> Result<()> {
    let bytes = repo.read_object(Kind::Pack, &p.id)?;
    for b in &p.blobs {
        let stored = stored_blob(&bytes, b.offset, b.length).ok_or_else(|| {
            CoreError::Damaged(format!("pack {}: blob {} beyond its end", p.id, b.id))
        })?;
        blob::decode(&p.data_key, &repo.key().id_key, b.blob_type, &b.id, stored).map_err(|e| {
            let m = format!(
                "pack {}: blob {} does not verify ({e}): damaged or forged",
                p.id, b.id
            );
            CoreError::damage(Damage::BlobDoesNotVerify, m)
        })?;
    }
    Ok(())
}
