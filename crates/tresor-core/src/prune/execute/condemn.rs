//! Steps 3 and 5: the condemned packs into the fossils of a new generation, and the packs kept
//! from the affected index objects into the consolidated index object.

use crate::error::{CoreError, Result};
use crate::prune::read::open_index;
use crate::prune::report::{PackAction, PruneStats};
use crate::prune::tables::Work;
use crate::repo::Repository;
use crate::repo::index::IdSet;
use crate::repo::index_writer::{IndexWriter, PART_BLOBS};
use crate::repo::packs::{read_pack_header, verify_pack};
use crate::repo::records::write_record;
use tresor_format::ObjectId;
use tresor_format::index::IndexPack;
use tresor_format::record::{FossilPack, FossilSet, Generation, Record};

/// What condemning left: the consolidated index (its last part not written yet) and the new
/// generation, if any pack was condemned.
pub(super) struct Condemned<'a> {
    /// The consolidated index object(s), all but the last part written.
    pub consolidated: IndexWriter<'a>,
    /// The new generation (unarmed): its fossil records, blind packs, counts.
    pub generation: Option<Generation>,
}

/// Step 3: one pass over the affected index objects — condemned packs into fossils of a new
/// generation, kept packs into the consolidated index — then the condemned packs no listing
/// passed on (orphans, and packs whose affected listings all had a false key), with the
/// entries of their own headers or, when those do not open, without entries (blind).
///
/// # Errors
/// Storage errors; damage of an index object read a moment ago, or of a pack that must be
/// indexed again and does not verify.
pub(super) fn condemn<'a>(
    repo: &'a Repository,
    run: u64,
    w: &Work,
    actions: &[PackAction],
    stats: &mut PruneStats,
) -> Result<Condemned<'a>> {
    let mut fossils = FossilWriter {
        repo,
        run,
        buf: Vec::new(),
        blobs: 0,
        written: Vec::new(),
        bytes: 0,
        packs: 0,
        pack_bytes: 0,
    };
    let mut consolidated = IndexWriter::new(repo, false);
    let emitted = from_index(repo, w, actions, &mut fossils, &mut consolidated, stats)?;
    let blind = from_headers(repo, w, actions, &emitted, &mut fossils, stats)?;
    fossils.flush()?;
    stats.records_written += fossils.written.len();
    stats.bytes_written += fossils.bytes;
    let blind_count = blind.len() as u64;
    let blind_bytes: u64 = blind
        .iter()
        .filter_map(|b| w.pack_pos.get(b))
        .map(|&pos| w.packs[pos as usize].size.unwrap_or(0))
        .sum();
    let generation = (!fossils.written.is_empty() || !blind.is_empty()).then(|| Generation {
        run,
        fossils: fossils.written.clone(),
        blind,
        packs: fossils.packs + blind_count,
        bytes: fossils.pack_bytes + blind_bytes,
        armed: None,
    });
    Ok(Condemned {
        consolidated,
        generation,
    })
}

/// The affected index objects' listings: condemned and repacked packs into `fossils`, kept
/// packs no object that stays lists into `consolidated` (verified first unless a full key
/// vouched for them). A listing with another key than the pack's (a forger's) is never passed
/// on. Returns which packs were passed on.
fn from_index(
    repo: &Repository,
    w: &Work,
    actions: &[PackAction],
    fossils: &mut FossilWriter<'_>,
    consolidated: &mut IndexWriter<'_>,
    stats: &mut PruneStats,
) -> Result<Vec<bool>> {
    let mut emitted = vec![false; w.packs.len()];
    let affected: IdSet<u32> = w.affected.iter().copied().collect();
    for &o in &w.affected {
        let obj = &w.index_objs[o as usize];
        let (_, f) = open_index(repo, &obj.id)?;
        for ip in f.packs {
            let Some(&pos) = w.pack_pos.get(&ip.id) else {
                continue;
            };
            let p = &w.packs[pos as usize];
            if emitted[pos as usize] || ip.data_key.0 != p.key {
                continue;
            }
            match actions[pos as usize] {
                PackAction::Condemn | PackAction::Repack => {
                    emitted[pos as usize] = true;
                    stats.packs_condemned += 1;
                    stats.bytes_condemned += p.size.unwrap_or(0);
                    let verified = p.trusted;
                    fossils.push(FossilPack { pack: ip, verified }, p.size.unwrap_or(0))?;
                }
                PackAction::Keep => {
                    // Listed elsewhere too, by an object that stays: nothing to do.
                    let stays = p
                        .listings
                        .iter()
                        .any(|l| !affected.contains(l) && !w.index_objs[*l as usize].superseded);
                    emitted[pos as usize] = true;
                    if !stays {
                        if !p.trusted {
                            verify_pack(repo, &ip)?;
                        }
                        consolidated.push(ip)?;
                    }
                }
                _ => {}
            }
        }
    }
    Ok(emitted)
}

