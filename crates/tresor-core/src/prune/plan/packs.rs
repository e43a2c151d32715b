//! Step 4: the packs in storage, listed last; the packs nothing lists.

use crate::error::{CoreError, Result};
use crate::prune::tables::{Source, Tables};
use crate::repo::index::{IdSet, Lister};
use crate::repo::records::Records;
use crate::repo::{Defect, Repository};
use tresor_format::index::IndexPack;
use tresor_format::{ObjectId, pack};
use tresor_storage::Kind;

/// The packs in storage that no index object, fossil or `deleting` list holds.
pub(super) struct Orphans {
    /// Their positions in the tables, in order.
    pub positions: Vec<u32>,
    /// Those whose header (or name) does not check out: condemned without entries.
    pub blind: Vec<u32>,
    /// How many of them no earlier run saw (a backup may be uploading them right now).
    pub new_unindexed: usize,
    /// The packs earlier runs saw unindexed (the live states' `unindexed` lists).
    pub seen_before: IdSet<ObjectId>,
    /// No backup can be running ([`super::orphans::decide`]): those of them that no index
    /// object lists and no kept blob needs are deleted at once.
    pub free: bool,
}

/// List the packs in storage (sizes into the tables) and find the orphans; an orphan no index
/// object lists at all gets its entries from its own header (read whole).
///
/// # Errors
/// Storage errors, also of reading an orphan (a transient failure must not condemn a pack
/// without its entries).
pub(super) fn read(
    repo: &Repository,
    recs: &Records,
    t: &mut Tables,
    warnings: &mut Vec<String>,
) -> Result<Orphans> {
    for (name, size) in repo.storage().list(Kind::Pack)? {
        let Ok(id) = name.parse::<ObjectId>() else {
            continue;
        };
        let (pos, _) = t.pos(id);
        t.packs[pos as usize].size = Some(size);
    }
    let mut o = Orphans {
        positions: Vec::new(),
        blind: Vec::new(),
        new_unindexed: 0,
        seen_before: recs
            .states
            .iter()
            .flat_map(|(_, s)| s.unindexed.iter().copied())
            .collect(),
        free: false,
    };
    for pos in 0..t.packs.len() as u32 {
        let rec = &t.packs[pos as usize];
        if rec.size.is_none() || rec.live || rec.generation.is_some() || rec.deleting {
            continue;
        }
        o.positions.push(pos);
        if !o.seen_before.contains(&rec.id) {
            o.new_unindexed += 1;
        }
        if rec.listings.is_empty() {
            add_header(repo, t, pos, &mut o.blind, warnings)?;
        }
    }
    Ok(o)
}

/// The entries of orphan `pos` from its own header, read whole: a pack stored under a wrong
/// name (a copy, or modified) must not be listed anywhere readers look (it is condemned
/// without entries, `blind`).
fn add_header(
    repo: &Repository,
    t: &mut Tables,
    pos: u32,
    blind: &mut Vec<u32>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let (id, size) = (t.packs[pos as usize].id, t.packs[pos as usize].size);
    let header = match repo.fetch(Kind::Pack, &id, size) {
        Ok(b) => pack::read_header(repo.key(), &b).map_err(CoreError::from),
        // A transient failure must not condemn a pack blind.
        Err((Defect::Unreadable, e)) => return Err(e),
        Err((_, e)) => Err(e),
    };
    match header {
        Ok(h) => t.add_entries(
            pos,
            Source::Header,
            Lister::Unverified,
            &IndexPack {
                id,
                data_key: h.data_key,
                blobs: h.blobs,
            },
        ),
        Err(e) => {
            blind.push(pos);
            warnings.push(format!(
                "unindexed pack {id}: {e}: condemned without its entries"
            ));
        }
    }
    Ok(())
}
