//! `copy`: one line per selected snapshot, then what was written.

use super::{Outcome, Text};
use crate::output;
use anyhow::Result;
use serde::Serialize;
use tresor_core::copy::CopyReport;
use tresor_format::ObjectId;
use tresor_format::snapshot::Snapshot;

/// One selected snapshot (JSON: `docs/cli.md`, "copy").
#[derive(Debug, Serialize)]
pub struct CopiedLine {
    /// The snapshot in the source repository.
    pub source: String,
    /// Its copy in the target (written now, or found there); `null` when a put-only target's
    /// local record says it was copied before.
    pub target: Option<String>,
    /// Whether this run wrote the copy.
    pub copied: bool,
    /// The snapshot's time, host and paths (text only).
    #[serde(skip)]
    pub about: String,
}

/// What `copy` did.
#[derive(Debug, Serialize)]
pub struct Copied {
    /// Always `"summary"`.
    pub message_type: &'static str,
    /// One entry per selected snapshot, oldest first.
    pub snapshots: Vec<CopiedLine>,
    /// Snapshots written.
    pub copied: u64,
    /// Snapshots the target had already (skipped).
    pub skipped: u64,
    /// Data blobs stored in the target.
    pub data_blobs: u64,
    /// Tree blobs stored in the target.
    pub tree_blobs: u64,
    /// Bytes of data blobs read from the source (plaintext).
    pub bytes_read: u64,
    /// Bytes written to the target (packs, index objects, snapshots).
    pub bytes_written: u64,
    /// Objects written to the target (packs, index objects, snapshots).
    pub objects_written: u64,
}

impl Copied {
    /// The outcome of copying `selected` as `r` reports.
    pub fn new(r: &CopyReport, selected: &[(ObjectId, Snapshot)]) -> Self {
        let about = |id: &ObjectId| {
            selected
                .iter()
                .find(|(i, _)| i == id)
                .map(|(_, s)| format!("{} {} {}", s.time, s.hostname, s.paths.join(" ")))
                .unwrap_or_default()
        };
        let snapshots: Vec<CopiedLine> = r
            .snapshots
            .iter()
            .map(|s| CopiedLine {
                source: s.source.to_hex(),
                target: s.target.map(|t| t.to_hex()),
                copied: s.written,
                about: about(&s.source),
            })
            .collect();
        let copied = snapshots.iter().filter(|s| s.copied).count() as u64;
        Copied {
            message_type: "summary",
            skipped: snapshots.len() as u64 - copied,
            snapshots,
            copied,
            data_blobs: r.data_blobs,
            tree_blobs: r.tree_blobs,
            bytes_read: r.bytes_read,
            bytes_written: r.bytes_written,
            objects_written: r.objects_written,
        }
    }
}

fn short(hex: &str) -> &str {
    hex.get(..8).unwrap_or(hex)
}

impl Outcome for Copied {
    fn text(&self, t: &mut Text) {
        for s in &self.snapshots {
            let target = s.target.as_deref().map(short);
            let what = match (s.copied, target) {
                (true, Some(t)) => format!("copied as {t}"),
                (_, Some(t)) => format!("skipped, the target has it as {t}"),
                (_, None) => "skipped, copied before (local record)".to_string(),
            };
            t.out(format!(
                "snapshot {} ({}): {what}",
                short(&s.source),
                super::escape_controls(&s.about)
            ));
        }
        t.out(format!(
            "{} snapshots copied, {} skipped; {} data blobs and {} tree blobs stored, {} read, {} written",
            self.copied,
            self.skipped,
            self.data_blobs,
            self.tree_blobs,
            output::bytes(self.bytes_read),
            output::bytes(self.bytes_written)
        ));
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}
