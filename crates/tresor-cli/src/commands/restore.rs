use crate::args::RestoreArgs;
use crate::context::Context;
use crate::exit;
use crate::output::{Bar, bytes, duration};
use anyhow::Result;
use tresor_core::exclude::PatternSet;
use tresor_core::restorer::policy::XattrFilter;
use tresor_core::restorer::{self, DiffKind, Overwrite, RestoreOptions, RestoreResult};
use tresor_core::snapshots::find;
use tresor_core::trust::Verdict;

/// Paths named one by one in the warning about dropped privileges; the rest are counted.
const NAMED_PATHS: usize = 10;

pub fn run(ctx: &Context, a: &RestoreArgs) -> Result<i32> {
    let (spec, sub) = match a.snapshot.split_once(':') {
        Some((s, p)) => (s, p.to_string()),
        None => (a.snapshot.as_str(), "/".to_string()),
    };
    let repo = ctx.open()?;
    repo.require_read("restore")?;
    let (list, skipped) = repo.load_snapshots()?;
    let (id, snap) = find(&list, &skipped, spec, &(&a.filter).into())?;
    // Privileged metadata only from snapshots of full keys, unless the admin says otherwise.
    let verdict = repo.snapshot_verdict(id)?;
    let index = repo.load_index()?;
    let opts = RestoreOptions {
        subpath: sub,
        includes: PatternSet::new(&a.includes)?,
        excludes: PatternSet::new(&a.excludes)?,
        verify: a.verify,
        overwrite: a.overwrite.parse::<Overwrite>()?,
        workers: super::workers().max(2) * 2,
        owner: !a.no_owner,
        special_files: !a.no_special_files,
        xattrs: XattrFilter::new(&a.include_xattrs, &a.exclude_xattrs)?,
        privileged: verdict == Verdict::Full || a.trust_privileged,
        signer: repo.snapshot_signer(id).ok(),
        ..RestoreOptions::new(a.target.clone())
    };
    let bar = Bar::new(ctx.progress_enabled(), "restore");
    let r = restorer::restore(&repo, &index, snap, &opts, &bar);
    bar.finish();
    let r = r?;
    if ctx.json {
        print_json(&r, &id.to_hex(), verdict, opts.privileged, &a.overwrite);
    } else {
        print_text(ctx, a, &r, &id.short());
    }
    Ok(code(&r))
}

/// Damage wins (5), then other problems (1), then differences (4).
fn code(r: &RestoreResult) -> i32 {
    if r.problems.iter().any(|p| p.damage) {
        exit::DAMAGED
    } else if !r.problems.is_empty() {
        exit::ERROR
    } else if r.has_differences() {
        exit::DIFFERENCES
    } else {
        exit::OK
    }
}

fn print_json(r: &RestoreResult, id: &str, verdict: Verdict, privileged: bool, overwrite: &str) {
    let problems: Vec<_> = r
        .problems
        .iter()
        .map(|p| serde_json::json!({"path": p.path, "message": p.message, "damage": p.damage}))
        .collect();
    let differences: Vec<_> = r
        .differences
        .iter()
        .map(|d| serde_json::json!({"path": d.path, "what": d.what.name(), "wanted": d.wanted, "got": d.got}))
        .collect();
    let c = r.difference_counts;
    let signer = if verdict == Verdict::Full {
        "full"
    } else {
        "put-only"
    };
    println!(
        "{}",
        serde_json::json!({
            "message_type": "summary", "snapshot_id": id, "overwrite": overwrite,
            "files_restored": r.files_restored, "files_skipped": r.files_skipped, "entries_kept": r.entries_kept,
            "dirs": r.dirs, "others": r.others, "bytes_restored": r.bytes_written, "files_verified": r.files_verified,
            "bytes_fetched": r.bytes_fetched, "blobs_fetched": r.blobs_fetched, "bytes_reused": r.bytes_reused,
            "owner_skipped": r.owner_skipped, "devices_skipped": r.devices_skipped, "special_skipped": r.special_skipped,
            "snapshot_signer": signer, "privileged": privileged,
            "withheld": {"devices": r.withheld.devices, "setid_files": r.withheld.setid_files, "xattrs": r.withheld.xattrs},
            "privileges_dropped": r.privileges_dropped, "xattrs_filtered": r.xattrs_filtered,
            "differences": differences, "owners_not_restored": c.owner,
            "difference_counts": {"owner": c.owner, "mode": c.mode, "mtime": c.mtime, "atime": c.atime, "xattr": c.xattr, "entry": c.entry, "total": c.total()},
            "leftovers_removed": r.leftovers_removed,
            "total_duration": r.elapsed.as_secs_f64(), "errors": r.problems.len(),
            "damaged": r.problems.iter().filter(|p| p.damage).count(), "error_list": problems,
        })
    );
}

