//! The offline spool (docs/format.md §17): where `backup --spool` writes, `spool flush` and
//! `spool status`.

use crate::args::{SpoolArgs, SpoolCommand};
use crate::context::Context;
use crate::exit;
use crate::render::{self, spool::Flushed, spool::Status};
use anyhow::Result;
use std::path::Path;
use tresor_core::{CoreError, Repository, spool};
use tresor_storage::{ErrorKind, StorageError};

/// `tresor spool status`: needs no repository and no password.
pub fn status(a: &SpoolArgs, mode: render::Mode) -> Result<i32> {
    let storage = spool::open(&a.spool)?;
    let waiting = spool::status(storage.as_ref())?;
    render::emit(&Status::new(&a.spool, waiting), mode)?;
    Ok(exit::OK)
}

/// `tresor spool flush` (`-r` is the repository the spool belongs to).
pub fn run(ctx: &Context, c: &SpoolCommand) -> Result<i32> {
    let a = match c {
        SpoolCommand::Status(a) => return status(a, ctx.mode()),
        SpoolCommand::Flush(a) => a,
    };
    let storage = spool::open(&a.spool)?;
    let repo = ctx.open()?;
    let done = spool::flush(&repo, storage.as_ref(), &mut |_, _| {})?;
    render::emit(&Flushed::new(&a.spool, done), ctx.mode())?;
    Ok(exit::OK)
}

/// The repository a backup writes into: the real one, or (with `--spool DIR`) the spool when
/// `--spool-always` says so or the real one cannot be reached. With the real one reachable the
/// spool is prepared (or refreshed) first. Also returns whether the backup goes to the spool.
pub fn backup_target(
    ctx: &Context,
    dir: Option<&Path>,
    always: bool,
) -> Result<(Repository, bool)> {
    let Some(dir) = dir else {
        return Ok((ctx.open()?, false));
    };
    if always && let Ok(storage) = spool::open(dir) {
        note(
            ctx,
            format!(
                "backing up into the spool {} (--spool-always)",
                dir.display()
            ),
        );
        return Ok((ctx.open_storage(storage)?, true));
    }
    match ctx.open() {
        Ok(real) => {
            let storage = spool::prepare(&real, dir)?;
            if !always {
                return Ok((real, false));
            }
            note(
                ctx,
                format!(
                    "backing up into the spool {} (--spool-always)",
                    dir.display()
                ),
            );
            Ok((ctx.open_storage(storage)?, true))
        }
        Err(e) if unreachable(&e) => {
            let Ok(storage) = spool::open(dir) else {
                return Err(e.context(format!(
                    "the repository cannot be reached and {} holds no spool yet (a backup with --spool while it is reachable prepares one)",
                    dir.display()
                )));
            };
            render::say(format!(
                "warning: repository {} cannot be reached ({}): backing up into the spool {} instead; `tresor spool flush --spool {}` uploads it",
                ctx.location,
                root_cause(&e),
                dir.display(),
                dir.display()
            ));
            Ok((ctx.open_storage(storage)?, true))
        }
        Err(e) => Err(e),
    }
}

fn note(ctx: &Context, line: String) {
    if !ctx.quiet {
        render::say(format!("note: {line}"));
    }
}

fn root_cause(e: &anyhow::Error) -> String {
    e.root_cause().to_string()
}

/// Whether opening failed because the storage could not be reached (connection refused, reset,
/// a timeout: the storage's passing failures that outlasted `--retry-for`), not because of a
/// wrong password, damage or a refusal.
pub fn unreachable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        let storage = c
            .downcast_ref::<StorageError>()
            .or_else(|| match c.downcast_ref() {
                Some(CoreError::Storage(s)) => Some(s),
                _ => None,
            });
        let io = c.downcast_ref::<std::io::Error>().map(std::io::Error::kind);
        use std::io::ErrorKind as K;
        storage.is_some_and(|s| s.kind == ErrorKind::Transient)
            || matches!(
                io,
                Some(
                    K::ConnectionRefused
                        | K::ConnectionReset
                        | K::TimedOut
                        | K::HostUnreachable
                        | K::NetworkUnreachable
                )
            )
    })
}
