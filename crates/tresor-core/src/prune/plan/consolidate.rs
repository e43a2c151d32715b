//! Step 8: the index objects the consolidated index object replaces.

use crate::prune::report::PackAction;
use crate::prune::tables::{IndexObj, PackRec};
use crate::prune::{CONSOLIDATE_MIN, SMALL_INDEX_BLOBS};

/// Every live index object that lists a pack condemned, repacked or dropped by this run, and —
/// when at least [`CONSOLIDATE_MIN`] others are small ([`SMALL_INDEX_BLOBS`]) full keys'
/// objects — those too (positions, in order).
pub(super) fn affected(packs: &[PackRec], index_objs: &[IndexObj]) -> Vec<u32> {
    let mut is_affected = vec![false; index_objs.len()];
    for p in packs.iter() {
        if p.live
            && matches!(
                p.action,
                PackAction::Condemn | PackAction::Repack | PackAction::Drop
            )
        {
            for &o in &p.listings {
                if !index_objs[o as usize].superseded {
                    is_affected[o as usize] = true;
                }
            }
        }
    }
    let small: Vec<usize> = (0..index_objs.len())
        .filter(|&o| {
            let x = &index_objs[o];
            !x.superseded && x.full && x.blobs < SMALL_INDEX_BLOBS
        })
        .collect();
    if small.iter().filter(|&&o| !is_affected[o]).count() >= CONSOLIDATE_MIN {
        for o in small {
            is_affected[o] = true;
        }
    }
    (0..index_objs.len() as u32)
        .filter(|&o| is_affected[o as usize])
        .collect()
}
