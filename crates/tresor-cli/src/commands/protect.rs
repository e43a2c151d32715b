//! `protect`: extend the Object Lock retention of everything snapshots need; `protect --list`;
//! and lock extension after a backup (docs/format.md §16).

use crate::args::ProtectArgs;
use crate::context::Context;
use crate::exit;
use crate::location::Location;
use crate::render::{self, protect::ExtendLine, protect::Listed, protect::SnapshotLine};
use anyhow::{Result, bail};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime};
use tresor_core::Repository;
use tresor_core::protect::{Extended, Retention, Target, extend, needed_objects};
use tresor_core::snapshots::find;
use tresor_format::ObjectId;
use tresor_s3::{LockMode, S3Storage};
use tresor_storage::{Kind, StorageError};

/// The S3 bucket as a [`Retention`]: reads with `HEAD`, extends with `PutObjectRetention` in
/// the object's own mode (else the repository's, else governance).
pub struct S3Retention {
    s3: S3Storage,
    mode: LockMode,
    modes: RefCell<HashMap<String, LockMode>>,
}

impl Retention for S3Retention {
    fn retain_until(
        &self,
        kind: Kind,
        name: &str,
    ) -> std::result::Result<Option<SystemTime>, StorageError> {
        let h = self.s3.head(kind, name)?;
        if let Some(Ok(m)) = h.lock_mode.as_deref().map(LockMode::parse) {
            self.modes.borrow_mut().insert(name.to_string(), m);
        }
        Ok(h.locked_until())
    }

    fn extend(
        &self,
        kind: Kind,
        name: &str,
        until: SystemTime,
    ) -> std::result::Result<(), StorageError> {
        let mode = self.modes.borrow().get(name).copied().unwrap_or(self.mode);
        self.s3.put_retention(kind, name, mode, until)
    }
}

/// The repository's bucket as a [`Retention`], after checking that it has Object Lock enabled.
///
/// # Errors
/// A location that is not S3 ("protect needs S3 Object Lock"), a bucket without Object Lock.
pub fn retention(ctx: &Context, repo: &Repository) -> Result<S3Retention> {
    let Location::S3(url) = Location::parse(&ctx.location)? else {
        bail!(
            "protect needs S3 Object Lock: {} is no s3: repository",
            ctx.location
        );
    };
    let s3 = S3Storage::open(&url, &ctx.open.s3)?;
    if !s3.bucket_object_lock()?.enabled {
        bail!(
            "protect needs S3 Object Lock: the bucket of {url} does not have Object Lock enabled"
        );
    }
    let mode = repo.config().object_lock.map_or(LockMode::Governance, |l| {
        crate::location::object_lock(l).mode
    });
    Ok(S3Retention {
        s3,
        mode,
        modes: RefCell::new(HashMap::new()),
    })
}

pub fn run(ctx: &Context, a: &ProtectArgs) -> Result<i32> {
    if !matches!(Location::parse(&ctx.location)?, Location::S3(_)) {
        bail!(
            "protect needs S3 Object Lock: {} is no s3: repository",
            ctx.location
        );
    }
    let repo = ctx.open()?;
    repo.require_read("protect")?;
    let r = retention(ctx, &repo)?;
    let (list, skipped) = repo.load_snapshots()?;
    if a.list {
        let mut rows = Vec::new();
        for (id, s) in list.iter() {
            if let Some(t) = r.retain_until(Kind::Snapshot, &id.to_hex())? {
                rows.push((*id, s.hostname.clone(), t));
            }
        }
        render::emit(&Listed { rows }, ctx.mode())?;
        return Ok(exit::OK);
    }
    if a.snapshots.is_empty() {
        bail!("protect: name the snapshots to protect (or --list)");
    }
    let until = until(a)?;
    let index = repo.load_index()?;
    let filter = (&a.filter).into();
    let target = Target {
        until,
        threshold: until,
        max_requests: usize::MAX,
        dry_run: a.dry_run,
    };
    let (mut sent, mut done, mut total) = (0, BTreeSet::new(), Extended::default());
    for spec in &a.snapshots {
        let (id, _) = find(&list, &skipped, spec, &filter)?;
        let needed = needed_objects(&repo, &index, id)?;
        let e = extend(&r, &needed, &target, &mut sent, &mut done)?;
        total.add(&e);
        render::emit(
            &SnapshotLine::new(Some(*id), &e, until, a.dry_run),
            ctx.mode(),
        )?;
    }
    render::emit(
        &SnapshotLine::new(None, &total, until, a.dry_run),
        ctx.mode(),
    )?;
    Ok(exit::OK)
}

