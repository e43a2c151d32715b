//! `snapshots`: the list of snapshots, and what a put-only key may see of it.

use super::{Level, Outcome, Text, escape_controls};
use anyhow::Result;
use serde::Serialize;
use tresor_core::snapshots::SignerInfo;
use tresor_format::snapshot::{Snapshot, SnapshotSummary};
use tresor_format::{BlobId, ObjectId};

/// One snapshot as listed (JSON: `docs/cli.md`, "snapshots").
#[derive(Debug, Serialize)]
pub struct SnapshotRow<'a> {
    /// Snapshot id.
    pub id: ObjectId,
    /// Its first 8 hex digits.
    pub short_id: String,
    /// Snapshot time as recorded (RFC 3339 with offset).
    pub time: &'a str,
    /// Host name.
    pub host: &'a str,
    /// Host name again (restic's field name).
    pub hostname: &'a str,
    /// User name.
    pub username: &'a str,
    /// Backed-up paths.
    pub paths: &'a [String],
    /// Tags.
    pub tags: &'a [String],
    /// Parent snapshot.
    pub parent: Option<ObjectId>,
    /// Root tree blob.
    pub tree: BlobId,
    /// Program that wrote it.
    pub program_version: &'a str,
    /// Statistics stored in the snapshot (written by its key).
    pub summary: &'a Option<SnapshotSummary>,
    /// The key that signed it, when readers accept it.
    pub signer: Option<SignerInfo>,
    /// Dated more than a day after this machine's clock.
    pub future: bool,
    /// The time, parsed (for the table).
    #[serde(skip)]
    pub timestamp: jiff::Timestamp,
}

impl<'a> SnapshotRow<'a> {
    /// The row of snapshot `id`.
    pub fn new(id: ObjectId, s: &'a Snapshot, signer: Option<SignerInfo>, future: bool) -> Self {
        SnapshotRow {
            id,
            short_id: id.short(),
            time: &s.time,
            host: &s.hostname,
            hostname: &s.hostname,
            username: &s.username,
            paths: &s.paths,
            tags: &s.tags,
            parent: s.parent,
            tree: s.tree,
            program_version: &s.program_version,
            summary: &s.summary,
            signer,
            future,
            timestamp: tresor_core::repo::snapshots::time_of(s),
        }
    }
}

/// The snapshots a full key lists, and the snapshot objects left out (one warning each).
#[derive(Debug)]
pub struct SnapshotList<'a> {
    /// The snapshots, oldest first.
    pub rows: Vec<SnapshotRow<'a>>,
    /// Why each left-out snapshot object was left out (a `warning:` line each, also with JSON).
    pub skipped: Vec<String>,
    /// The time zone of the table's times.
    pub zone: jiff::tz::TimeZone,
}

impl Outcome for SnapshotList<'_> {
    fn text(&self, t: &mut Text) {
        for s in &self.skipped {
            t.diag(Level::Warning, s);
        }
        let rows: Vec<Vec<String>> = self.rows.iter().map(|r| self.table_row(r)).collect();
        let header = ["ID", "Time", "Host", "Signer", "Tags", "Paths"];
        for line in super::table::lines(&header, &rows) {
            t.out(line);
        }
        t.info(format!("{} snapshots", self.rows.len()));
        if self.rows.iter().any(|r| r.future) {
            t.info(
                "! dated more than a day ahead of this clock: never `latest`, not counted by \
                 `forget` policies or by prune's approval",
            );
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        for s in &self.skipped {
            t.diag(Level::Warning, s);
        }
        t.json_pretty(&self.rows)
    }
}

impl SnapshotList<'_> {
    /// One row of the table: id, time (local, `!` when dated in the future), host, signer
    /// (short key id and kind), tags, paths. Host names, tags and paths are escaped (anyone
    /// with a key chooses them).
    fn table_row(&self, r: &SnapshotRow) -> Vec<String> {
        let mut time = tresor_core::time::human(r.timestamp, &self.zone);
        if r.future {
            time.push_str(" !");
        }
        let signer = r.signer.as_ref().map_or_else(
            || "?".to_string(),
            |k| format!("{} {}", k.id.as_deref().unwrap_or("removed"), k.kind),
        );
        vec![
            r.short_id.clone(),
            time,
            escape_controls(r.host),
            signer,
            escape_controls(&r.tags.join(",")),
            escape_controls(&r.paths.join(" ")),
        ]
    }
}

/// One snapshot object as a put-only key sees it: no contents (JSON: `docs/cli.md`,
/// "snapshots" with a put-only key).
#[derive(Debug, Serialize)]
pub struct PutOnlyRow {
    /// The object's name (snapshot id, 64 hex digits).
    pub id: String,
    /// Its stored size, bytes.
    pub size: u64,
    /// Whether this key signed it.
    pub own: bool,
    /// Short id of the signing key when it is certified.
    pub key: Option<String>,
    /// Whether readers ignore it (unknown or revoked signer).
    pub ignored: bool,
}

