//! `stats`: the totals of one mode (restic's lines and JSON fields), then ours: the
//! deduplication and compression ratios and the totals per host.

use super::{Outcome, Text};
use crate::args::StatsMode;
use anyhow::Result;
use serde::Serialize;
use tresor_core::stats::Totals;

/// The totals of one host (JSON: `hosts[]`).
#[derive(Debug, Serialize)]
pub struct Host {
    /// Host name.
    pub host: String,
    /// Snapshots of the host counted.
    pub snapshots_count: u64,
    /// Their restore sizes summed, bytes.
    pub restore_size: u64,
}

/// The report (JSON: `docs/cli.md`, "stats").
#[derive(Debug, Serialize)]
pub struct Report {
    /// `restore-size`, `files-by-contents`, `raw-data` or `blobs-per-file`.
    pub mode: &'static str,
    /// Bytes counted by the mode.
    pub total_size: u64,
    /// Plaintext bytes of the distinct blobs (raw-data only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_uncompressed_size: Option<u64>,
    /// Files counted by the mode (not in raw-data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_file_count: Option<u64>,
    /// Blobs counted by the mode (raw-data, blobs-per-file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_blob_count: Option<u64>,
    /// Snapshots counted.
    pub snapshots_count: u64,
    /// Plaintext over stored bytes of the distinct blobs.
    pub compression_ratio: Option<f64>,
    /// Percent of the plaintext that compression saved, net of encryption and padding
    /// (raw-data only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression_space_saving: Option<f64>,
    /// Restore size over plaintext bytes of the distinct blobs.
    pub deduplication_ratio: Option<f64>,
    /// Restore size of all snapshots counted, bytes (whatever the mode).
    pub restore_size: u64,
    /// Stored bytes of the distinct blobs (whatever the mode).
    pub stored_size: u64,
    /// Per host, by name.
    pub hosts: Vec<Host>,
}

impl Report {
    /// The report of `mode` from `t`.
    pub fn new(mode: StatsMode, t: &Totals) -> Self {
        let (name, size, files, blobs) = match mode {
            StatsMode::RestoreSize => ("restore-size", t.restore_size, Some(t.restore_files), None),
            StatsMode::FilesByContents => (
                "files-by-contents",
                t.unique_files_size,
                Some(t.unique_files),
                None,
            ),
            StatsMode::RawData => ("raw-data", t.stored_size, None, Some(t.blobs)),
            StatsMode::BlobsPerFile => (
                "blobs-per-file",
                t.file_blobs_size,
                Some(t.unique_files),
                Some(t.file_blobs),
            ),
        };
        let raw = mode == StatsMode::RawData;
        Report {
            mode: name,
            total_size: size,
            total_uncompressed_size: raw.then_some(t.uncompressed_size),
            total_file_count: files,
            total_blob_count: blobs,
            snapshots_count: t.snapshots,
            compression_ratio: t.compression_ratio(),
            compression_space_saving: t.compression_space_saving().filter(|_| raw),
            deduplication_ratio: t.deduplication_ratio(),
            restore_size: t.restore_size,
            stored_size: t.stored_size,
            hosts: t
                .hosts
                .iter()
                .map(|(h, v)| Host {
                    host: h.clone(),
                    snapshots_count: v.snapshots,
                    restore_size: v.restore_size,
                })
                .collect(),
        }
    }
}

/// `label:  value`, the label right-aligned as restic aligns it.
fn row(t: &mut Text, label: &str, value: String) {
    t.out(format!("{label:>24}:  {value}"));
}

fn with_bytes(n: u64) -> String {
    format!("{} ({n} B)", crate::output::bytes(n))
}

fn times(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}x"))
}

