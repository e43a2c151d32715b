//! `tag`: each replaced snapshot (`old -> new`) and a summary.

use super::{Level, Outcome, Text};
use anyhow::Result;
use serde::Serialize;
use tresor_core::edit::tag::Replaced;
use tresor_core::forget::Removed;
use tresor_format::ObjectId;

/// One replaced snapshot (JSON: `docs/cli.md`, "tag"), restic's `changed` message.
#[derive(Debug, Serialize)]
struct Changed {
    message_type: &'static str,
    old_snapshot_id: ObjectId,
    new_snapshot_id: Option<ObjectId>,
    forgotten: bool,
}

/// The summary document.
#[derive(Debug, Serialize)]
struct Summary {
    message_type: &'static str,
    changed_snapshots: usize,
    /// Old snapshots kept under an Object Lock.
    locked: Vec<Locked>,
}

/// An old snapshot the storage keeps under an Object Lock: left as it is.
#[derive(Debug, Serialize)]
pub struct Locked {
    /// The snapshot.
    pub snapshot: ObjectId,
    /// When the lock ends (local time).
    pub until: String,
}

/// The locked snapshots of `locked`, for showing.
pub fn locked(locked: &[(ObjectId, std::time::SystemTime)]) -> Vec<Locked> {
    (locked.iter())
        .map(|(id, until)| Locked {
            snapshot: *id,
            until: tresor_core::time::human_system(*until),
        })
        .collect()
}

/// What `tag` did.
pub struct Tagged {
    changed: Vec<Changed>,
    summary: Summary,
}

impl Tagged {
    /// The outcome of snapshots `replaced` and the deletion `removed`.
    pub fn new(replaced: &[Replaced], removed: &Removed) -> Self {
        let changed: Vec<Changed> = (replaced.iter())
            .map(|r| Changed {
                message_type: "changed",
                old_snapshot_id: r.old,
                new_snapshot_id: r.new,
                forgotten: r.forgotten,
            })
            .collect();
        let locked = locked(&removed.locked);
        Tagged {
            summary: Summary {
                message_type: "summary",
                changed_snapshots: changed.len(),
                locked,
            },
            changed,
        }
    }
}

/// The notes of snapshots kept under an Object Lock (the same in text and JSON).
pub fn locked_notes(t: &mut Text, locked: &[Locked]) {
    for Locked {
        snapshot: id,
        until,
    } in locked
    {
        t.diag(
            Level::Note,
            format!(
                "snapshot {} is under the storage's object lock until {until}: left as it is",
                id.short()
            ),
        );
    }
}

impl Outcome for Tagged {
    fn text(&self, t: &mut Text) {
        for c in &self.changed {
            let new = c.new_snapshot_id.map(|i| i.to_hex()).unwrap_or_default();
            t.out(format!("{} -> {new}", c.old_snapshot_id));
        }
        locked_notes(t, &self.summary.locked);
        t.info(format!(
            "modified {} snapshot(s)",
            self.summary.changed_snapshots
        ));
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        for c in &self.changed {
            t.json_line(c)?;
        }
        locked_notes(t, &self.summary.locked);
        t.json_line(&self.summary)
    }
}
