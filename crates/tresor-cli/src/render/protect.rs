//! `protect`: one line per snapshot and the totals; `protect --list`; the lock extension line
//! of `backup` (JSON: `docs/cli.md`, "protect").

use super::{Outcome, Text, quoted};
use anyhow::Result;
use serde::Serialize;
use std::time::SystemTime;
use tresor_core::protect::Extended;
use tresor_core::repo::rfc3339_utc;
use tresor_format::ObjectId;

/// What `protect` did for one snapshot (`snapshot` set) or for all (the totals).
#[derive(Debug, Serialize)]
pub struct SnapshotLine {
    /// `"protect_snapshot"` or `"protect_summary"`.
    pub message_type: &'static str,
    /// The snapshot (absent in the totals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The retain-until date asked for (RFC 3339, UTC).
    pub until: String,
    /// Objects the snapshot needs (totals: summed over the snapshots).
    pub objects: usize,
    /// Objects whose retention was extended (with `--dry-run`: would be).
    pub extended: usize,
    /// Objects already retained until the date (or handled for an earlier snapshot).
    pub already_covered: usize,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

impl SnapshotLine {
    /// The line of `snapshot` (`None`: the totals).
    pub fn new(snapshot: Option<ObjectId>, e: &Extended, until: SystemTime, dry_run: bool) -> Self {
        SnapshotLine {
            message_type: if snapshot.is_some() {
                "protect_snapshot"
            } else {
                "protect_summary"
            },
            snapshot: snapshot.map(|s| s.to_hex()),
            until: rfc3339_utc(until),
            objects: e.objects,
            extended: e.extended,
            already_covered: e.covered,
            dry_run,
        }
    }
}

impl Outcome for SnapshotLine {
    fn text(&self, t: &mut Text) {
        let verb = if self.dry_run {
            "would extend"
        } else {
            "extended"
        };
        let head = match &self.snapshot {
            Some(s) => format!("snapshot {}", &s[..8]),
            None => "total".to_string(),
        };
        t.out(format!(
            "{head}: {} objects, {verb} {} to {}, {} already covered",
            self.objects, self.extended, self.until, self.already_covered
        ));
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}

/// `protect --list`: snapshots whose snapshot object is retained, and until when.
#[derive(Debug)]
pub struct Listed {
    /// Snapshot, its host, its snapshot object's retain-until date.
    pub rows: Vec<(ObjectId, String, SystemTime)>,
}

/// One row of `protect --list --json`.
#[derive(Debug, Serialize)]
struct ListedRow {
    id: String,
    hostname: String,
    protected_until: String,
}

impl Outcome for Listed {
    fn text(&self, t: &mut Text) {
        if self.rows.is_empty() {
            t.info("no protected snapshots");
        }
        for (id, host, until) in &self.rows {
            t.out(format!(
                "{}  {}  protected until {}",
                id.short(),
                quoted(host),
                rfc3339_utc(*until)
            ));
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        let rows: Vec<ListedRow> = self
            .rows
            .iter()
            .map(|(id, host, until)| ListedRow {
                id: id.to_hex(),
                hostname: host.clone(),
                protected_until: rfc3339_utc(*until),
            })
            .collect();
        t.json_pretty(&rows)
    }
}

/// Lock extension after a backup.
#[derive(Debug)]
pub struct ExtendLine {
    /// What was done.
    pub extended: Extended,
    /// The cap on requests.
    pub max: usize,
}

/// `backup`'s lock extension in JSON.
#[derive(Debug, Serialize)]
struct ExtendJson {
    message_type: &'static str,
    objects: usize,
    extended: usize,
    already_covered: usize,
    left: usize,
}

impl Outcome for ExtendLine {
    fn text(&self, t: &mut Text) {
        let e = &self.extended;
        t.info(format!(
            "lock extension: {} objects, {} extended, {} already covered",
            e.objects, e.extended, e.covered
        ));
        if e.left > 0 {
            t.err(format!(
                "lock extension: {} objects left for the next run (--extend-locks-max {} reached)",
                e.left, self.max
            ));
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        let e = &self.extended;
        t.json_line(&ExtendJson {
            message_type: "extend_locks",
            objects: e.objects,
            extended: e.extended,
            already_covered: e.covered,
            left: e.left,
        })
    }
}
