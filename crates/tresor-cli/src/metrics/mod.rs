//! Metrics for Prometheus (docs/cli.md, "Metrics"): `backup`, `check`, `drill` and `snapshots
//! --check-overdue` describe their run as gauges, written to a node_exporter textfile
//! (`--metrics-textfile`) and/or pushed to a pushgateway (`--pushgateway`).
//!
//! The textfile is *merged*: the samples of this run replace those with the same name and
//! labels, everything else in the file stays (a failed backup writes no `last_success`, so the
//! previous one stays; `check`'s families stay when `backup` writes). The `tresor_snapshot_*`
//! families are replaced whole (a group that is gone leaves them). It is written atomically: a
//! temporary file in the same directory, synced, mode 644, renamed over the old one.
//! Publishing never fails the command: a problem is one warning line.

mod families;
mod push;
pub mod text;

pub use families::{BackupRun, backup, check, drill, overdue};

use crate::args::MetricsArgs;
use std::io::Write as _;
use std::path::Path;
use text::{Families, Labels, Sample};

/// One family this run writes: name, HELP, and samples (all gauges).
#[derive(Debug, Clone)]
pub struct Metric {
    /// The family's name.
    pub name: &'static str,
    /// Its HELP text.
    pub help: &'static str,
    /// Its samples: labels and value.
    pub samples: Vec<(Labels, f64)>,
    /// Replace every sample of the family in the file (else only those with the same labels).
    pub whole: bool,
}

impl Metric {
    /// A family of one sample.
    pub fn one(name: &'static str, help: &'static str, labels: &Labels, value: f64) -> Self {
        Metric {
            name,
            help,
            samples: vec![(labels.clone(), value)],
            whole: false,
        }
    }
}

/// Seconds since the Unix epoch of `t`, with milliseconds.
pub fn seconds(t: jiff::Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

/// The labels every family of a run carries: `profile` when run with one, then `extra`.
pub fn labels(m: &MetricsArgs, extra: &[(&str, &str)]) -> Labels {
    let profile = m.profile.as_deref().map(|p| ("profile", p));
    (profile.into_iter().chain(extra.iter().copied()))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Write and push `metrics` as `m` asks; `group_host`: the `host` of the pushgateway's grouping
/// key (none for families that carry the snapshots' hosts as labels).
pub fn publish(m: &MetricsArgs, metrics: &[Metric], group_host: Option<&str>) {
    if let Some(path) = &m.metrics_textfile
        && let Err(e) = write_textfile(path, metrics)
    {
        crate::render::say(format!(
            "warning: metrics not written to {}: {e:#}",
            path.display()
        ));
    }
    if let Some(url) = &m.pushgateway {
        let body = text::render(&merge(Families::new(), metrics));
        let target = push::target(url, m.profile.as_deref(), group_host);
        if let Err(e) = push::push(&target, body) {
            let url = crate::notify::mask_url(url);
            crate::render::say(format!("warning: metrics not pushed to {url}: {e:#}"));
        }
    }
}

/// `old` with `metrics` merged in (see the module's text).
pub fn merge(mut old: Families, metrics: &[Metric]) -> Families {
    for m in metrics {
        let f = old.entry(m.name.to_string()).or_default();
        f.help = m.help.to_string();
        f.kind = "gauge".into();
        if m.whole {
            f.samples.clear();
        }
        for (labels, value) in &m.samples {
            f.samples
                .retain(|s| !(s.name == m.name && same_labels(&s.labels, labels)));
            f.samples.push(Sample {
                name: m.name.to_string(),
                labels: labels.clone(),
                value: format!("{value}"),
            });
        }
    }
    old
}

/// Whether two label sets are equal, in any order.
fn same_labels(a: &Labels, b: &Labels) -> bool {
    let mut a = a.clone();
    let mut b = b.clone();
    a.sort();
    b.sort();
    a == b
}

/// Read the file at `path` (if any), merge, and replace it atomically.
fn write_textfile(path: &Path, metrics: &[Metric]) -> anyhow::Result<()> {
    let old = match std::fs::read_to_string(path) {
        Ok(t) => text::parse(&t).map_err(|e| {
            anyhow::anyhow!("the file holds something else than metrics ({e}); left as it is")
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Families::new(),
        Err(e) => return Err(e.into()),
    };
    let body = text::render(&merge(old, metrics));
    write_atomic(path, body.as_bytes())
}

/// Replace `path` with `bytes`: a new file `.NAME.PID.tmp` beside it (node_exporter reads only
/// `*.prom`), synced, mode 644, renamed over `path`, the directory synced.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp); // left by a crashed run with the same pid
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(result?)
}
