//! The thaw step of `restore`, `dump`, `check --read-data` and `copy`: data packs in a cold
//! storage class (S3 `GLACIER`, `DEEP_ARCHIVE`) are thawed before they are read
//! (`tresor_core::thaw`).

use crate::args::ThawArgs;
use crate::context::Context;
use crate::exit;
use crate::render::say;
use anyhow::Result;
use std::time::Duration;
use tresor_core::Repository;
use tresor_core::repo::blobs::BlobReader;
use tresor_core::repo::index::{IdSet, Index};
use tresor_core::thaw::{self, Count, Requests, ThawOptions, Thawed};
use tresor_format::{BlobId, ObjectId};
use tresor_storage::cold::{ColdClass, ThawTier};

/// The data packs a command will read.
pub enum Needed<'a> {
    /// Those holding what a path (`/`: everything) names below a snapshot's root tree.
    Below {
        /// The repository's index.
        index: &'a Index,
        /// The snapshot's root tree.
        root: &'a BlobId,
        /// The snapshot path.
        path: &'a [u8],
    },
    /// Those holding every file of these snapshot trees.
    Trees {
        /// The repository's index.
        index: &'a Index,
        /// The snapshots' root trees.
        roots: &'a [BlobId],
    },
    /// These packs.
    Packs(&'a [ObjectId]),
}

/// Thaw the packs of `repo` that `needed` names, when the command should look for cold packs
/// at all ([`wanted`]). `Ok(None)`: everything can be read (or, with `dry_run`, the bytes to
/// thaw were reported); `Ok(Some(count))`: so many packs are still thawing when the wait ends.
pub fn prepare(
    ctx: &Context,
    a: &ThawArgs,
    repo: &Repository,
    needed: Needed<'_>,
    dry_run: bool,
) -> Result<Option<Count>> {
    let t = thawed(ctx, a, repo, needed, dry_run)?;
    Ok(t.and_then(|t| (!t.complete && !dry_run).then_some(t.thawing)))
}

/// [`prepare`], returning all the thaw found (`None` when the command does not look for cold
/// packs, or a tree it needs does not load); when packs are still thawing as the wait ends,
/// [`Thawed::pending`] names them (`restore` leaves the files needing them for a later run).
pub fn thawed(
    ctx: &Context,
    a: &ThawArgs,
    repo: &Repository,
    needed: Needed<'_>,
    dry_run: bool,
) -> Result<Option<Thawed>> {
    if !wanted(ctx, a) {
        return Ok(None);
    }
    let storage = repo.storage().as_ref();
    let found = match needed {
        Needed::Below { index, root, path } => {
            thaw::needed_packs_below(&BlobReader::new(repo, index), index, storage, root, path)
        }
        Needed::Trees { index, roots } => {
            thaw::needed_packs_of(&BlobReader::new(repo, index), index, storage, roots)
        }
        Needed::Packs(ids) => thaw::with_sizes(storage, ids.iter().copied()),
    };
    // A tree that cannot be read is the command's to report (as damage, where it is).
    let Ok(packs) = found else {
        return Ok(None);
    };
    let opts = ThawOptions {
        tier: tier(a).map_err(anyhow::Error::msg)?,
        days: a.thaw_days.unwrap_or(7),
        wait: a.thaw_wait.unwrap_or(Duration::ZERO),
        first_poll: Duration::from_secs(2),
        dry_run,
    };
    let mut record = Requests::open(ctx.cache_dir.as_deref(), &repo.config().id);
    let t = thaw::thaw(storage, &packs, &opts, &mut record, &mut std::thread::sleep)?;
    if t.cold.packs > 0 && !ctx.quiet {
        report(&t, &opts);
    }
    Ok(Some(t))
}

/// The packs whose thaw this machine asked for within `--thaw-days` (default 7), when the
/// command looks for cold packs at all: `check --read-data-subset P%` reads them first.
pub fn preferred(ctx: &Context, a: &ThawArgs, repo: &Repository) -> IdSet<ObjectId> {
    if !wanted(ctx, a) {
        return IdSet::default();
    }
    let days = u64::from(a.thaw_days.unwrap_or(7));
    let record = Requests::open(ctx.cache_dir.as_deref(), &repo.config().id);
    let ids = record.requested_within(Duration::from_secs(days * 86_400));
    ids.into_iter().collect()
}

/// Say that cold data is still thawing; the exit code that says it ([`exit::THAWING`]).
pub fn still_thawing() -> i32 {
    say("cold data still thawing: run the same command again later".into());
    exit::THAWING
}

/// `--thaw-tier`, standard when not given.
fn tier(a: &ThawArgs) -> std::result::Result<ThawTier, String> {
    ThawTier::parse(a.thaw_tier.as_deref().unwrap_or("standard"))
}

/// The typical longest wait (seconds) for a thaw of the data class in use at `a`'s tier
/// (standard by default), AWS's figure (`ColdClass::typical_wait`); `None` for a hot class or
/// a tier the class does not offer.
pub fn typical_wait_secs(ctx: &Context, a: &ThawArgs) -> Option<f64> {
    let class = ColdClass::from_s3(ctx.open.s3.storage_class_data.as_deref()?)?;
    let tier = tier(a).ok()?;
    Some(class.typical_wait(tier)?.1.as_secs_f64())
}

/// Whether to look for cold packs at all (one `HEAD` per needed pack, and the trees read once
/// more): an S3 repository whose data class (`--s3-storage-class-data`, or the profile's) is
/// `GLACIER` or `DEEP_ARCHIVE`, or a command given any `--thaw-*` option.
/// Otherwise packs are read directly; a cold pack then fails with S3's `InvalidObjectState`,
/// and the message says to give `--thaw-tier`.
pub fn wanted(ctx: &Context, a: &ThawArgs) -> bool {
    s3(ctx) && (cold_class(ctx) || a.given())
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
