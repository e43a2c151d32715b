use crate::args::StatsArgs;
use crate::context::Context;
use crate::exit;
use crate::render::{self, stats::Report};
use anyhow::Result;
use tresor_core::repo::blobs::BlobReader;
use tresor_core::snapshots::SnapshotFilter;
use tresor_core::stats::Counter;

pub fn run(ctx: &Context, a: &StatsArgs) -> Result<i32> {
    let repo = ctx.open()?;
    repo.require_read("stats")?;
    let index = repo.load_index()?;
    let (list, skipped) = repo.load_snapshots()?;
    let filter: SnapshotFilter = (&a.filter).into();
    let chosen = super::find::select(&list, &skipped, &a.snapshots, &filter)?;
    let mut counter = Counter::new(&index);
    for (id, snap) in chosen {
        let reader = BlobReader::for_snapshot(&repo, &index, repo.snapshot_signer(id).ok());
        counter.add(&reader, snap)?;
    }
    render::emit(&Report::new(a.mode, &counter.finish()), ctx.mode())?;
    Ok(exit::OK)
}
