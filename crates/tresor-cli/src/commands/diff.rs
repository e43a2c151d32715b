use crate::args::DiffArgs;
use crate::context::Context;
use crate::exit;
use crate::render::{self, diff::ChangeLine, diff::Heading, diff::Summary};
use anyhow::Result;
use std::ffi::OsStr;
use tresor_core::diff::{Options, Side, Source, diff};
use tresor_core::repo::blobs::BlobReader;
use tresor_core::repo::index::Index;
use tresor_core::repo::tree::{find_node, normalize};
use tresor_core::snapshots::find;
use tresor_core::{CoreError, Repository};
use tresor_format::tree::NodeKind;
use tresor_format::{BlobId, ObjectId};

pub fn run(ctx: &Context, a: &DiffArgs) -> Result<i32> {
    let repo = ctx.open()?;
    repo.require_read("diff")?;
    let index = repo.load_index()?;
    let (list, skipped) = repo.load_snapshots()?;
    let filter = (&a.filter).into();
    let resolve = |arg: &OsStr| -> Result<(ObjectId, BlobId)> {
        let (snap_spec, path) = super::split_snapshot_path(arg);
        let (id, snap) = find(&list, &skipped, &snap_spec, &filter)?;
        Ok((*id, subtree(&repo, &index, id, &snap.tree, path)?))
    };
    let (before, b_tree) = resolve(&a.before)?;
    let (after, a_tree) = resolve(&a.after)?;
    let mode = ctx.mode();
    render::emit(&Heading { before, after }, mode)?;
    // Each snapshot's own copies of blobs are preferred after full keys'.
    let r1 = BlobReader::for_snapshot(&repo, &index, repo.snapshot_signer(&before).ok());
    let r2 = BlobReader::for_snapshot(&repo, &index, repo.snapshot_signer(&after).ok());
    let mut load = |side: Side, id: &BlobId| match side {
        Side::Before => r1.load_tree(id),
        Side::After => r2.load_tree(id),
    };
    let size = |id: &BlobId| index.get(id).map(|l| u64::from(l.raw_length));
    let mut src = Source {
        load: &mut load,
        size: &size,
    };
    let mut failed = None;
    let opts = Options {
        metadata: a.metadata,
    };
    let stats = diff(&mut src, &b_tree, &a_tree, opts, &mut |c| {
        if let Err(e) = render::emit(&ChangeLine::new(&c.path, c.modifier), mode) {
            failed.get_or_insert(e);
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    render::emit(&Summary::new(before, after, &stats), mode)?;
    Ok(exit::OK)
}

/// The tree of the directory at `path` in snapshot `id` whose root is `root`.
fn subtree(
    repo: &Repository,
    index: &Index,
    id: &ObjectId,
    root: &BlobId,
    path: &[u8],
) -> Result<BlobId> {
    let reader = BlobReader::for_snapshot(repo, index, repo.snapshot_signer(id).ok());
    let path = normalize(path);
    match find_node(&reader, root, &path)? {
        None => Ok(*root),
        Some(n) => match (n.kind, n.subtree) {
            (NodeKind::Dir, Some(t)) => Ok(t),
            _ => Err(CoreError::Invalid(format!(
                "{}: not a directory in snapshot {}",
                tresor_format::tree::display_bytes(&path),
                id.short()
            ))
            .into()),
        },
    }
}
