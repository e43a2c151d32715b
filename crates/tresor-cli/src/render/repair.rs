//! `repair index` and `repair snapshots`: what was rebuilt and what damage remains.

use super::{Level, Outcome, Text};
use anyhow::Result;
use serde::Serialize;
use tresor_core::repair::{RepairIndexReport, RepairSnapshotsReport};

/// A repair run's report (JSON: `docs/cli.md`, "repair index" and "repair snapshots").
#[derive(Debug, Serialize)]
pub struct Repaired<'a, R> {
    /// Always `"summary"`.
    pub message_type: &'static str,
    /// `"index"` or `"snapshots"`.
    pub repair: &'static str,
    /// What was done.
    pub report: &'a R,
}

impl<'a> From<&'a RepairIndexReport> for Repaired<'a, RepairIndexReport> {
    fn from(report: &'a RepairIndexReport) -> Self {
        Repaired {
            message_type: "summary",
            repair: "index",
            report,
        }
    }
}

impl<'a> From<&'a RepairSnapshotsReport> for Repaired<'a, RepairSnapshotsReport> {
    fn from(report: &'a RepairSnapshotsReport) -> Self {
        Repaired {
            message_type: "summary",
            repair: "snapshots",
            report,
        }
    }
}

/// Whether `repair snapshots` left damaged snapshots behind (exit 5).
pub fn snapshots_unrepaired(r: &RepairSnapshotsReport) -> bool {
    !r.unreadable.is_empty() || r.repaired.iter().any(|s| s.error.is_some())
}

fn dry_run_note(dry_run: bool) -> &'static str {
    if dry_run {
        " (dry run: nothing was changed)"
    } else {
        ""
    }
}

impl Outcome for Repaired<'_, RepairIndexReport> {
    fn text(&self, t: &mut Text) {
        let r = self.report;
        for d in &r.damaged_index {
            t.err(format!("replaced damaged {d}"));
        }
        for u in &r.unreadable {
            t.diag(Level::Error, u);
        }
        for b in &r.blobs_dropped {
            t.diag(Level::Error, format!("left out {b}"));
        }
        for m in &r.missing_packs {
            t.diag(
                Level::Error,
                format!("pack {m} is listed by the old index but missing from storage"),
            );
        }
        for p in &r.packs_salvaged {
            t.diag(
                Level::Warning,
                format!(
                    "pack {p} is damaged: its intact blobs copied, the pack left for `tresor prune`"
                ),
            );
        }
        for u in &r.undeletable {
            t.diag(Level::Warning, format!("the storage refused to delete {u}"));
        }
        t.info(format!(
            "{} {} packs, {} blobs ({} packs verified blob by blob, {} blobs salvaged from {} damaged packs) in {} index objects, superseding {}{}",
            if r.dry_run { "would index" } else { "indexed" },
            r.packs,
            r.blobs,
            r.packs_verified,
            r.blobs_salvaged,
            r.packs_salvaged.len(),
            r.index_written.len(),
            r.index_superseded,
            dry_run_note(r.dry_run)
        ));
        if r.damage_remains() {
            t.info(
                "data was lost: a backup of the same files uploads again what they still hold; \
                 `tresor repair snapshots` writes snapshots without the rest",
            );
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}

impl Outcome for Repaired<'_, RepairSnapshotsReport> {
    fn text(&self, t: &mut Text) {
        let r = self.report;
        for p in &r.index_problems {
            t.diag(Level::Warning, format!("index {p}"));
        }
        for u in &r.unreadable {
            t.diag(Level::Error, format!("{u} (cannot be repaired)"));
        }
        for s in &r.repaired {
            let short = s.snapshot.short();
            t.out(match (&s.error, &s.new_snapshot) {
                (Some(e), _) => format!("snapshot {short}: {e}: cannot be repaired"),
                (None, Some(n)) => format!(
                    "snapshot {short}: repaired as {}{}",
                    n.short(),
                    if s.forgotten {
                        ", original removed"
                    } else {
                        ""
                    }
                ),
                (None, None) => format!("snapshot {short}: would be repaired"),
            });
            for p in &s.removed {
                t.out(format!("  left out {p}"));
            }
        }
        for u in &r.undeletable {
            t.diag(Level::Warning, format!("the storage refused to delete {u}"));
        }
        t.info(format!(
            "{} snapshots checked, {} damaged{}",
            r.snapshots,
            r.repaired.len(),
            dry_run_note(r.dry_run)
        ));
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Mode, Stream, render};
    use tresor_core::repair::RepairedSnapshot;
    use tresor_format::ObjectId;

    const TEXT: Mode = Mode {
        json: false,
        quiet: false,
    };

    #[test]
    fn index() {
        let r = RepairIndexReport {
            dry_run: true,
            packs: 3,
            blobs: 9,
            packs_verified: 1,
            damaged_index: vec!["index I: bad".into()],
            missing_packs: vec![ObjectId([5; 32])],
            ..Default::default()
        };
        let t = render(&Repaired::from(&r), TEXT).unwrap();
        assert_eq!(
            t.stream(Stream::Err),
            format!(
                "replaced damaged index I: bad\nerror: pack {} is listed by the old index but missing from storage\n",
                "05".repeat(32)
            )
        );
        assert_eq!(
            t.stream(Stream::Out),
            "would index 3 packs, 9 blobs (1 packs verified blob by blob, 0 blobs salvaged from 0 damaged packs) in 0 index objects, superseding 0 (dry run: nothing was changed)\n\
             data was lost: a backup of the same files uploads again what they still hold; \
             `tresor repair snapshots` writes snapshots without the rest\n"
        );
        let j = render(
            &Repaired::from(&r),
            Mode {
                json: true,
                quiet: false,
            },
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&j.stream(Stream::Out)).unwrap();
        assert_eq!(
            (v["message_type"].as_str(), v["repair"].as_str()),
            (Some("summary"), Some("index"))
        );
        assert_eq!(v["report"]["missing_packs"][0], "05".repeat(32));
    }

    #[test]
    fn snapshots() {
        let r = RepairSnapshotsReport {
            snapshots: 4,
            repaired: vec![
                RepairedSnapshot {
                    snapshot: ObjectId([1; 32]),
                    new_snapshot: Some(ObjectId([2; 32])),
                    removed: vec!["/a: blob missing".into()],
                    forgotten: true,
                    error: None,
                },
                RepairedSnapshot {
                    snapshot: ObjectId([3; 32]),
                    new_snapshot: None,
                    removed: vec![],
                    forgotten: false,
                    error: Some("root tree unreadable".into()),
                },
            ],
            unreadable: vec!["snapshot S: garbage".into()],
            ..Default::default()
        };
        let t = render(&Repaired::from(&r), TEXT).unwrap();
        assert_eq!(
            t.stream(Stream::Err),
            "error: snapshot S: garbage (cannot be repaired)\n"
        );
        assert_eq!(
            t.stream(Stream::Out),
            "snapshot 01010101: repaired as 02020202, original removed\n  left out /a: blob missing\n\
             snapshot 03030303: root tree unreadable: cannot be repaired\n4 snapshots checked, 2 damaged\n"
        );
        assert!(snapshots_unrepaired(&r));
    }
}
