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
    /// Bytes of all pack files the storage lists.
    pub pack_bytes: u64,
    /// Packs read whole.
    pub packs_read: usize,
    /// Packs chosen to be read (those whose read failed are errors).
    pub packs_selected: usize,
    /// How they were chosen, e.g. `all packs`, `5% at random`, `part 2/7 by pack id`.
    pub selection: &'a str,
    /// Chosen packs not read because they are cold and not thawed (never damage).
    pub packs_cold: usize,
    /// Bytes of the packs read.
    pub bytes_read: u64,
    /// Damage and missing data, one line each (exit 5 when any).
    pub errors: &'a [String],
    /// Things that are not damage.
    pub warnings: &'a [String],
    /// Pack data was asked for (`--read-data`, `--read-data-subset`): the text says which
    /// share was read.
    #[serde(skip)]
    pub read_data: bool,
}

impl<'a> Checked<'a> {
    /// The outcome of `r`; `read_data`: pack data was asked for.
    pub fn new(r: &'a CheckReport, read_data: bool) -> Self {
        Checked {
            message_type: "summary",
            snapshots: r.snapshots,
            packs: r.packs,
            blobs: r.blobs,
            pack_bytes: r.pack_bytes,
            packs_read: r.packs_read,
            packs_selected: r.packs_selected,
            selection: &r.selection,
            packs_cold: r.packs_cold,
            bytes_read: r.bytes_read,
            errors: &r.errors,
            warnings: &r.warnings,
            read_data,
        }
    }

    /// The share of the packs `--read-data(-subset)` read, e.g.
    /// `read 3 of 40 packs (7.5%): 5% at random`.
    fn share(&self) -> String {
        let percent = if self.packs == 0 {
            0.0
        } else {
            self.packs_selected as f64 * 100.0 / self.packs as f64
        };
        format!(
            "read {} of {} packs ({percent:.1}%): {}",
            self.packs_selected, self.packs, self.selection
        )
    }
}

/// What to do about damage, in the order that loses least (docs/cli.md, "Repairing").
pub const REPAIR_HINT: &str = "to repair: `tresor repair index --read-data` (rebuilds the index, \
     salvages damaged packs), then back up the same files again (uploads what the index lost), \
     then `tresor repair snapshots --forget` for what no backup could heal";

impl Outcome for Checked<'_> {
    fn text(&self, t: &mut Text) {
        for w in self.warnings {
            t.diag(Level::Warning, w);
        }
        for e in self.errors {
            t.diag(Level::Error, e);
        }
        let cold = match self.packs_cold {
            0 => String::new(),
            n => format!(" ({n} cold packs not read)"),
        };
        t.info(format!(
            "checked {} snapshots, {} packs, {} blobs; read {} packs{cold}",
            self.snapshots, self.packs, self.blobs, self.packs_read
        ));
        if self.read_data {
            t.info(self.share());
        }
        t.info(if self.errors.is_empty() {
            "no errors were found".to_string()
        } else {
            format!("{} errors found", self.errors.len())
        });
        if !self.errors.is_empty() {
            t.info(REPAIR_HINT);
        }
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
            pack_bytes: 5000,
            packs_read: 1,
            packs_selected: 1,
            selection: "part 1/3 by pack id".into(),
            bytes_read: 100,
            packs_cold: 0,
        };
        let t = render(
            &Checked::new(&r, true),
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
            format!(
                "checked 2 snapshots, 3 packs, 40 blobs; read 1 packs\n\
                 read 1 of 3 packs (33.3%): part 1/3 by pack id\n1 errors found\n{REPAIR_HINT}\n"
            )
        );
        let plain = render(
            &Checked::new(&r, false),
            Mode {
                json: false,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(
            plain.stream(Stream::Out),
            format!(
                "checked 2 snapshots, 3 packs, 40 blobs; read 1 packs\n1 errors found\n{REPAIR_HINT}\n"
            )
        );
        let j = render(
            &Checked::new(&r, true),
            Mode {
                json: true,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(
            j.stream(Stream::Out),
            "{\"message_type\":\"summary\",\"snapshots\":2,\"packs\":3,\"blobs\":40,\
             \"pack_bytes\":5000,\"packs_read\":1,\"packs_selected\":1,\"selection\":\"part 1/3 by pack id\",\
             \"packs_cold\":0,\"bytes_read\":100,\"errors\":[\"pack P: missing\"],\
             \"warnings\":[\"pack Q: unreferenced\"]}\n"
        );
    }
}
