use crate::args::BackupArgs;
use crate::context::{Context, hostname, username};
use crate::exit;
use crate::progress::{Bar, Show};
use crate::render::{self, backup::BackupSummary};
use anyhow::{Context as _, Result, bail};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tresor_core::Repository;
use tresor_core::archiver::{self, BackupOptions, BackupResult, ParentChoice, StdinSource};
use tresor_core::exclude::PatternSet;
use tresor_core::exclude::files_from::{self, FilesFrom};
use tresor_format::keyfile::KeyKind;

/// Absolute, lexically normalised path (`.` and `..` resolved without following symlinks).
fn normalize(p: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(p).with_context(|| format!("{}", p.display()))?;
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    Ok(out)
}

fn parse_time(s: &str) -> Result<jiff::ZonedDateTime> {
    let dt = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", s)
        .with_context(|| format!("--time {s:?}: expected \"YYYY-MM-DD HH:MM:SS\""))?;
    Ok(dt.to_zoned_datetime(tresor_core::time::local_zone())?)
}

/// What the metrics learn of a backup as it goes: host, paths, and the summary.
#[derive(Debug, Default)]
struct Seen {
    host: String,
    paths: Vec<String>,
    summary: Option<tresor_format::snapshot::SnapshotSummary>,
}

/// `backup`, then its metrics (when asked for, and not in a dry run) whatever the outcome.
pub fn run(ctx: &Context, a: BackupArgs) -> Result<i32> {
    let metrics = a.metrics.clone();
    let wanted = metrics.metrics_textfile.is_some() || metrics.pushgateway.is_some();
    let mut seen = Seen {
        host: a.host.clone().unwrap_or_else(hostname),
        paths: (a.paths.iter())
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        summary: None,
    };
    if !wanted || a.dry_run {
        return back_up_all(ctx, a, &mut seen);
    }
    let started = jiff::Timestamp::now();
    let r = back_up_all(ctx, a, &mut seen);
    let code = r.as_ref().map_or_else(exit::code, |c| *c);
    // Notifications of the outcome are `tresor run`'s (profile/run.rs), around the whole job.
    crate::metrics::backup(
        &metrics,
        &crate::metrics::BackupRun {
            host: &seen.host,
            paths: seen.paths.clone(),
            started,
            code,
            summary: seen.summary.as_ref(),
        },
    );
    r
}

fn back_up_all(ctx: &Context, a: BackupArgs, seen: &mut Seen) -> Result<i32> {
    let paths = sources(&a)?;
    seen.paths = (paths.iter())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let tags = tags(&a.tags)?;
    let mut patterns = a.excludes.clone();
    for f in &a.exclude_files {
        patterns.extend(PatternSet::read_file(f)?);
    }
    let mut ipatterns = a.iexcludes.clone();
    for f in &a.iexclude_files {
        ipatterns.extend(PatternSet::read_file(f)?);
    }
    let (repo, spooled) = super::spool::backup_target(ctx, a.spool.as_deref(), a.spool_always)?;
    if !spooled && !ctx.probe_conditional_writes()? {
        crate::render::say(format!(
            "WARNING: {} ignores conditional writes (If-None-Match: *): existing objects are not protected against overwrites",
            ctx.location
        ));
    }
    let parent = parent(&repo, &a)?;
    let cancel = stop_on_signals();
    let opts = BackupOptions {
        paths,
        excludes: PatternSet::new(&patterns)?.with_insensitive(&ipatterns)?,
        exclude_if_present: a.exclude_if_present.clone(),
        exclude_caches: a.exclude_caches,
        exclude_larger_than: a
            .exclude_larger_than
            .as_deref()
            .map(parse_size)
            .transpose()?,
        one_file_system: a.one_file_system,
        tags,
        hostname: host(&repo, &a),
        username: username(),
        time: match &a.time {
            Some(t) => parse_time(t)?,
            None => tresor_core::time::now_local(),
        },
        parent,
        dry_run: a.dry_run,
        stdin: a.stdin.then(|| StdinSource {
            filename: a.stdin_filename.clone(),
            reader: Box::new(std::io::stdin()),
        }),
        workers: super::workers(),
        cancel: Some(cancel),
        cache_dir: ctx.cache_dir.clone(),
        marker_refresh: None,
    };
    seen.host.clone_from(&opts.hostname);
    let result = back_up(ctx, &repo, opts)?;
    seen.summary = Some(result.summary.clone());
    let summary = BackupSummary::from(&result);
    render::emit(
        &added_cost(ctx, &result, ctx.with_requests(&summary)),
        ctx.mode(),
    )?;
    if let (Some(id), false, false) = (result.snapshot_id, spooled, a.dry_run) {
        super::protect::after_backup(ctx, &repo, &id, a.extend_locks, a.extend_locks_max)?;
    }
    Ok(if result.warnings.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    })
}

/// The summary with the monthly price of the bytes added, at the packs' class price
/// (`added_monthly_cost`, `null` when the class has no price).
fn added_cost<'a, O: render::Outcome>(
    ctx: &Context,
    r: &BackupResult,
    with: render::requests::WithRequests<'a, O>,
) -> render::requests::WithRequests<'a, O> {
    let added = r.summary.data_added;
    let (value, line) = match ctx.data_prices() {
        Ok((prices, class)) => {
            let v = crate::prices::monthly_of(&prices, &class, added);
            let shown = v.map_or("no price".into(), render::cost::dollars);
            (
                v,
                format!("Cost:        +{shown}/month for the bytes added ({class})"),
            )
        }
        Err(e) => (None, format!("Cost:        unknown ({e:#})")),
    };
    with.and("added_monthly_cost", serde_json::json!(value), line)
}

