//! Making a plan: read everything, write nothing (see the [`super`] documentation for the rules).
//! Each step is a function of its own, called in this order by [`plan`]:
//!
//! 1. [`snapshots::read`]: every snapshot, whatever its signer — listed first, so that every
//!    snapshot seen has its index objects and packs seen later; [`snapshots::garbage_markers`]:
//!    backup start markers that do not open, and the backups of those no snapshot lists;
//! 2. [`records::read`]: the prune records;
//! 3. [`index::read`]: every index object into the tables, conflicting listings judged by the
//!    packs' headers; [`fossils::read`]: the fossils of the live states and their `deleting`
//!    lists;
//!    [`orphans::age`]: the markers no snapshot lists, aged by the storage's clock (before the
//!    index objects are listed); [`orphans::decide`]: whether no backup can be running;
//! 4. [`packs::read`]: the packs in storage, listed last; packs nothing lists (*orphans*);
//! 5. [`approve::approve`]: which pending generations are approved;
//! 6. [`keep::keep`]: mark what the snapshots use, keep copies by trust, decide per pack
//!    ([`super::decide::decide`]) and verify copies until nothing is left to verify; before
//!    deciding, [`cold::probe`] asks which packs not wholly used are cold (only with
//!    [`PruneOptions::cold_probe`]);
//! 7. [`locks::hold`]: deletions the storage's object lock holds back;
//! 8. [`consolidate::affected`]: the index objects the consolidated index object replaces;
//! 9. [`assemble::plan`]: the report and the tables for execution.

mod approve;
mod assemble;
mod cold;
mod consolidate;
mod fossils;
mod index;
pub(super) mod keep;
mod locks;
mod orphans;
mod packs;
mod records;
mod snapshots;

use super::PrunePlan;
use super::options::PruneOptions;
use super::report::GarbageObject;
use super::tables::Tables;
use crate::error::Result;
use crate::repo::Repository;

/// What the steps of a plan collect besides the tables: objects no key wrote, and warnings.
#[derive(Default)]
struct Found {
    garbage: Vec<GarbageObject>,
    warnings: Vec<String>,
}

/// Make a plan. Reads the whole repository's metadata; writes nothing.
///
/// # Errors
/// [`crate::CoreError::PutOnly`]; [`crate::CoreError::Invalid`] without a full key;
/// [`crate::CoreError::Damaged`] when an index object or snapshot cannot be read;
/// [`crate::CoreError::KnownDamage`] when a prune record or a tree cannot be read, or a used blob
/// is stored nowhere (prune would otherwise lose track of data).
pub fn plan(repo: &Repository, opts: &PruneOptions) -> Result<PrunePlan> {
    repo.require_read("prune")?;
    repo.require_full_signer()?;
    let mut found = Found::default();
    let snaps = snapshots::read(repo, &mut found)?;
    let markers = snapshots::garbage_markers(repo, &snaps.resolved, &mut found)?;
    // Aged by the storage's clock before the index objects are listed (format §16, step 3).
    let aged = orphans::age(repo, &markers.seen)?;
    let recs = records::read(repo, &mut found.warnings)?;
    let mut t = Tables::default();
    let index = index::read(repo, &mut t, &mut found)?;
    let orphan_rule = orphans::decide(aged.as_deref(), index.skipped);
    let gens = fossils::read(repo, &recs, &mut t)?;
    let mut orphans = packs::read(repo, &recs, &mut t, &mut found.warnings)?;
    orphans.free = orphan_rule.applies;
    let seen = approve::Seen {
        snaps: &snaps.list,
        unfinished: &markers.unfinished,
        new_unindexed: orphans.new_unindexed,
    };
    let mut status = approve::approve(&recs, &gens, &seen, opts);
    let kept = keep::keep(
        repo,
        &snaps,
        &mut t,
        &status,
        &orphans,
        opts,
        &mut found.warnings,
    )?;
    let now = kept.now;
    approve::count(&mut status, &gens, &t.packs);
    let held = locks::hold(repo, &mut t.packs, &mut found.warnings);
    let affected = consolidate::affected(&t.packs, &index.objs);
    Ok(assemble::plan(assemble::Parts {
        snaps,
        recs,
        t,
        index,
        gens,
        orphans,
        status,
        kept,
        held,
        affected,
        found,
        orphan_rule,
        workers: opts.workers.max(1),
        inactive_hosts: opts.inactive_hosts.clone(),
        now,
    }))
}
