//! `tresor prune`: print the plan, then carry it out (format §16: two-phase, lock-free).

use crate::args::PruneArgs;
use crate::context::Context;
use crate::exit;
use crate::progress::{Bar, Show};
use crate::render;
use crate::render::prune::{Announced, Pruned};
use anyhow::Result;
use tresor_core::prune::{self, MaxUnused, PruneOptions, parse_size};

pub fn run(ctx: &Context, a: &PruneArgs) -> Result<i32> {
    let max_unused: MaxUnused = a.max_unused.parse()?;
    let max_repack_size = a.max_repack_size.as_deref().map(parse_size).transpose()?;
    let repo = ctx.open()?;
    let opts = PruneOptions {
        max_unused,
        max_repack_size,
        inactive_hosts: a.inactive_hosts.clone(),
        workers: super::workers(),
        cold_probe: super::thaw::can_be_cold(ctx),
        cold_early_delete: a.cold_early_delete,
    };
    let planning = Bar::new(
        Show::bar_if(ctx.progress_enabled()),
        "prune: listing and marking",
    );
    let plan = prune::plan(&repo, &opts);
    planning.finish();
    let plan = plan?;
    if a.dry_run {
        let pruned = Pruned::dry_run(&plan);
        render::emit(&savings(ctx, &plan, ctx.with_requests(&pruned)), ctx.mode())?;
        return Ok(exit::OK);
    }
    render::emit(&Announced(&plan), ctx.mode())?;
    let bar = Bar::new(Show::bar_if(ctx.progress_enabled()), "prune");
    tresor_core::Progress::phase(&bar, "prune: repacking", "packs", plan.repack.len() as u64);
    let stats = plan.execute(&repo, &bar);
    bar.finish();
    let stats = stats?;
    render::emit(&ctx.with_requests(&Pruned::done(&plan, &stats)), ctx.mode())?;
    Ok(exit::OK)
}

/// A dry run's outcome with what the plan would save a month: the bytes it frees now and
/// condemns for later, less those the repack writes again, at the packs' class price
/// (`saves_per_month`, `null` when the class has no price).
fn savings<'a, O: render::Outcome>(
    ctx: &Context,
    plan: &tresor_core::prune::PrunePlan,
    with: render::requests::WithRequests<'a, O>,
) -> render::requests::WithRequests<'a, O> {
    let freed =
        (plan.bytes_freed.saturating_add(plan.bytes_condemned)).saturating_sub(plan.repack_bytes);
    let (value, line) = match ctx.data_prices() {
        Ok((prices, class)) => {
            let v = crate::prices::monthly_of(&prices, &class, freed);
            let shown = v.map_or("no price".into(), render::cost::dollars);
            (
                v,
                format!(
                    "Would save:  {shown}/month ({} at {class})",
                    crate::output::bytes(freed)
                ),
            )
        }
        Err(e) => (None, format!("Would save:  unknown ({e:#})")),
    };
    with.and("saves_per_month", serde_json::json!(value), line)
}
