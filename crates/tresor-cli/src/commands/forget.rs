use crate::cli::ForgetArgs;
use crate::context::Context;
use crate::exit;
use anyhow::{Context as _, Result, bail};
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

#[allow(clippy::too_many_lines, reason = "split by r12-core/r12-cli")]
pub fn run(ctx: &Context, a: &ForgetArgs) -> Result<i32> {
    let policy = policy(a)?;
    let group_by: GroupBy = a
        .group_by
        .parse()
        .with_context(|| format!("--group-by {:?}", a.group_by))?;
    let repo = ctx.open()?;
    let filter = SnapshotFilter::from(&a.filter);
    let remove: Vec<ObjectId>;
    if !a.snapshots.is_empty() {
        if !policy.is_empty() {
            bail!("give either snapshot ids or a policy, not both");
        }
        let (list, skipped) = repo.load_snapshots()?;
        // A damaged snapshot (or one of a revoked key) can be forgotten by its id too: that is
        // how it is removed before a prune.
        let unreadable = |spec: &str| {
            let mut it = skipped_matching(&skipped, spec);
            match (it.next(), it.next()) {
                (Some(one), None) => Some(one.id),
                _ => None,
            }
        };
        remove = a
            .snapshots
            .iter()
            .map(|s| match find(&list, &skipped, s, &filter) {
                Ok((id, _)) => Ok(*id),
                Err(e) => unreadable(s).ok_or(e),
            })
            .collect::<Result<_, _>>()?;
        if !ctx.json && !ctx.quiet {
            for id in &remove {
                println!("remove {}", id.short());
            }
        }
    } else {
        if policy.is_empty() {
            bail!("no policy given: use --keep-* options or name snapshots to forget");
        }
        let forget::PolicyPlan { groups, future } = forget::plan_policy(
            &repo,
            &policy,
            group_by,
            &filter,
            &jiff::tz::TimeZone::system(),
        )?;
        for (id, time) in &future {
            eprintln!(
                "note: snapshot {} is dated {time:?}, more than a day ahead of this clock: the policy neither keeps nor removes it (forget it by id)",
                id.short()
            );
        }
        if let Some(g) = groups.iter().find(|g| g.keeps_none()) {
            bail!(
                "the policy would remove every snapshot of group {:?}; refusing",
                g.key
            );
        }
        remove = groups
            .iter()
            .flat_map(|g| g.removed().map(|id| id.parse::<ObjectId>()))
            .collect::<Result<_, _>>()?;
        if ctx.json {
            println!("{}", serde_json::to_string_pretty(&groups)?);
        } else if !ctx.quiet {
            println!("Applying policy: {policy}");
            for g in &groups {
                // Only the fields the snapshots are grouped by (restic's wording).
                let mut parts = Vec::new();
                if let Some(h) = &g.key.host {
                    parts.push(format!("host {h:?}"));
                }
                if let Some(p) = &g.key.paths {
                    parts.push(format!("paths [{}]", p.join(", ")));
                }
                if let Some(t) = &g.key.tags {
                    parts.push(format!("tags [{}]", t.join(", ")));
                }
                if parts.is_empty() {
                    println!("all snapshots:");
                } else {
                    println!("snapshots for {}:", parts.join(", "));
                }
                for d in &g.decisions {
                    let verdict = if d.keep {
                        format!("keep    ({})", d.reasons.join(", "))
                    } else {
                        "remove".to_string()
                    };
                    println!("  {} {verdict}", &d.id[..8]);
                }
            }
        }
    }
    if a.dry_run {
        if !ctx.json && !ctx.quiet {
            println!("dry run: {} snapshots would be removed", remove.len());
        }
        // The prune plan is made from the repository as it is (nothing was removed).
        return if a.prune {
            super::prune::run(ctx, &prune_args(true))
        } else {
            Ok(exit::OK)
        };
    }
    let done = forget::remove(&repo, &remove)?;
    for (id, until) in &done.locked {
        eprintln!(
            "note: snapshot {} is under the storage's object lock until {}: not removed (forget it again after that)",
            id.short(),
            tresor_core::repository::rfc3339_utc(*until)
        );
    }
    if a.prune {
        if !ctx.json && !ctx.quiet {
            println!("removed {} snapshots; pruning", done.deleted.len());
        }
        return super::prune::run(ctx, &prune_args(false));
    }
    if !ctx.json && !ctx.quiet {
        println!(
            "removed {} snapshots; run `tresor prune` to free their data",
            done.deleted.len()
        );
    }
    Ok(exit::OK)
}

/// `prune` with its defaults, for `forget --prune`.
fn prune_args(dry_run: bool) -> crate::cli::PruneArgs {
    crate::cli::PruneArgs {
        dry_run,
        max_unused: "5%".into(),
        max_repack_size: None,
        inactive_hosts: Vec::new(),
    }
}
