//! `tresor repair index` and `tresor repair snapshots`.

use crate::args::{RepairCommand, RepairIndexArgs, RepairSnapshotsArgs};
use crate::context::Context;
use crate::exit;
use crate::render;
use crate::render::repair::{Repaired, snapshots_unrepaired};
use anyhow::Result;
use tresor_core::NoProgress;
use tresor_core::repair::{self, RepairIndexOptions, RepairSnapshotsOptions};

pub fn run(ctx: &Context, c: &RepairCommand) -> Result<i32> {
    match c {
        RepairCommand::Index(a) => index(ctx, a),
        RepairCommand::Snapshots(a) => snapshots(ctx, a),
    }
}

fn index(ctx: &Context, a: &RepairIndexArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let opts = RepairIndexOptions {
        dry_run: a.dry_run,
        read_data: a.read_data,
        workers: super::workers(),
    };
    let r = repair::repair_index_with(&repo, &opts, &NoProgress)?;
    render::emit(&Repaired::from(&r), ctx.mode())?;
    // The index is rebuilt: the repair did its job, whatever data was lost before it (said).
    Ok(exit::OK)
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
    render::emit(&Repaired::from(&r), ctx.mode())?;
    Ok(if snapshots_unrepaired(&r) {
        exit::DAMAGED
    } else {
        exit::OK
    })
}
