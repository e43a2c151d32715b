//! `diff`: one line per change, then the summary (restic's layout and JSON).

use super::{Outcome, Text};
use anyhow::Result;
use serde::Serialize;
use tresor_core::diff::{Counts, Modifier, Stats};
use tresor_format::ObjectId;
use tresor_format::tree::display_bytes;

/// The line before the changes (text only, left out with `--quiet`).
#[derive(Debug)]
pub struct Heading {
    /// The first snapshot.
    pub before: ObjectId,
    /// The second snapshot.
    pub after: ObjectId,
}

impl Outcome for Heading {
    fn text(&self, t: &mut Text) {
        t.info(format!(
            "comparing snapshot {} to {}:",
            self.before.short(),
            self.after.short()
        ));
        t.info("");
    }

    fn json(&self, _: &mut Text) -> Result<()> {
        Ok(())
    }
}

/// One change (JSON: `docs/cli.md`, "diff": one object per line).
#[derive(Debug, Serialize)]
pub struct ChangeLine<'a> {
    /// Always `"change"`.
    pub message_type: &'static str,
    /// The path below the compared directories (bytes that are not UTF-8 replaced); a
    /// directory ends with `/`.
    pub path: String,
    /// The path's bytes in hex, when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// `+`, `-`, `M`, `T` or `U`.
    pub modifier: &'static str,
    /// The path's bytes, shown by the display rule in text.
    #[serde(skip)]
    pub raw_path: &'a [u8],
}

impl<'a> ChangeLine<'a> {
    /// The line of a change of `path`.
    pub fn new(path: &'a [u8], modifier: Modifier) -> Self {
        ChangeLine {
            message_type: "change",
            path: String::from_utf8_lossy(path).into_owned(),
            path_hex: std::str::from_utf8(path)
                .is_err()
                .then(|| hex::encode(path)),
            modifier: modifier.marker(),
            raw_path: path,
        }
    }
}

impl Outcome for ChangeLine<'_> {
    fn text(&self, t: &mut Text) {
        t.out(format!(
            "{:<5}{}",
            self.modifier,
            display_bytes(self.raw_path)
        ));
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}

/// The summary (JSON: restic's `statistics` object).
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Always `"statistics"`.
    pub message_type: &'static str,
    /// The first snapshot's id.
    pub source_snapshot: String,
    /// The second snapshot's id.
    pub target_snapshot: String,
    /// Files whose content changed.
    pub changed_files: u64,
    /// What the second snapshot adds.
    pub added: Counts,
    /// What the second snapshot no longer has.
    pub removed: Counts,
}

impl Summary {
    /// The summary of a diff of `before` to `after`.
    pub fn new(before: ObjectId, after: ObjectId, s: &Stats) -> Self {
        Summary {
            message_type: "statistics",
            source_snapshot: before.to_hex(),
            target_snapshot: after.to_hex(),
            changed_files: s.changed_files,
            added: s.added,
            removed: s.removed,
        }
    }
}

impl Outcome for Summary {
    fn text(&self, t: &mut Text) {
        let (a, r) = (&self.added, &self.removed);
        t.out("");
        t.out(format!(
            "Files:       {:5} new, {:5} removed, {:5} changed",
            a.files, r.files, self.changed_files
        ));
        t.out(format!(
            "Dirs:        {:5} new, {:5} removed",
            a.dirs, r.dirs
        ));
        t.out(format!(
            "Others:      {:5} new, {:5} removed",
            a.others, r.others
        ));
        t.out(format!(
            "Data Blobs:  {:5} new, {:5} removed",
            a.data_blobs, r.data_blobs
        ));
        t.out(format!(
            "Tree Blobs:  {:5} new, {:5} removed",
            a.tree_blobs, r.tree_blobs
        ));
        t.out(format!("  Added:   {}", crate::output::bytes(a.bytes)));
        t.out(format!("  Removed: {}", crate::output::bytes(r.bytes)));
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Mode, Stream, render};

    const TEXT: Mode = Mode {
        json: false,
        quiet: false,
    };
    const JSON: Mode = Mode {
        json: true,
        quiet: false,
    };

    #[test]
    fn change_lines() {
        let c = ChangeLine::new(b"/d/a\xff\n/", Modifier::Removed);
        let t = render(&c, TEXT).unwrap();
        assert_eq!(t.stream(Stream::Out), "-    /d/a\\xff\\n/\n");
        let j = render(&c, JSON).unwrap();
        assert_eq!(
            j.stream(Stream::Out),
            "{\"message_type\":\"change\",\"path\":\"/d/a\u{fffd}\\n/\",\
             \"path_hex\":\"2f642f61ff0a2f\",\"modifier\":\"-\"}\n"
        );
        let m = render(&ChangeLine::new(b"/f", Modifier::Metadata), JSON).unwrap();
        assert_eq!(
            m.stream(Stream::Out),
            "{\"message_type\":\"change\",\"path\":\"/f\",\"modifier\":\"U\"}\n"
        );
    }

    #[test]
    fn summary() {
        let stats = Stats {
            changed_files: 3,
            added: Counts {
                files: 1,
                dirs: 2,
                others: 0,
                data_blobs: 4,
                tree_blobs: 5,
                bytes: 3 << 19,
            },
            removed: Counts {
                bytes: 12,
                ..Counts::default()
            },
        };
        let s = Summary::new(ObjectId([0xab; 32]), ObjectId([0xcd; 32]), &stats);
        assert_eq!(
            render(&s, TEXT).unwrap().stream(Stream::Out),
            "\nFiles:           1 new,     0 removed,     3 changed\n\
             Dirs:            2 new,     0 removed\n\
             Others:          0 new,     0 removed\n\
             Data Blobs:      4 new,     0 removed\n\
             Tree Blobs:      5 new,     0 removed\n  Added:   1.50 MiB\n  Removed: 12 B\n"
        );
        let j: serde_json::Value =
            serde_json::from_str(&render(&s, JSON).unwrap().stream(Stream::Out)).unwrap();
        assert_eq!(j["message_type"], "statistics");
        assert_eq!(j["source_snapshot"], "ab".repeat(32));
        assert_eq!(j["target_snapshot"], "cd".repeat(32));
        assert_eq!(j["changed_files"], 3);
        assert_eq!(
            j["added"],
            serde_json::json!({"files":1,"dirs":2,"others":0,"data_blobs":4,"tree_blobs":5,"bytes":1572864})
        );
        assert_eq!(j["removed"]["bytes"], 12);
    }
}
