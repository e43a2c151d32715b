//! `spool status` and `spool flush`: what waits in the offline spool, what a flush uploaded.

use super::{Outcome, Text};
use crate::output::bytes;
use anyhow::Result;
use serde::Serialize;
use std::path::Path;
use tresor_core::spool::SpoolStatus;

/// Counts of spool objects (JSON: `docs/cli.md`, "spool status" and "spool flush").
#[derive(Debug, Serialize)]
pub struct Counts {
    /// `"spool_status"` or `"spool_flush"`.
    pub message_type: &'static str,
    /// The spool directory as given.
    pub spool: String,
    /// Snapshots.
    pub snapshots: u64,
    /// Packs.
    pub packs: u64,
    /// Index objects.
    pub index_objects: u64,
    /// Backup start markers.
    pub markers: u64,
    /// Bytes of all of them.
    pub bytes: u64,
}

impl Counts {
    fn new(message_type: &'static str, dir: &Path, s: &SpoolStatus) -> Counts {
        Counts {
            message_type,
            spool: dir.display().to_string(),
            snapshots: s.snapshots.objects,
            packs: s.packs.objects,
            index_objects: s.index.objects,
            markers: s.markers.objects,
            bytes: s.bytes(),
        }
    }

    fn objects(&self) -> String {
        format!(
            "{} snapshots, {} packs, {} index objects, {} markers ({})",
            self.snapshots,
            self.packs,
            self.index_objects,
            self.markers,
            bytes(self.bytes)
        )
    }
}

/// `spool status`: what waits for a flush.
#[derive(Debug)]
pub struct Status(pub Counts);

impl Status {
    /// What `s` counted in the spool `dir`.
    pub fn new(dir: &Path, s: SpoolStatus) -> Status {
        Status(Counts::new("spool_status", dir, &s))
    }
}

impl Outcome for Status {
    fn text(&self, t: &mut Text) {
        let c = &self.0;
        if c.snapshots + c.packs + c.index_objects + c.markers == 0 {
            t.out(format!("spool {}: nothing waits", c.spool));
        } else {
            t.out(format!("spool {}: waiting: {}", c.spool, c.objects()));
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(&self.0)
    }
}

/// `spool flush`: what was uploaded.
#[derive(Debug)]
pub struct Flushed(pub Counts);

impl Flushed {
    /// What a flush of the spool `dir` uploaded.
    pub fn new(dir: &Path, s: SpoolStatus) -> Flushed {
        Flushed(Counts::new("spool_flush", dir, &s))
    }
}

impl Outcome for Flushed {
    fn text(&self, t: &mut Text) {
        t.out(format!(
            "spool {}: uploaded {}",
            self.0.spool,
            self.0.objects()
        ));
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Mode, Stream, render};
    use tresor_core::spool::Waiting;

    const TEXT: Mode = Mode {
        json: false,
        quiet: false,
    };
    const JSON: Mode = Mode {
        json: true,
        quiet: false,
    };

    fn sample() -> SpoolStatus {
        let w = |objects, bytes| Waiting { objects, bytes };
        SpoolStatus {
            snapshots: w(1, 300),
            packs: w(2, 3 << 19),
            index: w(1, 200),
            markers: w(1, 100),
        }
    }

    #[test]
    fn status_and_flush() {
        let s = Status::new(Path::new("/sp"), sample());
        assert_eq!(
            render(&s, TEXT).unwrap().stream(Stream::Out),
            "spool /sp: waiting: 1 snapshots, 2 packs, 1 index objects, 1 markers (1.50 MiB)\n"
        );
        let j: serde_json::Value =
            serde_json::from_str(&render(&s, JSON).unwrap().stream(Stream::Out)).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"message_type":"spool_status","spool":"/sp","snapshots":1,
                "packs":2,"index_objects":1,"markers":1,"bytes":1_573_464})
        );
        let empty = Status::new(Path::new("/sp"), SpoolStatus::default());
        assert_eq!(
            render(&empty, TEXT).unwrap().stream(Stream::Out),
            "spool /sp: nothing waits\n"
        );
        let f = Flushed::new(Path::new("/sp"), sample());
        assert!(
            render(&f, TEXT)
                .unwrap()
                .stream(Stream::Out)
                .starts_with("spool /sp: uploaded 1 snapshots, 2 packs")
        );
        let j: serde_json::Value =
            serde_json::from_str(&render(&f, JSON).unwrap().stream(Stream::Out)).unwrap();
        assert_eq!(j["message_type"], "spool_flush");
        assert_eq!(j["bytes"], 1_573_464);
    }
}
