//! `prune`: the plan, and what the run did.

use super::{Level, Outcome, Text};
use crate::output::bytes;
use anyhow::Result;
use serde::Serialize;
use tresor_core::prune::{PrunePlan, PruneStats};

/// The plan's text, one line per step (`PrunePlan`'s own wording).
pub fn plan_text(plan: &PrunePlan, t: &mut Text) {
    t.out_lines(&plan.to_string());
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
