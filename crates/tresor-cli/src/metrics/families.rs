//! The families each command writes (docs/cli.md, "Metrics"). All are gauges: each holds the
//! value of the last run, so none ends in `_total`.

use super::{Metric, labels, publish, seconds};
use crate::args::MetricsArgs;
use tresor_core::check::CheckReport;
use tresor_core::drill::DrillOutcome;
use tresor_core::overdue::GroupAge;
use tresor_format::snapshot::SnapshotSummary;

/// What a backup run tells the metrics.
#[derive(Debug)]
pub struct BackupRun<'a> {
    /// The snapshot's host (`host` label).
    pub host: &'a str,
    /// The backed-up paths (`paths` label: sorted, joined by spaces).
    pub paths: Vec<String>,
    /// When the command started.
    pub started: jiff::Timestamp,
    /// Its exit code.
    pub code: i32,
    /// The backup's figures, when it got as far as a snapshot (saved or partial).
    pub summary: Option<&'a SnapshotSummary>,
}

/// Publish the metrics of a backup run. A run that is not exit 0 writes no `last_success`
/// (the old value stays), one without a summary no figures.
pub fn backup(m: &MetricsArgs, run: &BackupRun) {
    let mut paths = run.paths.clone();
    paths.sort();
    let l = labels(m, &[("host", run.host), ("paths", &paths_label(&paths))]);
    let now = jiff::Timestamp::now();
    let mut out = vec![
        Metric::one(
            "tresor_backup_last_run_timestamp_seconds",
            "When the last backup ended (Unix time), successful or not.",
            &l,
            seconds(now),
        ),
        Metric::one(
            "tresor_backup_last_exit_code",
            "Exit code of the last backup (0 success, 3 partial, others docs/cli.md).",
            &l,
            f64::from(run.code),
        ),
        Metric::one(
            "tresor_backup_duration_seconds",
            "Wall time of the last backup.",
            &l,
            now.duration_since(run.started).as_secs_f64(),
        ),
    ];
    if run.code == crate::exit::OK {
        out.push(Metric::one(
            "tresor_backup_last_success_timestamp_seconds",
            "When the last backup that exited 0 ended (Unix time).",
            &l,
            seconds(now),
        ));
    }
    if let Some(s) = run.summary {
        out.extend(figures(&l, s));
    }
    publish(m, &out, Some(run.host));
}

/// The families of a backup's summary.
fn figures(l: &super::Labels, s: &SnapshotSummary) -> Vec<Metric> {
    let with = |state: &str| {
        let mut l = l.clone();
        l.push(("state".into(), state.into()));
        l
    };
    let files = [
        ("new", s.files_new),
        ("changed", s.files_changed),
        ("unmodified", s.files_unmodified),
    ];
    let bytes = [
        ("processed", s.total_bytes_processed),
        ("read", s.bytes_read),
    ];
    let many = |name, help, v: &[(&str, u64)]| Metric {
        name,
        help,
        samples: v.iter().map(|(k, n)| (with(k), *n as f64)).collect(),
        whole: false,
    };
    vec![
        many(
            "tresor_backup_files",
            "Files of the last backup by state: new, changed (read again), unmodified.",
            &files,
        ),
        many(
            "tresor_backup_bytes",
            "Source bytes of the last backup: processed (all files in the snapshot), read \
             (the new and changed files read in this run).",
            &bytes,
        ),
        Metric::one(
            "tresor_backup_added_bytes",
            "Bytes the last backup stored in the repository (after dedup, compression).",
            l,
            s.data_added as f64,
        ),
        Metric::one(
            "tresor_backup_errors",
            "Source entries the last backup could not read.",
            l,
            s.errors as f64,
        ),
    ]
}

/// Publish the metrics of a check run that exited `code`; `report`: what it found, when it got
/// as far as the storage listing (the repository's size and counts).
pub fn check(m: &MetricsArgs, code: i32, report: Option<&CheckReport>) {
    let l = labels(m, &[]);
    let now = jiff::Timestamp::now();
    let mut out = vec![Metric::one(
        "tresor_check_last_exit_code",
        "Exit code of the last check (0 no errors, 5 damage found).",
        &l,
        f64::from(code),
    )];
    if code == crate::exit::OK {
        out.push(Metric::one(
            "tresor_check_last_success_timestamp_seconds",
            "When the last check that found no error ended (Unix time).",
            &l,
            seconds(now),
        ));
    }
    if let Some(r) = report {
        out.extend(repository(&l, r));
    }
    publish(m, &out, Some(&crate::context::hostname()));
}

/// The repository's size and counts as the last check saw them.
fn repository(l: &super::Labels, r: &CheckReport) -> Vec<Metric> {
    vec![
        Metric::one(
            "tresor_repository_size_bytes",
            "Bytes of all pack files in the repository, from the storage listing of the last \
             check (index, snapshot and key objects, a fraction of a percent, not counted).",
            l,
            r.pack_bytes as f64,
        ),
        Metric::one(
            "tresor_repository_packs",
            "Packs in the repository's index at the last check.",
            l,
            r.packs as f64,
        ),
        Metric::one(
            "tresor_repository_blobs",
            "Blobs in the repository's index at the last check.",
            l,
            r.blobs as f64,
        ),
        Metric::one(
            "tresor_repository_snapshots",
            "Snapshots the last check read.",
            l,
            r.snapshots as f64,
        ),
    ]
}

