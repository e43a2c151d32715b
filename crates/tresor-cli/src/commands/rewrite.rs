//! `tresor rewrite`: snapshots without excluded paths.

use crate::args::RewriteArgs;
use crate::context::Context;
use crate::exit;
use crate::render::{self, rewrite::RewriteSummary};
use anyhow::{Result, bail};
use tresor_core::edit::rewrite::{RewriteOptions, rewrite};
use tresor_core::exclude::PatternSet;

pub fn run(ctx: &Context, a: &RewriteArgs) -> Result<i32> {
    let mut patterns = a.excludes.clone();
    for f in &a.exclude_files {
        patterns.extend(PatternSet::read_file(f)?);
    }
    let mut ipatterns = a.iexcludes.clone();
    for f in &a.iexclude_files {
        ipatterns.extend(PatternSet::read_file(f)?);
    }
    let excludes = PatternSet::new(&patterns)?.with_insensitive(&ipatterns)?;
    if excludes.is_empty() {
        bail!(
            "nothing to leave out: give --exclude, --exclude-file, --iexclude or --iexclude-file"
        );
    }
    let repo = ctx.open()?;
    repo.require_read("rewrite")?;
    let snaps = super::tag::select(&repo, &a.snapshots, &(&a.filter).into())?;
    let (snaps, refused) = super::tag::vouched(&repo, snaps, a.trust_privileged)?;
    let opts = RewriteOptions {
        excludes,
        forget: a.forget,
        dry_run: a.dry_run,
        workers: super::workers(),
    };
    let report = rewrite(&repo, &snaps, &opts)?;
    render::emit(&RewriteSummary::new(&report, a.dry_run), ctx.mode())?;
    Ok(if refused { exit::ERROR } else { exit::OK })
}
