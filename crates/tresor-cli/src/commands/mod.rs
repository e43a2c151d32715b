//! One module per command: parse → open → call core → render.

mod backup;
mod cat;
mod check;
mod forget;
mod init;
mod key;
mod ls;
mod restore;
mod snapshots;

use crate::cli::{Cli, Command, SnapshotFilterArgs};
use crate::context::Context;
use anyhow::Result;
use tresor_core::snapshots::SnapshotFilter;

/// Run the parsed command; returns the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let ctx = Context::new(&cli.global)?;
    match cli.command {
        Command::Init(a) => init::run(&ctx, &a),
        Command::Backup(a) => backup::run(&ctx, a),
        Command::Snapshots(a) => snapshots::run(&ctx, &a),
        Command::Ls(a) => ls::run(&ctx, &a),
        Command::Cat(a) => cat::run(&ctx, &a),
        Command::Restore(a) => restore::run(&ctx, &a),
        Command::Check(a) => check::run(&ctx, &a),
        Command::Key(c) => key::run(&ctx, &c),
        Command::Forget(a) => forget::run(&ctx, &a),
    }
}

impl From<&SnapshotFilterArgs> for SnapshotFilter {
    fn from(a: &SnapshotFilterArgs) -> Self {
        SnapshotFilter {
            hosts: a.hosts.clone(),
            paths: a.paths.clone(),
            tags: a.tags.clone(),
        }
    }
}

/// Worker threads for CPU-bound stages: one per core.
pub fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}
