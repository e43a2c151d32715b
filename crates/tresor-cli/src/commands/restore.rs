use crate::cli::RestoreArgs;
use crate::context::Context;
use crate::exit;
use crate::output::{Bar, bytes, duration};
use anyhow::Result;
use tresor_core::exclude::PatternSet;
use tresor_core::restorer::{self, RestoreOptions};
use tresor_core::snapshots::find;

pub fn run(ctx: &Context, a: &RestoreArgs) -> Result<i32> {
    let (spec, sub) = match a.snapshot.split_once(':') {
        Some((s, p)) => (s, p.to_string()),
        None => (a.snapshot.as_str(), "/".to_string()),
    };
    let repo = ctx.open()?;
    repo.require_read("restore")?;
    let (list, skipped) = repo.load_snapshots()?;
    let (id, snap) = find(&list, &skipped, spec, &(&a.filter).into())?;
    let index = repo.load_index()?;
    let opts = RestoreOptions {
        target: a.target.clone(),
        subpath: sub,
        includes: PatternSet::new(&a.includes)?,
        excludes: PatternSet::new(&a.excludes)?,
        verify: a.verify,
        workers: super::workers().max(2) * 2,
    };
    let bar = Bar::new(ctx.progress_enabled(), "restore");
    let r = restorer::restore(&repo, &index, snap, &opts, &bar);
    bar.finish();
    let r = r?;
    let damaged = r.problems.iter().any(|p| p.damage);
    if ctx.json {
        let problems: Vec<_> = r
            .problems
            .iter()
            .map(|p| serde_json::json!({"path": p.path, "message": p.message, "damage": p.damage}))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "message_type": "summary", "snapshot_id": id.to_hex(), "files_restored": r.files_restored, "files_skipped": r.files_skipped,
                "dirs": r.dirs, "others": r.others, "bytes_restored": r.bytes_written, "files_verified": r.files_verified,
                "owner_skipped": r.owner_skipped, "devices_skipped": r.devices_skipped, "total_duration": r.elapsed.as_secs_f64(),
                "errors": r.problems.len(), "error_list": problems,
            })
        );
    } else {
        for p in &r.problems {
            eprintln!("error: {}: {}", p.path, p.message);
        }
        if !ctx.quiet {
            println!(
                "restored snapshot {} to {}: {} files ({}), {} already correct, {} directories, {} other entries in {}",
                id.short(),
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
                println!("ownership not restored (not running as root)");
            }
            if r.devices_skipped > 0 {
                println!(
                    "{} device nodes not created (not running as root)",
                    r.devices_skipped
                );
            }
        }
    }
    Ok(if damaged {
        exit::DAMAGED
    } else if r.problems.is_empty() {
        exit::OK
    } else {
        exit::ERROR
    })
}
