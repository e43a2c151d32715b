//! `tresor cost`: what the repository costs a month, what the last runs' requests cost, the
//! early-deletion charges pending and the price of reading it all back (docs/cli.md, "cost").

use crate::args::CostArgs;
use crate::context::Context;
use crate::exit;
use crate::prices::{ClassPrice, Prices, Tier, retrieval_cost};
use crate::render;
use crate::render::cost::{CostReport, KindRow, LatestRestore, RestoreTier, RunCost};
use anyhow::Result;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use tresor_core::Repository;
use tresor_core::repo::blobs::BlobReader;
use tresor_format::blob::BlobType;
use tresor_format::{BlobId, ObjectId};
use tresor_storage::{Classed, Kind, Storage};

/// Runs of the log shown one by one (the totals cover the whole log).
const RUNS_SHOWN: usize = 10;

pub fn run(ctx: &Context, a: &CostArgs) -> Result<i32> {
    let prices = crate::prices::load(ctx.config_file.as_deref(), a.prices.as_deref())?;
    let configured = Configured {
        data: class_name(
            a.class_data.as_ref(),
            ctx.open.s3.storage_class_data.as_ref(),
        ),
        meta: class_name(
            a.class_metadata.as_ref(),
            ctx.open.s3.storage_class_metadata.as_ref(),
        ),
    };
    prices.class(&configured.data)?;
    prices.class(&configured.meta)?;
    let repo = ctx.open()?;
    let tree_packs = tree_packs(&repo);
    let storage = repo.storage().clone();
    let (mut rows, mut early, mut from_listing) = (Vec::new(), 0.0, true);
    let mut pack_objects = Vec::new();
    for kind in Kind::ALL {
        let (objects, listed) = classed(storage.as_ref(), kind, &configured, &tree_packs)?;
        from_listing &= listed;
        early += early_deletion(storage.as_ref(), kind, &objects, &prices)?;
        for ((group, class), (n, bytes)) in group(kind, &objects, &tree_packs) {
            let price = prices.class(&class)?;
            add_row(
                &mut rows,
                KindRow::new(group, &class, n, bytes, price),
                price,
            );
        }
        if kind == Kind::Pack {
            pack_objects = objects;
        }
    }
    let runs = request_runs(ctx, &repo, prices.class(&configured.data)?);
    let restore = restore_tiers(&prices, &rows)?;
    let latest = latest_restore(&repo, &pack_objects, &prices)?;
    let mut report = CostReport::new(rows, &prices, runs, early, restore, RUNS_SHOWN);
    report.class_source = if from_listing {
        "listing"
    } else {
        "configured"
    };
    report.restore_latest = latest;
    render::emit(&report, ctx.mode())?;
    Ok(exit::OK)
}

/// The classes given (`--class-*`, else `--s3-storage-class-*`, else STANDARD).
struct Configured {
    data: String,
    meta: String,
}

/// The objects of `kind` with their classes: as the storage lists them
/// ([`Storage::list_classes`]; `true`), else the configured class (`false`): data packs at the
/// data class, tree packs and everything else at the metadata class (where writers put them,
/// format §8.1).
fn classed(
    storage: &dyn Storage,
    kind: Kind,
    configured: &Configured,
    tree_packs: &HashSet<String>,
) -> Result<(Vec<Classed>, bool)> {
    if let Some(listed) = storage.list_classes(kind)? {
        return Ok((listed, true));
    }
    let objects = storage.list(kind)?.into_iter().map(|(name, size)| {
        let data = kind == Kind::Pack && !tree_packs.contains(&name);
        let class = if data {
            &configured.data
        } else {
            &configured.meta
        };
        Classed {
            name,
            size,
            class: class.clone(),
        }
    });
    Ok((objects.collect(), false))
}

/// Add `row` to `rows`, merged with a row of the same kind and class (the kinds that make up
/// `other`), priced at `price`.
fn add_row(rows: &mut Vec<KindRow>, row: KindRow, price: &ClassPrice) {
    match rows
        .iter_mut()
        .find(|r| r.kind == row.kind && r.class == row.class)
    {
        Some(r) => {
            r.objects = r.objects.saturating_add(row.objects);
            r.bytes = r.bytes.saturating_add(row.bytes);
            r.monthly = price.monthly(r.objects, r.bytes);
        }
        None => rows.push(row),
    }
}

/// `--class-*`, else the global `--s3-storage-class-*`, else `STANDARD`; upper case.
fn class_name(given: Option<&String>, global: Option<&String>) -> String {
    given
        .or(global)
        .map_or("STANDARD".to_string(), |c| c.to_ascii_uppercase())
}

/// The packs holding tree blobs (hex ids), from the index; none when it cannot be read (all
/// packs then count as data).
fn tree_packs(repo: &Repository) -> HashSet<String> {
    let Ok(index) = repo.load_index() else {
        return HashSet::new();
    };
    index
        .all_locations()
        .filter(|(_, l)| l.blob_type == BlobType::Tree)
        .map(|(_, l)| index.pack(l.pack).id.to_hex())
        .collect()
}

