use super::thaw::Needed;
use crate::args::RestoreArgs;
use crate::context::Context;
use crate::exit;
use crate::progress::Bar;
use crate::render::{self, restore::Restored};
use anyhow::Result;
use tresor_core::exclude::PatternSet;
use tresor_core::metapolicy::XattrFilter;
use tresor_core::repo::trust::Verdict;
use tresor_core::restorer::{self, Overwrite, RestoreOptions, RestoreResult};
use tresor_core::snapshots::find;

pub fn run(ctx: &Context, a: &RestoreArgs) -> Result<i32> {
    let (spec, sub) = super::split_snapshot_path(&a.snapshot);
    let repo = ctx.open()?;
    repo.require_read("restore")?;
    let (list, skipped) = repo.load_snapshots()?;
    let (id, snap) = find(&list, &skipped, &spec, &(&a.filter).into())?;
    // Privileged metadata only from snapshots of full keys, unless the admin says otherwise.
    let verdict = repo.snapshot_verdict(id)?;
    // Trees and this snapshot's data only: memory bounded by the repository's trees and the
    // snapshot's own data, not by the repository's data.
    let index = repo.load_index_below(&snap.tree, repo.snapshot_signer(id).ok())?;
    let mut opts = RestoreOptions {
        subpath: sub.to_vec(),
        includes: PatternSet::new(&a.includes)?,
        excludes: PatternSet::new(&a.excludes)?,
        verify: a.verify,
        overwrite: a.overwrite.parse::<Overwrite>()?,
        workers: super::restore_workers(ctx),
        owner: !a.no_owner,
        special_files: !a.no_special_files,
        xattrs: XattrFilter::new(&a.include_xattrs, &a.exclude_xattrs)?,
        privileged: verdict == Verdict::Full || a.trust_privileged,
        signer: repo.snapshot_signer(id).ok(),
        dry_run: a.dry_run,
        delete: a.delete,
        ..RestoreOptions::new(a.target.clone())
    };
    // What the subpath names, whatever the patterns (docs/cli.md "Cold tier").
    let needed = Needed::Below {
        index: &index,
        root: &snap.tree,
        path: &opts.subpath,
    };
    // Packs still thawing when the wait ends: the files needing them wait for a rerun, the
    // others are restored now ("ready first").
    let thawed = super::thaw::thawed(ctx, &a.thaw, &repo, needed, a.dry_run)?;
    let thawing = thawed.filter(|t| !t.complete && !a.dry_run);
    if let Some(t) = &thawing {
        opts.skip_packs = t.pending.iter().copied().collect();
    }
    let bar = Bar::new(ctx.progress(), "restore");
    let r = restorer::restore(&repo, &index, snap, &opts, &bar);
    bar.finish();
    let r = r?;
    let restored = Restored {
        result: &r,
        snapshot: *id,
        full_key_snapshot: verdict == Verdict::Full,
        privileged: opts.privileged,
        overwrite: &a.overwrite,
        target: &a.target,
        verify: a.verify,
        no_owner: a.no_owner,
        dry_run: a.dry_run,
    };
    render::emit(&ctx.with_requests(&restored), ctx.mode())?;
    let code = code(&r, thawing.is_some());
    if code == exit::THAWING {
        return Ok(super::thaw::still_thawing());
    }
    Ok(code)
}

/// Damage wins (5), then other problems (1), then packs still thawing (9), then differences
/// (4).
fn code(r: &RestoreResult, thawing: bool) -> i32 {
    if r.problems.iter().any(|p| p.damage) {
        exit::DAMAGED
    } else if !r.problems.is_empty() {
        exit::ERROR
    } else if thawing {
        exit::THAWING
    } else if r.has_differences() {
        exit::DIFFERENCES
    } else {
        exit::OK
    }
}
