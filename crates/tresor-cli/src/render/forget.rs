//! `forget`: the snapshots chosen (by id or by a policy's decisions) and what was removed.

use super::{Level, Outcome, Text, escape_controls, quoted};
use anyhow::Result;
use tresor_core::retention::{Decision, Group, RetentionPolicy, SnapshotInfo};
use tresor_format::ObjectId;

/// Snapshots named by id (text: one `remove ID` line each; JSON: no document).
#[derive(Debug)]
pub struct ByIds<'a>(pub &'a [ObjectId]);

impl Outcome for ByIds<'_> {
    fn text(&self, t: &mut Text) {
        for id in self.0 {
            t.info(format!("remove {}", id.short()));
        }
    }

    fn json(&self, _: &mut Text) -> Result<()> {
        Ok(())
    }
}

/// A policy's decisions, group by group (JSON: `docs/cli.md`, "forget": the groups).
#[derive(Debug)]
pub struct Decisions<'a> {
    /// The policy applied.
    pub policy: &'a RetentionPolicy,
    /// Its decisions.
    pub groups: &'a [Group],
    /// The snapshots judged (the text shows their time, host, tags and paths).
    pub snapshots: &'a [SnapshotInfo],
    /// The time zone of the times shown.
    pub zone: jiff::tz::TimeZone,
}

impl Outcome for Decisions<'_> {
    /// Like restic: per group, a table of the snapshots kept (with the reasons) and one of
    /// those removed.
    fn text(&self, t: &mut Text) {
        t.info(format!("Applying policy: {}", self.policy));
        for g in self.groups {
            t.info(group_heading(g));
            let (keep, remove): (Vec<&Decision>, Vec<&Decision>) =
                g.decisions.iter().partition(|d| d.keep);
            self.table(t, "keep", &keep, true);
            self.table(t, "remove", &remove, false);
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_pretty(self.groups)
    }
}

/// `snapshots for host "h", paths [/a, /b]:` — only the fields the snapshots are grouped by
/// (restic's wording).
fn group_heading(g: &Group) -> String {
    match group_name(g) {
        None => "all snapshots:".to_string(),
        Some(name) => format!("snapshots for {name}:"),
    }
}

