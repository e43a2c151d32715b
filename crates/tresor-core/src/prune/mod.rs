//! `prune`: free the space of data no snapshot references, without locks (format §16).
//!
//! # Plan, then execute
//!
//! [`plan()`] reads everything and writes nothing: the snapshots (listed first), the prune records,
//! the index objects, then the packs (listed last, so that every snapshot seen has its index
//! objects and packs seen too). It walks every snapshot's trees and marks every blob they use
//! (and which signers' snapshots use it), picks the stored copies of each used blob to keep by
//! trust ([`copies::choose`]: a full key's copy, each put-only user's own copy; a copy nobody
//! vouches for is read and verified before any other copy of that blob is condemned), and
//! decides per pack:
//!
//! * **keep** — all its blobs are used, or it is partly used and within the tolerance;
//! * **condemn** — no used blob (or a pack no index lists that the previous run saw unindexed
//!   already: left by an interrupted backup);
//! * **repack** — partly used: its used blobs are copied into new packs, then it is condemned.
//!   Candidates are taken, most unused first, until the unused bytes left in partly used packs
//!   are at most `max_unused` (restic's semantics: a percentage of the used bytes) or the
//!   repacked bytes would exceed `max_repack_size`;
//! * **unindexed** — a pack no index lists and no earlier run saw: left alone (a running backup
//!   indexes its packs before its snapshot); the next run condemns it if still unindexed;
//! * **resurrect** — a condemned pack (or an unindexed one) holding a blob that a snapshot uses
//!   and that no kept pack holds: it is indexed again;
//! * **delete** — a condemned pack whose generation is approved (below).
//!
//! [`PrunePlan::execute`] carries the plan out. Nothing is deleted on the spot: condemning
//! takes the pack out of the index and records it, with its index entries, in a *fossil* object
//! of a new *generation*; a later run deletes it once that is safe.
//!
//! # Two-phase deletion in repository time
//!
//! Backups take no locks. A backup reads the index (and the dedup lists) when it starts and
//! deduplicates against it until it ends, so it may reference a blob that a prune condemns
//! meanwhile. Two rules make that harmless:
//!
//! 1. **Readers still see condemned packs.** [`crate::Repository::load_index`] merges
//!    the fossils of the live prune state after all index objects, so a snapshot that uses a
//!    condemned blob restores and checks clean. Writers never see them (the dedup lists are those
//!    of index objects only), so no backup that starts later can pick them up.
//! 2. **A generation is deleted only when every backup that could have seen its packs has
//!    ended,** judged from the repository's own history, never from a clock:
//!    * *Arming.* After a run has written the new index and deleted every index object it
//!      superseded, no index object (hence no dedup list) names a condemned pack. It then lists
//!      the snapshots and records that set `S` (ids) and the hosts `H` that wrote them in the
//!      generation. A run that cannot delete a superseded index object (crash, append-only
//!      storage) leaves the generation unarmed; a later run retries.
//!    * *Approval* (a later run): every host in `H` has a snapshot that is not in `S` (one
//!      that readers accept, that speaks for its host and is not dated in the future), and no
//!      pack appeared that no index lists (the sign of a backup uploading right now). A backup
//!      running at arming time must have started before it; a host runs one backup at a time,
//!      so the host's first snapshot outside `S` comes from that backup or a later one — either
//!      way that backup has ended and its snapshot is visible to the approving run.
//!    * *Resurrection.* Every run walks all snapshots; a used blob found only in a condemned pack
//!      makes that pack indexed again (an index object listing it is written before the record
//!      that stops listing it). The pack then belongs to no generation any more.
//!
//! Snapshot times and `backup_start` are never compared with anything, so a host with a wrong
//! clock cannot make a generation look old: only the *presence* of new snapshot ids counts.
//!    * *Backups without a snapshot yet.* A backup writes a start marker before it reads the
//!      index, and its snapshot lists it (format §16.1). Arming adds the hosts of markers no
//!      snapshot lists to `H`, so a backup that started before arming — including a host's very
//!      first backup — is waited for like any host with snapshots. Markers whose snapshot exists
//!      are deleted by prune.
//!
//! Assumption (as in Duplicacy's fossil collection): one backup at a time per host name. Hosts
//! that will never back up again block approval; [`PruneOptions::inactive_hosts`] lets the operator waive them —
//! safe exactly when that host has no backup running that started before the arming run.
//!
//! # Crash safety
//!
//! Write order of one run: new packs and their index objects (repack) → index object of
//! resurrected packs → fossil objects of the new generation → the new prune state (superseding
//! the old one; approved packs move to its `deleting` list) → the consolidated index object
//! (superseding the index objects it replaces) → deletion of superseded states and superseded
//! index objects → deletion of approved packs → arming (a second state superseding the first) →
//! deletion of fossils no live state references. At every point each used blob is in an index object or in a fossil of
//! the live state, and only packs no reader looks at are deleted; a run that dies is finished by
//! the next one (leftover superseded objects are deleted, `deleting` packs are deleted, unarmed
//! generations are armed).
//!
//! # Memory
//!
//! Blobs are kept in one sorted `Vec` of 40-byte entries (id, pack, length) with bit sets for
//! "used" and "chosen copy"; trees are looked up through an [`Index`] of tree blobs only; index
//! objects and fossils are streamed (read twice rather than held), and written in parts of about
//! [`crate::repo::index_writer::PART_BLOBS`] blobs; the blob table is freed before the index
//! objects are streamed again.
//!
//! # Layout
//!
//! * [`plan()`] (`plan/`): one function per step of reading and deciding; [`decide()`] is the
//!   pure rule of what happens to each pack, [`copies::choose`] the pure rule of which copies
//!   of a blob are kept;
//! * [`PrunePlan::execute`] (`execute/`): one function per step of writing and deleting;
//! * [`PlanReport`], [`PruneStats`]: plain data the CLI renders; [`PruneOptions`].
//!
//! The records prune writes are encoded in [`tresor_format::record`] and read and written by
//! [`crate::repo::records`].

