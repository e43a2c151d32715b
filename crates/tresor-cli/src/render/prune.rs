//! `prune`: the plan (its text exactly as the plan's `Display` in tresor-core printed it), and
//! what the run did.

use super::{Level, Outcome, Text};
use crate::output::bytes;
use anyhow::Result;
use serde::Serialize;
use std::fmt;
use tresor_core::prune::{PlanReport, PlannedPack, PrunePlan, PruneStats};

/// The plan's text, one line per step ([`Plan`]).
pub fn plan_text(plan: &PrunePlan, t: &mut Text) {
    t.out_lines(&Plan(plan).to_string());
}

/// The plan, shown before a run carries it out (text only, left out with `--quiet`).
pub struct Announced<'a>(pub &'a PrunePlan);

impl Outcome for Announced<'_> {
    fn text(&self, t: &mut Text) {
        if !t.quiet() {
            plan_text(self.0, t);
        }
    }

    fn json(&self, _: &mut Text) -> Result<()> {
        Ok(())
    }
}

/// A prune run: its plan, and with `stats` what it did (JSON: `docs/cli.md`, "prune").
#[derive(Serialize)]
pub struct Pruned<'a> {
    /// `"plan"` in a dry run, else `"summary"`.
    pub message_type: &'static str,
    /// Nothing was changed.
    pub dry_run: bool,
    /// The plan.
    pub plan: &'a PrunePlan,
    /// What the run did (none in a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<&'a PruneStats>,
}

impl<'a> Pruned<'a> {
    /// A dry run: the plan only.
    pub fn dry_run(plan: &'a PrunePlan) -> Self {
        Pruned {
            message_type: "plan",
            dry_run: true,
            plan,
            stats: None,
        }
    }

    /// A run that carried out `plan`.
    pub fn done(plan: &'a PrunePlan, stats: &'a PruneStats) -> Self {
        Pruned {
            message_type: "summary",
            dry_run: false,
            plan,
            stats: Some(stats),
        }
    }
}

impl Outcome for Pruned<'_> {
    /// A dry run prints the plan (also with `--quiet`); a run's plan was [`Announced`] before
    /// it started, so this prints what it did.
    fn text(&self, t: &mut Text) {
        let Some(stats) = self.stats else {
            plan_text(self.plan, t);
            t.out("dry run: nothing was changed");
            return;
        };
        problems(stats, t);
        summary(stats, t);
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}

/// What a run left undone or met on the way (standard error).
fn problems(stats: &PruneStats, t: &mut Text) {
    for l in &stats.locked {
        t.diag(
            Level::Note,
            format!("not deleted yet, still under object lock: {l}"),
        );
    }
    for u in &stats.undeletable {
        t.diag(Level::Warning, format!("the storage refused to delete {u}"));
    }
    for w in &stats.warnings {
        t.diag(Level::Warning, w);
    }
}

/// The lines counting what a run did.
fn summary(stats: &PruneStats, t: &mut Text) {
    t.info(format!(
        "repacked {} packs ({} blobs) into {} new packs; condemned {} packs ({}); resurrected {}",
        stats.packs_repacked,
        stats.blobs_repacked,
        stats.packs_written,
        stats.packs_condemned,
        bytes(stats.bytes_condemned),
        stats.packs_resurrected
    ));
    if stats.garbage_deleted > 0 {
        t.info(format!(
            "deleted {} garbage objects (listed above)",
            stats.garbage_deleted
        ));
    }
    t.info(format!(
        "deleted {} packs, {} freed; index objects: {} written, {} deleted{}",
        stats.packs_deleted,
        bytes(stats.bytes_freed),
        stats.index_written,
        stats.index_deleted,
        if stats.armed {
            ""
        } else {
            "; condemned packs not armed yet (next prune)"
        }
    ));
}

/// A plan's report, displayed as the lines `tresor prune` prints.
pub struct Plan<'a>(pub &'a PlanReport);

/// Bytes with binary units, as prune has always shown them (`1.50 GiB`).
fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

impl fmt::Display for Plan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.totals(f)?;
        self.pending(f)?;
        self.actions(f)
    }
}