/// One `warning:` line per listed difference; owners: the first [`NAMED_PATHS`] (only listed when
/// root's `chown` was refused) and one line counting all.
fn print_differences(r: &RestoreResult) {
    let mut owners = 0;
    for d in &r.differences {
        match d.what {
            DiffKind::Entry => eprintln!("warning: {}: {} {}", d.path, d.wanted, d.got),
            DiffKind::Owner if owners >= NAMED_PATHS => {}
            w => {
                owners += usize::from(w == DiffKind::Owner);
                let (path, what, wanted, got) = (&d.path, w.name(), &d.wanted, &d.got);
                eprintln!("warning: {path}: {what} differs: wanted {wanted}, got {got}");
            }
        }
    }
    let c = r.difference_counts;
    let listed = r
        .differences
        .iter()
        .filter(|d| d.what != DiffKind::Owner)
        .count() as u64;
    if c.total() - c.owner > listed {
        let more = c.total() - c.owner - listed;
        eprintln!("warning: … and {more} more differences (all counted in --json)");
    }
    if c.owner > 0 {
        let why = if r.owner_skipped {
            "not running as root"
        } else {
            "the target refused chown"
        };
        eprintln!("warning: owners not restored: {} entries ({why})", c.owner);
    }
}

/// The lines about existing entries, reused and fetched data, leftovers and differences.
fn print_notes(a: &RestoreArgs, r: &RestoreResult) {
    if r.entries_kept > 0 {
        println!(
            "{} existing entries left as they were (--overwrite {})",
            r.entries_kept, a.overwrite
        );
    }
    if r.bytes_reused > 0 {
        println!(
            "fetched {} in {} blobs; {} copied from the files already in the target",
            bytes(r.bytes_fetched),
            r.blobs_fetched,
            bytes(r.bytes_reused)
        );
    }
    if r.leftovers_removed > 0 {
        println!(
            "removed {} temporary files of an interrupted restore",
            r.leftovers_removed
        );
    }
    let c = r.difference_counts;
    if c.total() > 0 {
        println!(
            "restored with {} differences: owner {}, mode {}, mtime {}, atime {}, xattr {}, entry {}",
            c.total(),
            c.owner,
            c.mode,
            c.mtime,
            c.atime,
            c.xattr,
            c.entry
        );
    }
}

fn print_text(ctx: &Context, a: &RestoreArgs, r: &RestoreResult, short: &str) {
    for p in &r.problems {
        eprintln!("error: {}: {}", p.path, p.message);
    }
    print_differences(r);
    for p in r.privileges_dropped.iter().take(NAMED_PATHS) {
        eprintln!(
            "warning: {p}: setuid/setgid bits or file capability not applied: its owner was not restored"
        );
    }
    if r.privileges_dropped.len() > NAMED_PATHS {
        eprintln!(
            "warning: … and {} more files without their setuid/setgid bits or capability",
            r.privileges_dropped.len() - NAMED_PATHS
        );
    }
    if ctx.quiet {
        return;
    }
    println!(
        "restored snapshot {short} to {}: {} files ({}), {} already correct, {} directories, {} other entries in {}",
        a.target.display(),
        r.files_restored,
        bytes(r.bytes_written),
        r.files_skipped,
        r.dirs,
        r.others,
        duration(r.elapsed)
    );
    if a.verify {
        println!("verified {} files", r.files_verified);
    }
    print_notes(a, r);
    if r.owner_skipped {
        let why = if a.no_owner {
            "--no-owner"
        } else {
            "not running as root"
        };
        println!("ownership not restored ({why})");
    }
    if r.special_skipped > 0 {
        println!(
            "{} fifos, sockets and device nodes not created (--no-special-files)",
            r.special_skipped
        );
    }
    let w = r.withheld;
    if w.any() {
        println!(
            "withheld because a put-only key wrote this snapshot: {} device nodes, setuid/setgid bits of {} files, {} security/trusted attributes (--trust-privileged applies them)",
            w.devices, w.setid_files, w.xattrs
        );
    }
}
