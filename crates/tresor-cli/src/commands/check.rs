use super::thaw::Needed;
use crate::args::CheckArgs;
use crate::context::Context;
use crate::exit;
use crate::progress::{Bar, Show};
use crate::render::{self, check::Checked};
use anyhow::{Context as _, Result, bail};
use tresor_core::CoreError;
use tresor_core::check::{BeforeRead, CheckReport, ReadData, check_thawing};
use tresor_format::ObjectId;

fn parse_subset(s: &str) -> Result<ReadData> {
    if let Some(p) = s.strip_suffix('%') {
        let p: f64 = p
            .trim()
            .parse()
            .with_context(|| format!("--read-data-subset {s:?}"))?;
        if !(0.0..=100.0).contains(&p) {
            bail!("--read-data-subset {s:?}: percentage must be 0–100");
        }
        return Ok(ReadData::Percent(p));
    }
    let (n, m) = s
        .split_once('/')
        .with_context(|| format!("--read-data-subset {s:?}: use N/M or P%"))?;
    let (n, m): (u32, u32) = (n.trim().parse()?, m.trim().parse()?);
    if m == 0 || n == 0 || n > m {
        bail!("--read-data-subset {s:?}: need 1 ≤ N ≤ M");
    }
    Ok(ReadData::Subset(n, m))
}

/// `check`, then its metrics (when asked for) whatever the outcome.
pub fn run(ctx: &Context, a: &CheckArgs) -> Result<i32> {
    let r = check(ctx, a);
    if a.metrics.metrics_textfile.is_some() || a.metrics.pushgateway.is_some() {
        let code = r.as_ref().map_or_else(exit::code, |c| c.0);
        let report = r.as_ref().ok().map(|c| &c.1);
        crate::metrics::check(&a.metrics, code, report);
    }
    r.map(|c| c.0)
}

/// The check's exit code and report.
fn check(ctx: &Context, a: &CheckArgs) -> Result<(i32, CheckReport)> {
    let which = match (&a.read_data_subset, a.read_data) {
        (Some(s), _) => parse_subset(s)?,
        (None, true) => ReadData::All,
        (None, false) => ReadData::None,
    };
    let repo = ctx.open()?;
    let bar = Bar::new(Show::bar_if(ctx.progress_enabled()), "check");
    // The packs chosen to be read are thawed first (docs/cli.md "Cold tier").
    let mut thawing = None;
    let mut thaw = |ids: &[ObjectId]| -> tresor_core::Result<bool> {
        thawing =
            super::thaw::prepare(ctx, &a.thaw, &repo, Needed::Packs(ids), false).map_err(|e| {
                e.downcast::<CoreError>()
                    .unwrap_or_else(|e| CoreError::Invalid(format!("{e:#}")))
            })?;
        Ok(thawing.is_none())
    };
    let before = BeforeRead {
        prefer: super::thaw::preferred(ctx, &a.thaw, &repo),
        thaw: &mut thaw,
    };
    let r = check_thawing(&repo, which, &bar, before);
    bar.finish();
    let r = r?;
    let checked = Checked::new(&r, which != ReadData::None);
    render::emit(&ctx.with_requests(&checked), ctx.mode())?;
    let code = match thawing {
        _ if !r.errors.is_empty() => exit::DAMAGED,
        Some(t) => {
            render::say(format!(
                "{} packs ({} bytes) chosen to be read are still thawing: no pack was read",
                t.packs, t.bytes
            ));
            super::thaw::still_thawing()
        }
        // Asked to read packs it could not: not damage, not a clean check either.
        None if r.packs_cold > 0 => exit::ERROR,
        None => exit::OK,
    };
    Ok((code, r))
}
