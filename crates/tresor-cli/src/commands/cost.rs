//! `tresor cost`: what the repository costs a month, what the last runs' requests cost, the
//! early-deletion charges pending and the price of reading it all back (docs/cli.md, "cost").

use crate::args::CostArgs;
use crate::context::Context;
use crate::exit;
use crate::prices::{ClassPrice, Prices, Tier, retrieval_cost};
use crate::render::{self, cost::CostReport, cost::KindRow, cost::RestoreTier, cost::RunCost};
use anyhow::Result;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use tresor_core::Repository;
use tresor_format::blob::BlobType;
use tresor_storage::{Kind, Storage};

/// Runs of the log shown one by one (the totals cover the whole log).
const RUNS_SHOWN: usize = 10;

pub fn run(ctx: &Context, a: &CostArgs) -> Result<i32> {
    let prices = crate::prices::load(ctx.config_file.as_deref(), a.prices.as_deref())?;
    let data_class = class_name(
        a.class_data.as_ref(),
        ctx.open.s3.storage_class_data.as_ref(),
    );
    let meta_class = class_name(
        a.class_metadata.as_ref(),
        ctx.open.s3.storage_class_metadata.as_ref(),
    );
    prices.class(&data_class)?;
    prices.class(&meta_class)?;
    let repo = ctx.open()?;
    let tree_packs = tree_packs(&repo);
    let storage = repo.storage().clone();
    let mut rows = Vec::new();
    let mut early = 0.0;
    for kind in Kind::ALL {
        let listing = storage.list(kind)?;
        let class = if kind == Kind::Pack {
            &data_class
        } else {
            &meta_class
        };
        let price = prices.class(class)?;
        early += early_deletion(storage.as_ref(), kind, &listing, price)?;
        for (group, objects, bytes) in group(kind, &listing, &tree_packs) {
            add_row(
                &mut rows,
                KindRow::new(group, class, objects, bytes, price),
                price,
            );
        }
    }
    let runs = request_runs(ctx, &repo, prices.class(&data_class)?);
    let restore = restore_tiers(&prices, &rows)?;
    let report = CostReport::new(rows, &prices, runs, early, restore, RUNS_SHOWN);
    render::emit(&report, ctx.mode())?;
    Ok(exit::OK)
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

/// A listing's objects grouped as `cost` shows them: (group, objects, bytes), sizes saturating.
fn group(
    kind: Kind,
    listing: &[(String, u64)],
    tree_packs: &HashSet<String>,
) -> Vec<(&'static str, u64, u64)> {
    let mut by: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
    for (name, size) in listing {
        let g = match kind {
            Kind::Pack if tree_packs.contains(name) => "tree packs",
            Kind::Pack => "data packs",
            Kind::Index => "index",
            Kind::Snapshot => "snapshots",
            Kind::Key => "keys",
            _ => "other",
        };
        let e = by.entry(g).or_default();
        *e = (e.0.saturating_add(1), e.1.saturating_add(*size));
    }
    by.into_iter().map(|(g, (n, b))| (g, n, b)).collect()
}

/// Dollars due if every object of the listing younger than its class's minimum duration were
/// deleted now: the rest of that duration at the class's storage price. Needs the storage's
/// object times ([`Storage::list_stamped`]); 0 without them or without a minimum.
fn early_deletion(
    storage: &dyn Storage,
    kind: Kind,
    listing: &[(String, u64)],
    price: &ClassPrice,
) -> Result<f64> {
    if price.min_days == 0 {
        return Ok(0.0);
    }
    let Some(stamped) = storage.list_stamped(kind)? else {
        return Ok(0.0);
    };
    let sizes: BTreeMap<&str, u64> = listing.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    let min = Duration::from_secs(u64::from(price.min_days) * 86_400);
    let mut due = 0.0;
    for (name, mtime) in &stamped.objects {
        let age = stamped.now.duration_since(*mtime).unwrap_or_default();
        let Some(left) = min.checked_sub(age) else {
            continue;
        };
        let size = sizes.get(name.as_str()).copied().unwrap_or(0);
        let months = left.as_secs_f64() / (30.0 * 86_400.0);
        due += price.monthly(1, size) * months;
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
    let packs: Vec<&KindRow> = rows.iter().filter(|r| r.kind.ends_with("packs")).collect();
    let bytes = packs.iter().fold(0u64, |a, r| a.saturating_add(r.bytes));
    let mut out = Vec::new();
    for tier in Tier::ALL {
        let mut total = Some(0.0);
        for r in &packs {
            let c = prices.class(&r.class)?;
            let gets = c.requests(0, r.objects);
            let thaw = retrieval_cost(prices, &r.class, tier, r.objects, r.bytes)?;
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