/// Publish the metrics of a drill that exited `code`; `outcome`: what it measured, when it
/// got as far as restoring.
pub fn drill(m: &MetricsArgs, code: i32, outcome: Option<&DrillOutcome>) {
    let l = labels(m, &[]);
    let now = jiff::Timestamp::now();
    let mut out = vec![
        Metric::one(
            "tresor_drill_last_run_timestamp_seconds",
            "When the last drill ended (Unix time), passed or not.",
            &l,
            seconds(now),
        ),
        Metric::one(
            "tresor_drill_last_exit_code",
            "Exit code of the last drill (0 passed, 7 a mismatch found, others docs/cli.md).",
            &l,
            f64::from(code),
        ),
    ];
    if code == crate::exit::OK {
        out.push(Metric::one(
            "tresor_drill_last_success_timestamp_seconds",
            "When the last drill that passed ended (Unix time).",
            &l,
            seconds(now),
        ));
    }
    if let Some(o) = outcome {
        out.extend(drill_figures(m, &l, o));
    }
    publish(m, &out, Some(&crate::context::hostname()));
}

/// The families of a drill's outcome.
fn drill_figures(m: &MetricsArgs, l: &super::Labels, o: &DrillOutcome) -> Vec<Metric> {
    let t = &o.throughput;
    let with = |k: &str, v: &str| {
        let mut l = l.clone();
        l.push((k.into(), v.into()));
        l
    };
    let coverage = Metric {
        name: "tresor_drill_coverage_ratio",
        help: "Share (0-1) of the repository's packs (`of=\"packs\"`) and snapshots \
               (`of=\"snapshots\"`) that some drill has restored from, after the last drill.",
        samples: vec![
            (with("of", "packs"), o.coverage.packs_share),
            (with("of", "snapshots"), o.coverage.snapshots_share),
        ],
        whole: false,
    };
    let estimate = Metric {
        name: "tresor_drill_estimate_seconds",
        help: "Estimated seconds to restore every snapshot the last drill chose of each host \
               (the recovery-time estimate; thaw time included on a cold tier).",
        samples: (o.hosts.iter())
            .filter_map(|e| {
                let s = e.seconds? + e.thaw_seconds.unwrap_or(0.0);
                Some((labels(m, &[("host", &e.host)]), s))
            })
            .collect(),
        whole: true,
    };
    vec![
        Metric::one(
            "tresor_drill_files",
            "Files the last drill restored and verified.",
            l,
            t.files as f64,
        ),
        Metric::one(
            "tresor_drill_bytes",
            "Bytes the last drill restored and verified.",
            l,
            t.bytes as f64,
        ),
        Metric::one(
            "tresor_drill_mismatches",
            "Mismatches the last drill found (each named in its output).",
            l,
            o.mismatches.len() as f64,
        ),
        Metric::one(
            "tresor_drill_throughput_bytes_per_second",
            "Restore throughput the last drill measured.",
            l,
            t.bytes_per_sec(),
        ),
        coverage,
        estimate,
    ]
}

/// Publish the metrics of `snapshots --check-overdue`: per group its newest snapshot's time
/// and whether it is overdue. Both families are replaced whole.
pub fn overdue(m: &MetricsArgs, groups: &[GroupAge]) {
    let of = |g: &GroupAge| labels(m, &[("host", &g.host), ("paths", &paths_label(&g.paths))]);
    let last = Metric {
        name: "tresor_snapshot_last_timestamp_seconds",
        help: "Time of the newest snapshot of each host and set of paths (Unix time, as the \
               snapshot claims it).",
        samples: groups
            .iter()
            .map(|g| (of(g), seconds(g.timestamp)))
            .collect(),
        whole: true,
    };
    let late = Metric {
        name: "tresor_snapshot_overdue",
        help: "1 when the newest snapshot of the host and paths is older than --max-age or \
               dated ahead of the clock, else 0.",
        samples: (groups.iter())
            .map(|g| (of(g), f64::from(u8::from(g.state.is_overdue()))))
            .collect(),
        whole: true,
    };
    publish(m, &[last, late], None);
}

/// The `paths` label: the paths joined by spaces, each with `%`, space, `,` and control
/// characters percent-encoded (`/a b` is `/a%20b`), so that two different sets of paths never
/// share a label (`["/a b"]` and `["/a", "b"]` would, joined as they are).
pub fn paths_label(paths: &[String]) -> String {
    let one = |p: &String| {
        let mut out = String::with_capacity(p.len());
        for c in p.chars() {
            if c == '%' || c == ' ' || c == ',' || c.is_control() {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    paths.iter().map(one).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod paths_label_tests {
    use super::paths_label;

    #[test]
    fn different_sets_of_paths_get_different_labels() {
        let s = |v: &[&str]| v.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(paths_label(&s(&["/a", "/b"])), "/a /b");
        assert_eq!(paths_label(&s(&["/a /b"])), "/a%20/b");
        assert_ne!(paths_label(&s(&["/a /b"])), paths_label(&s(&["/a", "/b"])));
        assert_eq!(paths_label(&s(&["/x%20,\u{1b}"])), "/x%2520%2C%1B");
    }
}
