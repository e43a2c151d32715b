//! `tresor repair index` and `tresor repair snapshots`.

use crate::args::{RepairCommand, RepairIndexArgs, RepairSnapshotsArgs};
use crate::context::Context;
use crate::exit;
use anyhow::Result;
use tresor_core::NoProgress;
use tresor_core::repair::{self, RepairSnapshotsOptions};

pub fn run(ctx: &Context, c: &RepairCommand) -> Result<i32> {
    match c {
        RepairCommand::Index(a) => index(ctx, a),
        RepairCommand::Snapshots(a) => snapshots(ctx, a),
    }
}

fn index(ctx: &Context, a: &RepairIndexArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let r = repair::repair_index(&repo, a.dry_run, &NoProgress)?;
    let damage =
        !r.unreadable.is_empty() || !r.blobs_dropped.is_empty() || !r.missing_packs.is_empty();
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"message_type": "summary", "repair": "index", "report": r})
        );
    } else {
        for d in &r.damaged_index {
            eprintln!("replaced damaged {d}");
        }
        for u in &r.unreadable {
            eprintln!("error: {u}");
        }
        for b in &r.blobs_dropped {
            eprintln!("error: left out {b}");
        }
        for m in &r.missing_packs {
            eprintln!("error: pack {m} is listed by the old index but missing from storage");
        }
        for u in &r.undeletable {
            eprintln!("warning: the storage refused to delete {u}");
        }
        if !ctx.quiet {
            println!(
                "{} {} packs, {} blobs ({} packs verified blob by blob) in {} index objects, superseding {}{}",
                if r.dry_run { "would index" } else { "indexed" },
                r.packs,
                r.blobs,
                r.packs_verified,
                r.index_written.len(),
                r.index_superseded,
                if r.dry_run {
                    " (dry run: nothing was changed)"
                } else {
                    ""
                }
            );
            if damage {
                println!(
                    "damage remains: run `tresor repair snapshots` to write snapshots without the lost files"
                );
            }
        }
    }
    Ok(if damage { exit::DAMAGED } else { exit::OK })
}

fn snapshots(ctx: &Context, a: &RepairSnapshotsArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let opts = RepairSnapshotsOptions {
        dry_run: a.dry_run,
        forget: a.forget,
        read_data: a.read_data,
        workers: super::workers(),
    };
    let r = repair::repair_snapshots(&repo, &opts, &NoProgress)?;
    let unrepaired = !r.unreadable.is_empty() || r.repaired.iter().any(|s| s.error.is_some());
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"message_type": "summary", "repair": "snapshots", "report": r})
        );
    } else {
        for p in &r.index_problems {
            eprintln!("warning: index {p}");
        }
        for u in &r.unreadable {
            eprintln!("error: {u} (cannot be repaired)");
        }
        for s in &r.repaired {
            match (&s.error, &s.new_snapshot) {
                (Some(e), _) => {
                    println!("snapshot {}: {e}: cannot be repaired", s.snapshot.short())
                }
                (None, Some(n)) => println!(
                    "snapshot {}: repaired as {}{}",
                    s.snapshot.short(),
                    n.short(),
                    if s.forgotten {
                        ", original removed"
                    } else {
                        ""
                    }
                ),
                (None, None) => println!("snapshot {}: would be repaired", s.snapshot.short()),
            }
            for p in &s.removed {
                println!("  left out {p}");
            }
        }
        for u in &r.undeletable {
            eprintln!("warning: the storage refused to delete {u}");
        }
        if !ctx.quiet {
            println!(
                "{} snapshots checked, {} damaged{}",
                r.snapshots,
                r.repaired.len(),
                if r.dry_run {
                    " (dry run: nothing was changed)"
                } else {
                    ""
                }
            );
        }
    }
    Ok(if unrepaired { exit::DAMAGED } else { exit::OK })
}
