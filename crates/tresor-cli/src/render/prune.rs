//! `prune`: the plan (its text exactly as the plan's `Display` in tresor-core printed it), and
//! what the run did.

use super::{Level, Outcome, Text, escape_controls, quoted};
use crate::output::bytes;
use anyhow::Result;
use serde::Serialize;
use std::fmt;
use tresor_core::prune::{
    FreedLater, Later, PlanReport, PlannedPack, PrunePlan, PruneStats, WaitingHost,
};

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
        "freed now: {} packs deleted ({}); index objects: {} written, {} deleted{}",
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
    for f in &stats.freed_later {
        t.info(later_line(f));
    }
}

/// A time a host wrote (RFC 3339) in local time without fractions, or as it is (escaped) when
/// it does not parse.
fn local_time(t: &str, zone: &jiff::tz::TimeZone) -> String {
    match t.parse::<jiff::Timestamp>() {
        Ok(ts) => ts
            .to_zoned_datetime(zone.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => quoted(t),
    }
}

/// One host a generation waits for: since when, and how to release it when that is safe.
fn waiting_line(w: &WaitingHost, zone: &jiff::tz::TimeZone) -> String {
    let host = quoted(&w.host);
    let since = match (&w.last_snapshot, w.unfinished.first()) {
        (Some(t), _) => format!("no snapshot since {}", local_time(t, zone)),
        (None, Some(t)) => format!(
            "a backup started {} and has no snapshot yet",
            local_time(t, zone)
        ),
        (None, None) => "no snapshot since the arming run".to_string(),
    };
    let more = match (w.last_snapshot.is_some(), w.unfinished.len()) {
        (true, n @ 1..) => format!("; {n} backups started and have no snapshot yet"),
        (false, n @ 2..) => format!(" ({} more)", n - 1),
        _ => String::new(),
    };
    format!(
        "waiting for host {host}: {since}{more}; if {host} is gone or no backup of it is running, release it with `{}`",
        escape_controls(&w.release)
    )
}

/// One line of what a later run frees, and on which condition.
fn later_line(f: &FreedLater) -> String {
    let what = format!("{} packs ({})", f.packs, bytes(f.bytes));
    let hosts = || {
        let names: Vec<String> = f.hosts.iter().map(|h| quoted(h)).collect();
        format!("{{{}}}", names.join(", "))
    };
    match f.when {
        Later::HostsBackUp => format!(
            "freed later: {what}, by the first prune run after every host in {} has backed up again",
            hosts()
        ),
        Later::NextRun => format!("freed later: {what}, on the next prune run"),
        Later::Arming => format!(
            "freed later: {what}, once a prune run has armed them (index objects naming them \
             are still present), then after every host has backed up again"
        ),
        Later::LockEnds => format!(
            "freed later: {what}, by the first prune run after the storage's object lock ends"
        ),
        Later::Unindexed => format!(
            "maybe freed later: {what} no index lists yet, condemned by the next prune run if \
             still unindexed, or deleted by it when no backup can be running (a running backup \
             may still index them)"
        ),
        Later::Cold => format!(
            "freed later: {what} unused in partly used cold packs: cold packs are not repacked \
             (that needs a thaw); freed once a pack is wholly unused"
        ),
        Later::ColdMinimum => format!(
            "freed later: {what} of wholly unused cold packs, by the first prune run after \
             their class's minimum storage duration (or one with --cold-early-delete)"
        ),
    }
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
        if !p.delete_unindexed.is_empty() {
            writeln!(
                f,
                "unindexed, deleted now: {} packs ({}) an earlier run saw unindexed, left by backups that ended without indexing them — {}",
                p.delete_unindexed.len(),
                size(sum(&p.delete_unindexed)),
                p.orphan_rule.reason
            )?;
        } else if !p.condemn_unindexed.is_empty() {
            writeln!(
                f,
                "unindexed, condemned (not deleted now): {}",
                p.orphan_rule.reason
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
        self.cold(f)
    }

    /// Cold packs left as they are, or condemned before their minimum storage duration.
    fn cold(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        if !p.cold_kept.is_empty() {
            writeln!(
                f,
                "cold: {} packs ({}) in a cold class left as they are: partly used ones are not repacked (that needs a thaw), wholly unused ones wait for their class's minimum storage duration",
                p.cold_kept.len(),
                size(p.cold_kept.iter().map(|c| c.pack.size).sum())
            )?;
        }
        if !p.cold_early.is_empty() {
            writeln!(
                f,
                "cold, condemned early: {} wholly unused cold packs ({}) before their class's minimum storage duration (--cold-early-delete): the storage charges an early-deletion fee for the remaining days",
                p.cold_early.len(),
                size(p.cold_early.iter().map(|c| c.pack.size).sum())
            )?;
        }
        Ok(())
    }

    /// Generations, deletions, index consolidation, garbage, warnings.
    fn actions(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        let zone = tresor_core::time::local_zone();
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
            for w in &g.waiting {
                writeln!(f, "  {}", waiting_line(w, &zone))?;
            }
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
             freed now: 4 packs deleted (1.00 MiB); index objects: 1 written, 2 deleted; condemned packs not armed yet (next prune)\n"
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

    fn rule(applies: bool, reason: &str) -> tresor_core::prune::OrphanRule {
        tresor_core::prune::OrphanRule {
            applies,
            reason: reason.into(),
        }
    }

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
            armed_run: Some(run + 1),
            waiting_for: vec![],
            waiting: vec![],
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
                GenerationStatus {
                    waiting_for: vec!["a".into()],
                    waiting: vec![waiting("a", None, &[])],
                    ..status(5, 0, "waiting for a new snapshot of \"a\"")
                },
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
            orphan_rule: rule(false, "a backup may be running: 1 start markers …"),
            ..PlanReport::default()
        };
        let want = format!(
            "prune run 7: 3 snapshots, 12 packs, 400 blobs (350 used, 5.00 GiB; unused 1.50 KiB)\n\
             condemn: 2 unused packs (2.00 KiB), 1 unindexed packs (100 B) — freed by a later run\n\
             repack: 1 packs (1.00 MiB), copying 17 blobs (1023 B); unused after: 999 B (tolerated 1000 B)\n\
             unindexed: 1 packs (2.00 KiB) no index lists, seen for the first time — condemned by the next run if still unindexed\n\
             unindexed, condemned (not deleted now): a backup may be running: 1 start markers …\n\
             drop from the index: 1 packs missing from storage\n\
             resurrect: 2 condemned or unindexed packs hold data snapshots use\n\
             locked: 2 packs (1.00 KiB) due for deletion are still under the storage's object lock (until 2031-01-01T00:00:00Z at the latest): not attempted, deleted by a prune run after that\n\
             generation of run 5: 2 packs (3.00 MiB): waiting for a new snapshot of \"a\"\n\
             \x20 waiting for host \"a\": no snapshot since the arming run; if \"a\" is gone or no backup of it is running, release it with `tresor prune --inactive-host a`\n\
             generation of run 6: 2 packs (3.00 MiB), 1 resurrected: approved: every host has written a snapshot since it was armed\n\
             delete now: 1 packs, 10 B freed\n\
             index: 2 objects consolidated, 1 superseded objects removed\n\
             garbage (no key wrote it; deleted by this run): snapshot {}: snapshot x: bad\n\
             warning: something odd\n",
            ObjectId([12; 32])
        );
        assert_eq!(Plan(&r).to_string(), want);
    }

    /// No backup can be running: unindexed packs are deleted now, with the reason.
    #[test]
    fn unindexed_packs_deleted_now_are_said_with_the_reason() {
        let r = PlanReport {
            delete_unindexed: vec![pack(3, 100)],
            orphan_rule: rule(true, "no backup can be running: …"),
            ..PlanReport::default()
        };
        let text = Plan(&r).to_string();
        assert_eq!(
            text.lines().nth(3).unwrap(),
            "unindexed, deleted now: 1 packs (100 B) an earlier run saw unindexed, left by backups that ended without indexing them — no backup can be running: …",
            "{text}"
        );
    }

    fn waiting(host: &str, last: Option<&str>, unfinished: &[&str]) -> WaitingHost {
        WaitingHost {
            host: host.into(),
            last_snapshot: last.map(Into::into),
            unfinished: unfinished.iter().map(|s| s.to_string()).collect(),
            release: format!("tresor prune --inactive-host {host}"),
        }
    }

    /// Since when a host is waited for, in the given zone without fractions; the host name
    /// escaped, the release command given.
    #[test]
    fn a_waiting_host_is_shown_with_since_when_and_its_release() {
        let zone = jiff::tz::TimeZone::fixed(jiff::tz::offset(2));
        let w = waiting("h1", Some("2026-12-01T08:00:00.123456789Z"), &[]);
        assert_eq!(
            waiting_line(&w, &zone),
            "waiting for host \"h1\": no snapshot since 2026-12-01 10:00:00; if \"h1\" is gone or \
             no backup of it is running, release it with `tresor prune --inactive-host h1`"
        );
        let w = waiting(
            "h1",
            Some("2026-12-01T08:00:00Z"),
            &["2026-12-02T00:00:00Z"],
        );
        assert!(
            waiting_line(&w, &zone).starts_with(
                "waiting for host \"h1\": no snapshot since 2026-12-01 10:00:00; 1 backups \
                 started and have no snapshot yet; if"
            ),
            "{}",
            waiting_line(&w, &zone)
        );
        let w = waiting(
            "new\x1b[2J",
            None,
            &["2026-12-06T13:30:00Z", "2026-12-06T14:00:00Z"],
        );
        assert_eq!(
            waiting_line(&w, &zone),
            "waiting for host \"new\\x1b[2J\": a backup started 2026-12-06 15:30:00 and has no \
             snapshot yet (1 more); if \"new\\x1b[2J\" is gone or no backup of it is running, \
             release it with `tresor prune --inactive-host new\\x1b[2J`"
        );
        let w = waiting("h", None, &["yesterday"]);
        assert!(
            waiting_line(&w, &zone).contains("a backup started \"yesterday\" and has"),
            "{}",
            waiting_line(&w, &zone)
        );
    }

    /// Each condition of a later deletion in its own words.
    #[test]
    fn what_later_runs_free_is_said_with_its_condition() {
        let f = |when, hosts: &[&str]| FreedLater {
            packs: 3,
            bytes: 3 << 20,
            when,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        };
        assert_eq!(
            later_line(&f(Later::HostsBackUp, &["a", "b c"])),
            "freed later: 3 packs (3.00 MiB), by the first prune run after every host in \
             {\"a\", \"b c\"} has backed up again"
        );
        assert_eq!(
            later_line(&f(Later::NextRun, &[])),
            "freed later: 3 packs (3.00 MiB), on the next prune run"
        );
        assert!(later_line(&f(Later::Arming, &[])).contains("once a prune run has armed them"));
        assert!(later_line(&f(Later::LockEnds, &[])).contains("after the storage's object lock"));
        assert!(later_line(&f(Later::Unindexed, &[])).starts_with("maybe freed later: 3 packs"));
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
