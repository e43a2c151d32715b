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
    let now = jiff::ZonedDateTime::now();
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
    // The place where an overdue result is notified (issue 16's notifications): the groups
    // with `state.is_overdue()`.
    Ok(if groups.iter().any(|g| g.state.is_overdue()) {
        exit::OVERDUE
    } else {
        exit::OK
    })
}
