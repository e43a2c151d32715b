//! Repository locations: the one place that turns a location into a storage.
//!
//! A location is a local directory (`PATH` or `local:PATH`), an S3 bucket (`s3:https://…`,
//! `s3://…`) or a `tresor serve` server (`tresor+http(s)://…`, `ssh://…`). [`open`] is used by
//! every command that opens a repository (through `context`), by `tresor serve` for the
//! repositories it serves (handed to the server as opened storage) and by `s3-policy` to read a
//! repository's config.

use crate::args::{Global, ServerFlags};
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tresor_core::{CoreError, Repository};
use tresor_format::config::{ObjectLockConfig, ObjectLockMode};
use tresor_storage::Storage;
use tresor_storage::local::LocalStorage;
use tresor_storage::throttle::{Limits, Throttled};

/// A parsed repository location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory (absolute; a `local:` prefix removed).
    Local(PathBuf),
    /// An S3 location, as given (`s3:https://ENDPOINT/BUCKET[/PREFIX]` or `s3://BUCKET[/PREFIX]`).
    S3(String),
    /// A `tresor serve` server, as given (`tresor+https://`, `tresor+http://`, `ssh://`).
    Remote(String),
}

impl Location {
    /// Parse a location.
    ///
    /// # Errors
    /// Another `scheme://`, or a path that cannot be made absolute (an empty one).
    pub fn parse(location: &str) -> Result<Location> {
        if tresor_s3::is_s3_url(location) {
            return Ok(Location::S3(location.to_string()));
        }
        if tresor_server::is_remote_url(location) {
            return Ok(Location::Remote(location.to_string()));
        }
        let path = location.strip_prefix("local:").unwrap_or(location);
        if path.contains("://") {
            bail!("repository location {path:?}: unknown scheme (use a directory path or s3:…)");
        }
        Ok(Location::Local(std::path::absolute(path)?))
    }

    /// The directory of a local repository (`None` for S3 and servers).
    pub fn local_path(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::S3(_) | Location::Remote(_) => None,
        }
    }
}

/// What opening a location needs besides the location: the global S3 and server flags.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// For S3 locations.
    pub s3: tresor_s3::S3Options,
    /// For `tresor+http(s)://` and `ssh://` locations.
    pub server: ServerFlags,
    /// How long network storages retry a request that fails in passing (`--retry-for`).
    pub retry_for: Duration,
    /// Bandwidth limits of commands' storage (`--limit-upload`, `--limit-download`; see
    /// [`throttled`]).
    pub limits: Limits,
}

impl OpenOptions {
    /// From the global flags.
    ///
    /// # Errors
    /// An unknown server-side encryption, or a KMS key without `--s3-sse aws:kms`.
    pub fn from_global(g: &Global) -> Result<OpenOptions> {
        let mut s3 = tresor_s3::S3Options::default();
        s3.insecure_http = g.insecure_http;
        s3.retry_for = Duration::from_secs(g.retry_for);
        s3.storage_class_data = g.s3.storage_class_data.clone();
        s3.connections = usize::from(g.s3.connections);
        s3.storage_class_metadata = g.s3.storage_class_metadata.clone();
        s3.sse = match (&g.s3.sse, &g.s3.sse_kms_key_id) {
            (Some(a), k) => Some(tresor_s3::Sse::parse(a, k.as_deref())?),
            (None, Some(_)) => bail!("--s3-sse-kms-key-id needs --s3-sse aws:kms"),
            (None, None) => None,
        };
        Ok(OpenOptions {
            s3,
            server: g.server.clone(),
            retry_for: Duration::from_secs(g.retry_for),
            limits: Limits {
                upload: bytes_per_second("--limit-upload", g.limit_upload)?,
                download: bytes_per_second("--limit-download", g.limit_download)?,
            },
        })
    }
}

/// A limit of KiB per second in bytes per second; 0 or none is no limit.
fn bytes_per_second(flag: &str, kib: Option<u64>) -> Result<Option<u64>> {
    match kib.filter(|&k| k > 0) {
        None => Ok(None),
        Some(k) => match k.checked_mul(1024) {
            Some(b) => Ok(Some(b)),
            None => bail!("{flag} {k}: too large (KiB per second)"),
        },
    }
}

/// `storage` held to `limits` ([`Throttled`]: every backend, one layer), or as it is when
/// there are none.
pub fn throttled(storage: Arc<dyn Storage>, limits: Limits) -> Arc<dyn Storage> {
    if limits == Limits::default() {
        return storage;
    }
    Arc::new(Throttled::new(storage, limits))
}

