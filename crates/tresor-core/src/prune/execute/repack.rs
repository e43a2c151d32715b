//! Step 1: the kept blobs of repacked packs, copied into new packs.

use crate::Progress;
use crate::error::{CoreError, Result};
use crate::prune::report::{PackAction, PruneStats};
use crate::prune::tables::{PackRec, Work};
use crate::repo::Repository;
use crate::repo::index::IdSet;
use crate::repo::packer::Packer;
use crate::repo::packs::WholePack;
use tresor_format::{BlobId, pack};
use tresor_storage::Kind;

/// Copy the kept blobs of every repacked pack into new packs (then their index objects). A
/// pack that cannot be read is kept (its action becomes [`PackAction::Keep`] in `actions`),
/// with a warning; a storage error that is not damage stops the run. The blob table is freed
/// afterwards.
///
/// # Errors
/// Storage errors; packer errors.
pub(super) fn repack(
    repo: &Repository,
    w: &mut Work,
    actions: &mut [PackAction],
    progress: &dyn Progress,
    stats: &mut PruneStats,
) -> Result<()> {
    let cfg = repo.config();
    let packer = Packer::with_version(
        repo.storage().clone(),
        repo.key().clone(),
        repo.signer_copy(),
        cfg.pack_size,
        cfg.compression_level,
        cfg.version,
        w.workers,
        false,
    );
    // A blob kept in several packs (copies no full key vouched for) is copied once.
    let mut copied: IdSet<BlobId> = IdSet::default();
    for (pos, p) in w.packs.iter().enumerate() {
        if p.action != PackAction::Repack {
            continue;
        }
        let copy = copy_pack(repo, w, pos as u32, p, &packer, &mut copied, progress);
        progress.file_done(0);
        match copy {
            Ok(n) => {
                stats.packs_repacked += 1;
                stats.blobs_repacked += n;
            }
            Err(e @ CoreError::Storage(_)) if !e.is_damage() => return Err(e),
            Err(e) => {
                stats
                    .warnings
                    .push(format!("pack {} not repacked, kept: {e}", p.id));
                actions[pos] = PackAction::Keep;
            }
        }
    }
    let pstats = packer.finish()?;
    // The blob table is not needed any more: give its memory back before streaming the
    // index objects again.
    w.entries = Vec::new();
    w.chosen = Vec::new();
    stats.packs_written = pstats.packs;
    stats.bytes_written += pstats.bytes_written;
    stats.index_written += pstats.index_objects.len();
    Ok(())
}

/// Read pack `p` (at `pos`) whole and hand its chosen blobs not copied yet to the packer;
/// returns how many.
fn copy_pack(
    repo: &Repository,
    w: &Work,
    pos: u32,
    p: &PackRec,
    packer: &Packer,
    copied: &mut IdSet<BlobId>,
    progress: &dyn Progress,
) -> Result<u64> {
    let bytes = repo.read_object(Kind::Pack, &p.id)?;
    let h = pack::read_header(repo.key(), &bytes)?;
    let mut whole = WholePack::new(&bytes, &h.data_key, &repo.key().id_key);
    let mut n = 0;
    let mut last_frame = None;
    for b in &h.blobs {
        if !w.chosen_in(&b.id, pos) || copied.contains(&b.id) {
            continue;
        }
        let plain = whole
            .blob(b)
            .map_err(|e| CoreError::Damaged(format!("pack {}: blob {}: {e}", p.id, b.id)))?;
        // A frame's stored bytes count once, however many of its members are kept.
        if b.member.is_none() || last_frame.replace(b.offset) != Some(b.offset) {
            progress.bytes_read(b.length);
        }
        packer.add(b.blob_type, b.id, plain)?;
        copied.insert(b.id);
        n += 1;
    }
    Ok(n)
}
