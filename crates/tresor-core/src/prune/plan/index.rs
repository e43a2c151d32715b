//! Step 3: the index objects, into the tables.

use super::Found;
use crate::error::{CoreError, Result};
use crate::prune::read::{open_index_any, triage};
use crate::prune::tables::{IndexObj, Source, Tables};
use crate::repo::Repository;
use crate::repo::index::{IdMap, IdSet, Lister};
use crate::repo::packs::read_pack_header;
use crate::repo::trust::Verdict;
use tresor_format::ObjectId;
use tresor_format::index::IndexPack;
use tresor_storage::Kind;

/// The index objects a plan read.
pub(super) struct IndexObjects {
    /// Every accepted index object, in name order (positions are those of
    /// [`crate::prune::tables::PackRec::listings`]).
    pub objs: Vec<IndexObj>,
    /// Index objects a full key's object supersedes already (ids): deleted by the run.
    pub leftovers: Vec<ObjectId>,
    /// Index objects skipped (damaged, or of an unknown or revoked signer): the packs they
    /// list are not known.
    pub skipped: usize,
}

/// Every index object: its packs and their entries go to the tables (a full key's listing of a
/// pack preferred; listings with other data keys are judged by the pack's header, see
/// [`resolve_conflicts`]). Marks the objects a full key's object supersedes, and the packs a
/// live object lists.
///
/// # Errors
/// Storage errors.
pub(super) fn read(repo: &Repository, t: &mut Tables, found: &mut Found) -> Result<IndexObjects> {
    let (mut objs, superseded, skipped) = list(repo, t, found)?;
    resolve_conflicts(repo, t, &mut found.warnings)?;
    for o in &mut objs {
        o.superseded = superseded.contains(&o.id);
    }
    for rec in &mut t.packs {
        rec.live = rec.listings.iter().any(|o| !objs[*o as usize].superseded);
    }
    let leftovers = objs.iter().filter(|o| o.superseded).map(|o| o.id).collect();
    Ok(IndexObjects {
        objs,
        leftovers,
        skipped,
    })
}

/// The accepted index objects, their listings added to the tables; the ids full keys'
/// objects supersede; how many were skipped.
fn list(
    repo: &Repository,
    t: &mut Tables,
    found: &mut Found,
) -> Result<(Vec<IndexObj>, IdSet<ObjectId>, usize)> {
    let mut skipped = 0;
    let mut index_objs: Vec<IndexObj> = Vec::new();
    let mut superseded: IdSet<ObjectId> = IdSet::default();
    let mut index_names = repo.storage().list(Kind::Index)?;
    index_names.sort();
    for (name, size) in index_names {
        let id: ObjectId = name.parse()?;
        let (signer, f) = match open_index_any(repo, &id, Some(size)) {
            Ok(x) => x,
            Err(e) => {
                let what = "its packs count as unindexed; `tresor repair index` replaces it";
                triage(
                    Kind::Index,
                    id,
                    e,
                    what,
                    &mut found.garbage,
                    &mut found.warnings,
                )?;
                skipped += 1;
                continue;
            }
        };
        let verdict = repo.trust().verdict(&signer, &id);
        if !matches!(verdict, Verdict::Full | Verdict::PutOnly) {
            found.warnings.push(format!(
                "index {id} is signed by an unknown or revoked key: ignored (its packs count as unindexed)"
            ));
            skipped += 1;
            continue;
        }
        let full = verdict == Verdict::Full;
        let lister = if full {
            superseded.extend(f.supersedes.iter().copied());
            Lister::Full
        } else {
            Lister::PutOnly(signer)
        };
        let obj = index_objs.len() as u32;
        index_objs.push(IndexObj {
            id,
            full,
            superseded: false,
            blobs: f.packs.iter().map(|p| p.blobs.len() as u64).sum(),
        });
        for p in &f.packs {
            t.add_listing(obj, id, lister, p);
        }
    }
    Ok((index_objs, superseded, skipped))
}

/// Packs listed with different data keys (a forger listed another writer's pack): the pack's
/// own header decides which key is true; when the entries in the tables are not that listing's,
/// they are replaced by the header's (not trusted: verified before they are indexed again).
///
/// # Errors
/// Storage errors.
fn resolve_conflicts(repo: &Repository, t: &mut Tables, warnings: &mut Vec<String>) -> Result<()> {
    let conflicts: Vec<usize> = (0..t.packs.len())
        .filter(|&p| t.packs[p].conflict)
        .collect();
    if conflicts.is_empty() {
        return Ok(());
    }
    let sizes: IdMap<ObjectId, u64> = repo
        .storage()
        .list(Kind::Pack)?
        .into_iter()
        .filter_map(|(n, s)| n.parse().ok().map(|id| (id, s)))
        .collect();
    let mut replace = Vec::new();
    for pos in conflicts {
        let id = t.packs[pos].id;
        let Some(&size) = sizes.get(&id) else {
            continue;
        };
        match read_pack_header(repo, &id, size) {
            Ok(h) if h.data_key.0 != t.packs[pos].key => replace.push((pos as u32, h)),
            Ok(_) => {}
            Err(e @ CoreError::Storage(_)) => return Err(e),
            Err(e) => warnings.push(format!("pack {id} is listed with different keys: {e}")),
        }
        warnings.push(format!(
            "pack {id} is listed with different data keys: its header decides (`tresor check` \
             names the false listings)"
        ));
    }
    let replaced: IdSet<u32> = replace.iter().map(|(p, _)| *p).collect();
    t.entries.retain(|e| !replaced.contains(&e.pack));
    for (pos, h) in replace {
        let id = t.packs[pos as usize].id;
        let ip = IndexPack {
            id,
            data_key: h.data_key,
            blobs: h.blobs,
        };
        t.add_entries(pos, Source::Header, Lister::Unverified, &ip);
        t.packs[pos as usize].trusted = false;
    }
    Ok(())
}
