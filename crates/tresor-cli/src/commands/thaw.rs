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
    if !wanted(ctx, a) {
        return Ok(true);
    }
    let storage = repo.storage().as_ref();
    let reader = BlobReader::new(repo, index);
    // A tree that cannot be read is the restore's to report, file by file, as damage.
    let Ok(packs) = thaw::needed_packs(&reader, index, storage, root) else {
        return Ok(true);
    };
    let opts = ThawOptions {
        tier: ThawTier::parse(a.thaw_tier.as_deref().unwrap_or("standard"))
            .map_err(anyhow::Error::msg)?,
        days: a.thaw_days.unwrap_or(7),
        wait: a.thaw_wait.unwrap_or(Duration::ZERO),
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

/// Whether to look for cold packs at all (one `HEAD` per needed pack, and every tree read once
/// more): an S3 repository whose data class (`--s3-storage-class-data`, or the profile's) is
/// `GLACIER` or `DEEP_ARCHIVE`, or a restore given any `--thaw-*` option.
/// Other restores read packs directly; a cold pack then fails with S3's `InvalidObjectState`,
/// and the message says to give `--thaw-tier`.
fn wanted(ctx: &Context, a: &RestoreArgs) -> bool {
    let asked = a.thaw_tier.is_some() || a.thaw_days.is_some() || a.thaw_wait.is_some();
    s3(ctx) && (cold_class(ctx) || asked)
}

/// Whether data packs can lie in a cold class: an S3 repository whose data class
/// (`--s3-storage-class-data`, or the profile's) is `GLACIER` or `DEEP_ARCHIVE`. `prune` asks
/// the storage which packs are cold only then.
pub fn can_be_cold(ctx: &Context) -> bool {
    s3(ctx) && cold_class(ctx)
}

fn s3(ctx: &Context) -> bool {
    matches!(
        crate::location::Location::parse(&ctx.location),
        Ok(crate::location::Location::S3(_))
    )
}

fn cold_class(ctx: &Context) -> bool {
    (ctx.open.s3.storage_class_data.as_deref()).is_some_and(|c| ColdClass::from_s3(c).is_some())
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
                .map_or("unknown (not offered)".to_string(), |usd| {
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

/// The retrieval cost of thawing `bytes` of `class` at `tier`, in US dollars, from the built-in
/// AWS price table of `tresor cost` (`crate::prices`; per-GB thaw price, the per-request part
/// left out: one request per pack is well below a cent per thousand packs); `None` when the
/// class does not offer the tier.
fn retrieval_cost(class: ColdClass, tier: ThawTier, bytes: u64) -> Option<f64> {
    use crate::prices::{Prices, Tier};
    let tier = match tier {
        ThawTier::Expedited => Tier::Expedited,
        ThawTier::Standard => Tier::Standard,
        ThawTier::Bulk => Tier::Bulk,
    };
    crate::prices::retrieval_cost(&Prices::builtin(), class.as_s3(), tier, 0, bytes)
        .ok()
        .flatten()
}
