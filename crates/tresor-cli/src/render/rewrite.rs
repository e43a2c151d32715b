//! `rewrite`: per snapshot the paths left out and `old -> new`, and a summary.

use super::tag::{Locked, locked, locked_notes};
use super::{Outcome, Text};
use anyhow::Result;
use serde::Serialize;
use tresor_core::edit::rewrite::{RewriteReport, Rewritten};

/// The one JSON document of `rewrite` (`docs/cli.md`, "rewrite").
#[derive(Debug, Serialize)]
pub struct RewriteSummary<'a> {
    message_type: &'static str,
    dry_run: bool,
    /// Snapshots looked at.
    snapshots: usize,
    /// Snapshots that lose entries.
    rewritten: &'a [Rewritten],
    /// Old snapshots kept under an Object Lock.
    locked: Vec<Locked>,
}

impl<'a> RewriteSummary<'a> {
    /// The outcome of `report`.
    pub fn new(report: &'a RewriteReport, dry_run: bool) -> Self {
        RewriteSummary {
            message_type: "summary",
            dry_run,
            snapshots: report.snapshots,
            rewritten: &report.rewritten,
            locked: locked(&report.locked),
        }
    }
}

impl Outcome for RewriteSummary<'_> {
    fn text(&self, t: &mut Text) {
        for r in self.rewritten {
            t.info(format!("snapshot {}:", r.replaced.old.short()));
            for p in &r.removed {
                t.out(format!("  excluded {p}"));
            }
            match r.replaced.new {
                Some(new) if r.replaced.forgotten => t.out(format!(
                    "{} -> {new} (old snapshot removed)",
                    r.replaced.old
                )),
                Some(new) => t.out(format!("{} -> {new}", r.replaced.old)),
                None => {}
            }
        }
        locked_notes(t, &self.locked);
        let note = if self.dry_run {
            " (dry run: nothing was changed)"
        } else {
            ""
        };
        t.info(format!(
            "{} of {} snapshot(s) rewritten{note}",
            self.rewritten.len(),
            self.snapshots
        ));
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        locked_notes(t, &self.locked);
        t.json_line(self)
    }
}