pub mod copies;
pub mod decide;
mod execute;
mod later;
mod options;
mod plan;
mod read;
mod report;
mod tables;

pub use decide::{Cold, PackFacts, Space, decide};
pub use options::{MaxUnused, PruneOptions, parse_size};
pub use plan::plan;
pub use report::{
    ColdPackReport, FreedLater, GarbageObject, GenerationStatus, Later, OrphanRule, PackAction,
    PlanReport, PlannedPack, PruneStats, WaitingHost,
};

use serde::Serialize;
use std::fmt;
use std::sync::Mutex;
use tables::Work;

/// Index objects listing fewer blobs than this are merged into the consolidated index object
/// when at least [`CONSOLIDATE_MIN`] of them exist.
pub const SMALL_INDEX_BLOBS: u64 = 4096;
/// See [`SMALL_INDEX_BLOBS`].
pub const CONSOLIDATE_MIN: usize = 8;

/// A prune plan: its report — what [`PrunePlan::execute`] will do, plain data the CLI renders;
/// a plan dereferences to it — and the tables it was made from, which execution takes apart.
/// Serialises as its report (for `--json`).
#[derive(Serialize)]
pub struct PrunePlan {
    #[serde(flatten)]
    report: PlanReport,
    #[serde(skip)]
    work: Mutex<Work>,
}

impl PrunePlan {
    fn new(report: PlanReport, work: Work) -> Self {
        PrunePlan {
            report,
            work: Mutex::new(work),
        }
    }

    /// What the plan will do.
    pub fn report(&self) -> &PlanReport {
        &self.report
    }
}

impl std::ops::Deref for PrunePlan {
    type Target = PlanReport;
    fn deref(&self) -> &PlanReport {
        &self.report
    }
}

impl fmt::Debug for PrunePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrunePlan(run {}, condemn {}+{}, repack {}, resurrect {}, delete {})",
            self.run,
            self.condemn_unused.len(),
            self.condemn_unindexed.len(),
            self.repack.len(),
            self.resurrect.len(),
            self.delete.len()
        )
    }
}