impl Outcome for Report {
    fn text(&self, t: &mut Text) {
        t.info(format!("Stats in {} mode:", self.mode));
        row(t, "Snapshots processed", self.snapshots_count.to_string());
        if let Some(n) = self.total_blob_count {
            row(t, "Total Blob Count", n.to_string());
        }
        if let Some(n) = self.total_file_count {
            row(t, "Total File Count", n.to_string());
        }
        if let Some(n) = self.total_uncompressed_size {
            row(t, "Total Uncompressed Size", with_bytes(n));
        }
        row(t, "Total Size", with_bytes(self.total_size));
        if let Some(p) = self.compression_space_saving {
            row(t, "Compression Space Saving", format!("{p:.2} %"));
        }
        row(t, "Compression Ratio", times(self.compression_ratio));
        row(t, "Deduplication Ratio", times(self.deduplication_ratio));
        for h in &self.hosts {
            row(
                t,
                &format!("Host {}", super::escape_controls(&h.host)),
                format!(
                    "{} snapshots, restore size {}",
                    h.snapshots_count,
                    with_bytes(h.restore_size)
                ),
            );
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
    use tresor_core::stats::HostTotals;

    fn totals() -> Totals {
        let mut t = Totals {
            snapshots: 2,
            restore_size: 3000,
            restore_files: 10,
            unique_files: 4,
            unique_files_size: 1500,
            file_blobs: 5,
            file_blobs_size: 1400,
            blobs: 7,
            stored_size: 1200,
            uncompressed_size: 1500,
            ..Totals::default()
        };
        let h = HostTotals {
            snapshots: 2,
            restore_size: 3000,
        };
        t.hosts.insert("web\n1".into(), h);
        t
    }

    #[test]
    fn restore_size_text_and_json() {
        let r = Report::new(StatsMode::RestoreSize, &totals());
        let text = render(
            &r,
            Mode {
                json: false,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(
            text.stream(Stream::Out),
            "Stats in restore-size mode:\n\
             \x20    Snapshots processed:  2\n\
             \x20       Total File Count:  10\n\
             \x20             Total Size:  2.93 KiB (3000 B)\n\
             \x20      Compression Ratio:  1.25x\n\
             \x20    Deduplication Ratio:  2.00x\n\
             \x20            Host web\\n1:  2 snapshots, restore size 2.93 KiB (3000 B)\n"
        );
        let j = render(
            &r,
            Mode {
                json: true,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(
            j.stream(Stream::Out),
            "{\"mode\":\"restore-size\",\"total_size\":3000,\"total_file_count\":10,\
             \"snapshots_count\":2,\"compression_ratio\":1.25,\"deduplication_ratio\":2.0,\
             \"restore_size\":3000,\"stored_size\":1200,\
             \"hosts\":[{\"host\":\"web\\n1\",\"snapshots_count\":2,\"restore_size\":3000}]}\n"
        );
    }

    #[test]
    fn other_modes() {
        let t = totals();
        let raw = Report::new(StatsMode::RawData, &t);
        assert_eq!(
            (raw.total_size, raw.total_file_count, raw.total_blob_count),
            (1200, None, Some(7))
        );
        assert_eq!(raw.total_uncompressed_size, Some(1500));
        assert!((raw.compression_space_saving.unwrap() - 20.0).abs() < 1e-9);
        let text = render(
            &raw,
            Mode {
                json: false,
                quiet: true,
            },
        )
        .unwrap();
        assert!(text.stream(Stream::Out).starts_with(
            "     Snapshots processed:  2\n        Total Blob Count:  7\n\
             \x20Total Uncompressed Size:  1.46 KiB (1500 B)\n"
        ));
        let c = Report::new(StatsMode::FilesByContents, &t);
        assert_eq!(
            (c.total_size, c.total_file_count, c.total_blob_count),
            (1500, Some(4), None)
        );
        assert_eq!(c.compression_space_saving, None);
        let b = Report::new(StatsMode::BlobsPerFile, &t);
        assert_eq!(
            (b.total_size, b.total_file_count, b.total_blob_count),
            (1400, Some(4), Some(5))
        );
        let empty = Report::new(StatsMode::RestoreSize, &Totals::default());
        let j = render(
            &empty,
            Mode {
                json: true,
                quiet: false,
            },
        )
        .unwrap();
        assert!(
            j.stream(Stream::Out)
                .contains("\"compression_ratio\":null,\"deduplication_ratio\":null")
        );
    }
}
