//! `tresor s3-policy`: print the IAM policy for a repository's bucket (see `tresor_s3::policy`).

use crate::args::{Global, S3PolicyArgs};
use crate::exit;
use crate::location::{self, Location, Lock, OpenOptions};
use crate::render::s3_policy::Policy;
use anyhow::{Result, bail};
use tresor_s3::policy::{ObjectLockPolicy, PolicyOptions, Role, policy};

/// Print the policy JSON on stdout. Bucket and prefix come from the flags, or else from an `s3:`
/// repository location; `--s3-sse` (global) makes the policy require that encryption.
pub fn run(g: &Global, a: &S3PolicyArgs) -> Result<i32> {
    let s3 = OpenOptions::from_global(g)?.s3;
    let from_repo = match g.repo.as_deref() {
        Some(r) if tresor_s3::is_s3_url(r) => Some(tresor_s3::parse_s3_url(r, &s3)?),
        _ => None,
    };
    let bucket = match (&a.bucket, &from_repo) {
        (Some(b), _) => b.clone(),
        (None, Some(l)) => l.bucket.clone(),
        (None, None) => bail!("s3-policy needs --bucket (or an s3: repository location)"),
    };
    let prefix = match (&a.prefix, &from_repo) {
        (Some(p), _) => p.clone(),
        (None, Some(l)) if a.bucket.is_none() || a.bucket.as_deref() == Some(&l.bucket) => {
            l.prefix.clone()
        }
        _ => String::new(),
    };
    if bucket.is_empty() || bucket.contains(['/', '*', '?', '"']) {
        bail!("--bucket {bucket:?}: not a bucket name");
    }
    if prefix.contains(['*', '?', '"']) {
        bail!("--prefix {prefix:?}: wildcards and quotes are not allowed");
    }
    if a.full_key && a.admin {
        bail!("--full-key is for --append-only policies (--admin may read everything)");
    }
    let mut o = PolicyOptions::new(
        &bucket,
        &prefix,
        if a.admin {
            Role::Admin
        } else {
            Role::AppendOnly
        },
    );
    o.full_key = a.full_key;
    o.sse = s3.sse.clone();
    o.object_lock = object_lock(g, a)?;
    o.principal = a.principal.clone();
    let mode = crate::render::Mode {
        json: g.json,
        quiet: g.quiet,
    };
    crate::render::emit(&Policy(policy(&o)), mode)?;
    Ok(exit::OK)
}

/// The repository's Object Lock retention for the policy: from `--object-lock-days` (and
/// `--object-lock-mode`), or with `--object-lock` alone from the config of the `s3:` repository.
fn object_lock(g: &Global, a: &S3PolicyArgs) -> Result<Option<ObjectLockPolicy>> {
    if let Some(days) = a.object_lock_days {
        let mode =
            tresor_s3::LockMode::parse(a.object_lock_mode.as_deref().unwrap_or("governance"))?;
        return Ok(Some(ObjectLockPolicy { mode, days }));
    }
    if !a.object_lock {
        return Ok(None);
    }
    let Some(repo) = g.repo.as_deref().filter(|r| tresor_s3::is_s3_url(r)) else {
        bail!(
            "--object-lock reads the retention from an s3: repository's config; without one, give --object-lock-days N [--object-lock-mode MODE]"
        );
    };
    let storage = location::open(
        &Location::S3(repo.to_string()),
        &OpenOptions::from_global(g)?,
        Lock::Off,
    )?;
    let config = tresor_core::Repository::read_config(storage.as_ref())?;
    let Some(lock) = config.object_lock else {
        bail!("{repo}: the repository does not use Object Lock (no object_lock in its config)");
    };
    let l = location::object_lock(lock);
    Ok(Some(ObjectLockPolicy {
        mode: l.mode,
        days: l.days,
    }))
}
