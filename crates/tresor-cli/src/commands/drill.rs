use crate::args::DrillArgs;
use crate::context::{Context, hostname};
use crate::exit;
use crate::render::{self, drill::History, drill::Report};
use anyhow::{Result, bail};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use tresor_core::drill::sample::Budget;
use tresor_core::drill::{DrillOptions, DrillOutcome, latest_per_group, plan, record, run_plan};
use tresor_core::repo::{Defect, Skipped, SnapshotList};
use tresor_core::snapshots::{SnapshotFilter, find};
use tresor_core::{CoreError, NoProgress};
use tresor_format::drill::DrillResult;

/// Files a drill restores when no budget is given.
const DEFAULT_SAMPLE: u64 = 20;

/// `drill` (or `--history`), then the drill's metrics (when asked for) whatever the outcome.
pub fn run(ctx: &Context, a: &DrillArgs) -> Result<i32> {
    if a.history {
        return history(ctx);
    }
    let r = drill_once(ctx, a);
    if a.metrics.metrics_textfile.is_some() || a.metrics.pushgateway.is_some() {
        let code = r.as_ref().map_or_else(exit::code, |d| d.0);
        let outcome = r.as_ref().ok().and_then(|d| d.1.as_ref());
        crate::metrics::drill(&a.metrics, code, outcome);
    }
    r.map(|d| d.0)
}

/// The repository, with a key that can read (a put-only key cannot drill: exit 13).
fn open_readable(ctx: &Context) -> Result<tresor_core::Repository> {
    let repo = ctx.open()?;
    if !repo.key().can_read() {
        return Err(
            CoreError::PutOnly("drilling (a put-only key cannot drill: it cannot read)").into(),
        );
    }
    Ok(repo)
}

/// `drill --history`: the past drills.
fn history(ctx: &Context) -> Result<i32> {
    let repo = open_readable(ctx)?;
    let index = repo.load_index()?;
    let (list, _) = repo.load_snapshots()?;
    let (records, ignored) = record::load_trusted(&repo)?;
    let present: Vec<_> = list.iter().map(|(id, _)| *id).collect();
    render::emit(
        &History::new(&index, &records, &present, ignored),
        ctx.mode(),
    )?;
    Ok(exit::OK)
}

/// One drill: its exit code and outcome (none when cold data is still thawing: exit 9).
fn drill_once(ctx: &Context, a: &DrillArgs) -> Result<(i32, Option<DrillOutcome>)> {
    let repo = open_readable(ctx)?;
    let index = repo.load_index()?;
    // The repository's snapshots, not this machine's cache of them: a drill proves what a
    // restore from the repository gets (a damaged snapshot object is not drilled from a copy).
    let (list, skipped) = repo.load_snapshots_from_storage()?;
    let chosen = choose(a, &list, &skipped)?;
    let here = hostname();
    if a.compare_source && !chosen.iter().any(|(_, s)| s.hostname == here) {
        render::say(format!(
            "warning: --compare-source compares nothing: no drilled snapshot is of this host \
             ({}); drill on the host that made them",
            render::escape_controls(&here)
        ));
    }
    let sandbox = Sandbox::create(a.target.as_deref())?;
    let opts = DrillOptions {
        budget: budget(a)?,
        sandbox: sandbox.0.clone(),
        compare_source: a.compare_source.then(|| here.clone()),
        seed: a.seed,
        hostname: here,
        workers: super::restore_workers(ctx),
    };
    let plan = plan(&repo, &index, &chosen, &opts)?;
    // On a cold tier the sample's packs are thawed first; the estimate adds the thaw's wait.
    let packs = plan.data_packs(&index);
    let needed = super::thaw::Needed::Packs(&packs);
    let thawed = super::thaw::thawed(ctx, &a.thaw, &repo, needed, false)?;
    if thawed.as_ref().is_some_and(|t| !t.complete) {
        return Ok((super::thaw::still_thawing(), None));
    }
    let outcome = run_plan(&repo, &index, plan, &chosen, &list, &opts, &NoProgress);
    drop(sandbox);
    let mut outcome = outcome?;
    if thawed.is_some_and(|t| t.cold.packs > 0) {
        let wait = super::thaw::typical_wait_secs(ctx, &a.thaw);
        for e in outcome.estimates.iter_mut().chain(outcome.hosts.iter_mut()) {
            e.thaw_seconds = wait;
        }
    }
    render::emit(&Report::new(&outcome), ctx.mode())?;
    let code = match outcome.result {
        DrillResult::Passed => exit::OK,
        DrillResult::Failed => exit::DRILL_FAILED,
    };
    Ok((code, Some(outcome)))
}

/// The snapshots to drill: `--snapshot` ones, else the latest of every host and path set the
/// filter passes.
fn choose(a: &DrillArgs, list: &SnapshotList, skipped: &[Skipped]) -> Result<SnapshotList> {
    let filter: SnapshotFilter = (&a.filter).into();
    let chosen = if a.snapshots.is_empty() {
        latest_per_group(list, &filter)
    } else {
        let mut v = Vec::new();
        for spec in &a.snapshots {
            let found = find(list, skipped, spec, &filter)?.clone();
            if !v.iter().any(|(id, _)| *id == found.0) {
                v.push(found);
            }
        }
        v
    };
    if chosen.is_empty() {
        let damaged: Vec<&Skipped> = skipped
            .iter()
            .filter(|s| s.defect != Defect::Ignored)
            .collect();
        if let Some(bad) = damaged.first() {
            return Err(CoreError::Damaged(format!(
                "no snapshot to drill: none that matches could be loaded; {} snapshot object(s) \
                 could not be, the first {}: {} (`tresor check` names them all)",
                damaged.len(),
                bad.id.short(),
                bad.error
            ))
            .into());
        }
        bail!("no snapshot to drill: the repository has none that matches");
    }
    Ok(chosen)
}

/// `--sample`, `--sample-bytes` or `--share`.
fn budget(a: &DrillArgs) -> Result<Budget> {
    if let Some(s) = &a.sample_bytes {
        return Ok(Budget::Bytes(tresor_core::prune::parse_size(s)?));
    }
    if let Some(s) = &a.share {
        let p: f64 = s
            .trim()
            .trim_end_matches('%')
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("--share {s:?}: a percentage such as 10% (0-100)"))?;
        if !(0.0..=100.0).contains(&p) || p == 0.0 {
            bail!("--share {s:?}: a percentage above 0 and at most 100");
        }
        return Ok(Budget::Share(p));
    }
    Ok(Budget::Files(a.sample.unwrap_or(DEFAULT_SAMPLE)))
}

/// The directory restored into: a fresh private folder (mode 0700) in `--target` or the
/// temporary directory, removed when dropped.
struct Sandbox(PathBuf);

impl Sandbox {
    fn create(target: Option<&Path>) -> Result<Self> {
        let parent = target.map_or_else(std::env::temp_dir, Path::to_path_buf);
        std::fs::create_dir_all(&parent).map_err(|e| CoreError::io(&parent, e))?;
        let nonce = tresor_format::drill::DrillRecord::new_nonce()?;
        let dir = parent.join(format!("tresor-drill-{}", &nonce[..16]));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| CoreError::io(&dir, e))?;
        Ok(Sandbox(dir))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