/// Condemned packs no listing passed on — orphans, and packs whose affected listings all had a
/// false key — into `fossils` with the entries of their own headers; those whose header does
/// not open (or did not when planned) are returned (blind: deleted with the generation, never
/// read).
fn from_headers(
    repo: &Repository,
    w: &Work,
    actions: &[PackAction],
    emitted: &[bool],
    fossils: &mut FossilWriter<'_>,
    stats: &mut PruneStats,
) -> Result<Vec<ObjectId>> {
    let condemned = |pos: u32| {
        matches!(
            actions[pos as usize],
            PackAction::Condemn | PackAction::Repack
        )
    };
    let listed_falsely = (0..w.packs.len() as u32).filter(|&pos| {
        let p = &w.packs[pos as usize];
        p.conflict && p.live && !emitted[pos as usize] && condemned(pos)
    });
    let mut blind = Vec::new();
    // (Orphans are never repacked: only indexed packs are.)
    for pos in w.orphans.iter().copied().chain(listed_falsely) {
        if !condemned(pos) {
            continue;
        }
        let p = &w.packs[pos as usize];
        stats.packs_condemned += 1;
        stats.bytes_condemned += p.size.unwrap_or(0);
        let header = if w.blind.contains(&pos) {
            Err(CoreError::Damaged("unreadable".into()))
        } else {
            read_pack_header(repo, &p.id, p.size.unwrap_or(0))
        };
        match header {
            Ok(h) => {
                let (id, data_key, blobs) = (p.id, h.data_key, h.blobs);
                let pack = IndexPack {
                    id,
                    data_key,
                    blobs,
                };
                let verified = p.trusted;
                fossils.push(FossilPack { pack, verified }, p.size.unwrap_or(0))?;
            }
            // No entries to list: readers must not see it; deleted with the generation.
            Err(_) => blind.push(p.id),
        }
    }
    Ok(blind)
}

/// Step 5: the last part of the consolidated index, superseding the affected index objects
/// (written even when empty, if there are any). Returns their ids.
///
/// # Errors
/// Sealing and storage errors.
pub(super) fn consolidate(
    mut consolidated: IndexWriter<'_>,
    w: &Work,
    stats: &mut PruneStats,
) -> Result<Vec<ObjectId>> {
    let supersedes: Vec<ObjectId> = w
        .affected
        .iter()
        .map(|&o| w.index_objs[o as usize].id)
        .collect();
    consolidated.finish(supersedes.clone())?;
    stats.index_written += consolidated.written.len();
    stats.bytes_written += consolidated.bytes;
    Ok(supersedes)
}

/// Streams condemned packs into fossil records of about [`PART_BLOBS`] blobs each.
struct FossilWriter<'a> {
    repo: &'a Repository,
    run: u64,
    buf: Vec<FossilPack>,
    blobs: usize,
    written: Vec<ObjectId>,
    bytes: u64,
    packs: u64,
    pack_bytes: u64,
}

impl FossilWriter<'_> {
    fn push(&mut self, p: FossilPack, size: u64) -> Result<()> {
        self.blobs += p.pack.blobs.len() + 1;
        self.packs += 1;
        self.pack_bytes += size;
        self.buf.push(p);
        if self.blobs >= PART_BLOBS {
            self.flush()?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let rec = Record::Fossils(FossilSet {
            version: tresor_format::FORMAT_VERSION,
            run: self.run,
            packs: std::mem::take(&mut self.buf),
        });
        self.blobs = 0;
        let (id, n) = write_record(self.repo, &rec)?;
        self.written.push(id);
        self.bytes += n;
        Ok(())
    }
}
