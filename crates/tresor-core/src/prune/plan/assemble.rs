//! Step 9: the report of a plan and the tables it is executed with.

use super::Found;
use super::fossils::Generations;
use super::index::IndexObjects;
use super::keep::Kept;
use super::locks::Held;
use super::packs::Orphans;
use super::snapshots::Snapshots;
use crate::prune::PrunePlan;
use crate::prune::report::{GenerationStatus, OrphanRule, PackAction, PlanReport, PlannedPack};
use crate::prune::tables::{PackRec, Tables, Work};
use crate::repo::index::IdMap;
use crate::repo::records::Records;
use tresor_format::ObjectId;
use tresor_format::record::PruneState;

/// Everything the steps of a plan found.
pub(super) struct Parts {
    pub snaps: Snapshots,
    pub recs: Records,
    pub t: Tables,
    pub index: IndexObjects,
    pub gens: Generations,
    pub orphans: Orphans,
    pub status: Vec<GenerationStatus>,
    pub kept: Kept,
    pub held: Held,
    pub affected: Vec<u32>,
    pub found: Found,
    pub orphan_rule: OrphanRule,
    pub workers: usize,
    pub inactive_hosts: Vec<String>,
    /// The clock cold packs were judged by.
    pub now: std::time::SystemTime,
}

/// The packs with `action` (among `among`, all when `None`), as planned.
fn planned(
    packs: &[PackRec],
    among: Option<&[u32]>,
    want: impl Fn(&PackRec) -> bool,
) -> Vec<PlannedPack> {
    match among {
        Some(pos) => pos
            .iter()
            .map(|&p| &packs[p as usize])
            .filter(|p| want(p))
            .map(PackRec::planned)
            .collect(),
        None => packs
            .iter()
            .filter(|p| want(p))
            .map(PackRec::planned)
            .collect(),
    }
}

/// The ids of the packs with `action`.
fn ids(packs: &[PackRec], action: PackAction) -> Vec<ObjectId> {
    packs
        .iter()
        .filter(|p| p.action == action)
        .map(|p| p.id)
        .collect()
}

/// The report of the plan (what it will do, with `nothing_to_do` unset).
fn report(p: &Parts) -> PlanReport {
    let packs = &p.t.packs;
    let orphans = Some(p.orphans.positions.as_slice());
    let condemned = |x: &PackRec| x.action == PackAction::Condemn;
    PlanReport {
        run: p.recs.states.iter().map(|(_, s)| s.run).max().unwrap_or(0) + 1,
        snapshots: p.snaps.list.len(),
        index_objects: p.index.objs.len(),
        packs: packs.len(),
        blobs: p.kept.entries.len() as u64,
        used_blobs: p.kept.used_blobs,
        used_bytes: p.kept.used_bytes,
        unused_bytes: p.kept.space.unused_bytes,
        max_unused_bytes: p.kept.space.max_unused_bytes,
        unused_bytes_after: p.kept.space.unused_after,
        condemn_unused: planned(packs, None, |x| x.live && condemned(x)),
        condemn_unindexed: planned(packs, orphans, condemned),
        delete_unindexed: planned(packs, orphans, |x| x.action == PackAction::Delete),
        orphan_rule: p.orphan_rule.clone(),
        unindexed_seen: planned(packs, orphans, |x| x.action == PackAction::Unindexed),
        repack: planned(packs, None, |x| x.action == PackAction::Repack),
        repack_blobs: p.kept.space.repack_blobs,
        repack_bytes: p.kept.space.repack_bytes,
        drop_missing: ids(packs, PackAction::Drop),
        resurrect: ids(packs, PackAction::Resurrect),
        delete: p.held.delete.clone(),
        locked: p.held.locked.clone(),
        cold_kept: super::cold::kept(packs),
        cold_early: super::cold::early(packs, p.now),
        bytes_freed: p.held.bytes_freed,
        bytes_condemned: packs
            .iter()
            .filter(|x| {
                x.size.is_some() && matches!(x.action, PackAction::Repack | PackAction::Condemn)
            })
            .map(|x| x.size.unwrap_or(0))
            .sum(),
        generations: p.status.clone(),
        new_unindexed: p.orphans.new_unindexed,
        index_superseded: p.affected.len(),
        index_leftovers: p.index.leftovers.len(),
        garbage: p.found.garbage.clone(),
        warnings: p.found.warnings.clone(),
        nothing_to_do: false,
    }
}

/// The prune state after this run, before the new generation is added (on execution): the
/// generations not approved, the packs deleted or still locked, the unindexed packs seen.
fn next_state(p: &Parts, r: &PlanReport) -> PruneState {
    let mut next = PruneState {
        version: tresor_format::FORMAT_VERSION,
        run: r.run,
        supersedes: p.recs.states.iter().map(|(id, _)| *id).collect(),
        generations: Vec::new(),
        deleting: r
            .delete
            .iter()
            .chain(r.locked.iter().map(|(d, _)| d))
            .map(|d| d.id)
            .collect(),
        unindexed: r.unindexed_seen.iter().map(|p| p.id).collect(),
    };
    next.deleting.sort();
    next.unindexed.sort();
    for (g, s) in p.status.iter().enumerate() {
        if !s.approved {
            next.generations.push(p.gens.get(&p.recs, g).clone());
        }
    }
    next
}

/// Whether executing would change nothing: nothing to condemn, repack, drop, resurrect,
/// delete or consolidate, no leftovers, every generation armed, no garbage, the state as it is,
/// and no fossil record that no live state references.
fn nothing_to_do(p: &Parts, r: &PlanReport, next: &PruneState) -> bool {
    let recs = &p.recs;
    let live_fossils = recs.live_fossils();
    let old_state_same = recs.states.len() == 1 && recs.states[0].1.same_content(next);
    r.condemn_unused.is_empty()
        && r.condemn_unindexed.is_empty()
        && r.repack.is_empty()
        && r.drop_missing.is_empty()
        && r.resurrect.is_empty()
        && r.delete.is_empty()
        && r.locked.is_empty()
        && p.affected.is_empty()
        && p.index.leftovers.is_empty()
        && recs.superseded.is_empty()
        && !next.generations.iter().any(|g| g.armed.is_none())
        && r.garbage.is_empty()
        && (old_state_same || (recs.states.is_empty() && next.is_empty()))
        && recs
            .fossils
            .iter()
            .all(|f| live_fossils.binary_search(f).is_ok())
}

/// The plan: its report, and the tables [`PrunePlan::execute`] works from.
pub(super) fn plan(p: Parts) -> PrunePlan {
    let mut report = report(&p);
    let next = next_state(&p, &report);
    report.nothing_to_do = nothing_to_do(&p, &report, &next);
    let hosts: IdMap<ObjectId, Option<String>> = p
        .snaps
        .list
        .iter()
        .map(|s| (s.id, s.user.map(|_| s.host.clone())))
        .collect();
    PrunePlan::new(
        report,
        Work {
            packs: p.t.packs,
            pack_pos: p.t.pack_pos,
            index_objs: p.index.objs,
            entries: p.kept.entries,
            chosen: p.kept.chosen,
            states: p.recs.states,
            superseded_states: p.recs.superseded,
            fossil_ids: p.recs.fossils,
            next_state: next,
            hosts,
            resolved_markers: p.snaps.resolved,
            orphans: p.orphans.positions,
            blind: p.orphans.blind,
            affected: p.affected,
            leftovers: p.index.leftovers,
            workers: p.workers,
            inactive_hosts: p.inactive_hosts,
            executed: false,
        },
    )
}
