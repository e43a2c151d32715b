use crate::args::ForgetArgs;
use crate::context::Context;
use crate::exit;
use crate::render::forget::{ByIds, Decisions, DryRun, Removed, future_note, group_name};
use crate::render::{self, Diagnostics};
use anyhow::{Context as _, Result, bail};
use tresor_core::Repository;
use tresor_core::forget;
use tresor_core::retention::{
    GroupBy, KeepCount, RetentionDuration, RetentionPolicy, parse_tag_list,
};
use tresor_core::snapshots::{SnapshotFilter, find, skipped_matching};
use tresor_format::ObjectId;

fn count(flag: &str, v: &Option<String>) -> Result<Option<KeepCount>> {
    v.as_deref()
        .map(|s| {
            s.parse::<KeepCount>()
                .with_context(|| format!("--{flag} {s:?}"))
        })
        .transpose()
}

fn duration(flag: &str, v: &Option<String>) -> Result<Option<RetentionDuration>> {
    v.as_deref()
        .map(|s| {
            s.parse::<RetentionDuration>()
                .with_context(|| format!("--{flag} {s:?}"))
        })
        .transpose()
}

fn policy(a: &ForgetArgs) -> Result<RetentionPolicy> {
    Ok(RetentionPolicy {
        keep_last: count("keep-last", &a.keep_last)?,
        keep_hourly: count("keep-hourly", &a.keep_hourly)?,
        keep_daily: count("keep-daily", &a.keep_daily)?,
        keep_weekly: count("keep-weekly", &a.keep_weekly)?,
        keep_monthly: count("keep-monthly", &a.keep_monthly)?,
        keep_yearly: count("keep-yearly", &a.keep_yearly)?,
        keep_within: duration("keep-within", &a.keep_within)?,
        keep_within_hourly: duration("keep-within-hourly", &a.keep_within_hourly)?,
        keep_within_daily: duration("keep-within-daily", &a.keep_within_daily)?,
        keep_within_weekly: duration("keep-within-weekly", &a.keep_within_weekly)?,
        keep_within_monthly: duration("keep-within-monthly", &a.keep_within_monthly)?,
        keep_within_yearly: duration("keep-within-yearly", &a.keep_within_yearly)?,
        keep_tags: a.keep_tags.iter().map(|t| parse_tag_list(t)).collect(),
    })
}

pub fn run(ctx: &Context, a: &ForgetArgs) -> Result<i32> {
    let policy = policy(a)?;
    let group_by: GroupBy = a
        .group_by
        .parse()
        .with_context(|| format!("--group-by {:?}", a.group_by))?;
    let repo = ctx.open()?;
    let filter = SnapshotFilter::from(&a.filter);
    let remove = if !a.snapshots.is_empty() {
        if !policy.is_empty() {
            bail!("give either snapshot ids or a policy, not both");
        }
        let remove = by_ids(&repo, &a.snapshots, &filter)?;
        render::emit(&ByIds(&remove), ctx.mode())?;
        remove
    } else {
        if policy.is_empty() {
            bail!("no policy given: use --keep-* options or name snapshots to forget");
        }
        by_policy(ctx, &repo, &policy, group_by, &filter)?
    };
    if a.dry_run {
        render::emit(&DryRun(remove.len()), ctx.mode())?;
        // The prune plan is made from the repository as it is (nothing was removed).
        return if a.prune {
            super::prune::run(ctx, &prune_args(true))
        } else {
            Ok(exit::OK)
        };
    }
    let done = forget::remove(&repo, &remove)?;
    let removed = Removed {
        deleted: done.deleted.len(),
        locked: (done.locked.iter())
            .map(|(id, until)| (*id, tresor_core::time::human_system(*until)))
            .collect(),
        pruning: a.prune,
    };
    if a.prune {
        render::emit(&removed, ctx.mode())?;
    } else {
        render::emit(&ctx.with_requests(&removed), ctx.mode())?;
    }
    if a.prune {
        return super::prune::run(ctx, &prune_args(false));
    }
    Ok(exit::OK)
}

/// The snapshots `specs` name (id prefixes or `latest`). A damaged snapshot (or one of a
/// revoked key) can be forgotten by its id too: that is how it is removed before a prune.
fn by_ids(repo: &Repository, specs: &[String], filter: &SnapshotFilter) -> Result<Vec<ObjectId>> {
    let (list, skipped) = repo.load_snapshots()?;
    let unreadable = |spec: &str| {
        let mut it = skipped_matching(&skipped, spec);
        match (it.next(), it.next()) {
            (Some(one), None) => Some(one.id),
            _ => None,
        }
    };
    Ok(specs
        .iter()
        .map(|s| match find(&list, &skipped, s, filter) {
            Ok((id, _)) => Ok(*id),
            Err(e) => unreadable(s).ok_or(e),
        })
        .collect::<Result<_, _>>()?)
}

/// The snapshots the policy removes, after showing its decisions. Refuses a policy that would
/// remove every snapshot of a group.
fn by_policy(
    ctx: &Context,
    repo: &Repository,
    policy: &RetentionPolicy,
    group_by: GroupBy,
    filter: &SnapshotFilter,
) -> Result<Vec<ObjectId>> {
    let zone = tresor_core::time::local_zone();
    let plan = forget::plan_policy(repo, policy, group_by, filter, &zone)?;
    let notes = plan.future.iter().map(|(id, time)| {
        let shown = tresor_core::time::human_recorded(time, &zone);
        future_note(id, &shown.unwrap_or_else(|| render::quoted(time)))
    });
    render::emit(&Diagnostics(notes.collect()), ctx.mode())?;
    if let Some(g) = plan.groups.iter().find(|g| g.keeps_none()) {
        let group = group_name(g).unwrap_or_else(|| "all snapshots".into());
        bail!("the policy would remove every snapshot of the group ({group}); refusing");
    }
    let remove = (plan.groups.iter())
        .flat_map(|g| g.removed().map(|id| id.parse::<ObjectId>()))
        .collect::<Result<_, _>>()?;
    let decisions = Decisions {
        policy,
        groups: &plan.groups,
        snapshots: &plan.snapshots,
        zone,
    };
    render::emit(&decisions, ctx.mode())?;
    Ok(remove)
}

/// `prune` with its defaults, for `forget --prune`.
fn prune_args(dry_run: bool) -> crate::args::PruneArgs {
    crate::args::PruneArgs {
        dry_run,
        max_unused: "5%".into(),
        max_repack_size: None,
        inactive_hosts: Vec::new(),
        cold_early_delete: false,
    }
}
