use crate::cli::RestoreArgs;
use crate::context::Context;
use crate::exit;
use crate::output::{Bar, bytes, duration};
use anyhow::Result;
use tresor_core::exclude::PatternSet;
use tresor_core::restorer::policy::XattrFilter;
use tresor_core::restorer::{self, RestoreOptions, RestoreResult};
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
    let damaged = r.problems.iter().any(|p| p.damage);
    if ctx.json {
        print_json(&r, &id.to_hex(), verdict, opts.privileged);
    } else {
        print_text(ctx, a, &r, &id.short());
    }
    Ok(if damaged {
        exit::DAMAGED
    } else if r.problems.is_empty() {
        exit::OK
    } else {
        exit::ERROR
    })
}

fn print_json(r: &RestoreResult, id: &str, verdict: Verdict, privileged: bool) {
    let problems: Vec<_> = r
        .problems
        .iter()
        .map(|p| serde_json::json!({"path": p.path, "message": p.message, "damage": p.damage}))
        .collect();
    let signer = if verdict == Verdict::Full {
        "full"
    } else {
        "put-only"
    };
    println!(
        "{}",
        serde_json::json!({
            "message_type": "summary", "snapshot_id": id, "files_restored": r.files_restored, "files_skipped": r.files_skipped,
            "dirs": r.dirs, "others": r.others, "bytes_restored": r.bytes_written, "files_verified": r.files_verified,
            "owner_skipped": r.owner_skipped, "devices_skipped": r.devices_skipped, "special_skipped": r.special_skipped,
            "snapshot_signer": signer, "privileged": privileged,
            "withheld": {"devices": r.withheld.devices, "setid_files": r.withheld.setid_files, "xattrs": r.withheld.xattrs},
            "privileges_dropped": r.privileges_dropped, "xattrs_filtered": r.xattrs_filtered,
            "total_duration": r.elapsed.as_secs_f64(), "errors": r.problems.len(), "error_list": problems,
        })
    );
}

fn print_text(ctx: &Context, a: &RestoreArgs, r: &RestoreResult, short: &str) {
    for p in &r.problems {
        eprintln!("error: {}: {}", p.path, p.message);
    }
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
    if r.owner_skipped {
        let why = if a.no_owner {
            "--no-owner"
        } else {
            "not running as root"
        };
        println!("ownership not restored ({why})");
    }
    if r.devices_skipped > 0 {
        println!(
            "{} device nodes not created (not running as root)",
            r.devices_skipped
        );
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
