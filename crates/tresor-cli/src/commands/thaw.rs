//! The thaw step of `restore`: data packs in a cold storage class (S3 `GLACIER`,
//! `DEEP_ARCHIVE`) are thawed before anything is restored (`tresor_core::thaw`).

use crate::args::RestoreArgs;
use crate::context::Context;
use crate::render::say;
use anyhow::Result;
use std::time::Duration;
use tresor_core::Repository;
use tresor_core::repo::blobs::BlobReader;
use tresor_core::repo::index::Index;
use tresor_core::thaw::{self, Requests, ThawOptions, Thawed};
use tresor_format::BlobId;
use tresor_storage::cold::{ColdClass, ThawTier};

/// Thaw what the snapshot tree `root` needs. `Ok(true)`: everything can be read (or, with
/// `--dry-run`, the bytes to thaw were reported).
pub fn prepare(
    ctx: &Context,
    a: &RestoreArgs,
    repo: &Repository,
    index: &Index,
    root: &BlobId,
) -> Result<bool> {
    let storage = repo.storage().as_ref();
    let reader = BlobReader::new(repo, index);
    let packs = thaw::needed_packs(&reader, index, storage, root)?;
    let opts = ThawOptions {
        tier: ThawTier::parse(&a.thaw_tier).map_err(anyhow::Error::msg)?,
        days: a.thaw_days,
        wait: a.thaw_wait,
        first_poll: Duration::from_secs(2),
        dry_run: a.dry_run,
    };
    let mut record = Requests::open(ctx.cache_dir.as_deref(), &repo.config().id);
    let t = thaw::thaw(storage, &packs, &opts, &mut record, &mut std::thread::sleep)?;
    if t.cold.packs > 0 && !ctx.quiet {
        report(&t, &opts);
    }
    Ok(t.complete || a.dry_run)
}

fn report(t: &Thawed, opts: &ThawOptions) {
    say(format!(
        "cold data: {} of {} needed packs are cold ({}); thawed {} packs ({} bytes), thawing {} \
         packs ({} bytes); thaw requests sent now {}, earlier {}",
        t.cold.packs,
        t.needed.packs,
        t.cold.bytes,
        t.thawed.packs,
        t.thawed.bytes,
        t.thawing.packs,
        t.thawing.bytes,
        t.requests_sent,
        t.requested_before
    ));
    if opts.dry_run {
        for (class, bytes) in &t.to_thaw_by_class {
            say(format!("to thaw: {bytes} bytes in {class}"));
            for line in waits(class, *bytes) {
                say(line);
            }
        }
    }
}

/// One line per tier: AWS's typical wait and the retrieval cost.
fn waits(class: &str, bytes: u64) -> Vec<String> {
    let Some(c) = ColdClass::from_s3(class) else {
        return vec![];
    };
    ThawTier::ALL
        .into_iter()
        .filter_map(|tier| {
            let (lo, hi) = c.typical_wait(tier)?;
            let cost = retrieval_cost(c, tier, bytes)
                .map_or("unknown (no price table)".to_string(), |usd| {
                    format!("{usd:.2} USD")
                });
            Some(format!(
                "  {tier}: typically {} to {}, retrieval cost {cost}",
                crate::output::duration(lo),
                crate::output::duration(hi)
            ))
        })
        .collect()
}

/// The retrieval cost of thawing `bytes` of `class` at `tier`: the place for the price table
/// of `tresor cost` (issue 18's cost view); `None` until it is there.
fn retrieval_cost(class: ColdClass, tier: ThawTier, bytes: u64) -> Option<f64> {
    let _ = (class, tier, bytes);
    None
}
