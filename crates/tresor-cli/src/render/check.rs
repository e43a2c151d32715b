//! `check`: what was checked and what was found.

use super::{Level, Outcome, Text};
use anyhow::Result;
use serde::Serialize;
use tresor_core::check::CheckReport;

/// The result of a check (JSON: `docs/cli.md`, "check").
#[derive(Debug, Serialize)]
pub struct Checked<'a> {
    /// Always `"summary"`.
    pub message_type: &'static str,
    /// Snapshots checked.
    pub snapshots: usize,
    /// Packs in the index.
    pub packs: usize,
    /// Blobs in the index.
    pub blobs: usize,
    /// Packs read whole.
    pub packs_read: usize,
    /// Bytes of the packs read.
    pub bytes_read: u64,
    /// Damage and missing data, one line each (exit 5 when any).
    pub errors: &'a [String],
    /// Things that are not damage.
    pub warnings: &'a [String],
}

impl<'a> From<&'a CheckReport> for Checked<'a> {
    fn from(r: &'a CheckReport) -> Self {
        Checked {
            message_type: "summary",
            snapshots: r.snapshots,
            packs: r.packs,
            blobs: r.blobs,
            packs_read: r.packs_read,
            bytes_read: r.bytes_read,
            errors: &r.errors,
            warnings: &r.warnings,
        }
    }
}

impl Outcome for Checked<'_> {
    fn text(&self, t: &mut Text) {
        for w in self.warnings {
            t.diag(Level::Warning, w);
        }
        for e in self.errors {
            t.diag(Level::Error, e);
        }
        t.info(format!(
            "checked {} snapshots, {} packs, {} blobs; read {} packs",
            self.snapshots, self.packs, self.blobs, self.packs_read
        ));
        t.info(if self.errors.is_empty() {
            "no errors were found".to_string()
        } else {
            format!("{} errors found", self.errors.len())
        });
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Mode, Stream, render};

    #[test]
    fn text_and_json() {
        let r = CheckReport {
            errors: vec!["pack P: missing".into()],
            warnings: vec!["pack Q: unreferenced".into()],
            snapshots: 2,
            packs: 3,
            blobs: 40,
            packs_read: 1,
            bytes_read: 100,
        };
        let t = render(
            &Checked::from(&r),
            Mode {
                json: false,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(
            t.stream(Stream::Err),
            "warning: pack Q: unreferenced\nerror: pack P: missing\n"
        );
        assert_eq!(
            t.stream(Stream::Out),
            "checked 2 snapshots, 3 packs, 40 blobs; read 1 packs\n1 errors found\n"
        );
        let j = render(
            &Checked::from(&r),
            Mode {
                json: true,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(
            j.stream(Stream::Out),
            "{\"message_type\":\"summary\",\"snapshots\":2,\"packs\":3,\"blobs\":40,\
             \"packs_read\":1,\"bytes_read\":100,\"errors\":[\"pack P: missing\"],\
             \"warnings\":[\"pack Q: unreferenced\"]}\n"
        );
    }
}
