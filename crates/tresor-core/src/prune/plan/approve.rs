//! Step 5: which pending generations are approved (format §16, "One prune run", step 4).

use super::fossils::Generations;
use crate::prune::options::PruneOptions;
use crate::prune::report::{GenerationStatus, PackAction};
use crate::prune::tables::{PackRec, SnapInfo};
use crate::repo::records::Records;
use tresor_format::record::Arming;

/// The status of every pending generation (oldest first), its packs not counted yet
/// ([`count`]). An armed generation is approved when every host it waits for — but the inactive
/// ones — has a snapshot that counts and is not in its arming's snapshot set, and no pack
/// appeared that no index lists (`new_unindexed`, a backup may be uploading).
pub(super) fn approve(
    recs: &Records,
    gens: &Generations,
    snaps: &[SnapInfo],
    new_unindexed: usize,
    opts: &PruneOptions,
) -> Vec<GenerationStatus> {
    (0..gens.list.len())
        .map(|g| {
            let generation = gens.get(recs, g);
            let mut status = GenerationStatus {
                run: generation.run,
                packs: 0,
                bytes: 0,
                armed: generation.armed.is_some(),
                approved: false,
                waiting_for: Vec::new(),
                resurrected: 0,
                reason: String::new(),
            };
            match &generation.armed {
                None => {
                    status.reason =
                        "not armed yet: index objects naming its packs were still present".into();
                }
                Some(a) => judge(&mut status, a, snaps, new_unindexed, opts),
            }
            status
        })
        .collect()
}

/// Approve an armed generation, or say what it waits for.
fn judge(
    status: &mut GenerationStatus,
    a: &Arming,
    snaps: &[SnapInfo],
    new_unindexed: usize,
    opts: &PruneOptions,
) {
    status.waiting_for = a
        .hosts
        .iter()
        .filter(|h| !opts.inactive_hosts.contains(h))
        .filter(|h| {
            !snaps
                .iter()
                .any(|s| s.counts && &s.host == *h && a.snapshots.binary_search(&s.id).is_err())
        })
        .cloned()
        .collect();
    if !status.waiting_for.is_empty() {
        status.reason = format!(
            "waiting for a new snapshot of {}",
            status
                .waiting_for
                .iter()
                .map(|h| format!("{h:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    } else if new_unindexed > 0 {
        status.reason =
            format!("{new_unindexed} packs no index lists appeared (a backup may be running)");
    } else {
        status.approved = true;
        status.reason = "approved: every host has written a snapshot since it was armed".into();
    }
}

/// Count the packs each generation still holds (not indexed again), their bytes, and those
/// resurrected by this run.
pub(super) fn count(status: &mut [GenerationStatus], gens: &Generations, packs: &[PackRec]) {
    for (g, s) in status.iter_mut().enumerate() {
        for &pos in &gens.packs[g] {
            let p = &packs[pos as usize];
            if p.generation == Some(g as u32) && !p.live {
                s.packs += 1;
                s.bytes += p.size.unwrap_or(0);
                if p.action == PackAction::Resurrect {
                    s.resurrected += 1;
                }
            }
        }
    }
}