/// `host "h", paths [/a, /b]`: the fields a group's snapshots share, escaped; `None` when the
/// snapshots are not grouped.
pub fn group_name(g: &Group) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(h) = &g.key.host {
        parts.push(format!("host {}", quoted(h)));
    }
    if let Some(p) = &g.key.paths {
        let p: Vec<String> = p.iter().map(|p| escape_controls(p)).collect();
        parts.push(format!("paths [{}]", p.join(", ")));
    }
    if let Some(tags) = &g.key.tags {
        let tags: Vec<String> = tags.iter().map(|t| escape_controls(t)).collect();
        parts.push(format!("tags [{}]", tags.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

impl Decisions<'_> {
    /// `keep N snapshots:` (or `remove`) and their table; nothing when there are none.
    fn table(&self, t: &mut Text, verb: &str, list: &[&Decision], reasons: bool) {
        if list.is_empty() {
            return;
        }
        t.info(format!("{verb} {} snapshots:", list.len()));
        let mut header = vec!["ID", "Time", "Host", "Tags"];
        if reasons {
            header.push("Reasons");
        }
        header.push("Paths");
        let rows: Vec<Vec<String>> = list.iter().map(|d| self.row(d, reasons)).collect();
        for line in super::table::lines(&header, &rows) {
            t.info(line);
        }
    }

    /// One snapshot: short id, local time, host, tags, (reasons,) paths — escaped.
    fn row(&self, d: &Decision, reasons: bool) -> Vec<String> {
        let s = self.snapshots.iter().find(|s| s.id == d.id);
        let mut row = vec![
            d.id.get(..8).unwrap_or(&d.id).to_string(),
            s.map(|s| tresor_core::time::human(s.time, &self.zone))
                .unwrap_or_default(),
            s.map(|s| escape_controls(&s.hostname)).unwrap_or_default(),
            s.map(|s| escape_controls(&s.tags.join(",")))
                .unwrap_or_default(),
        ];
        if reasons {
            row.push(d.reasons.join(", "));
        }
        row.push(
            s.map(|s| escape_controls(&s.paths.join(" ")))
                .unwrap_or_default(),
        );
        row
    }
}

/// `--dry-run`: how many snapshots would go (text only).
#[derive(Debug)]
pub struct DryRun(pub usize);

impl Outcome for DryRun {
    fn text(&self, t: &mut Text) {
        t.info(format!("dry run: {} snapshots would be removed", self.0));
    }

    fn json(&self, _: &mut Text) -> Result<()> {
        Ok(())
    }
}

/// What was removed (text only; the snapshots left under Object Lock are `note:` lines in
/// both modes).
#[derive(Debug)]
pub struct Removed {
    /// Snapshots deleted.
    pub deleted: usize,
    /// Snapshots left in place under Object Lock, with the end of the lock (RFC 3339 UTC).
    pub locked: Vec<(ObjectId, String)>,
    /// `--prune` follows.
    pub pruning: bool,
}

impl Outcome for Removed {
    fn text(&self, t: &mut Text) {
        self.notes(t);
        t.info(if self.pruning {
            format!("removed {} snapshots; pruning", self.deleted)
        } else {
            format!(
                "removed {} snapshots; run `tresor prune` to free their data",
                self.deleted
            )
        });
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        self.notes(t);
        Ok(())
    }
}

impl Removed {
    fn notes(&self, t: &mut Text) {
        for (id, until) in &self.locked {
            t.diag(
                Level::Note,
                format!(
                    "snapshot {} is under the storage's object lock until {until}: not removed \
                     (forget it again after that)",
                    id.short()
                ),
            );
        }
    }
}

/// The note for a snapshot dated in the future, which a policy neither keeps nor removes.
pub fn future_note(id: &ObjectId, time: &str) -> (Level, String) {
    (
        Level::Note,
        format!(
            "snapshot {} is dated {time}, more than a day ahead of this clock: the policy \
             neither keeps nor removes it (forget it by id)",
            id.short()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Mode, Stream, render};
    use tresor_core::retention::{Decision, GroupKey, KeepCount};

    const TEXT: Mode = Mode {
        json: false,
        quiet: false,
    };
    const JSON: Mode = Mode {
        json: true,
        quiet: false,
    };

    #[test]
    fn decisions() {
        let policy = RetentionPolicy {
            keep_last: Some("2".parse::<KeepCount>().unwrap()),
            ..Default::default()
        };
        let (kept, gone) = (
            "0123456789".repeat(6) + "abcd",
            "fedcba9876".repeat(6) + "4321",
        );
        let info = |id: &str, time: &str, host: &str, tags: &[&str]| SnapshotInfo {
            id: id.to_string(),
            time: time.parse().unwrap(),
            hostname: host.into(),
            paths: vec!["/a".into(), "/b".into()],
            tags: tags.iter().map(|t| t.to_string()).collect(),
        };
        let snapshots = vec![
            info(
                &kept,
                "2026-01-02T09:34:05.5Z",
                "a-rather-long-host-name",
                &["x", "y"],
            ),
            info(&gone, "2025-12-31T18:30:00Z", "h\n1", &[]),
        ];
        let groups = vec![Group {
            key: GroupKey {
                host: Some("h1".into()),
                paths: Some(vec!["/a".into(), "/b".into()]),
                tags: None,
            },
            decisions: vec![
                Decision {
                    id: kept.clone(),
                    keep: true,
                    reasons: vec!["last snapshot".into(), "daily snapshot".into()],
                },
                Decision {
                    id: gone.clone(),
                    keep: false,
                    reasons: vec![],
                },
            ],
        }];
        let o = Decisions {
            policy: &policy,
            groups: &groups,
            snapshots: &snapshots,
            zone: jiff::tz::TimeZone::posix("IST-5:30").unwrap(),
        };
        let t = render(&o, TEXT).unwrap();
        assert_eq!(
            t.stream(Stream::Out),
            format!(
                "Applying policy: {policy}\n\
                 snapshots for host \"h1\", paths [/a, /b]:\n\
                 keep 1 snapshots:\n\
                 ID        Time                 Host                     Tags  Reasons                        Paths\n\
                 01234567  2026-01-02 15:04:05  a-rather-long-host-name  x,y   last snapshot, daily snapshot  /a /b\n\
                 remove 1 snapshots:\n\
                 ID        Time                 Host  Tags  Paths\n\
                 fedcba98  2026-01-01 00:00:00  h\\n1        /a /b\n"
            )
        );
        let j = render(&o, JSON).unwrap();
        assert_eq!(
            j.stream(Stream::Out),
            serde_json::to_string_pretty(&groups).unwrap() + "\n"
        );
    }

    #[test]
    fn removed_and_notes() {
        let o = Removed {
            deleted: 2,
            locked: vec![(ObjectId([0x11; 32]), "2030-01-01T00:00:00Z".into())],
            pruning: false,
        };
        let note = "note: snapshot 11111111 is under the storage's object lock until \
                    2030-01-01T00:00:00Z: not removed (forget it again after that)\n";
        let t = render(&o, TEXT).unwrap();
        assert_eq!(t.stream(Stream::Err), note);
        assert_eq!(
            t.stream(Stream::Out),
            "removed 2 snapshots; run `tresor prune` to free their data\n"
        );
        let j = render(&o, JSON).unwrap();
        assert_eq!(
            (
                j.stream(Stream::Err).as_str(),
                j.stream(Stream::Out).as_str()
            ),
            (note, "")
        );
        let ids = [ObjectId([0x22; 32])];
        assert_eq!(
            render(&ByIds(&ids), TEXT).unwrap().stream(Stream::Out),
            "remove 22222222\n"
        );
        assert_eq!(render(&ByIds(&ids), JSON).unwrap().stream(Stream::Out), "");
        let (level, text) = future_note(&ids[0], "2999-01-01 00:00:00");
        assert_eq!(level, Level::Note);
        assert_eq!(
            text,
            "snapshot 22222222 is dated 2999-01-01 00:00:00, more than a day ahead of this \
             clock: the policy neither keeps nor removes it (forget it by id)"
        );
    }
}
