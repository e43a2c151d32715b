//! `snapshots --check-overdue`: the newest snapshot of each host and set of paths against
//! `--max-age` ([`tresor_core::overdue`]); exit 6 when any is overdue.

use crate::args::SnapshotsArgs;
use crate::context::Context;
use crate::exit;
use crate::render::overdue::Overdue;
use crate::render::{self, Diagnostics, Level};
use anyhow::{Context as _, Result, bail};
use tresor_core::overdue::{self, DEFAULT_MAX_AGE};
use tresor_core::retention::parse_duration;
use tresor_core::snapshots::SnapshotFilter;

pub fn run(ctx: &Context, a: &SnapshotsArgs) -> Result<i32> {
    let max_age = match &a.max_age {
        Some(s) => parse_duration(s).with_context(|| format!("--max-age {s:?}"))?,
        None => DEFAULT_MAX_AGE,
    };
    if max_age.is_zero() {
        bail!("--max-age: give a duration longer than zero (e.g. 26h, 1d12h)");
    }
    let repo = ctx.open()?;
    if !repo.key().can_read() {
        return Err(tresor_core::CoreError::PutOnly(
            "checking for overdue snapshots (their times are encrypted)",
        )
        .into());
    }
    let (list, bad) = repo.load_snapshots()?;
    let filter = SnapshotFilter::from(&a.filter);
    let now = tresor_core::time::now_local();
    let groups = overdue::check(
        list.iter()
            .filter(|(_, s)| filter.matches(s))
            .map(|(id, s)| (id, s)),
        now.timestamp(),
        overdue::cutoff(&now, &max_age),
    );
    let skipped = bad
        .iter()
        .map(|s| (Level::Warning, super::snapshots::skipped_line(s)));
    render::emit(&Diagnostics(skipped.collect()), ctx.mode())?;
    render::emit(&Overdue::new(&groups, max_age, now.timestamp()), ctx.mode())?;
    if a.metrics.metrics_textfile.is_some() || a.metrics.pushgateway.is_some() {
        crate::metrics::overdue(&a.metrics, &groups);
    }
    let code = if groups.iter().any(|g| g.state.is_overdue()) {
        exit::OVERDUE
    } else {
        exit::OK
    };
    if let Some(cfg) = &a.notify {
        let answer = Overdue::new(&groups, max_age, now.timestamp());
        notify(cfg, a.metrics.profile.as_deref(), &answer, code);
    }
    Ok(code)
}

/// Tell the profile's notification targets how the check went: `failure` (exit 6) with one
/// log line per overdue or future group (names by the display rule), else `success` — so a
/// healthchecks URL also notices when the watching machine stops checking.
fn notify(cfg: &crate::notify::Config, profile: Option<&str>, answer: &Overdue, code: i32) {
    use crate::notify::{Event, Kind};
    let lines: Vec<String> = (answer.groups.iter())
        .filter(|g| g.state.is_overdue())
        .map(|g| {
            format!(
                "{} {}: last snapshot {} ({}, max age {})",
                render::escape_controls(g.host),
                render::escape_controls(&g.paths.join(" ")),
                render::escape_controls(g.time),
                format!("{:?}", g.state).to_lowercase(),
                answer.max_age
            )
        })
        .collect();
    let event = Event {
        profile: profile.unwrap_or_default().to_string(),
        host: crate::notify::hostname(),
        kind: if code == exit::OK {
            Kind::Success
        } else {
            Kind::Failure
        },
        step: "overdue".into(),
        exit_code: Some(code),
        snapshot_id: None,
        summary: serde_json::to_value(answer).ok(),
        log_tail: lines.join("\n"),
    };
    crate::notify::send(cfg, &event);
}
