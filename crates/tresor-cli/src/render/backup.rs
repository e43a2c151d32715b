//! `backup`: the summary of a backup run.

use super::{Level, Outcome, Text, seconds};
use crate::output::{bytes, duration};
use anyhow::Result;
use serde::Serialize;
use std::time::Duration;
use tresor_core::archiver::BackupResult;
use tresor_format::ObjectId;

/// What a backup did (JSON: `docs/cli.md`, "backup").
#[derive(Debug, Serialize)]
pub struct BackupSummary<'a> {
    /// Always `"summary"`.
    pub message_type: &'static str,
    /// The new snapshot, `None` in a dry run.
    pub snapshot_id: Option<ObjectId>,
    /// The parent snapshot used.
    pub parent: Option<ObjectId>,
    /// Nothing was written.
    pub dry_run: bool,
    /// Files (non-directory entries) not in the parent.
    pub files_new: u64,
    /// Files whose metadata changed since the parent (read again).
    pub files_changed: u64,
    /// Files unchanged since the parent (not read).
    pub files_unmodified: u64,
    /// Files of the parent no longer present.
    pub files_deleted: u64,
    /// Directories not in the parent.
    pub dirs_new: u64,
    /// Directories whose listing or metadata changed.
    pub dirs_changed: u64,
    /// Directories unchanged.
    pub dirs_unmodified: u64,
    /// Non-directory entries in the snapshot.
    pub total_files_processed: u64,
    /// Sum of the file sizes in the snapshot, bytes.
    pub total_bytes_processed: u64,
    /// Bytes read from source files in this run.
    pub bytes_read: u64,
    /// Bytes written to the repository (after dedup, compression, encryption).
    pub data_added: u64,
    /// Data blobs added.
    pub data_blobs: u64,
    /// Tree blobs added.
    pub tree_blobs: u64,
    /// Wall time, seconds.
    #[serde(serialize_with = "seconds")]
    pub total_duration: Duration,
    /// Source entries that could not be read.
    pub errors: u64,
    /// One line per unreadable entry (`PATH: reason`).
    pub error_list: &'a [String],
    /// Repository problems that lost no source data (e.g. a start marker not written).
    pub notices: &'a [String],
}

impl<'a> From<&'a BackupResult> for BackupSummary<'a> {
    fn from(r: &'a BackupResult) -> Self {
        let s = &r.summary;
        BackupSummary {
            message_type: "summary",
            snapshot_id: r.snapshot_id,
            parent: r.parent,
            dry_run: r.snapshot_id.is_none(),
            files_new: s.files_new,
            files_changed: s.files_changed,
            files_unmodified: s.files_unmodified,
            files_deleted: s.files_deleted,
            dirs_new: s.dirs_new,
            dirs_changed: s.dirs_changed,
            dirs_unmodified: s.dirs_unmodified,
            total_files_processed: s.total_files_processed,
            total_bytes_processed: s.total_bytes_processed,
            bytes_read: s.bytes_read,
            data_added: s.data_added,
            data_blobs: s.data_blobs,
            tree_blobs: s.tree_blobs,
            total_duration: r.elapsed,
            errors: s.errors,
            error_list: &r.warnings,
            notices: &r.notices,
        }
    }
}

impl Outcome for BackupSummary<'_> {
    fn text(&self, t: &mut Text) {
        for w in self.notices.iter().chain(self.error_list) {
            t.diag(Level::Warning, w);
        }
        for line in self.count_lines() {
            t.info(line);
        }
        let processed = [
            format!("{} files", self.total_files_processed),
            bytes(self.total_bytes_processed),
        ];
        let added = [
            format!("{} to the repository", bytes(self.data_added)),
            format!("{} data blobs", self.data_blobs),
            format!("{} tree blobs", self.tree_blobs),
        ];
        let lines = (wrapped("Processed:", &processed).into_iter())
            .chain(wrapped("Read:", &[bytes(self.bytes_read)]))
            .chain(wrapped(
                if self.dry_run { "Would add:" } else { "Added:" },
                &added,
            ));
        for line in lines {
            t.info(line);
        }
        t.info(format!("Elapsed:     {}", duration(self.total_duration)));
        t.info(format!("Errors:      {}", self.errors));
        t.info(match self.snapshot_id {
            Some(id) => format!("snapshot {} saved", id.short()),
            None => "dry run: nothing was written".to_string(),
        });
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}

impl BackupSummary<'_> {
    /// `Files:` and `Directories:`, their numbers aligned in columns as wide as the larger of
    /// the two, wrapped to [`WIDTH`].
    fn count_lines(&self) -> Vec<String> {
        let files = [
            self.files_new,
            self.files_changed,
            self.files_unmodified,
            self.files_deleted,
        ];
        let dirs = [self.dirs_new, self.dirs_changed, self.dirs_unmodified];
        let digits = |n: u64| n.to_string().len();
        let width = |i: usize| digits(files[i]).max(dirs.get(i).copied().map_or(0, digits));
        let words = ["new", "changed", "unmodified", "deleted"];
        let parts = |counts: &[u64]| -> Vec<String> {
            (counts.iter().enumerate())
                .map(|(i, n)| format!("{n:>w$} {}", words[i], w = width(i)))
                .collect()
        };
        let mut lines = wrapped("Files:", &parts(&files));
        lines.extend(wrapped("Directories:", &parts(&dirs)));
        lines
    }
}