/// What an S3 storage does about Object Lock (other locations ignore it).
#[derive(Debug, Clone, Copy)]
pub enum Lock {
    /// Lock every object written as the repository's config asks (none when there is no config
    /// yet): how commands open a repository.
    FromConfig,
    /// Lock nothing: raw access (`tresor serve`, reading the config for `s3-policy`).
    Off,
    /// `init --s3-object-lock-days`: check that the bucket has Object Lock enabled and that a
    /// locked probe object really is locked, then lock every object written with this
    /// retention. Refused for other locations.
    Enable(ObjectLockConfig),
}

/// Open the storage at `location`.
///
/// # Errors
/// Bad S3 or server options, an unreachable store, a config that cannot be read (with
/// [`Lock::FromConfig`]), a bucket without working Object Lock (with [`Lock::Enable`]).
pub fn open(location: &Location, o: &OpenOptions, lock: Lock) -> Result<Arc<dyn Storage>> {
    if let Lock::Enable(_) = lock
        && !matches!(location, Location::S3(_))
    {
        bail!("--s3-object-lock-days needs an S3 repository location (s3:…)");
    }
    Ok(match location {
        Location::Local(path) => Arc::new(LocalStorage::new(path.clone())),
        Location::S3(url) => Arc::new(open_s3(url, &o.s3, lock)?),
        Location::Remote(url) => Arc::new(tresor_server::RemoteStorage::open(
            url,
            &remote_options(&o.server, o.retry_for)?,
        )?),
    })
}

/// For S3 locations: whether the store refuses overwrites (`If-None-Match: *`). Some
/// S3-compatible stores silently ignore the header; tresor must not trust them blindly.
/// `Ok(true)` for other locations.
///
/// # Errors
/// As [`open`], and a failed probe.
pub fn probe_conditional_writes(location: &Location, o: &OpenOptions) -> Result<bool> {
    match location {
        Location::S3(url) => Ok(open_s3(url, &o.s3, Lock::FromConfig)?.probe_conditional_writes()?),
        Location::Local(_) | Location::Remote(_) => Ok(true),
    }
}

/// The S3 storage at `url`, locking objects as `lock` says.
fn open_s3(url: &str, o: &tresor_s3::S3Options, lock: Lock) -> Result<tresor_s3::S3Storage> {
    let s3 = tresor_s3::S3Storage::open(url, o)?;
    match lock {
        Lock::Off => {}
        Lock::FromConfig => match Repository::read_config(&s3) {
            Ok(c) => s3.set_object_lock(c.object_lock.map(object_lock)),
            Err(CoreError::RepositoryNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        },
        Lock::Enable(l) => enable_object_lock(url, &s3, l)?,
    }
    Ok(s3)
}

/// Check that the bucket has Object Lock enabled and really locks a probe object, then give
/// every object written this retention.
fn enable_object_lock(url: &str, s3: &tresor_s3::S3Storage, lock: ObjectLockConfig) -> Result<()> {
    if !s3.bucket_object_lock()?.enabled {
        bail!(
            "{url}: the bucket does not have Object Lock enabled (create it with Object Lock, \
             e.g. `aws s3api create-bucket --object-lock-enabled-for-bucket`)"
        );
    }
    s3.set_object_lock(Some(object_lock(lock)));
    if !s3.probe_object_lock()? {
        bail!(
            "{url}: the store accepted the Object Lock headers but did not lock the probe object; \
             refusing to rely on it"
        );
    }
    Ok(())
}

/// Client options for [`tresor_server::RemoteStorage::open`]. The token comes from
/// `TRESOR_SERVER_TOKEN` or the token file, never from a flag nor from the URL.
fn remote_options(f: &ServerFlags, retry_for: Duration) -> Result<tresor_server::RemoteOptions> {
    let mut o = tresor_server::RemoteOptions::default();
    o.retry_for = retry_for;
    o.token = tresor_server::client::token_from_env(f.server_token_file.as_deref())?;
    o.tls_ca = f.tls_ca.clone();
    o.server_command = f.server_command.clone();
    Ok(o)
}

/// The S3 form of a config's Object Lock setting.
pub fn object_lock(c: ObjectLockConfig) -> tresor_s3::ObjectLock {
    tresor_s3::ObjectLock {
        mode: match c.mode {
            ObjectLockMode::Governance => tresor_s3::LockMode::Governance,
            ObjectLockMode::Compliance => tresor_s3::LockMode::Compliance,
        },
        days: c.days,
    }
}