/// restic's sizes: a whole number of bytes, or with a unit k, m, g or t (either case; powers
/// of 1024).
fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let (num, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_lowercase() {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                _ => bail!("--exclude-larger-than {s:?}: the unit is one of k, m, g, t"),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let bad = || anyhow::anyhow!("--exclude-larger-than {s:?}: a whole number, then k, m, g or t");
    let n: u64 = num.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).ok_or_else(bad)
}

/// The source paths, normalised, after checking the host name (paths that cannot
/// be looked at are left out by the backup, with a warning each).
fn sources(a: &BackupArgs) -> Result<Vec<PathBuf>> {
    if a.host.as_deref().is_some_and(|h| h.trim().is_empty()) {
        anyhow::bail!("--host: an empty host name cannot be selected or shown; give a name");
    }
    // Paths that cannot be looked at are left out by the backup, with a warning each.
    let mut given = a.paths.clone();
    let lists = [
        (&a.files_from, FilesFrom::Globs),
        (&a.files_from_verbatim, FilesFrom::Verbatim),
        (&a.files_from_raw, FilesFrom::Raw),
    ];
    for (files, how) in lists {
        for f in files {
            let (found, warnings) = files_from::read(f, how)?;
            for w in warnings {
                crate::render::say(format!("warning: {w}"));
            }
            given.extend(found);
        }
    }
    let paths = given
        .iter()
        .map(|p| normalize(p))
        .collect::<Result<Vec<_>>>()?;
    if !a.stdin && given.is_empty() {
        bail!("nothing to back up: the --files-from lists name no existing path");
    }
    if a.stdin && !given.is_empty() {
        bail!("--stdin takes no paths");
    }
    Ok(paths)
}

/// The snapshot's tags from the `--tag` options, like restic: each option is a comma-separated
/// list (`--tag a,b` gives two tags, spaces around each removed), options add up, a tag given
/// twice is kept once.
fn tags(options: &[String]) -> Result<Vec<String>> {
    let mut tags: Vec<String> = Vec::new();
    for option in options {
        for t in tresor_core::retention::parse_tag_list(option) {
            if t.is_empty() || t.contains('\n') {
                bail!("--tag {option:?}: a tag must not be empty or contain a line break");
            }
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
    }
    Ok(tags)
}

/// The parent snapshot: none with `--force`, the one `--parent` names, or the latest fitting
/// one.
fn parent(repo: &Repository, a: &BackupArgs) -> Result<ParentChoice> {
    Ok(match (&a.parent, a.force) {
        (Some(_), _) if !repo.key().can_read() => {
            bail!("--parent needs a key that can read; put-only keys use the local cache")
        }
        (_, true) => ParentChoice::None,
        (Some(p), _) => {
            let (list, skipped) = repo.load_snapshots()?;
            ParentChoice::Id(
                tresor_core::snapshots::find(&list, &skipped, p, &Default::default())?.0,
            )
        }
        (None, _) => ParentChoice::Auto,
    })
}

/// The host the snapshot is for: `--host`, else (a put-only key writes for the host it is
/// certified for, format §11) the key's host, else this machine's name.
fn host(repo: &Repository, a: &BackupArgs) -> String {
    a.host.clone().unwrap_or_else(|| {
        let me = repo.signer().public();
        match repo.key_kind() {
            KeyKind::PutOnly => repo.trust().certified_host(&me).map(str::to_string),
            KeyKind::Full => None,
        }
        .unwrap_or_else(hostname)
    })
}

/// Run the backup with its progress, the total estimated by a count of the sources
/// ([`archiver::Estimate`]) on a thread of its own while the backup runs.
fn back_up(ctx: &Context, repo: &Repository, opts: BackupOptions) -> Result<BackupResult> {
    let show = ctx.progress();
    let listing = if ctx.quiet || ctx.json {
        0
    } else {
        ctx.verbose
    };
    let bar = Bar::new(show, "backup")
        .with_wait_lines(!ctx.quiet && !ctx.json)
        .with_listing(listing);
    let estimate = (show != Show::Nothing).then(|| archiver::Estimate::of(&opts));
    let done = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        if let Some(e) = &estimate {
            let (bar, done) = (&bar, &done);
            scope.spawn(move || e.run(bar, done));
        }
        let r = archiver::backup(repo, opts, &bar);
        done.store(true, Ordering::Relaxed);
        r
    });
    bar.finish();
    Ok(result?)
}

/// The first Ctrl-C, SIGTERM or SIGHUP sets the returned flag: the backup stops, indexes what it
/// wrote and exits 130. A second one exits 130 at once — even when the backup is blocked (a read
/// from a pipe or a hung file system): written packs then stay unindexed, which `check` reports
/// as warnings and `prune` removes; storage writes are atomic, so nothing is half-written.
fn stop_on_signals() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let c = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        // This runs on ctrlc's own thread, not in the signal handler.
        if c.swap(true, Ordering::SeqCst) {
            eprintln!("tresor: interrupted again: stopping at once");
            // SAFETY: _exit ends the process without running anything else (no exit
            // handlers that could wait for a lock another, blocked thread holds).
            unsafe { libc::_exit(exit::INTERRUPTED) };
        }
        eprintln!(
            "tresor: interrupted: indexing what was written (interrupt again to stop at once)"
        );
    });
    cancel
}
