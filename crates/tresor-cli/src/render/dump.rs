//! `dump`: what was written. With `--target` a summary on standard output; without it standard
//! output is the data, and only the warnings (on standard error) are shown.

use super::{Level, Outcome, Text};
use anyhow::Result;
use serde::Serialize;
use std::path::Path;
use tresor_core::dump::Dumped;
use tresor_format::ObjectId;

/// The outcome of a dump (JSON: `docs/cli.md`, "dump").
#[derive(Debug)]
pub struct Summary<'a> {
    /// The snapshot dumped.
    pub snapshot: ObjectId,
    /// The path in it (its exact bytes).
    pub path: Vec<u8>,
    /// `tar` or `zip`.
    pub archive: &'a str,
    /// The file written, `None` for standard output.
    pub target: Option<&'a Path>,
    /// What was written.
    pub dumped: Dumped,
}

/// The JSON document of [`Summary`].
#[derive(Serialize)]
struct Json<'a> {
    message_type: &'static str,
    snapshot_id: String,
    path: String,
    archive: Option<&'a str>,
    target: String,
    #[serde(flatten)]
    dumped: &'a Dumped,
}

impl Summary<'_> {
    /// Warnings about what the archive left out (standard error).
    fn warnings(&self, t: &mut Text) {
        let d = &self.dumped;
        if d.withheld > 0 {
            t.diag(
                Level::Warning,
                format!(
                    "{} privileged item(s) left out (setuid/setgid bits, security.*/trusted.* attributes, device nodes): the snapshot was not written by a full key; --trust-privileged keeps them",
                    d.withheld
                ),
            );
        }
        if d.skipped > 0 {
            t.diag(
                Level::Note,
                format!(
                    "{} entr{} the {} format cannot hold left out (sockets; in zip also fifos and devices)",
                    d.skipped,
                    if d.skipped == 1 { "y" } else { "ies" },
                    self.archive
                ),
            );
        }
    }
}

impl Outcome for Summary<'_> {
    fn text(&self, t: &mut Text) {
        self.warnings(t);
        let (Some(target), d) = (self.target, &self.dumped) else {
            return;
        };
        let what = if d.single_file {
            "file".to_string()
        } else {
            format!(
                "{} archive: {} files, {} dirs, {} hard links, {} others",
                self.archive, d.files, d.dirs, d.hardlinks, d.others
            )
        };
        t.info(format!(
            "dumped {} of snapshot {} to {} ({what}, {} bytes of content)",
            tresor_format::tree::display_bytes(&self.path),
            self.snapshot.short(),
            tresor_format::tree::display_bytes(target.as_os_str().as_encoded_bytes()),
            d.bytes
        ));
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        self.warnings(t);
        let Some(target) = self.target else {
            return Ok(());
        };
        t.json_line(&Json {
            message_type: "summary",
            snapshot_id: self.snapshot.to_string(),
            path: String::from_utf8_lossy(&self.path).into_owned(),
            archive: (!self.dumped.single_file).then_some(self.archive),
            target: target.to_string_lossy().into_owned(),
            dumped: &self.dumped,
        })
    }
}