/// A listing's objects grouped as `cost` shows them: (group, class) → (objects, bytes), sizes
/// saturating.
fn group(
    kind: Kind,
    listing: &[Classed],
    tree_packs: &HashSet<String>,
) -> BTreeMap<(&'static str, String), (u64, u64)> {
    let mut by: BTreeMap<(&'static str, String), (u64, u64)> = BTreeMap::new();
    for o in listing {
        let g = match kind {
            Kind::Pack if tree_packs.contains(&o.name) => "tree packs",
            Kind::Pack => "data packs",
            Kind::Index => "index",
            Kind::Snapshot => "snapshots",
            Kind::Key => "keys",
            _ => "other",
        };
        let e = by.entry((g, o.class.clone())).or_default();
        *e = (e.0.saturating_add(1), e.1.saturating_add(o.size));
    }
    by
}

/// Dollars due if every object of the listing younger than its class's minimum duration were
/// deleted now: the rest of that duration at the class's storage price. Needs the storage's
/// object times ([`Storage::list_stamped`], asked only when some object's class has a
/// minimum); 0 without them.
fn early_deletion(
    storage: &dyn Storage,
    kind: Kind,
    listing: &[Classed],
    prices: &Prices,
) -> Result<f64> {
    let mut priced = BTreeMap::new();
    for o in listing {
        let p = prices.class(&o.class)?;
        if p.min_days > 0 {
            priced.insert(o.name.as_str(), (o.size, p));
        }
    }
    if priced.is_empty() {
        return Ok(0.0);
    }
    let Some(stamped) = storage.list_stamped(kind)? else {
        return Ok(0.0);
    };
    let mut due = 0.0;
    for (name, mtime) in &stamped.objects {
        let Some((size, price)) = priced.get(name.as_str()) else {
            continue;
        };
        let min = Duration::from_secs(u64::from(price.min_days) * 86_400);
        let age = stamped.now.duration_since(*mtime).unwrap_or_default();
        let Some(left) = min.checked_sub(age) else {
            continue;
        };
        let months = left.as_secs_f64() / (30.0 * 86_400.0);
        due += price.monthly(1, *size) * months;
    }
    Ok(due)
}

/// The runs in this machine's request log for the repository, each with its cost at the data
/// class's request prices (LIST as PUT, HEAD as GET, DELETE free).
fn request_runs(ctx: &Context, repo: &Repository, price: &ClassPrice) -> Vec<RunCost> {
    let path = ctx
        .cache_dir
        .as_deref()
        .and_then(|d| crate::reqlog::path(d, &repo.config().id));
    let runs = path.map(|p| crate::reqlog::read(&p)).unwrap_or_default();
    runs.into_iter()
        .map(|r| {
            let cost = price.requests(
                r.counts.put.saturating_add(r.counts.list),
                r.counts.get.saturating_add(r.counts.head),
            );
            RunCost { run: r, cost }
        })
        .collect()
}

/// The price of reading back every pack (the whole repository), per thaw tier: retrieval
/// (thaw or per-GB) plus one GET per pack; `None` for a tier the class does not offer.
fn restore_tiers(prices: &Prices, rows: &[KindRow]) -> Result<Vec<RestoreTier>> {
    let packs = rows.iter().filter(|r| r.kind.ends_with("packs"));
    let groups: Vec<(&str, u64, u64)> = packs
        .map(|r| (r.class.as_str(), r.objects, r.bytes))
        .collect();
    tiers_of(prices, &groups)
}

/// Per thaw tier, the price of reading back packs given as (class, packs, bytes) groups:
/// retrieval (thaw or per-GB) plus one GET per pack; `None` for a tier some class does not
/// offer.
fn tiers_of(prices: &Prices, groups: &[(&str, u64, u64)]) -> Result<Vec<RestoreTier>> {
    let bytes = groups.iter().fold(0u64, |a, g| a.saturating_add(g.2));
    let mut out = Vec::new();
    for tier in Tier::ALL {
        let mut total = Some(0.0);
        for &(class, objects, b) in groups {
            let gets = prices.class(class)?.requests(0, objects);
            let thaw = retrieval_cost(prices, class, tier, objects, b)?;
            total = total.zip(thaw).map(|(t, x)| t + x + gets);
        }
        out.push(RestoreTier {
            tier,
            bytes,
            cost: total,
        });
    }
    Ok(out)
}

/// The packs (and their price per thaw tier) a restore of the latest snapshot of each host
/// reads: the union of the packs of their trees and files, priced at each pack's class in
/// `packs` (the listing). `None` when the snapshots, the index or a tree cannot be read (a
/// put-only key, damage).
fn latest_restore(
    repo: &Repository,
    packs: &[Classed],
    prices: &Prices,
) -> Result<Option<LatestRestore>> {
    let Ok((list, _)) = repo.load_snapshots() else {
        return Ok(None);
    };
    let future = tresor_core::repo::snapshots::future_after();
    let mut latest: BTreeMap<&str, BlobId> = BTreeMap::new();
    for (_, snap) in &list {
        if !tresor_core::repo::snapshots::is_future(snap, future) {
            latest.insert(&snap.hostname, snap.tree);
        }
    }
    let roots: Vec<BlobId> = latest.values().copied().collect();
    let Ok(index) = repo.load_index() else {
        return Ok(None);
    };
    let reader = BlobReader::new(repo, &index);
    let Ok(needed) = tresor_core::thaw::restore_packs(&reader, &index, &roots) else {
        return Ok(None);
    };
    let mut by_class: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for p in packs {
        let needs = p
            .name
            .parse::<ObjectId>()
            .is_ok_and(|id| needed.contains(&id));
        if needs {
            let e = by_class.entry(p.class.as_str()).or_default();
            *e = (e.0.saturating_add(1), e.1.saturating_add(p.size));
        }
    }
    let groups: Vec<(&str, u64, u64)> = by_class.into_iter().map(|(c, (n, b))| (c, n, b)).collect();
    Ok(Some(LatestRestore {
        snapshots: roots.len() as u64,
        packs: groups.iter().map(|g| g.1).sum(),
        bytes: groups.iter().fold(0u64, |a, g| a.saturating_add(g.2)),
        tiers: tiers_of(prices, &groups)?,
    }))
}