impl Plan<'_> {
    /// The run's totals and what it condemns and repacks.
    fn totals(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        let sum = |v: &[PlannedPack]| v.iter().map(|p| p.size).sum::<u64>();
        writeln!(
            f,
            "prune run {}: {} snapshots, {} packs, {} blobs ({} used, {}; unused {})",
            p.run,
            p.snapshots,
            p.packs,
            p.blobs,
            p.used_blobs,
            size(p.used_bytes),
            size(p.unused_bytes)
        )?;
        writeln!(
            f,
            "condemn: {} unused packs ({}), {} unindexed packs ({}) — freed by a later run",
            p.condemn_unused.len(),
            size(sum(&p.condemn_unused)),
            p.condemn_unindexed.len(),
            size(sum(&p.condemn_unindexed))
        )?;
        writeln!(
            f,
            "repack: {} packs ({}), copying {} blobs ({}); unused after: {} (tolerated {})",
            p.repack.len(),
            size(sum(&p.repack)),
            p.repack_blobs,
            size(p.repack_bytes),
            size(p.unused_bytes_after),
            size(p.max_unused_bytes)
        )?;
        Ok(())
    }

    /// Packs waiting on something: unindexed, missing, resurrected, locked.
    fn pending(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        let sum = |v: &[PlannedPack]| v.iter().map(|p| p.size).sum::<u64>();
        if !p.unindexed_seen.is_empty() {
            writeln!(
                f,
                "unindexed: {} packs ({}) no index lists, seen for the first time — condemned by the next run if still unindexed",
                p.unindexed_seen.len(),
                size(sum(&p.unindexed_seen))
            )?;
        }
        if !p.drop_missing.is_empty() {
            writeln!(
                f,
                "drop from the index: {} packs missing from storage",
                p.drop_missing.len()
            )?;
        }
        if !p.resurrect.is_empty() {
            writeln!(
                f,
                "resurrect: {} condemned or unindexed packs hold data snapshots use",
                p.resurrect.len()
            )?;
        }
        if !p.locked.is_empty() {
            let until = p
                .locked
                .iter()
                .map(|(_, t)| t.as_str())
                .max()
                .unwrap_or_default();
            writeln!(
                f,
                "locked: {} packs ({}) due for deletion are still under the storage's object lock (until {until} at the latest): not attempted, deleted by a prune run after that",
                p.locked.len(),
                size(p.locked.iter().map(|(p, _)| p.size).sum())
            )?;
        }
        Ok(())
    }

    /// Generations, deletions, index consolidation, garbage, warnings.
    fn actions(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        for g in &p.generations {
            writeln!(
                f,
                "generation of run {}: {} packs ({}){}: {}",
                g.run,
                g.packs,
                size(g.bytes),
                if g.resurrected > 0 {
                    format!(", {} resurrected", g.resurrected)
                } else {
                    String::new()
                },
                g.reason
            )?;
        }
        writeln!(
            f,
            "delete now: {} packs, {} freed",
            p.delete.len(),
            size(p.bytes_freed)
        )?;
        if p.index_superseded + p.index_leftovers > 0 {
            writeln!(
                f,
                "index: {} objects consolidated, {} superseded objects removed",
                p.index_superseded, p.index_leftovers
            )?;
        }
        for g in &p.garbage {
            writeln!(
                f,
                "garbage (no key wrote it; deleted by this run): {} {}: {}",
                g.kind, g.id, g.reason
            )?;
        }
        for w in &p.warnings {
            writeln!(f, "warning: {w}")?;
        }
        if p.is_empty() {
            writeln!(f, "nothing to do")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Stream;

    #[test]
    fn summary_lines() {
        let mut s = PruneStats {
            packs_repacked: 1,
            blobs_repacked: 3,
            packs_written: 1,
            packs_condemned: 2,
            bytes_condemned: 2048,
            garbage_deleted: 1,
            packs_deleted: 4,
            bytes_freed: 1 << 20,
            index_written: 1,
            index_deleted: 2,
            ..Default::default()
        };
        s.locked = vec!["pack P: locked until T".into()];
        s.undeletable = vec!["index I: denied".into()];
        s.warnings = vec!["something".into()];
        let mut t = Text::new(false);
        problems(&s, &mut t);
        summary(&s, &mut t);
        assert_eq!(
            t.stream(Stream::Out),
            "repacked 1 packs (3 blobs) into 1 new packs; condemned 2 packs (2.00 KiB); resurrected 0\n\
             deleted 1 garbage objects (listed above)\n\
             deleted 4 packs, 1.00 MiB freed; index objects: 1 written, 2 deleted; condemned packs not armed yet (next prune)\n"
        );
        assert_eq!(
            t.stream(Stream::Err),
            "note: not deleted yet, still under object lock: pack P: locked until T\n\
             warning: the storage refused to delete index I: denied\n\
             warning: something\n"
        );
        let mut quiet = Text::new(true);
        summary(&s, &mut quiet);
        assert_eq!(quiet.stream(Stream::Out), "");
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;
    use tresor_core::prune::{GarbageObject, GenerationStatus};
    use tresor_format::ObjectId;
    use tresor_storage::Kind;

    fn pack(n: u8, size: u64) -> PlannedPack {
        PlannedPack {
            id: ObjectId([n; 32]),
            size,
            blobs: 10,
            used_blobs: 3,
            used_bytes: 300,
        }
    }

    #[test]
    fn a_plan_with_every_part_is_shown_line_by_line() {
        let status = |run, resurrected, reason: &str| GenerationStatus {
            run,
            packs: 2,
            bytes: 3 << 20,
            armed: true,
            approved: false,
            waiting_for: vec![],
            resurrected,
            reason: reason.into(),
        };
        let r = PlanReport {
            run: 7,
            snapshots: 3,
            packs: 12,
            blobs: 400,
            used_blobs: 350,
            used_bytes: 5 << 30,
            unused_bytes: 1536,
            max_unused_bytes: 1000,
            unused_bytes_after: 999,
            condemn_unused: vec![pack(1, 1024), pack(2, 1024)],
            condemn_unindexed: vec![pack(3, 100)],
            unindexed_seen: vec![pack(4, 2048)],
            repack: vec![pack(5, 1 << 20)],
            repack_blobs: 17,
            repack_bytes: 1023,
            drop_missing: vec![ObjectId([6; 32])],
            resurrect: vec![ObjectId([7; 32]), ObjectId([8; 32])],
            delete: vec![pack(9, 10)],
            locked: vec![
                (pack(10, 512), "2031-01-01T00:00:00Z".into()),
                (pack(11, 512), "2030-06-01T00:00:00Z".into()),
            ],
            bytes_freed: 10,
            generations: vec![
                status(5, 0, "waiting for a new snapshot of \"a\""),
                status(
                    6,
                    1,
                    "approved: every host has written a snapshot since it was armed",
                ),
            ],
            index_superseded: 2,
            index_leftovers: 1,
            garbage: vec![GarbageObject {
                kind: Kind::Snapshot,
                id: ObjectId([12; 32]),
                reason: "snapshot x: bad".into(),
            }],
            warnings: vec!["something odd".into()],
            ..PlanReport::default()
        };
        let want = format!(
            "prune run 7: 3 snapshots, 12 packs, 400 blobs (350 used, 5.00 GiB; unused 1.50 KiB)\n\
             condemn: 2 unused packs (2.00 KiB), 1 unindexed packs (100 B) — freed by a later run\n\
             repack: 1 packs (1.00 MiB), copying 17 blobs (1023 B); unused after: 999 B (tolerated 1000 B)\n\
             unindexed: 1 packs (2.00 KiB) no index lists, seen for the first time — condemned by the next run if still unindexed\n\
             drop from the index: 1 packs missing from storage\n\
             resurrect: 2 condemned or unindexed packs hold data snapshots use\n\
             locked: 2 packs (1.00 KiB) due for deletion are still under the storage's object lock (until 2031-01-01T00:00:00Z at the latest): not attempted, deleted by a prune run after that\n\
             generation of run 5: 2 packs (3.00 MiB): waiting for a new snapshot of \"a\"\n\
             generation of run 6: 2 packs (3.00 MiB), 1 resurrected: approved: every host has written a snapshot since it was armed\n\
             delete now: 1 packs, 10 B freed\n\
             index: 2 objects consolidated, 1 superseded objects removed\n\
             garbage (no key wrote it; deleted by this run): snapshot {}: snapshot x: bad\n\
             warning: something odd\n",
            ObjectId([12; 32])
        );
        assert_eq!(Plan(&r).to_string(), want);
    }

    #[test]
    fn an_empty_plan_says_so() {
        let r = PlanReport {
            run: 2,
            nothing_to_do: true,
            ..PlanReport::default()
        };
        assert_eq!(
            Plan(&r).to_string(),
            "prune run 2: 0 snapshots, 0 packs, 0 blobs (0 used, 0 B; unused 0 B)\n\
             condemn: 0 unused packs (0 B), 0 unindexed packs (0 B) — freed by a later run\n\
             repack: 0 packs (0 B), copying 0 blobs (0 B); unused after: 0 B (tolerated 0 B)\n\
             delete now: 0 packs, 0 B freed\n\
             nothing to do\n"
        );
    }
}
