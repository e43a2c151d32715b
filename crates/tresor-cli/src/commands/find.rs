use crate::args::FindArgs;
use crate::context::Context;
use crate::exit;
use crate::render::{self, find::Found, find::Group, find::Match};
use anyhow::{Context as _, Result};
use tresor_core::find::{Query, find_in_tree, resolve_blob};
use tresor_core::repo::blobs::BlobReader;
use tresor_core::repo::index::Index;
use tresor_core::snapshots::SnapshotFilter;
use tresor_format::ObjectId;
use tresor_format::blob::BlobType;
use tresor_format::snapshot::Snapshot;
use tresor_format::tree::Timestamp;

pub fn run(ctx: &Context, a: &FindArgs) -> Result<i32> {
    let repo = ctx.open()?;
    repo.require_read("find")?;
    let index = repo.load_index()?;
    let mut q = query(a, &index)?;
    q.oldest = a
        .oldest
        .as_deref()
        .map(|t| parse_time("--oldest", t))
        .transpose()?;
    q.newest = a
        .newest
        .as_deref()
        .map(|t| parse_time("--newest", t))
        .transpose()?;
    let (list, skipped) = repo.load_snapshots()?;
    let filter: SnapshotFilter = (&a.filter).into();
    let chosen = select(&list, &skipped, &a.snapshots, &filter)?;
    let (mode, zone) = (ctx.mode(), tresor_core::time::local_zone());
    let mut groups = Vec::new();
    for (id, snap) in chosen {
        let reader = BlobReader::for_snapshot(&repo, &index, repo.snapshot_signer(id).ok());
        let mut matches = Vec::new();
        find_in_tree(&reader, &snap.tree, &q, &mut |p, n| {
            matches.push(Match::new(p, n, &zone));
        })?;
        if matches.is_empty() {
            continue;
        }
        let time = tresor_core::time::human(tresor_core::repo::snapshots::time_of(snap), &zone);
        let mut g = Group::new(id, time, matches);
        g.after_another = !groups.is_empty();
        render::emit(&g, mode)?;
        // Only JSON needs them again, at the end.
        groups.push(if mode.json {
            g
        } else {
            Group::new(id, String::new(), vec![])
        });
    }
    if mode.json {
        render::emit(&Found(groups), mode)?;
    }
    Ok(exit::OK)
}

/// The query of the arguments: patterns, and the blob and tree ids resolved in `index`.
fn query(a: &FindArgs, index: &Index) -> Result<Query> {
    let mut q = Query::new(&a.patterns, a.ignore_case)?;
    for b in &a.blobs {
        q.blobs.insert(resolve_blob(index, b, BlobType::Data)?);
    }
    for t in &a.trees {
        q.trees.insert(resolve_blob(index, t, BlobType::Tree)?);
    }
    Ok(q)
}

/// The snapshots to search: those named (each once, in the order given), else every snapshot
/// that passes the filter, oldest first.
pub fn select<'a>(
    list: &'a [(ObjectId, Snapshot)],
    skipped: &[tresor_core::repo::Skipped],
    specs: &[String],
    filter: &SnapshotFilter,
) -> Result<Vec<&'a (ObjectId, Snapshot)>> {
    if specs.is_empty() {
        return Ok(list.iter().filter(|(_, s)| filter.matches(s)).collect());
    }
    let mut out: Vec<&(ObjectId, Snapshot)> = Vec::new();
    for spec in specs {
        let found = tresor_core::snapshots::find(list, skipped, spec, filter)?;
        if !out.iter().any(|(id, _)| *id == found.0) {
            out.push(found);
        }
    }
    Ok(out)
}

/// A time bound: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM` or `YYYY-MM-DD HH:MM:SS`, local time
/// (restic's forms).
fn parse_time(flag: &str, s: &str) -> Result<Timestamp> {
    let dt = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]
        .iter()
        .find_map(|f| {
            jiff::civil::DateTime::strptime(f, s)
                .ok()
                .or_else(|| jiff::civil::Date::strptime(f, s).ok().map(|d| d.to_datetime(jiff::civil::Time::midnight())))
        })
        .with_context(|| {
            format!("{flag} {s:?}: expected \"YYYY-MM-DD\", \"YYYY-MM-DD HH:MM\" or \"YYYY-MM-DD HH:MM:SS\"")
        })?;
    let t = dt
        .to_zoned_datetime(tresor_core::time::local_zone())?
        .timestamp();
    Ok(Timestamp {
        secs: t.as_second(),
        nanos: 0,
    })
}
