//! Step 2: an index object listing the resurrected packs (condemned or unindexed packs that
//! hold kept copies), written before any record stops holding them.

use crate::error::Result;
use crate::prune::report::{PackAction, PruneStats};
use crate::prune::tables::Work;
use crate::repo::Repository;
use crate::repo::index::IdSet;
use crate::repo::index_writer::IndexWriter;
use crate::repo::packs::{read_pack_header, verify_pack};
use crate::repo::records::read_fossils;
use tresor_format::ObjectId;
use tresor_format::index::IndexPack;

/// List the resurrected packs in a new index object: those of the live fossils with their
/// fossil entries, orphans with their headers' — verified blob by blob first unless a full key
/// vouched for them.
///
/// # Errors
/// Storage errors; [`crate::CoreError::Damaged`] when a pack that must be indexed again does not
/// verify.
pub(super) fn resurrect(repo: &Repository, w: &Work, stats: &mut PruneStats) -> Result<()> {
    let mut rz = IndexWriter::new(repo, false);
    let wanted: IdSet<ObjectId> = w
        .packs
        .iter()
        .filter(|p| p.action == PackAction::Resurrect)
        .map(|p| p.id)
        .collect();
    if !wanted.is_empty() {
        let mut done: IdSet<ObjectId> = IdSet::default();
        from_fossils(repo, w, &wanted, &mut done, &mut rz)?;
        from_orphans(repo, w, &mut done, &mut rz)?;
        rz.finish(Vec::new())?;
        stats.packs_resurrected = done.len();
    }
    stats.index_written += rz.written.len();
    stats.bytes_written += rz.bytes;
    Ok(())
}

/// The `wanted` packs of the live fossils, with their fossil entries.
fn from_fossils(
    repo: &Repository,
    w: &Work,
    wanted: &IdSet<ObjectId>,
    done: &mut IdSet<ObjectId>,
    rz: &mut IndexWriter<'_>,
) -> Result<()> {
    for f in w.live_fossils() {
        let set = read_fossils(repo, &f)?;
        for fp in set.packs {
            if wanted.contains(&fp.pack.id) && done.insert(fp.pack.id) {
                if !fp.verified {
                    verify_pack(repo, &fp.pack)?;
                }
                rz.push(fp.pack)?;
            }
        }
    }
    Ok(())
}

/// The resurrected orphans, with the entries of their own headers.
fn from_orphans(
    repo: &Repository,
    w: &Work,
    done: &mut IdSet<ObjectId>,
    rz: &mut IndexWriter<'_>,
) -> Result<()> {
    for &pos in &w.orphans {
        let p = &w.packs[pos as usize];
        if p.action == PackAction::Resurrect && done.insert(p.id) {
            let h = read_pack_header(repo, &p.id, p.size.unwrap_or(0))?;
            let ip = IndexPack {
                id: p.id,
                data_key: h.data_key,
                blobs: h.blobs,
            };
            if !p.trusted {
                verify_pack(repo, &ip)?;
            }
            rz.push(ip)?;
        }
    }
    Ok(())
}
