//! Carrying a plan out. [`PrunePlan::execute`] calls one function per step, in the order of
//! writes that keeps every step safe to die after (see [`super`], "Crash safety"):
//!
//! 0. [`delete::garbage`]: objects no key wrote (no reader uses them);
//! 1. [`repack::repack`]: the kept blobs of repacked packs into new packs, then their index
//!    objects;
//! 2. [`resurrect::resurrect`]: an index object listing the resurrected packs;
//! 3. [`condemn::condemn`]: one pass over the affected index objects — condemned packs into the
//!    fossils of a new generation, kept packs into the consolidated index (all but its last
//!    part);
//! 4. [`state::State::write_new`]: the new prune state;
//! 5. [`condemn::consolidate`]: the last part of the consolidated index, superseding the
//!    affected index objects;
//! 6. [`delete::superseded`]: superseded states and index objects;
//! 7. [`delete::approved_packs`]: the packs of approved generations;
//! 8. [`state::State::arm`]: arm the new generations once no index object names their packs;
//! 9. [`state::State::finish`]: a state with nothing pending, fossils no state references;
//! 10. [`delete::resolved_markers`]: backup start markers whose snapshots exist.

mod condemn;
mod delete;
mod repack;
mod resurrect;
mod state;

use super::PrunePlan;
use super::later;
use super::report::{PackAction, PruneStats};
use super::tables::Work;
use crate::Progress;
use crate::error::{CoreError, Result};
use crate::repo::Repository;
use std::sync::MutexGuard;

impl PrunePlan {
    /// Carry the plan out (see the module documentation for the order of writes). `progress`
    /// hears of every byte repacked.
    ///
    /// # Errors
    /// Storage write failures, and [`CoreError::Damaged`] when a pack that must be indexed again
    /// does not verify. Whatever was written before an error leaves a consistent repository
    /// that the next run completes; failures to delete are reported in the stats, not raised.
    /// A plan is executed once; a second call is [`CoreError::Invalid`].
    pub fn execute(&self, repo: &Repository, progress: &dyn Progress) -> Result<PruneStats> {
        repo.require_full_signer()?;
        let mut guard = self.take_work()?;
        let w = &mut *guard;
        let mut stats = PruneStats {
            run: self.run,
            ..PruneStats::default()
        };
        if self.nothing_to_do {
            delete::resolved_markers(repo, &w.resolved_markers, &mut stats);
            stats.armed = w
                .states
                .iter()
                .all(|(_, s)| s.generations.iter().all(|g| g.armed.is_some()));
            let after = later::AfterRun {
                armed_hosts: None,
                condemned: (0, 0),
                inactive: &w.inactive_hosts,
            };
            stats.freed_later = later::freed_later(&self.report, &after);
            return Ok(stats);
        }
        let mut actions: Vec<PackAction> = w.packs.iter().map(|p| p.action).collect();
        delete::garbage(repo, &self.garbage, &mut stats);
        repack::repack(repo, w, &mut actions, progress, &mut stats)?;
        resurrect::resurrect(repo, w, &mut stats)?;
        let condemned = condemn::condemn(repo, self.run, w, &actions, &mut stats)?;
        let mut state = state::State::new(w);
        state.write_new(repo, w, condemned.generation, &mut stats)?;
        let supersedes = condemn::consolidate(condemned.consolidated, w, &mut stats)?;
        let gone_index = delete::superseded(repo, w, &supersedes, &mut stats);
        let all_deleted = delete::approved_packs(repo, w, self.locked.is_empty(), &mut stats);
        state.arm(repo, self.run, w, gone_index, &supersedes, &mut stats)?;
        state.finish(repo, w, all_deleted, &mut stats);
        delete::resolved_markers(repo, &w.resolved_markers, &mut stats);
        stats.armed = state.armed();
        let after = later::AfterRun {
            armed_hosts: state.armed_hosts(),
            condemned: (stats.packs_condemned, stats.bytes_condemned),
            inactive: &w.inactive_hosts,
        };
        stats.freed_later = later::freed_later(&self.report, &after);
        Ok(stats)
    }

    /// The tables, once: a plan is executed at most once.
    fn take_work(&self) -> Result<MutexGuard<'_, Work>> {
        let mut guard = self
            .work
            .lock()
            .map_err(|_| CoreError::Invalid("prune plan poisoned".into()))?;
        if guard.executed {
            return Err(CoreError::Invalid(
                "this prune plan was executed already".into(),
            ));
        }
        guard.executed = true;
        Ok(guard)
    }
}
