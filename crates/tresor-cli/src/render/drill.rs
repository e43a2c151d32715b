//! `drill`: the report of one drill, and `drill --history` (JSON: `docs/cli.md`, "drill").

use super::{Level, Outcome, Text};
use crate::output::bytes;
use anyhow::Result;
use serde::Serialize;
use tresor_core::drill::estimate::Estimate;
use tresor_core::drill::record::{self, Coverage, Trusted};
use tresor_core::drill::{DrillOutcome, Mismatch, SourceCompare};
use tresor_core::repo::index::Index;
use tresor_format::ObjectId;
use tresor_format::drill::DrillResult;

/// The report of one drill.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// Always `"drill"`.
    pub message_type: &'static str,
    /// `passed` or `failed`.
    pub result: DrillResult,
    /// Snapshots sampled from (ids).
    pub snapshots: Vec<String>,
    /// Files and symlinks in them.
    pub candidates: u64,
    /// Files restored.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Restore wall time, seconds.
    pub seconds: f64,
    /// Bytes per second.
    pub bytes_per_sec: f64,
    /// Files per second.
    pub files_per_sec: f64,
    /// Packs this drill covered.
    pub packs: usize,
    /// Every mismatch.
    pub mismatches: &'a [Mismatch],
    /// `--compare-source` counts.
    pub source: &'a SourceCompare,
    /// Coverage after this drill.
    pub coverage: &'a Coverage,
    /// The drill record written, or `null`.
    pub record: Option<String>,
    /// Why the record could not be written, or `null`.
    pub record_error: Option<&'a str>,
    /// Drill records ignored (not signed by a full key, or garbage).
    pub ignored_records: u64,
    /// Per snapshot.
    pub estimates: &'a [Estimate],
    /// Per host.
    pub hosts: &'a [Estimate],
}

impl<'a> Report<'a> {
    /// The report of `o`.
    pub fn new(o: &'a DrillOutcome) -> Self {
        let t = &o.throughput;
        Report {
            message_type: "drill",
            result: o.result,
            snapshots: o.snapshots.iter().map(ObjectId::to_hex).collect(),
            candidates: o.candidates,
            files: t.files,
            bytes: t.bytes,
            seconds: t.seconds,
            bytes_per_sec: t.bytes_per_sec(),
            files_per_sec: t.files_per_sec(),
            packs: o.packs.len(),
            mismatches: &o.mismatches,
            source: &o.source,
            coverage: &o.coverage,
            record: o.record.as_ref().ok().map(ObjectId::to_hex),
            record_error: o.record.as_ref().err().map(String::as_str),
            ignored_records: o.ignored_records,
            estimates: &o.estimates,
            hosts: &o.hosts,
        }
    }
}

