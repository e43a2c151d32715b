//! The uploader: writes finished packs, and index objects listing them.

use super::open::Finished;
use super::worker::Closed;
use super::{INDEX_FLUSH, PackerStats, record};
use crate::error::{CoreError, Result};
use crossbeam_channel::{Receiver, Sender};
use std::sync::Mutex;
use tresor_format::ObjectId;
use tresor_format::blob::BlobType;
use tresor_format::crypto::MasterKey;
use tresor_format::index::{IndexFile, IndexPack};
use tresor_format::sign::Signer;
use tresor_storage::{Kind, Storage};

/// Bytes of an index object besides what [`index_bytes`] counts per pack, at most: the signed
/// envelope (signer, signature), HPKE's encapsulated key and tag, the dedup list's nonce and
/// tag, the `IndexFile`'s version and list lengths (format §3, §9). About 250 bytes.
pub(super) const INDEX_OVERHEAD: u64 = 1024;

/// Largest index object a backup writes, bytes (readers take in more, §12): about 110,000
/// blobs. What reading one costs — a reader holds it sealed and in plaintext, the dedup tables
/// (`repo/dedup_index.rs`) build each from it — stays small whatever the pack size; only
/// packs of tiny blobs reach it (16 MiB of 50 KiB blobs is 30 KiB of index).
pub(super) const INDEX_TARGET: u64 = 8 << 20;

/// Length of `x` as a postcard varint, bytes.
pub(super) fn varint_len(x: u64) -> u64 {
    u64::from((64 - x.max(1).leading_zeros()).div_ceil(7))
}

/// Bytes `pack` adds to an index object, at most: its `IndexPack` in the sealed `IndexFile`
/// (id, data key, entry count, entries with their varints, each `member` as version 3 writes
/// it) and one line per blob in the dedup list (format §9).
pub(super) fn index_bytes(pack: &IndexPack) -> u64 {
    let entry = |e: &tresor_format::pack::BlobEntry| {
        let member = 1 + e.member.map_or(0, varint_len);
        let fields = varint_len(e.offset) + varint_len(e.length) + varint_len(e.raw_length);
        (1 + 32) + fields + member + (1 + 32)
    };
    let n = pack.blobs.len() as u64;
    32 + 32 + varint_len(n) + pack.blobs.iter().map(entry).sum::<u64>()
}

/// Packs written and not yet listed in an index object, and when to list them: at
/// [`INDEX_FLUSH`] packs, or before the next pack would take the index object over `limit`
/// bytes ([`INDEX_TARGET`], or readers' limit [`crate::repo::limits::max_index_size`] when
/// smaller).
pub(super) struct Pending {
    pub(super) packs: Vec<IndexPack>,
    /// [`index_bytes`] of `packs`.
    pub(super) bytes: u64,
    pub(super) limit: u64,
}

impl Pending {
    pub(super) fn new(pack_size: u64) -> Self {
        Self::with_limit(crate::repo::limits::max_index_size(pack_size).min(INDEX_TARGET))
    }

    pub(super) fn with_limit(limit: u64) -> Self {
        Pending {
            packs: Vec::new(),
            bytes: 0,
            limit,
        }
    }

    /// Add a stored pack; returns the packs to list in an index object now, if any.
    pub(super) fn push(&mut self, pack: IndexPack) -> Option<Vec<IndexPack>> {
        let n = index_bytes(&pack);
        let over = INDEX_OVERHEAD + self.bytes + n > self.limit;
        let before = (over && !self.packs.is_empty()).then(|| self.take());
        self.bytes += n;
        self.packs.push(pack);
        before.or_else(|| (self.packs.len() >= INDEX_FLUSH).then(|| self.take()))
    }

    pub(super) fn take(&mut self) -> Vec<IndexPack> {
        self.bytes = 0;
        std::mem::take(&mut self.packs)
    }
}

struct UploadState {
    stats: PackerStats,
    pending: Pending,
    failed: bool,
}

