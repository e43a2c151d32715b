use crate::args::LsArgs;
use crate::context::Context;
use crate::exit;
use crate::render::{self, ls::Entry, ls::Heading};
use anyhow::Result;
use std::os::unix::ffi::OsStrExt;
use tresor_core::repo::blobs::BlobReader;
use tresor_core::repo::tree::{find_node, normalize, walk_selected};
use tresor_core::snapshots::find;
use tresor_format::tree::Node;

pub fn run(ctx: &Context, a: &LsArgs) -> Result<i32> {
    let repo = ctx.open()?;
    repo.require_read("ls")?;
    let (list, skipped) = repo.load_snapshots()?;
    let (id, snap) = find(&list, &skipped, &a.snapshot, &(&a.filter).into())?;
    // Listing reads trees only: data blobs' locations are not kept (memory bounded by the
    // repository's trees, not its data).
    let index = repo.load_tree_index()?;
    // The snapshot's own copies of blobs are preferred after full keys'.
    let reader = BlobReader::for_snapshot(&repo, &index, repo.snapshot_signer(id).ok());
    // A path the snapshot lacks is an error (restic prints nothing).
    let dirs: Vec<Vec<u8>> = a.dirs.iter().map(|d| d.as_bytes().to_vec()).collect();
    for p in &dirs {
        find_node(&reader, &snap.tree, &normalize(p))?;
    }
    let (mode, long) = (ctx.mode(), a.long);
    let zone = tresor_core::time::local_zone();
    let mut failed = None;
    let mut print = |path: &[u8], n: &Node| {
        let mut entry = Entry::new(path, n, long, &zone);
        entry.human = a.human_readable;
        if let Err(e) = render::emit(&entry, mode) {
            failed.get_or_insert(e);
        }
    };
    render::emit(
        &Heading {
            id: *id,
            paths: &snap.paths,
            time: tresor_core::repo::snapshots::time_of(snap),
            zone: &zone,
        },
        mode,
    )?;
    walk_selected(&reader, &snap.tree, &dirs, a.recursive, &mut print)?;
    failed.map_or(Ok(exit::OK), Err)
}
