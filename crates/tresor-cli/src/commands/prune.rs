//! `tresor prune`: print the plan, then carry it out (format §16: two-phase, lock-free).

use crate::args::PruneArgs;
use crate::context::Context;
use crate::exit;
use crate::output;
use anyhow::Result;
use tresor_core::prune::{self, MaxUnused, PruneOptions, parse_size};

pub fn run(ctx: &Context, a: &PruneArgs) -> Result<i32> {
    let max_unused: MaxUnused = a.max_unused.parse()?;
    let max_repack_size = a.max_repack_size.as_deref().map(parse_size).transpose()?;
    let repo = ctx.open()?;
    let opts = PruneOptions {
        max_unused,
        max_repack_size,
        inactive_hosts: a.inactive_hosts.clone(),
        workers: super::workers(),
    };
    let plan = prune::plan(&repo, &opts)?;
    if a.dry_run {
        if ctx.json {
            println!(
                "{}",
                serde_json::json!({"message_type": "plan", "dry_run": true, "plan": plan})
            );
        } else {
            print!("{plan}");
            println!("dry run: nothing was changed");
        }
        return Ok(exit::OK);
    }
    if !ctx.json && !ctx.quiet {
        print!("{plan}");
    }
    let bar = output::Bar::new(
        ctx.progress_enabled() && !plan.repack.is_empty(),
        "repacking",
    );
    let stats = plan.execute(&repo, &bar);
    bar.finish();
    let stats = stats?;
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"message_type": "summary", "dry_run": false, "plan": plan, "stats": stats})
        );
    } else {
        for l in &stats.locked {
            eprintln!("note: not deleted yet, still under object lock: {l}");
        }
        for u in &stats.undeletable {
            eprintln!("warning: the storage refused to delete {u}");
        }
        for w in &stats.warnings {
            eprintln!("warning: {w}");
        }
        if !ctx.quiet {
            println!(
                "repacked {} packs ({} blobs) into {} new packs; condemned {} packs ({}); resurrected {}",
                stats.packs_repacked,
                stats.blobs_repacked,
                stats.packs_written,
                stats.packs_condemned,
                output::bytes(stats.bytes_condemned),
                stats.packs_resurrected
            );
            if stats.garbage_deleted > 0 {
                println!(
                    "deleted {} garbage objects (listed above)",
                    stats.garbage_deleted
                );
            }
            println!(
                "deleted {} packs, {} freed; index objects: {} written, {} deleted{}",
                stats.packs_deleted,
                output::bytes(stats.bytes_freed),
                stats.index_written,
                stats.index_deleted,
                if stats.armed {
                    ""
                } else {
                    "; condemned packs not armed yet (next prune)"
                }
            );
        }
    }
    Ok(exit::OK)
}
