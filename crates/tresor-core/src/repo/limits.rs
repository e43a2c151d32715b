//! The largest objects readers take in (format §2, "Size limits"), in one table.
//!
//! Every object a reader takes in whole — config, key files, revocations, snapshots, index
//! objects, prune records, markers, and packs read for verification — is first measured (the
//! size the storage lists for it, or asks for once) against its kind's limit and then read with
//! one ranged read of exactly that many bytes. A hostile object of many gigabytes is so refused
//! as damage without being read into memory; an object that is larger than listed fails its
//! name check. Stored blobs are bounded the same way before they are read.
//!
//! The limits are generous: well above what any tresor writer produces (the reason is given per
//! kind), so that no honest object is ever refused.

use crate::error::{CoreError, Result};
use tresor_format::blob::BlobType;
use tresor_format::config::Config;
use tresor_format::tree::{MAX_TREE_DEPTH, MAX_TREE_SIZE};
use tresor_storage::{Kind, Storage};

const MIB: u64 = 1 << 20;

/// Config: about 500 bytes of JSON.
pub const CONFIG: u64 = MIB;
/// Key file: about 1 KiB of JSON.
pub const KEY: u64 = MIB;
/// Revocation: 67 bytes of JSON per accepted object id, so about a million of them.
pub const REVOCATION: u64 = 64 * MIB;
/// Snapshot: a few KiB of JSON (paths, tags, excludes, markers).
pub const SNAPSHOT: u64 = 16 * MIB;
/// Backup start marker: about 300 bytes.
pub const MARKER: u64 = MIB;
/// Drill record (format §18): about 100 bytes per pack and snapshot it lists; a drill samples
/// at most a few thousand packs.
pub const DRILL: u64 = 16 * MIB;
/// Prune record: a fossil record lists about 65 536 blobs (about 3.5 MB); a state lists pack
/// and snapshot ids.
pub const PRUNE_RECORD: u64 = 64 * MIB;
/// Trust record: about 200 bytes of JSON per trusted or revoked key, so about 80 000 keys
/// (every signer `key signers --accept` accepts adds one).
pub const TRUST: u64 = 16 * MIB;
/// Index object, at least: prune and repair write about 65 536 blobs per object (about 6 MB).
pub const INDEX_MIN: u64 = 64 * MIB;
/// Packs per index object that readers' size limit for index objects is sized for, below
/// [`INDEX_CAP`] ([`max_index_size`]). Backups list up to twice as many packs in one (the
/// packer's `INDEX_FLUSH`) but count its bytes and stay within the limit.
pub const INDEX_EVERY: usize = 16;

/// The largest object of `kind` readers take in, bytes. Index objects and packs scale with the
/// config's `pack_size`: an index entry (with its dedup list entry, about 80 bytes) is smaller
/// than the smallest stored blob (104 bytes), so the limit has room for one pack's entries and
/// for [`INDEX_EVERY`] packs' below [`INDEX_CAP`] (a backup writes its index object before it
/// would pass the limit); a pack holds up to
/// `pack_size` bytes of blobs, one more blob (a tree blob may reach [`MAX_TREE_SIZE`]) and a
/// header of under 50 bytes per blob.
pub fn max_object_size(kind: Kind, config: &Config) -> u64 {
    match kind {
        Kind::Config => CONFIG,
        Kind::Key => KEY,
        Kind::Revocation => REVOCATION,
        Kind::Snapshot => SNAPSHOT,
        Kind::Marker => MARKER,
        Kind::PruneRecord => PRUNE_RECORD,
        Kind::Trust => TRUST,
        Kind::Drill => DRILL,
        Kind::Index => max_index_size(config.pack_size),
        Kind::Pack => 2u64
            .saturating_mul(config.pack_size.saturating_add(MAX_TREE_SIZE as u64))
            .saturating_add(MIB),
    }
}

/// Index objects' limit stops growing with `pack_size` here (bytes, 256 MiB: what 16 MiB packs
/// gave), unless one pack's entries need more: a reader holds an index object sealed and opened
/// (twice its size), and a put-only host can write one as large as the limit. The one exception
/// to "no honest object is refused": tresor builds before backups counted index bytes against
/// 8 MiB could write up to 16 × `pack_size` — above this only with `--pack-size-mib` over 16
/// and millions of tiny blobs in one run; such an object is damage that `repair index` mends
/// (format §2).
pub const INDEX_CAP: u64 = 256 * MIB;

/// The largest index object readers take in from a repository of `pack_size` (bytes):
/// [`INDEX_EVERY`] × `pack_size` at most [`INDEX_CAP`], at least [`INDEX_MIN`] — and at least
/// `pack_size`, which holds one pack's entries (at most `pack_size / 104` of them, about 80
/// bytes each: `tresor_format::pack::max_entries`). The packer counts the bytes of the index
/// object it collects against this and writes it before it would pass (at 8 MiB, or with one
/// pack). 256 MiB for the default 32 MiB packs and for 16 MiB ones.
pub fn max_index_size(pack_size: u64) -> u64 {
    let scaled = (INDEX_EVERY as u64)
        .saturating_mul(pack_size)
        .min(INDEX_CAP);
    INDEX_MIN.max(scaled).max(pack_size)
}