/// The snapshot objects as a put-only key lists them, sorted by id.
#[derive(Debug)]
pub struct PutOnlyList(pub Vec<PutOnlyRow>);

impl Outcome for PutOnlyList {
    fn text(&self, t: &mut Text) {
        t.out("this key is put-only: it cannot read snapshots, only list them");
        t.out(format!(
            "{:<10} {:>8} {:<10} Written by",
            "ID", "Size", "Key"
        ));
        for r in &self.0 {
            t.out(format!(
                "{:<10} {:>8} {:<10} {}{}",
                r.id.get(..8).unwrap_or(&r.id),
                r.size,
                r.key.as_deref().unwrap_or("?"),
                if r.own { "this key" } else { "another key" },
                if r.ignored {
                    " (ignored by readers: unknown or revoked signer)"
                } else {
                    ""
                }
            ));
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_pretty(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Mode, Stream, render};

    fn snapshot(time: &str, host: &str) -> Snapshot {
        Snapshot {
            version: 2,
            time: time.into(),
            tree: BlobId([7; 32]),
            paths: vec!["/home/a".into(), "/etc".into()],
            hostname: host.into(),
            username: "me".into(),
            uid: 0,
            gid: 0,
            tags: vec!["t1".into(), "t\x1b2".into()],
            excludes: vec![],
            parent: None,
            summary: None,
            program_version: "tresor 0.1.0".into(),
            markers: vec![],
            original: None,
        }
    }

    #[test]
    fn table() {
        let (a, b) = (
            snapshot("2024-01-02T03:04:05Z", "h\n1"),
            snapshot("2999-01-01T00:00:00Z", "h2"),
        );
        let signer = SignerInfo {
            id: Some("1234abcd".into()),
            kind: "full",
            public: "00".repeat(32),
            host: None,
        };
        let list = SnapshotList {
            rows: vec![
                SnapshotRow::new(ObjectId([1; 32]), &a, Some(signer), false),
                SnapshotRow::new(ObjectId([2; 32]), &b, None, true),
            ],
            skipped: vec!["snapshot X: damaged".into()],
            zone: jiff::tz::TimeZone::UTC,
        };
        let t = render(
            &list,
            Mode {
                json: false,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(t.stream(Stream::Err), "warning: snapshot X: damaged\n");
        assert_eq!(
            t.stream(Stream::Out),
            "ID        Time                   Host  Signer         Tags       Paths\n\
             01010101  2024-01-02 03:04:05    h\\n1  1234abcd full  t1,t\\x1b2  /home/a /etc\n\
             02020202  2999-01-01 00:00:00 !  h2    ?              t1,t\\x1b2  /home/a /etc\n\
             2 snapshots\n\
             ! dated more than a day ahead of this clock: never `latest`, not counted by `forget` policies or by prune's approval\n"
        );
        let q = render(
            &list,
            Mode {
                json: false,
                quiet: true,
            },
        )
        .unwrap();
        assert_eq!(q.stream(Stream::Out).lines().count(), 3);
        let j = render(
            &list,
            Mode {
                json: true,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(j.stream(Stream::Err), "warning: snapshot X: damaged\n");
        let v: serde_json::Value = serde_json::from_str(&j.stream(Stream::Out)).unwrap();
        assert_eq!(v[0]["id"], "01".repeat(32));
        assert_eq!(v[0]["short_id"], "01010101");
        assert_eq!(v[0]["tree"], "07".repeat(32));
        assert_eq!(v[0]["host"], "h\n1");
        assert_eq!(v[0]["hostname"], "h\n1");
        assert_eq!(v[0]["signer"]["id"], "1234abcd");
        assert_eq!(v[1]["signer"], serde_json::Value::Null);
        assert_eq!(v[1]["future"], true);
    }

    #[test]
    fn put_only() {
        let list = PutOnlyList(vec![PutOnlyRow {
            id: "ab".repeat(32),
            size: 922,
            own: false,
            key: None,
            ignored: true,
        }]);
        let t = render(
            &list,
            Mode {
                json: false,
                quiet: true,
            },
        )
        .unwrap();
        assert_eq!(
            t.stream(Stream::Out),
            "this key is put-only: it cannot read snapshots, only list them\n\
             ID             Size Key        Written by\n\
             abababab        922 ?          another key (ignored by readers: unknown or revoked signer)\n"
        );
        let j = render(
            &list,
            Mode {
                json: true,
                quiet: true,
            },
        )
        .unwrap();
        assert_eq!(
            j.stream(Stream::Out),
            format!(
                "[\n  {{\n    \"id\": \"{}\",\n    \"size\": 922,\n    \"own\": false,\n    \"key\": null,\n    \"ignored\": true\n  }}\n]\n",
                "ab".repeat(32)
            )
        );
    }
}
