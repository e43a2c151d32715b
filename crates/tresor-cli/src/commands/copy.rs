use super::thaw::Needed;
use crate::args::CopyArgs;
use crate::context::Context;
use crate::exit;
use crate::password::{PasswordSource, read_file, run_command};
use crate::progress::{Bar, Show};
use crate::render::{self, copy::Copied};
use anyhow::{Context as _, Result, bail};
use std::path::PathBuf;
use tresor_core::Repository;
use tresor_core::copy::{CopyOptions, copy, read_record};
use tresor_core::repo::index::IdSet;
use tresor_core::snapshots::{SnapshotFilter, find};
use tresor_format::snapshot::Snapshot;
use tresor_format::{BlobId, ObjectId};

pub fn run(ctx: &Context, a: &CopyArgs) -> Result<i32> {
    let src_ctx = source_context(ctx, a);
    let src = open_source(&src_ctx, a)?;
    let dst = ctx.open()?;
    let selected = select(&src, a)?;
    // A put-only target key signs as a put-only key: nothing to vouch for.
    let trust = a.trust_privileged || !dst.key().can_read();
    let (selected, refused) = super::tag::vouched(&src, selected, trust)?;
    let record = record_path(ctx, &dst);
    let opts = CopyOptions {
        workers: super::workers(),
        copied: record.as_deref().map(read_record).unwrap_or_default(),
        record,
    };
    let index = src.load_index()?;
    // Thaw the source's packs the copy reads first (docs/cli.md "Cold tier").
    if super::thaw::wanted(&src_ctx, &a.thaw) {
        let roots = to_read(&dst, &selected, &opts.copied)?;
        let needed = Needed::Trees {
            index: &index,
            roots: &roots,
        };
        if super::thaw::prepare(&src_ctx, &a.thaw, &src, needed, false)?.is_some() {
            return Ok(super::thaw::still_thawing());
        }
    }
    let bar = Bar::new(Show::bar_if(ctx.progress_enabled()), "copy");
    let r = copy(&src, &index, &dst, &selected, &opts, &bar);
    bar.finish();
    let r = r?;
    for n in &r.notices {
        render::say(format!("warning: {n}"));
    }
    render::emit(&ctx.with_requests(&Copied::new(&r, &selected)), ctx.mode())?;
    Ok(if refused { exit::ERROR } else { exit::OK })
}

/// The root trees of the selected snapshots the target lacks as far as known (a full
/// target's `original`s, a put-only target's record): the data the copy reads.
fn to_read(
    dst: &Repository,
    selected: &[(ObjectId, Snapshot)],
    copied: &IdSet<ObjectId>,
) -> Result<Vec<BlobId>> {
    let mut have = copied.clone();
    if dst.key().can_read() {
        let (list, _) = dst.load_snapshots()?;
        have.extend(list.iter().filter_map(|(_, s)| s.original));
    }
    let lacks = |(id, s): &&(ObjectId, Snapshot)| {
        !have.contains(id) && !s.original.is_some_and(|o| have.contains(&o))
    };
    Ok(selected.iter().filter(lacks).map(|(_, s)| s.tree).collect())
}

/// The context of the source repository: its location and password sources, the rest as the
/// target's (cache, S3 and server options).
fn source_context(ctx: &Context, a: &CopyArgs) -> Context {
    Context {
        location: a.from_repo.clone(),
        password: PasswordSource {
            file: a.from_password_file.clone(),
            command: a.from_password_command.clone(),
            insecure_file: ctx.password.insecure_file,
            profile: None,
            credential: None,
        },
        // The source opens with its own password sources, never the target's key file.
        key_file: None,
        json: ctx.json,
        quiet: ctx.quiet,
        verbose: ctx.verbose,
        cache_dir: ctx.cache_dir.clone(),
        open: ctx.open.clone(),
        // Both repositories' requests count for the run (logged with the target's).
        requests: ctx.requests.clone(),
        repo_id: std::sync::OnceLock::new(),
        config_file: ctx.config_file.clone(),
    }
}

/// Open the source with its own password sources: `--from-password-file`,
/// `--from-password-command`, `TRESOR_FROM_PASSWORD`, else a prompt (never the target's).
fn open_source(src: &Context, a: &CopyArgs) -> Result<Repository> {
    let storage = src.storage()?;
    src.read_config(storage.as_ref())
        .with_context(|| format!("source repository {}", src.location))?;
    let pw = if let Some(f) = &a.from_password_file {
        read_file(f, src.password.insecure_file)?
    } else if let Some(c) = &a.from_password_command {
        run_command(c)?
    } else if let Ok(p) = std::env::var("TRESOR_FROM_PASSWORD") {
        p
    } else if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        rpassword::prompt_password(format!(
            "enter password for source repository {}: ",
            src.location
        ))
        .context("reading password")?
    } else {
        bail!(
            "no password given for the source repository: set TRESOR_FROM_PASSWORD, or use --from-password-file or --from-password-command"
        )
    };
    let repo = Repository::open_with(storage, &pw, src.cache_dir.as_deref())
        .with_context(|| format!("source repository {}", src.location))?;
    repo.require_read("copy (the source repository)")?;
    Ok(repo)
}

/// The source snapshots to copy: those named (each must exist), else all the filters pass;
/// oldest first, each once.
fn select(src: &Repository, a: &CopyArgs) -> Result<Vec<(ObjectId, Snapshot)>> {
    let (list, skipped) = src.load_snapshots()?;
    let filter: SnapshotFilter = (&a.filter).into();
    let mut out: Vec<(ObjectId, Snapshot)> = if a.snapshots.is_empty() {
        list.iter()
            .filter(|(_, s)| filter.matches(s))
            .cloned()
            .collect()
    } else {
        let mut v = Vec::new();
        for spec in &a.snapshots {
            v.push(find(&list, &skipped, spec, &filter)?.clone());
        }
        v
    };
    let mut seen = IdSet::default();
    out.retain(|(id, _)| seen.insert(*id));
    Ok(out)
}

/// Where a put-only target key records the source snapshots it copied (it cannot read the
/// target's snapshots to find them): `<cache>/<target repository id>/copied-<signer>`.
fn record_path(ctx: &Context, dst: &Repository) -> Option<PathBuf> {
    if dst.key().can_read() {
        return None;
    }
    let signer = hex::encode(dst.signer().public());
    let dir = ctx.cache_dir.as_ref()?.join(&dst.config().id);
    Some(dir.join(format!("copied-{}", &signer[..16])))
}
