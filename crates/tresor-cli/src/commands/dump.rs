use super::thaw::Needed;
use crate::args::DumpArgs;
use crate::context::Context;
use crate::exit;
use crate::render::{self, dump::Summary};
use anyhow::{Result, bail};
use std::io::{IsTerminal, Write};
use tresor_core::dump::{self, Archive, Options};
use tresor_core::repo::blobs::BlobReader;
use tresor_core::repo::tree::normalize;
use tresor_core::repo::trust::Verdict;
use tresor_core::snapshots::find;

pub fn run(ctx: &Context, a: &DumpArgs) -> Result<i32> {
    let (spec, path) = super::split_snapshot_path(&a.snapshot);
    if a.target.is_none() && std::io::stdout().is_terminal() {
        bail!("standard output is a terminal: redirect it, or give --target FILE");
    }
    let repo = ctx.open()?;
    repo.require_read("dump")?;
    let (list, skipped) = repo.load_snapshots()?;
    let (id, snap) = find(&list, &skipped, &spec, &(&a.filter).into())?;
    // Privileged metadata only from snapshots of full keys, as restore.
    let verdict = repo.snapshot_verdict(id)?;
    // Trees and this snapshot's data only: memory bounded by the repository's trees and the
    // snapshot's own data, not by the repository's data.
    let index = repo.load_index_below(&snap.tree, repo.snapshot_signer(id).ok())?;
    // Thaw what the dump reads before writing anything.
    let needed = Needed::Below {
        index: &index,
        root: &snap.tree,
        path,
    };
    if super::thaw::prepare(ctx, &a.thaw, &repo, needed, false)?.is_some() {
        return Ok(super::thaw::still_thawing());
    }
    let reader = BlobReader::for_snapshot(&repo, &index, repo.snapshot_signer(id).ok());
    let opts = Options {
        archive: a.archive.parse::<Archive>()?,
        privileged: verdict == Verdict::Full || a.trust_privileged,
    };
    let write = |out: &mut dyn Write| dump::dump(&reader, &snap.tree, path, &opts, out);
    let d = match &a.target {
        Some(t) => dump::to_file(t, write)?,
        None => {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            write(&mut out)?
        }
    };
    let summary = Summary {
        snapshot: *id,
        path: normalize(path),
        archive: &a.archive,
        target: a.target.as_deref(),
        dumped: d,
    };
    // Without --target, standard output is the dump itself: no requests line there.
    if a.target.is_some() {
        render::emit(&ctx.with_requests(&summary), ctx.mode())?;
    } else {
        render::emit(&summary, ctx.mode())?;
    }
    Ok(exit::OK)
}
