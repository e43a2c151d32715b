//! One module per command: parse → open → call core → render.

mod backup;
mod cat;
mod check;
mod copy;
mod diff;
mod drill;
mod dump;
mod find;
mod forget;
mod generate;
mod init;
mod key;
mod ls;
mod mount;
mod overdue;
pub mod protect;
mod prune;
mod repair;
mod restore;
mod rewrite;
mod s3_policy;
mod serve;
mod snapshots;
mod spool;
mod stats;
mod tag;
// Appended (cost and request counting):
mod cost;
mod thaw;

use crate::args::{Cli, Command, SnapshotFilterArgs};
use crate::context::Context;
use anyhow::Result;
use tresor_core::retention::parse_tag_list;
use tresor_core::snapshots::SnapshotFilter;

/// Run the parsed command; returns the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    // Needs no repository.
    if let Command::S3Policy(a) = &cli.command {
        return s3_policy::run(&cli.global, a);
    }
    if let Command::Serve(a) = &cli.command {
        return serve::run(&cli.global, a);
    }
    if let Command::Generate(a) = &cli.command {
        return generate::run(a);
    }
    if let Command::Spool(crate::args::SpoolCommand::Status(a)) = &cli.command {
        let mode = crate::render::Mode {
            json: cli.global.json,
            quiet: cli.global.quiet,
        };
        return spool::status(a, mode);
    }
    let ctx = Context::new(&cli.global)?;
    let name = command_name(&cli.command);
    let result = run_with(&ctx, cli.command);
    ctx.log_requests(&name);
    result.map_err(|e| crate::diagnose::name_repository(e, &ctx.location))
}

/// The command's name for the request log (`backup`, `key`, …): its variant, lower case.
fn command_name(c: &Command) -> String {
    let debug = format!("{c:?}");
    let name = debug.split(['(', ' ', '{']).next().unwrap_or("");
    name.to_ascii_lowercase()
}

/// Run a command that works on the repository of `ctx`.
fn run_with(ctx: &Context, command: Command) -> Result<i32> {
    match command {
        Command::Init(a) => init::run(ctx, &a),
        Command::Backup(a) => backup::run(ctx, a),
        Command::Snapshots(a) => snapshots::run(ctx, &a),
        Command::Ls(a) => ls::run(ctx, &a),
        Command::Cat(a) => cat::run(ctx, &a),
        Command::Diff(a) => diff::run(ctx, &a),
        Command::Restore(a) => restore::run(ctx, &a),
        Command::Mount(a) => mount::run(ctx, &a),
        Command::Check(a) => check::run(ctx, &a),
        Command::Key(c) => key::run(ctx, &c),
        Command::S3Policy(_)
        | Command::Serve(_)
        | Command::Generate(_)
        | Command::Run(_)
        | Command::Profile(_)
        | Command::Schedule(_) => {
            unreachable!("handled above")
        }
        Command::Forget(a) => forget::run(ctx, &a),
        Command::Prune(a) => prune::run(ctx, &a),
        Command::Repair(c) => repair::run(ctx, &c),
        Command::Find(a) => find::run(ctx, &a),
        Command::Stats(a) => stats::run(ctx, &a),
        Command::Spool(c) => spool::run(ctx, &c),
        Command::Copy(a) => copy::run(ctx, &a),
        Command::Tag(a) => tag::run(ctx, &a),
        Command::Rewrite(a) => rewrite::run(ctx, &a),
        Command::Dump(a) => dump::run(ctx, &a),
        Command::Drill(a) => drill::run(ctx, &a),
        Command::Protect(a) => protect::run(ctx, &a),
        Command::Cost(a) => cost::run(ctx, &a),
    }
}

impl From<&SnapshotFilterArgs> for SnapshotFilter {
    fn from(a: &SnapshotFilterArgs) -> Self {
        SnapshotFilter {
            hosts: a.hosts.clone(),
            paths: a.paths.iter().map(|p| absolute_path(p)).collect(),
            tags: a.tags.iter().map(|t| parse_tag_list(t)).collect(),
        }
    }
}

/// A `--path` filter as snapshots record paths: absolute (a relative one is taken from the
/// current directory, as `backup` records it); cleaning is the filter's
/// ([`tresor_core::snapshots::clean_path`]).
fn absolute_path(p: &str) -> String {
    match std::env::current_dir() {
        Ok(cwd) if !p.starts_with('/') => cwd.join(p).to_string_lossy().into_owned(),
        _ => p.to_string(),
    }
}

/// Worker threads for CPU-bound stages: one per core.
pub fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Worker threads writing restored files: one per core (at least two) from a local
/// repository, where a worker's time is decryption, decompression and the target's file
/// system — more workers only contend for the same directories' locks (a restore of 60,000
/// files with four workers on two cores spent a third of its system time spinning on them) —
/// and twice that from S3 or a server, where a worker also waits for the network.
pub fn restore_workers(ctx: &Context) -> usize {
    let per_core = workers().max(2);
    if ctx.local_path().is_some() {
        per_core
    } else {
        per_core * 2
    }
}

/// Split a `SNAPSHOT[:PATH]` argument at its first `:` on bytes: the snapshot (id prefix or
/// `latest`; bytes that are not UTF-8 shown lossily, they name no snapshot) and the path's
/// exact bytes (`/` when absent), so a path in the snapshot need not be UTF-8.
fn split_snapshot_path(arg: &std::ffi::OsStr) -> (String, &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let b = arg.as_bytes();
    let (spec, path) = match b.iter().position(|&c| c == b':') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b"/"[..]),
    };
    (String::from_utf8_lossy(spec).into_owned(), path)
}