/// Write the index object for `packs` (all of them already stored), signed by `signer`, in
/// format `version`.
fn write_index(
    storage: &dyn Storage,
    (key, signer, version): (&MasterKey, &Signer, u32),
    dry_run: bool,
    packs: Vec<IndexPack>,
) -> Result<(ObjectId, u64, Vec<ObjectId>)> {
    let listed = packs.iter().map(|p| p.id).collect();
    let file = IndexFile {
        version,
        supersedes: vec![],
        packs,
    };
    let bytes = file.to_object(key, signer)?;
    let id = ObjectId::of(&bytes);
    if !dry_run {
        storage.write(Kind::Index, &id.to_hex(), &bytes)?;
    }
    Ok((id, bytes.len() as u64, listed))
}

/// Store pack `id` (a pack of tree blobs: `hot`): a spool file with [`Storage::write_file`]
/// (removed afterwards if still there), bytes in memory with [`Storage::write_vec`] or
/// [`Storage::write_vec_hot`]. Returns a buffer to reuse, if any.
fn store(
    storage: &dyn Storage,
    id: &ObjectId,
    bytes: Finished,
    hot: bool,
) -> Result<Option<Vec<u8>>> {
    let name = id.to_hex();
    let r = match (bytes, hot) {
        (Finished::File(f), _) => storage.write_file(Kind::Pack, &name, f.path(), f.len, hot),
        (Finished::Bytes(b), false) => return Ok(storage.write_vec(Kind::Pack, &name, b)?),
        (Finished::Bytes(b), true) => return Ok(storage.write_vec_hot(Kind::Pack, &name, b)?),
    };
    Ok(r.map(|()| None)?)
}

/// The uploader: [`Storage::write_concurrency`] threads take finished packs and write them; an
/// index object is written (by whichever thread completes the batch) for every
/// [`INDEX_FLUSH`] packs already stored (fewer when [`Pending`] says the object would grow too
/// large), and one at the end for the rest — also after a failure, so that the next backup
/// reuses what was written.
#[allow(
    clippy::too_many_arguments,
    reason = "a thread body taking its channels and shared state"
)]
pub(super) fn uploader(
    prx: Receiver<Closed>,
    pack_spare: Sender<Vec<u8>>,
    storage: &dyn Storage,
    keys: (&MasterKey, &Signer, u32),
    dry_run: bool,
    pending: Pending,
    error: &Mutex<Option<CoreError>>,
) -> PackerStats {
    let shared = Mutex::new(UploadState {
        stats: PackerStats::default(),
        pending,
        failed: false,
    });
    let lock = || shared.lock().expect("upload state lock");
    let index_done = |r: Result<(ObjectId, u64, Vec<ObjectId>)>| match r {
        Ok((id, n, listed)) => {
            let mut st = lock();
            st.stats.bytes_written += n;
            st.stats.index_objects.push(id);
            st.stats.index_packs.push((id, listed));
        }
        Err(e) => {
            record(error, e);
            lock().failed = true;
        }
    };
    let upload = || {
        for (bytes, pack, blob_type) in prx.iter() {
            if lock().failed {
                continue;
            }
            let len = bytes.len();
            let r = match dry_run {
                true => Ok(match bytes {
                    Finished::Bytes(b) => Some(b),
                    Finished::File(_) => None,
                }),
                false => store(storage, &pack.id, bytes, blob_type == BlobType::Tree),
            };
            let reusable = match r {
                Ok(b) => b,
                Err(e) => {
                    record(error, e);
                    lock().failed = true;
                    continue;
                }
            };
            let full = {
                let mut st = lock();
                st.stats.packs += 1;
                st.stats.bytes_written += len;
                let n = pack.blobs.len() as u64;
                match blob_type {
                    BlobType::Data => st.stats.data_blobs += n,
                    BlobType::Tree => st.stats.tree_blobs += n,
                }
                st.stats.packs_written.push(pack.clone());
                st.pending.push(pack)
            };
            if blob_type == BlobType::Data
                && let Some(b) = reusable
            {
                let _ = pack_spare.try_send(b);
            }
            if let Some(packs) = full {
                index_done(write_index(storage, keys, dry_run, packs));
            }
        }
    };
    let threads = storage.write_concurrency().max(1);
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(upload);
        }
        upload();
    });
    let rest = lock().pending.take();
    if !rest.is_empty() {
        index_done(write_index(storage, keys, dry_run, rest));
    }
    shared.into_inner().expect("upload state lock").stats
}