/// The largest stored length of a blob of `blob_type` (format §7): a data blob holds at most
/// one chunk (`chunker.max_size`), a tree blob at most [`MAX_TREE_SIZE`] bytes, each with its
/// encryption, header and padding overhead.
pub fn max_stored_blob(blob_type: BlobType, config: &Config) -> u64 {
    let plain = match blob_type {
        BlobType::Data => u64::from(config.chunker.max_size),
        BlobType::Tree => MAX_TREE_SIZE as u64,
    };
    tresor_format::blob::stored_len(plain as usize) as u64
}

/// Read object `name` of `kind` whole, refusing it unread when it is larger than `limit`.
/// `listed` is its size from a listing; without one the storage is asked. Does not check the
/// name against the content (callers do: an object larger than listed fails that check).
///
/// # Errors
/// [`CoreError::Damaged`] ("… bytes, more than …") for an object over the limit; storage errors.
pub fn read_bounded(
    storage: &dyn Storage,
    kind: Kind,
    name: &str,
    listed: Option<u64>,
    limit: u64,
) -> Result<Vec<u8>> {
    let size = match listed {
        Some(s) => s,
        None => storage.size(kind, name)?,
    };
    if size > limit {
        return Err(too_large(kind, name, size, limit));
    }
    if size == 0 {
        return Ok(Vec::new());
    }
    Ok(storage.read_range(kind, name, 0, size)?)
}

/// "nested deeper than … directories": why a tree below [`MAX_TREE_DEPTH`] levels is not read
/// (format §10).
pub fn too_deep() -> String {
    format!("nested deeper than {MAX_TREE_DEPTH} directories")
}

/// The error for an object over its kind's limit.
pub fn too_large(kind: Kind, name: &str, size: u64, limit: u64) -> CoreError {
    CoreError::Damaged(format!(
        "{kind} {name} is {size} bytes, more than the {limit} bytes a {kind} may have: refused unread"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_cover_what_writers_produce() {
        let c = Config::new().unwrap();
        assert_eq!(c.pack_size, 32 * MIB);
        assert_eq!(max_object_size(Kind::Index, &c), 256 * MIB);
        // Small packs: the floor; huge ones: one pack's entries (never 16 of them).
        assert_eq!(max_index_size(MIB), 64 * MIB);
        assert_eq!(max_index_size(1 << 30), 1 << 30);
        let one_pack = tresor_format::pack::max_entries(1 << 30) as u64 * 80;
        assert!(one_pack < max_index_size(1 << 30), "{one_pack}");
        assert_eq!(
            max_object_size(Kind::Pack, &c),
            2 * (32 * MIB + 256 * MIB) + MIB
        );
        // A repository made with the earlier default (16 MiB) keeps its own limits.
        let old = Config {
            pack_size: 16 * MIB,
            ..c.clone()
        };
        assert_eq!(max_object_size(Kind::Index, &old), 256 * MIB);
        assert_eq!(
            max_object_size(Kind::Pack, &old),
            2 * (16 * MIB + 256 * MIB) + MIB
        );
        // Padmé (format §7): 4 MiB + 5 rounds up to a multiple of 128 KiB, 256 MiB + 5 of 8 MiB.
        assert_eq!(
            max_stored_blob(BlobType::Data, &c),
            40 + 4 * MIB + 128 * 1024
        );
        assert_eq!(
            max_stored_blob(BlobType::Tree, &c),
            40 + 256 * MIB + 8 * MIB
        );
        let small = Config {
            pack_size: MIB,
            ..c.clone()
        };
        assert_eq!(max_object_size(Kind::Index, &small), INDEX_MIN);
        let huge = Config {
            pack_size: u64::MAX,
            ..c
        };
        assert_eq!(max_object_size(Kind::Index, &huge), u64::MAX);
    }

    /// The largest blob a writer makes — an incompressible chunk of the maximum size — is
    /// within the limit readers hold stored blobs to.
    #[test]
    fn the_largest_blob_a_writer_stores_is_within_the_limit() {
        let c = Config::new().unwrap();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let chunk: Vec<u8> = (0..c.chunker.max_size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let key = tresor_format::crypto::DataKey([3; 32]);
        let id = tresor_format::BlobId::of(&[1; 32], &chunk);
        let stored = tresor_format::blob::encode(&key, BlobType::Data, &id, &chunk, 3).unwrap();
        assert!(stored.len() as u64 <= max_stored_blob(BlobType::Data, &c));
        assert!(stored.len() as u64 > max_stored_blob(BlobType::Data, &c) - 128 * 1024);
    }

    #[test]
    fn an_object_over_its_limit_is_refused_unread() {
        let s = tresor_storage::memory::MemoryStorage::default();
        s.create().unwrap();
        let big = vec![7u8; 2000];
        let name = tresor_storage::name_of(&big);
        s.write(Kind::Snapshot, &name, &big).unwrap();
        let e = read_bounded(&s, Kind::Snapshot, &name, None, 1999).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "repository damaged: snapshot {name} is 2000 bytes, more than the 1999 bytes a \
                 snapshot may have: refused unread"
            )
        );
        assert_eq!(
            read_bounded(&s, Kind::Snapshot, &name, Some(2000), 2000).unwrap(),
            big
        );
        // A listing that understates the size reads only what it says (the name check fails).
        assert_eq!(
            read_bounded(&s, Kind::Snapshot, &name, Some(10), 2000).unwrap(),
            big[..10]
        );
    }
}
