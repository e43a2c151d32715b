//! `forget`: the snapshots chosen (by id or by a policy's decisions) and what was removed.

use super::{Level, Outcome, Text};
use anyhow::Result;
use tresor_core::retention::{Group, RetentionPolicy};
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
}

impl Outcome for Decisions<'_> {
    fn text(&self, t: &mut Text) {
        t.info(format!("Applying policy: {}", self.policy));
        for g in self.groups {
            // Only the fields the snapshots are grouped by (restic's wording).
            let mut parts = Vec::new();
            if let Some(h) = &g.key.host {
                parts.push(format!("host {h:?}"));
            }
            if let Some(p) = &g.key.paths {
                parts.push(format!("paths [{}]", p.join(", ")));
            }
            if let Some(tags) = &g.key.tags {
                parts.push(format!("tags [{}]", tags.join(", ")));
            }
            if parts.is_empty() {
                t.info("all snapshots:");
            } else {
                t.info(format!("snapshots for {}:", parts.join(", ")));
            }
            for d in &g.decisions {
                let verdict = if d.keep {
                    format!("keep    ({})", d.reasons.join(", "))
                } else {
                    "remove".to_string()
                };
                t.info(format!("  {} {verdict}", d.id.get(..8).unwrap_or(&d.id)));
            }
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_pretty(self.groups)
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
            "snapshot {} is dated {time:?}, more than a day ahead of this clock: the policy \
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
        let groups = vec![Group {
            key: GroupKey {
                host: Some("h1".into()),
                paths: Some(vec!["/a".into(), "/b".into()]),
                tags: None,
            },
            decisions: vec![
                Decision {
                    id: "0123456789".repeat(6) + "abcd",
                    keep: true,
                    reasons: vec!["last snapshot".into()],
                },
                Decision {
                    id: "fedcba9876".repeat(6) + "4321",
                    keep: false,
                    reasons: vec![],
                },
            ],
        }];
        let o = Decisions {
            policy: &policy,
            groups: &groups,
        };
        let t = render(&o, TEXT).unwrap();
        assert_eq!(
            t.stream(Stream::Out),
            format!(
                "Applying policy: {policy}\nsnapshots for host \"h1\", paths [/a, /b]:\n  \
                 01234567 keep    (last snapshot)\n  fedcba98 remove\n"
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
        let (level, text) = future_note(&ids[0], "2999-01-01T00:00:00Z");
        assert_eq!(level, Level::Note);
        assert_eq!(
            text,
            "snapshot 22222222 is dated \"2999-01-01T00:00:00Z\", more than a day ahead of this \
             clock: the policy neither keeps nor removes it (forget it by id)"
        );
    }
}
