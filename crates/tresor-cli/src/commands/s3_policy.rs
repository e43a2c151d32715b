//! `tresor s3-policy`: print the IAM policy for a repository's bucket (see `tresor_s3::policy`).

use crate::cli::{Global, S3PolicyArgs};
use crate::exit;
use anyhow::{Result, bail};
use tresor_s3::policy::{PolicyOptions, Role, policy};

/// Print the policy JSON on stdout. Bucket and prefix come from the flags, or else from an `s3:`
/// repository location; `--s3-sse` (global) makes the policy require that encryption.
pub fn run(g: &Global, a: &S3PolicyArgs) -> Result<i32> {
    let s3 = crate::context::s3_options(g)?;
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
    o.object_lock = a.object_lock;
    o.principal = a.principal.clone();
    println!("{}", serde_json::to_string_pretty(&policy(&o))?);
    Ok(exit::OK)
}