/// The text summary fits a terminal this wide.
const WIDTH: usize = 80;

/// The width of the labels (`Directories: `).
const LABEL: usize = 13;

/// `label` padded to [`LABEL`], then `parts` separated by `, `, wrapped to [`WIDTH`] columns
/// (continuation lines indented under the first part). Any part up to 33 characters fits.
fn wrapped(label: &str, parts: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = format!("{label:<LABEL$}");
    let mut empty = true;
    for (i, p) in parts.iter().enumerate() {
        let piece = if i + 1 < parts.len() {
            format!("{p},")
        } else {
            p.clone()
        };
        if !empty && line.chars().count() + 1 + piece.chars().count() > WIDTH {
            lines.push(std::mem::replace(&mut line, " ".repeat(LABEL)));
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(&piece);
        empty = false;
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Mode, Stream, render};

    fn result() -> BackupResult {
        let mut r = BackupResult {
            snapshot_id: Some(ObjectId([0xab; 32])),
            parent: None,
            summary: Default::default(),
            warnings: vec!["/src/x: permission denied".into()],
            notices: vec!["marker not written".into()],
            elapsed: Duration::from_millis(61_250),
        };
        r.summary.files_new = 3;
        r.summary.total_bytes_processed = 1536;
        r.summary.errors = 1;
        r
    }

    #[test]
    fn text() {
        let r = result();
        let t = render(
            &BackupSummary::from(&r),
            Mode {
                json: false,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(
            t.stream(Stream::Err),
            "warning: marker not written\nwarning: /src/x: permission denied\n"
        );
        assert_eq!(
            t.stream(Stream::Out),
            "Files:       3 new, 0 changed, 0 unmodified, 0 deleted\n\
             Directories: 0 new, 0 changed, 0 unmodified\n\
             Processed:   0 files, 1.50 KiB\n\
             Read:        0 B\n\
             Added:       0 B to the repository, 0 data blobs, 0 tree blobs\n\
             Elapsed:     1:01.2\n\
             Errors:      1\n\
             snapshot abababab saved\n"
        );
        let q = render(
            &BackupSummary::from(&r),
            Mode {
                json: false,
                quiet: true,
            },
        )
        .unwrap();
        assert_eq!(q.stream(Stream::Out), "");
        assert_eq!(q.stream(Stream::Err), t.stream(Stream::Err));
    }

    /// A dry run says what it would add, as restic does ("Would add"), and that nothing was
    /// written.
    #[test]
    fn dry_run_text() {
        let mut r = result();
        r.snapshot_id = None;
        let mode = Mode {
            json: false,
            quiet: false,
        };
        let t = render(&BackupSummary::from(&r), mode).unwrap();
        let out = t.stream(Stream::Out);
        assert!(
            out.contains("\nWould add:   0 B to the repository, 0 data blobs, 0 tree blobs\n"),
            "{out}"
        );
        assert!(out.ends_with("dry run: nothing was written\n"), "{out}");
    }

    #[test]
    fn fits_80_columns_with_long_numbers() {
        let mut r = result();
        let s = &mut r.summary;
        (s.files_new, s.files_changed, s.files_unmodified) = (12_345_678_901, 7, u64::MAX);
        (s.files_deleted, s.dirs_new, s.dirs_changed) = (123_456, 98_765_432_109, 0);
        (s.total_files_processed, s.total_bytes_processed) = (u64::MAX, u64::MAX);
        (s.bytes_read, s.data_added) = (u64::MAX, 5 << 40);
        (s.data_blobs, s.tree_blobs) = (u64::MAX, 1_234_567_890_123);
        let quiet = Mode {
            json: false,
            quiet: false,
        };
        let out = render(&BackupSummary::from(&r), quiet)
            .unwrap()
            .stream(Stream::Out);
        assert!(out.lines().all(|l| l.chars().count() <= 80), "{out}");
        assert_eq!(
            out.lines().take(6).collect::<Vec<_>>(),
            [
                "Files:       12345678901 new, 7 changed, 18446744073709551615 unmodified,",
                "             123456 deleted",
                "Directories: 98765432109 new, 0 changed,                    0 unmodified",
                "Processed:   18446744073709551615 files, 16384.00 PiB",
                "Read:        16384.00 PiB",
                "Added:       5.00 TiB to the repository, 18446744073709551615 data blobs,",
            ]
        );
    }

    #[test]
    fn json() {
        let r = result();
        let t = render(
            &BackupSummary::from(&r),
            Mode {
                json: true,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(t.stream(Stream::Err), "");
        let v: serde_json::Value = serde_json::from_str(&t.stream(Stream::Out)).unwrap();
        assert_eq!(v["snapshot_id"], "ab".repeat(32));
        assert_eq!(v["parent"], serde_json::Value::Null);
        assert_eq!(v["dry_run"], false);
        assert_eq!(v["files_new"], 3);
        assert_eq!(v["total_duration"], 61.25);
        assert_eq!(v["error_list"][0], "/src/x: permission denied");
        assert_eq!(v["notices"][0], "marker not written");
    }
}