/// The date of `--until` (RFC 3339, or a day: its start in UTC) or now + `--for`.
fn until(a: &ProtectArgs) -> Result<SystemTime> {
    let t = match (&a.until, &a.for_) {
        (Some(u), None) => parse_date(u)?,
        (None, Some(d)) => {
            let d = tresor_core::retention::parse_duration(d)?;
            let span = jiff::Span::new()
                .years(i64::from(d.years))
                .months(i64::from(d.months))
                .days(i64::from(d.days))
                .hours(i64::from(d.hours));
            jiff::Timestamp::now()
                .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .checked_add(span)?
                .timestamp()
        }
        _ => bail!("protect: give --until DATE or --for DURATION"),
    };
    if t <= jiff::Timestamp::now() {
        bail!("protect: the date {t} is not in the future");
    }
    Ok(SystemTime::try_from(t)?)
}

fn parse_date(s: &str) -> Result<jiff::Timestamp> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    match s.parse::<jiff::civil::Date>() {
        Ok(d) => Ok(d.to_zoned_datetime(jiff::tz::TimeZone::UTC)?.timestamp()),
        Err(_) => bail!("--until {s:?}: expected a date (2027-01-31) or an RFC 3339 time"),
    }
}

/// Lock extension after a backup (`backup --extend-locks`, or by default in a repository with
/// Object Lock days): the objects snapshot `id` needs whose retain-until date is earlier than
/// now + days/2 are extended to now + days, at most `max` requests. Nothing for a repository
/// without Object Lock days (an error when `asked`), nor for a put-only key, which cannot read
/// the trees that name the reused packs (a note when `asked`).
///
/// # Errors
/// As [`retention`], [`needed_objects`], [`extend`].
pub fn after_backup(
    ctx: &Context,
    repo: &Repository,
    id: &ObjectId,
    asked: bool,
    max: usize,
) -> Result<()> {
    let Some(lock) = repo.config().object_lock else {
        if asked {
            bail!("--extend-locks needs a repository created with --s3-object-lock-days");
        }
        return Ok(());
    };
    if !repo.key().can_read() {
        if asked {
            render::say(
                "extend-locks: a put-only key cannot read the trees that name reused packs; \
                 run `tresor backup --extend-locks` or `tresor protect` with a full key"
                    .to_string(),
            );
        }
        return Ok(());
    }
    // Locks live in the bucket: a repository reached otherwise (a local copy, `tresor serve`)
    // has none to extend unless asked. Unasked, a failure is a warning: the snapshot is saved.
    if !asked && !matches!(Location::parse(&ctx.location)?, Location::S3(_)) {
        return Ok(());
    }
    match extend_after(ctx, repo, id, lock.days, max) {
        Err(e) if !asked => {
            render::say(format!("warning: extend-locks: {e:#}"));
            Ok(())
        }
        r => r,
    }
}

/// [`after_backup`]'s extension: the objects snapshot `id` needs, to now + `lock_days`.
fn extend_after(
    ctx: &Context,
    repo: &Repository,
    id: &ObjectId,
    lock_days: u32,
    max: usize,
) -> Result<()> {
    let r = retention(ctx, repo)?;
    let index = repo.load_index()?;
    let needed = needed_objects(repo, &index, id)?;
    let days = Duration::from_secs(86_400 * u64::from(lock_days));
    let now = SystemTime::now();
    let target = Target {
        until: now + days,
        threshold: now + days / 2,
        max_requests: max,
        dry_run: false,
    };
    let e = extend(&r, &needed, &target, &mut 0, &mut BTreeSet::new())?;
    render::emit(&ExtendLine { extended: e, max }, ctx.mode())?;
    Ok(())
}