fn secs(s: Option<f64>) -> String {
    match s {
        Some(s) => crate::output::duration(std::time::Duration::from_secs_f64(s.max(0.0))),
        None => "unknown (nothing measured)".into(),
    }
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

impl Outcome for Report<'_> {
    fn text(&self, t: &mut Text) {
        t.out(format!(
            "drilled {} files, {} from {} snapshot(s) ({} candidates) in {:.2} s: {}/s, {:.1} files/s",
            self.files,
            bytes(self.bytes),
            self.snapshots.len(),
            self.candidates,
            self.seconds,
            bytes(self.bytes_per_sec as u64),
            self.files_per_sec
        ));
        for m in self.mismatches {
            let kind = serde_json::to_value(m.kind).unwrap_or_default();
            let kind = kind.as_str().unwrap_or("");
            t.diag(
                Level::Error,
                format!(
                    "{} (snapshot {}): {kind}: {}",
                    m.path,
                    m.snapshot.short(),
                    m.detail
                ),
            );
        }
        let s = self.source;
        if s.compared + s.skipped + s.missing > 0 {
            t.out(format!(
                "source: {} compared, {} skipped (size or mtime changed since the snapshot), {} missing",
                s.compared, s.skipped, s.missing
            ));
        }
        let c = self.coverage;
        t.out(format!(
            "coverage: packs {}/{} ({}), snapshots drilled {}/{} ({})",
            c.packs_covered,
            c.packs_total,
            pct(c.packs_share),
            c.snapshots_drilled,
            c.snapshots_total,
            pct(c.snapshots_share)
        ));
        for e in self.estimates.iter().chain(self.hosts) {
            let what = match e.snapshot {
                Some(id) => format!("snapshot {}", id.short()),
                None => format!(
                    "host {}",
                    tresor_format::tree::display_bytes(e.host.as_bytes())
                ),
            };
            let thaw = e.thaw_seconds.map_or(String::new(), |w| {
                format!(" after a thaw of typically up to {}", secs(Some(w)))
            });
            t.out(format!(
                "estimate: {what}: {} files, {}: {}{thaw}",
                e.files,
                bytes(e.bytes),
                secs(e.seconds)
            ));
        }
        if let Some(e) = self.record_error {
            t.diag(Level::Warning, format!("drill record not written: {e}"));
        }
        if self.ignored_records > 0 {
            t.diag(
                Level::Note,
                format!(
                    "{} drill record(s) ignored: not signed by a full key, or damaged",
                    self.ignored_records
                ),
            );
        }
        t.out(match self.result {
            DrillResult::Passed => "drill passed".to_string(),
            DrillResult::Failed => format!("drill FAILED: {} mismatch(es)", self.mismatches.len()),
        });
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}

/// One past drill.
#[derive(Debug, Serialize)]
pub struct Past {
    /// The record's id.
    pub id: String,
    /// When it ended.
    pub time: String,
    /// Host that ran it.
    pub hostname: String,
    /// Key file id that ran it.
    pub key: String,
    /// Snapshots drilled.
    pub snapshots: usize,
    /// Files restored.
    pub files: u64,
    /// Bytes restored.
    pub bytes: u64,
    /// `passed` or `failed`.
    pub result: DrillResult,
    /// Mismatches.
    pub mismatches: u64,
    /// Bytes per second.
    pub bytes_per_sec: f64,
    /// Files per second.
    pub files_per_sec: f64,
    /// Share of the index's packs covered by this drill and the ones before it, 0–1.
    pub coverage: f64,
}

/// `drill --history`.
#[derive(Debug, Serialize)]
pub struct History {
    /// Always `"drill_history"`.
    pub message_type: &'static str,
    /// Past drills, oldest first.
    pub drills: Vec<Past>,
    /// Coverage now.
    pub coverage: Coverage,
    /// Drill records ignored.
    pub ignored_records: u64,
}

impl History {
    /// The history of `records` over `index` and the snapshots `present`.
    pub fn new(index: &Index, records: &[Trusted], present: &[ObjectId], ignored: u64) -> Self {
        let drills = (0..records.len())
            .map(|i| {
                let (id, r) = &records[i];
                Past {
                    id: id.to_hex(),
                    time: r.time.clone(),
                    hostname: r.hostname.clone(),
                    key: r.key.to_hex(),
                    snapshots: r.snapshots.len(),
                    files: r.files,
                    bytes: r.bytes,
                    result: r.result,
                    mismatches: r.mismatches,
                    bytes_per_sec: r.bytes_per_sec,
                    files_per_sec: r.files_per_sec,
                    coverage: record::coverage(index, &records[..=i], present).packs_share,
                }
            })
            .collect();
        History {
            message_type: "drill_history",
            drills,
            coverage: record::coverage(index, records, present),
            ignored_records: ignored,
        }
    }
}

impl Outcome for History {
    fn text(&self, t: &mut Text) {
        if self.drills.is_empty() {
            t.out("no drills yet");
        }
        let zone = tresor_core::time::local_zone();
        for d in &self.drills {
            let time = tresor_core::time::human_recorded(&d.time, &zone)
                .unwrap_or_else(|| tresor_format::tree::display_bytes(d.time.as_bytes()));
            let result = match d.result {
                DrillResult::Passed => "passed".to_string(),
                DrillResult::Failed => format!("FAILED ({})", d.mismatches),
            };
            t.out(format!(
                "{time}  {}  key {}  {}  {} files  {}  {}/s  coverage {}",
                &d.id[..8],
                &d.key[..8],
                tresor_format::tree::display_bytes(d.hostname.as_bytes()),
                d.files,
                bytes(d.bytes),
                bytes(d.bytes_per_sec as u64),
                pct(d.coverage),
            ));
            t.out(format!("    {result}"));
        }
        let c = &self.coverage;
        t.out(format!(
            "coverage: packs {}/{} ({}), snapshots drilled {}/{} ({})",
            c.packs_covered,
            c.packs_total,
            pct(c.packs_share),
            c.snapshots_drilled,
            c.snapshots_total,
            pct(c.snapshots_share)
        ));
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}
