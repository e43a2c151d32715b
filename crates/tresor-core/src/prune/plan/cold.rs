//! Part of step 6: which packs lie in a cold storage class (format §16.2). Asked only with
//! [`PruneOptions::cold_probe`], once per indexed pack that is not wholly used (one `HEAD` each
//! on S3): a wholly used pack is kept whatever its class.

use crate::prune::decide::Cold;
use crate::prune::options::PruneOptions;
use crate::prune::report::{ColdPackReport, PackAction};
use crate::prune::tables::{ColdPack, PackRec};
use crate::repo::{Repository, rfc3339_utc};
use std::time::SystemTime;
use tresor_storage::{ErrorKind, Kind};

/// Ask the storage about every indexed, stored pack not wholly used that was not asked about
/// yet. A pack the storage cannot say about is taken for a young cold one (kept), with a
/// warning: deleting or repacking it might cost an early-deletion charge or fail.
pub(super) fn probe(
    repo: &Repository,
    packs: &mut [PackRec],
    opts: &PruneOptions,
    warnings: &mut Vec<String>,
) {
    if !opts.cold_probe {
        return;
    }
    let storage = repo.storage();
    for p in packs.iter_mut() {
        if p.cold_asked || !p.live || p.size.is_none() || p.used_bytes >= p.bytes {
            continue;
        }
        p.cold_asked = true;
        p.cold = match storage.cold_state(Kind::Pack, &p.id.to_string()) {
            Ok(state) => state.map(|s| ColdPack {
                class: s.class,
                due: s.stored_at.map(|t| t + s.class.minimum_storage()),
            }),
            Err(e) if e.kind == ErrorKind::NotFound => None,
            Err(e) => {
                warnings.push(format!(
                    "pack {}: could not ask the storage whether it is cold ({e}); kept as it is",
                    p.id
                ));
                Some(ColdPack {
                    class: tresor_storage::cold::ColdClass::DeepArchive,
                    due: None,
                })
            }
        };
    }
}

/// What [`crate::prune::decide`] knows of a pack's class at `now`: hot, or cold and young
/// (also when its storage time is unknown), or cold and aged.
pub(super) fn fact(p: &PackRec, now: SystemTime) -> Cold {
    match p.cold {
        None => Cold::Hot,
        Some(c) if c.due.is_some_and(|d| d <= now) => Cold::Aged,
        Some(_) => Cold::Young,
    }
}

/// A cold pack as the report shows it.
fn report(p: &PackRec, c: &ColdPack) -> ColdPackReport {
    ColdPackReport {
        pack: p.planned(),
        class: c.class.as_s3().to_string(),
        minimum_storage_until: c.due.map(rfc3339_utc),
    }
}

/// The cold packs kept as they are although not wholly used.
pub(super) fn kept(packs: &[PackRec]) -> Vec<ColdPackReport> {
    packs
        .iter()
        .filter(|p| p.action == PackAction::Keep && p.used_bytes < p.bytes)
        .filter_map(|p| p.cold.as_ref().map(|c| report(p, c)))
        .collect()
}

/// The cold packs condemned before their minimum storage duration ends.
pub(super) fn early(packs: &[PackRec], now: SystemTime) -> Vec<ColdPackReport> {
    packs
        .iter()
        .filter(|p| p.action == PackAction::Condemn && fact(p, now) == Cold::Young)
        .filter_map(|p| p.cold.as_ref().map(|c| report(p, c)))
        .collect()
}
