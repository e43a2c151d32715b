//! `tresor repair index` and `tresor repair snapshots`.

use crate::args::{RepairCommand, RepairIndexArgs, RepairSnapshotsArgs};
use crate::context::Context;
use crate::exit;
use crate::render;
use crate::render::repair::{Repaired, index_damage, snapshots_unrepaired};
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
    render::emit(&Repaired::from(&r), ctx.mode())?;
    Ok(if index_damage(&r) {
        exit::DAMAGED
    } else {
        exit::OK
    })
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
