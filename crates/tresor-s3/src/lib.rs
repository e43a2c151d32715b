//! # tresor-s3: repositories in S3 and S3-compatible object stores
//!
//! [`S3Storage`] implements the blocking [`tresor_storage::Storage`] trait on top of
//! [OpenDAL](https://opendal.apache.org/)'s asynchronous S3 service.
//!
//! ## Design
//!
//! * **A runtime behind a blocking API.** Every `S3Storage` owns a private multi-threaded tokio
//!   runtime (at most 4 worker threads). Each `Storage` method builds a future and waits for it on
//!   the calling thread with `Runtime::block_on`; many caller threads may do so at once. A call
//!   made from inside some other tokio runtime is spawned onto the private runtime instead and
//!   waited for with a channel, so the storage never panics with "cannot block inside a runtime"
//!   (it still blocks that thread). The runtime is shut down in the background on drop.
//! * **Conditional writes.** Objects are immutable. [`Storage::write`] sends `PUT` with
//!   `If-None-Match: *` (OpenDAL `if_not_exists`). When the store answers 412 (the key exists),
//!   the existing object is read: the same bytes mean success (idempotent retries, concurrent
//!   writers of the same content), other bytes are [`ErrorKind::AlreadyExists`] and the stored
//!   object is left untouched. A 409 `ConditionalRequestConflict` (a concurrent conditional write
//!   in progress, AWS) is retried a few times with backoff. Some stores (Garage 2.5) silently
//!   ignore `If-None-Match`; [`S3Storage::probe_conditional_writes`] detects that.
//! * **Retries and timeouts.** OpenDAL's `TimeoutLayer` bounds every request
//!   ([`S3Options::timeout`] for control calls such as stat, list and delete,
//!   [`S3Options::io_timeout`] for a read or write body). Every storage call — list, read, range
//!   read, write, stat, delete, `HEAD`, hand-signed requests, the probes — is one unit that is
//!   sent again as a whole when it fails in passing (5xx such as 503 SlowDown and 500
//!   InternalError, 429, a reset or refused connection, a timeout), with exponential backoff and
//!   jitter, until [`S3Options::retry_for`] has passed since its first attempt (five minutes by
//!   default: throttling bursts are waited out) — see [`tresor_storage::retry`]. Every call is
//!   idempotent (writes are conditional, see above), so a retry of a call whose answer was lost
//!   is harmless. The storage's [`tresor_storage::retry::WaitObserver`] hears of every wait. What
//!   still fails is reported as [`ErrorKind::Transient`]. (OpenDAL's own `RetryLayer` is not
//!   used: it retries a fixed number of times, not for a time, and only some operations.)
//! * **Error mapping.** 404 is [`ErrorKind::NotFound`], 403 is [`ErrorKind::PermissionDenied`],
//!   a range past the end is [`ErrorKind::ShortRead`], 5xx, throttling, timeouts and connection
//!   errors are [`ErrorKind::Transient`], anything else is [`ErrorKind::Other`].
//! * **Layout.** The same as `LocalStorage`: `PREFIX/<kind dir>/<name>`, packs sharded as
//!   `PREFIX/data/<first two hex digits>/<name>` (see [`Kind::dir`]).
//! * **Credentials** come only from the standard AWS chain as OpenDAL loads it: the environment
//!   (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), the shared credentials
//!   and config files (`AWS_PROFILE`, `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`), web
//!   identity, SSO, ECS and EC2 instance metadata (IMDS is skipped when
//!   `AWS_EC2_METADATA_DISABLED=true`). Never from the URL: a URL with `user:pass@` is refused.
//!
//! * **Storage classes per object kind.** Data packs are written with
//!   [`S3Options::storage_class_data`] (which may be the cold `GLACIER` or `DEEP_ARCHIVE`:
//!   see [`Storage::cold_state`], [`Storage::request_thaw`]), everything else — tree packs
//!   ([`Storage::write_vec_hot`]) included — with
//!   [`S3Options::storage_class_metadata`] (two OpenDAL operators that differ only in the
//!   `x-amz-storage-class` they send).
//! * **Server-side encryption** ([`S3Options::sse`]): `x-amz-server-side-encryption` (and the
//!   KMS key id) on every write, as defence in depth on top of tresor's own encryption.
//! * **Append-only credentials.** With a policy from [`policy`] the credentials may not read
//!   packs or snapshots, nor delete anything. When a conditional write meets an existing object
//!   that cannot be read, [`Storage::write`] compares size and ETag from a listing instead.
//! * **What OpenDAL does not expose** (response headers of `HEAD`, bucket settings) goes through
//!   hand-signed requests: [`S3Storage::head`], [`S3Storage::bucket_request`].
//!
//! ## Locations
//!
//! See [`parse_s3_url`]: `s3:https://ENDPOINT/BUCKET[/PREFIX]`, `s3:http://...` (loopback only
//! unless [`S3Options::insecure_http`]), and `s3://BUCKET[/PREFIX]` for AWS.

#![warn(missing_docs)]

mod cold;
mod listing;
pub mod policy;
mod retention;
mod signed;
pub use retention::s3_date;

pub use cold::{parse_restore, restore_body};

pub use signed::BucketResponse;

use opendal::layers::TimeoutLayer;
use opendal::{Buffer, Operator, services};
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::runtime::Runtime;
use tresor_storage::retry::{Retrier, RetryPolicy, Verdict, WaitObserver};
use tresor_storage::{ErrorKind, Kind, Result, Stamped, Storage, StorageError, check_name, layout};

/// Options for [`S3Storage::open`]. Construct with [`S3Options::default`] and set fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct S3Options {
    /// Signing region. `None`: `AWS_REGION`, then `AWS_DEFAULT_REGION`, then `region` in the AWS
    /// config file for the profile; if none is found, `us-east-1` for custom endpoints and an
    /// error for `s3://` (AWS).
    pub region: Option<String>,
    /// AWS profile for the shared credentials and config files. `None`: `AWS_PROFILE`, then
    /// `default`.
    pub profile: Option<String>,
    /// Addressing style. `None`: path style (`https://ENDPOINT/BUCKET/KEY`) for custom endpoints;
    /// virtual-hosted style (`https://BUCKET.s3.REGION.amazonaws.com/KEY`) for AWS unless the
    /// bucket name contains a dot. `Some(true)` forces virtual-hosted, `Some(false)` path style.
    pub virtual_host_style: Option<bool>,
    /// Allow `s3:http://` to hosts that are not loopback addresses (plain text: anyone on the
    /// path sees and can change the traffic; only the signing key stays secret). Default `false`.
    pub insecure_http: bool,
    /// Timeout of one control request (stat, list page, delete). Default 60 s.
    pub timeout: Duration,
    /// Timeout of one body transfer (a whole object `PUT`, a read). Default 120 s; raise it for
    /// large packs over slow links.
    pub io_timeout: Duration,
    /// How long a request that fails in passing is retried, from its first attempt (with
    /// exponential backoff from 200 ms to 10 s and jitter, [`tresor_storage::retry`]). Default
    /// 300 s; zero never retries.
    pub retry_for: Duration,
    /// At most this many retries of one request, whatever [`S3Options::retry_for`] leaves.
    /// Default: no limit (`usize::MAX`); 0 never retries (S3 answers carry no `Retry-After`
    /// that tresor follows: every retry counts).
    pub max_retries: usize,
    /// Storage class of data packs (`x-amz-storage-class` on their `PUT`), e.g. `STANDARD_IA`,
    /// `ONEZONE_IA`, `INTELLIGENT_TIERING`, `GLACIER_IR`, or the cold `GLACIER` and
    /// `DEEP_ARCHIVE` (restore thaws them). `None`: the bucket's default (`STANDARD` on AWS).
    /// Checked by [`check_data_storage_class`].
    pub storage_class_data: Option<String>,
    /// Storage class of every other object: tree packs, config, keys, index, snapshots,
    /// revocations, markers. Never cold. `None`: the bucket's default.
    pub storage_class_metadata: Option<String>,
    /// Server-side encryption asked for on every write. `None`: the bucket's default.
    pub sse: Option<Sse>,
    /// Object Lock retention given to every object written (`x-amz-object-lock-mode` and
    /// `-retain-until-date` on each `PUT`). Needs a bucket with Object Lock enabled. Can also be
    /// set after opening ([`S3Storage::set_object_lock`]), e.g. from the repository config.
    pub object_lock: Option<ObjectLock>,
    /// Pack uploads a backup keeps in flight at once ([`Storage::write_concurrency`]); each
    /// holds one pack in memory. Default 4.
    pub connections: usize,
}

/// Object Lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockMode {
    /// Users with `s3:BypassGovernanceRetention` may still delete or shorten the lock.
    Governance,
    /// Nobody, not even the account's root user, can delete the object before the date.
    Compliance,
}

impl LockMode {
    /// `GOVERNANCE` or `COMPLIANCE`, as S3 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }

    /// Parse `governance` or `compliance` (any case).
    ///
    /// # Errors
    /// [`ErrorKind::Other`] for anything else.
    pub fn parse(s: &str) -> Result<LockMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "governance" => Ok(LockMode::Governance),
            "compliance" => Ok(LockMode::Compliance),
            _ => Err(option_error(format!(
                "Object Lock mode {s:?}: expected governance or compliance"
            ))),
        }
    }
}

/// Object Lock retention for every object written: `mode` until `days` days after the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectLock {
    /// Retention mode.
    pub mode: LockMode,
    /// Days from the write (at least 1).
    pub days: u32,
}

impl ObjectLock {
    /// The retain-until date of an object written now, as S3 wants it
    /// (`YYYY-MM-DDTHH:MM:SSZ`, rounded up to the second).
    pub fn retain_until_from_now(&self) -> String {
        let until = jiff::Timestamp::now()
            + jiff::SignedDuration::from_hours(24 * i64::from(self.days.max(1)))
            + jiff::SignedDuration::from_secs(1);
        until.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    }
}

/// Server-side encryption of written objects (`x-amz-server-side-encryption`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sse {
    /// SSE-S3: `AES256`, keys managed by the store.
    Aes256,
    /// SSE-KMS: `aws:kms`, with this key (id, ARN or alias ARN), or the account's default
    /// `aws/s3` key when `None`.
    Kms(Option<String>),
}

impl Sse {
    /// From the command-line form: `algorithm` is `AES256` or `aws:kms` (case-insensitive);
    /// `kms_key_id` only with `aws:kms`.
    ///
    /// # Errors
    /// [`ErrorKind::Other`] for another algorithm, or a key id without `aws:kms`.
    pub fn parse(algorithm: &str, kms_key_id: Option<&str>) -> Result<Sse> {
        let key = kms_key_id.map(str::trim).filter(|k| !k.is_empty());
        match algorithm.trim() {
            a if a.eq_ignore_ascii_case("AES256") => match key {
                None => Ok(Sse::Aes256),
                Some(_) => Err(option_error(
                    "a KMS key id needs server-side encryption aws:kms, not AES256",
                )),
            },
            a if a.eq_ignore_ascii_case("aws:kms") => Ok(Sse::Kms(key.map(str::to_string))),
            a => Err(option_error(format!(
                "server-side encryption {a:?}: expected AES256 or aws:kms"
            ))),
        }
    }

    /// The value of `x-amz-server-side-encryption`: `AES256` or `aws:kms`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Sse::Aes256 => "AES256",
            Sse::Kms(_) => "aws:kms",
        }
    }

    /// The KMS key id, if one was given.
    pub fn kms_key_id(&self) -> Option<&str> {
        match self {
            Sse::Kms(k) => k.as_deref(),
            Sse::Aes256 => None,
        }
    }
}

fn option_error(message: impl fmt::Display) -> StorageError {
    StorageError {
        kind: ErrorKind::Other,
        op: "open",
        kind_name: "option".to_string(),
        name: String::new(),
        message: message.to_string(),
    }
}

/// Check a storage class name: upper-case letters, digits and `_` (stores define their own
/// classes, so the name is not checked against AWS's list). The cold classes `GLACIER` and
/// `DEEP_ARCHIVE` are refused here: objects there cannot be read without a restore request, and
/// tresor reads index objects (every backup), tree packs and snapshots. Data packs may go cold:
/// see [`check_data_storage_class`].
///
/// # Errors
/// [`ErrorKind::Other`] naming the problem.
pub fn check_storage_class(class: &str) -> Result<()> {
    check_data_storage_class(class)?;
    if matches!(class, "GLACIER" | "DEEP_ARCHIVE") {
        return Err(option_error(format!(
            "storage class {class}: objects there cannot be read without a restore request, but \
             tresor reads index objects, tree packs and snapshots; use it for data packs only \
             (--s3-storage-class-data) or use GLACIER_IR"
        )));
    }
    Ok(())
}

/// [`check_storage_class`] for data packs ([`S3Options::storage_class_data`]), which also
/// accepts `GLACIER` and `DEEP_ARCHIVE`: backup never reads data packs (dedup works from the
/// index, parent trees come from tree packs, which stay in the metadata class), and restore
/// thaws what it needs ([`Storage::request_thaw`]).
///
/// # Errors
/// [`ErrorKind::Other`] naming the problem.
pub fn check_data_storage_class(class: &str) -> Result<()> {
    if class.is_empty()
        || !class
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(option_error(format!(
            "storage class {class:?}: expected an S3 storage class such as STANDARD_IA or GLACIER_IR"
        )));
    }
    Ok(())
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            region: None,
            profile: None,
            virtual_host_style: None,
            insecure_http: false,
            timeout: Duration::from_secs(60),
            io_timeout: Duration::from_secs(120),
            retry_for: tresor_storage::retry::DEFAULT_RETRY_FOR,
            max_retries: usize::MAX,
            storage_class_data: None,
            storage_class_metadata: None,
            sse: None,
            object_lock: None,
            connections: 4,
        }
    }
}

/// A parsed S3 location (no credentials: URLs never carry any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// `Some("https://host[:port]")` or `Some("http://host[:port]")` for a custom endpoint;
    /// `None` for AWS (`s3://`), where OpenDAL derives the endpoint from the region (or
    /// `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// Bucket name.
    pub bucket: String,
    /// Key prefix without leading or trailing `/`; empty for the bucket root.
    pub prefix: String,
}

impl S3Location {
    /// The location as a URL in the `s3:` syntax [`parse_s3_url`] accepts.
    pub fn to_url(&self) -> String {
        let mut s = match &self.endpoint {
            Some(e) => format!("s3:{e}/{}", self.bucket),
            None => format!("s3://{}", self.bucket),
        };
        if !self.prefix.is_empty() {
            s.push('/');
            s.push_str(&self.prefix);
        }
        s
    }
}

/// Whether `url` names an S3 location, i.e. starts with `s3:` (`s3:https://`, `s3:http://` or
/// `s3://`). It does not check the rest; [`S3Storage::open`] does.
pub fn is_s3_url(url: &str) -> bool {
    url.starts_with("s3:")
}

fn location_error(url: &str, message: impl fmt::Display) -> StorageError {
    StorageError {
        kind: ErrorKind::Other,
        op: "open",
        kind_name: "location".to_string(),
        name: redact(url),
        message: message.to_string(),
    }
}

/// Hide a `user:pass@` part so that refused URLs do not leak credentials into messages.
fn redact(url: &str) -> String {
    let (head, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => return url.to_string(),
    };
    let auth_end = rest.find('/').unwrap_or(rest.len());
    match rest[..auth_end].rfind('@') {
        Some(at) => format!("{head}***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn valid_bucket(b: &str) -> bool {
    (1..=255).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
        && !b.starts_with('.')
}

fn valid_prefix_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b'-' | b'.' | b'_' | b'~' | b'+' | b'=' | b',' | b'@' | b':' | b'!'
                )
        })
}

/// Split `host[:port]` (IPv6 in brackets) and check both parts. Returns the host.
fn check_authority<'a>(url: &str, auth: &'a str) -> Result<&'a str> {
    let (host, port) = if let Some(rest) = auth.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| location_error(url, "unclosed '[' in the endpoint"))?;
        let host = &auth[..end + 2];
        let after = &rest[end + 1..];
        if host[1..host.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .is_err()
        {
            return Err(location_error(url, "bad IPv6 address in the endpoint"));
        }
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(location_error(url, "bad endpoint after ']'")),
        }
    } else {
        match auth.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (auth, None),
        }
    };
    if host.is_empty() {
        return Err(location_error(url, "the endpoint has no host"));
    }
    if !host.starts_with('[')
        && !host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
    {
        return Err(location_error(url, "bad character in the endpoint host"));
    }
    if let Some(p) = port
        && !p.parse::<u16>().is_ok_and(|p| p != 0)
    {
        return Err(location_error(url, "bad port in the endpoint"));
    }
    Ok(host)
}

/// Parse an S3 location URL.
///
/// Accepted forms:
/// * `s3:https://ENDPOINT/BUCKET[/PREFIX]`: a custom endpoint over TLS; `ENDPOINT` is
///   `host[:port]` (IPv6 in brackets).
/// * `s3:http://ENDPOINT/BUCKET[/PREFIX]`: plain HTTP, allowed only when the host is a loopback
///   address (`localhost`, `127.0.0.0/8`, `[::1]`) or [`S3Options::insecure_http`] is set.
/// * `s3://BUCKET[/PREFIX]`: AWS S3.
///
/// `PREFIX` is one or more `/`-separated segments of ASCII letters, digits and `-._~+=,@:!`
/// (empty segments are dropped; `.` and `..` are refused). Query strings, fragments, percent
/// escapes and credentials (`user:pass@`) are refused.
///
/// # Errors
/// [`ErrorKind::Other`] with a message naming the problem.
pub fn parse_s3_url(url: &str, opts: &S3Options) -> Result<S3Location> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("s3:https://") {
        (Some("https"), r)
    } else if let Some(r) = url.strip_prefix("s3:http://") {
        (Some("http"), r)
    } else if let Some(r) = url.strip_prefix("s3://") {
        (None, r)
    } else {
        return Err(location_error(
            url,
            "not an S3 location: expected s3:https://ENDPOINT/BUCKET[/PREFIX], \
             s3:http://ENDPOINT/BUCKET[/PREFIX] or s3://BUCKET[/PREFIX]",
        ));
    };
    if rest.contains(['?', '#']) {
        return Err(location_error(
            url,
            "query strings and fragments are not allowed",
        ));
    }
    let (endpoint, path) = match scheme {
        Some(scheme) => {
            let (auth, path) = rest.split_once('/').unwrap_or((rest, ""));
            if auth.contains('@') {
                return Err(location_error(
                    url,
                    "credentials in the URL are not allowed: use AWS_ACCESS_KEY_ID / \
                     AWS_SECRET_ACCESS_KEY or a profile in the shared credentials file",
                ));
            }
            let host = check_authority(url, auth)?;
            if scheme == "http" && !opts.insecure_http && !is_loopback_host(host) {
                return Err(location_error(
                    url,
                    "plain http is only allowed to loopback addresses (127.0.0.1, localhost, \
                     [::1]); use s3:https:// or set the insecure_http option",
                ));
            }
            (Some(format!("{scheme}://{auth}")), path)
        }
        None => (None, rest),
    };
    let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
    if bucket.contains('@') {
        return Err(location_error(
            url,
            "credentials in the URL are not allowed",
        ));
    }
    if !valid_bucket(bucket) {
        return Err(location_error(
            url,
            "missing or bad bucket name (letters, digits, '.', '-', '_')",
        ));
    }
    let segments: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(bad) = segments.iter().find(|s| !valid_prefix_segment(s)) {
        return Err(location_error(
            url,
            format!("bad prefix segment {bad:?} (letters, digits and -._~+=,@:! only)"),
        ));
    }
    Ok(S3Location {
        endpoint,
        bucket: bucket.to_string(),
        prefix: segments.join("/"),
    })
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `region` of `profile` in the AWS config file (`AWS_CONFIG_FILE` or `~/.aws/config`).
fn region_from_config_file(profile: &str) -> Option<String> {
    let path = env_nonempty("AWS_CONFIG_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            env_nonempty("HOME").map(|h| std::path::Path::new(&h).join(".aws").join("config"))
        })?;
    let text = std::fs::read_to_string(path).ok()?;
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let section = section.trim();
            let name = section.strip_prefix("profile ").map_or(section, str::trim);
            in_section = name == profile;
            continue;
        }
        if in_section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == "region"
            && !v.trim().is_empty()
        {
            return Some(v.trim().to_string());
        }
    }
    None
}

/// The region to sign with; see [`S3Options::region`].
fn resolve_region(loc: &S3Location, opts: &S3Options, url: &str) -> Result<String> {
    if let Some(r) = opts.region.as_ref().filter(|r| !r.is_empty()) {
        return Ok(r.clone());
    }
    if let Some(r) = env_nonempty("AWS_REGION").or_else(|| env_nonempty("AWS_DEFAULT_REGION")) {
        return Ok(r);
    }
    let profile = opts
        .profile
        .clone()
        .or_else(|| env_nonempty("AWS_PROFILE"))
        .unwrap_or_else(|| "default".to_string());
    if let Some(r) = region_from_config_file(&profile) {
        return Ok(r);
    }
    if loc.endpoint.is_some() {
        Ok("us-east-1".to_string())
    } else {
        Err(location_error(
            url,
            "no AWS region: set AWS_REGION, `region` in ~/.aws/config, or the region option",
        ))
    }
}

/// A repository in an S3 bucket, under a key prefix.
///
/// Cheap to share between threads (`&S3Storage` from many threads; the methods block).
pub struct S3Storage {
    /// With timeouts: used for everything...
    op: Operator,
    /// ...but writes of packs, which may have another storage class.
    op_pack: Operator,
    /// Hand-signed requests for what OpenDAL does not expose.
    signer: signed::BucketSigner,
    /// `Some` until drop, where it is shut down in the background.
    rt: Option<Runtime>,
    location: S3Location,
    region: String,
    /// Whether ETags are the MD5 of the body (not with SSE-KMS).
    etag_is_md5: bool,
    /// Object Lock retention of new objects, shared with the HTTP transport.
    lock: Arc<RwLock<Option<ObjectLock>>>,
    /// Retries every call ([`S3Options::retry_for`]).
    retrier: Retrier,
    /// [`S3Options::io_timeout`], for hand-signed requests.
    io_timeout: Duration,
    /// Read-ahead windows of packs.
    windows: Windows,
    /// [`S3Options::connections`].
    connections: usize,
}

impl fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Storage")
            .field("location", &self.location.to_url())
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Drop for S3Storage {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// What `HEAD` tells about one object ([`S3Storage::head`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectHead {
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes.
    pub etag: Option<String>,
    /// `x-amz-storage-class`. AWS leaves it out for `STANDARD`; SeaweedFS always sends it.
    pub storage_class: Option<String>,
    /// `x-amz-server-side-encryption`: `AES256` or `aws:kms`.
    pub server_side_encryption: Option<String>,
    /// `x-amz-server-side-encryption-aws-kms-key-id`.
    pub kms_key_id: Option<String>,
    /// `x-amz-object-lock-mode`: `GOVERNANCE` or `COMPLIANCE`.
    pub lock_mode: Option<String>,
    /// `x-amz-object-lock-retain-until-date`, as sent (RFC 3339).
    pub lock_retain_until: Option<String>,
    /// `x-amz-object-lock-legal-hold: ON`.
    pub legal_hold: bool,
    /// `x-amz-version-id` (versioned buckets).
    pub version_id: Option<String>,
    /// `x-amz-restore` as sent: the thaw of an object in a cold class (see [`parse_restore`]).
    pub restore: Option<String>,
    /// `Last-Modified` as sent (RFC 2822 / HTTP date).
    pub last_modified: Option<String>,
}

impl ObjectHead {
    /// Until when the object may not be deleted: the retain-until date of an Object Lock
    /// retention that has not passed, or 9999-12-31 under a legal hold; `None` otherwise.
    pub fn locked_until(&self) -> Option<std::time::SystemTime> {
        if self.legal_hold {
            return Some(far_future());
        }
        self.lock_mode.as_ref()?;
        let until: jiff::Timestamp = self.lock_retain_until.as_deref()?.parse().ok()?;
        let until = std::time::SystemTime::try_from(until).ok()?;
        (until > std::time::SystemTime::now()).then_some(until)
    }

    fn from_response(r: &BucketResponse) -> ObjectHead {
        let h = |n: &str| r.header(n).map(str::to_string);
        ObjectHead {
            size: r
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            etag: r.header("etag").map(|t| t.trim_matches('"').to_string()),
            storage_class: h("x-amz-storage-class"),
            server_side_encryption: h("x-amz-server-side-encryption"),
            kms_key_id: h("x-amz-server-side-encryption-aws-kms-key-id"),
            lock_mode: h("x-amz-object-lock-mode"),
            lock_retain_until: h("x-amz-object-lock-retain-until-date"),
            legal_hold: r
                .header("x-amz-object-lock-legal-hold")
                .is_some_and(|v| v.eq_ignore_ascii_case("ON")),
            version_id: h("x-amz-version-id"),
            restore: h("x-amz-restore"),
            last_modified: h("last-modified"),
        }
    }
}

/// 9999-12-31, standing for "no end date".
fn far_future() -> std::time::SystemTime {
    std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_214_400)
}

/// A bucket's Object Lock settings ([`S3Storage::bucket_object_lock`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BucketObjectLock {
    /// Object Lock is enabled on the bucket (it can only be enabled at creation, or later on a
    /// versioned bucket).
    pub enabled: bool,
    /// The default retention mode given to objects written without one.
    pub default_mode: Option<LockMode>,
    /// The default retention in days (years are converted at 365 days).
    pub default_days: Option<u32>,
}

/// Result of a conditional create.
enum Created {
    /// Stored now, or the same bytes were already there.
    Stored,
    /// The key holds other bytes.
    Conflict,
}

/// Whether an OpenDAL error is worth another attempt: a temporary failure (5xx, a transport
/// failure, a timeout) or throttling.
fn is_passing(e: &opendal::Error) -> bool {
    e.is_temporary() || e.kind() == opendal::ErrorKind::RateLimited
}

/// The [`Verdict`] on an OpenDAL error.
fn verdict(e: &opendal::Error) -> Verdict {
    if is_passing(e) {
        Verdict::Backoff
    } else {
        Verdict::Final
    }
}

/// An OpenDAL error told briefly, for wait notices: its kind, message (for S3 answers the
/// parsed error: code and message) and source (a transport failure), without the request's
/// context.
struct Brief(opendal::Error);

impl fmt::Display for Brief {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.message().is_empty() && std::error::Error::source(&self.0).is_none() {
            return self.0.fmt(f);
        }
        write!(f, "{}: {}", self.0.kind(), self.0.message())?;
        let mut source = std::error::Error::source(&self.0);
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// An object named in wait notices: `pack 1a2b3c4d`.
pub(crate) fn what(kind: Kind, name: &str) -> String {
    format!("{kind} {}", name.get(..8).unwrap_or(name))
}

/// A 409 `ConditionalRequestConflict`: another conditional write to the key is in progress.
fn is_conditional_conflict(e: &opendal::Error) -> bool {
    e.kind() == opendal::ErrorKind::Conflict || e.to_string().contains("ConditionalRequestConflict")
}

/// Backoff before retry `attempt` (1-based) of a conflicting conditional write: 50 ms doubling,
/// at most 2 s, plus up to 50 % random jitter.
fn conflict_backoff(attempt: u32) -> Duration {
    let base = 50u64.saturating_mul(1 << attempt.min(6)).min(2000);
    let mut r = [0u8; 2];
    let jitter = if getrandom::fill(&mut r).is_ok() {
        u64::from(u16::from_le_bytes(r)) * (base / 2) / u64::from(u16::MAX)
    } else {
        0
    };
    Duration::from_millis(base + jitter)
}

/// Size and ETag of the object at `path`, from a listing (`None`: not there).
async fn listed(op: &Operator, path: &str) -> opendal::Result<Option<(u64, Option<String>)>> {
    let entries = op.list_with(path).await?;
    Ok(entries
        .into_iter()
        .find(|e| e.path().trim_start_matches('/') == path && e.metadata().is_file())
        .map(|e| {
            let m = e.metadata();
            (
                m.content_length(),
                m.etag().map(|t| t.trim_matches('"').to_ascii_lowercase()),
            )
        }))
}

/// Whether the stored object, which may not be read, holds `data`: judged by a listing's size and
/// ETag (the MD5 of a single-`PUT` body, unless SSE-KMS). Under SSE-KMS, equal sizes and a name
/// that is the BLAKE3 of `data` count as the same object (a different object under that name
/// would fail every reader's hash check). `None`: the object is gone.
async fn same_as_listed(
    op: &Operator,
    path: &str,
    data: &Buffer,
    etag_is_md5: bool,
) -> opendal::Result<Option<bool>> {
    let Some((size, etag)) = listed(op, path).await? else {
        return Ok(None);
    };
    if size != data.len() as u64 {
        return Ok(Some(false));
    }
    let bytes = data.to_bytes();
    if etag_is_md5 {
        use md5::Digest;
        let md5 = hex::encode(md5::Md5::digest(&bytes));
        return Ok(Some(etag.as_deref() == Some(md5.as_str())));
    }
    let name = path.rsplit('/').next().unwrap_or_default();
    Ok(Some(name == tresor_storage::name_of(&bytes)))
}

/// `PUT` with `If-None-Match: *`; on 412 compare with what is stored.
async fn create_object(
    op: &Operator,
    path: &str,
    data: Buffer,
    etag_is_md5: bool,
) -> opendal::Result<Created> {
    const MAX_ATTEMPTS: u32 = 8;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op.write_with(path, data.clone()).if_not_exists(true).await {
            Ok(_) => return Ok(Created::Stored),
            Err(e) if e.kind() == opendal::ErrorKind::ConditionNotMatch => {
                match op.read(path).await {
                    Ok(existing) => {
                        return Ok(
                            if existing.len() == data.len()
                                && existing.to_bytes() == data.to_bytes()
                            {
                                Created::Stored
                            } else {
                                Created::Conflict
                            },
                        );
                    }
                    // Deleted in between (or not yet visible): try to create it again.
                    Err(e)
                        if e.kind() == opendal::ErrorKind::NotFound && attempt < MAX_ATTEMPTS => {}
                    // Append-only credentials that may not read this kind of object.
                    Err(e) if e.kind() == opendal::ErrorKind::PermissionDenied => {
                        match same_as_listed(op, path, &data, etag_is_md5).await? {
                            Some(true) => return Ok(Created::Stored),
                            Some(false) => return Ok(Created::Conflict),
                            None if attempt < MAX_ATTEMPTS => {}
                            None => return Err(e),
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) if is_conditional_conflict(&e) && attempt < MAX_ATTEMPTS => {}
            Err(e) => return Err(e),
        }
        tokio::time::sleep(conflict_backoff(attempt)).await;
    }
}

/// The probe of [`S3Storage::probe_conditional_writes`]: write `path`, write other bytes there
/// with `If-None-Match: *` (refused: `true`; accepted: `false`), delete it.
async fn probe_twice(op: Operator, path: String, etag_is_md5: bool) -> opendal::Result<bool> {
    // Like any write: a retried first attempt that had succeeded meets its own object.
    let first = Buffer::from(b"tresor probe 1".to_vec());
    let outcome = match create_object(&op, &path, first, etag_is_md5).await {
        Ok(Created::Stored) => {
            let second = Buffer::from(b"tresor probe 2".to_vec());
            match op.write_with(&path, second).if_not_exists(true).await {
                Ok(_) => Ok(false),
                Err(e) if e.kind() == opendal::ErrorKind::ConditionNotMatch => Ok(true),
                Err(e) => Err(e),
            }
        }
        Ok(Created::Conflict) => Err(opendal::Error::new(
            opendal::ErrorKind::Unexpected,
            "a random probe name is taken by other bytes",
        )),
        Err(e) => Err(e),
    };
    let _ = op.delete(&path).await;
    outcome
}

/// Map an OpenDAL error to a [`StorageError`].
fn map_err(op: &'static str, kind: Kind, name: &str, e: &opendal::Error) -> StorageError {
    use opendal::ErrorKind as D;
    let message = e.to_string();
    let k = match e.kind() {
        D::NotFound => ErrorKind::NotFound,
        D::PermissionDenied => ErrorKind::PermissionDenied,
        D::RangeNotSatisfied => ErrorKind::ShortRead,
        D::AlreadyExists | D::ConditionNotMatch => ErrorKind::AlreadyExists,
        D::RateLimited => ErrorKind::Transient,
        _ if e.is_temporary() => ErrorKind::Transient,
        _ if [
            "QuotaExceeded",
            "StorageFull",
            "NoSpace",
            "InsufficientStorage",
        ]
        .iter()
        .any(|c| message.contains(c)) =>
        {
            ErrorKind::NoSpace
        }
        _ => ErrorKind::Other,
    };
    StorageError::new(k, op, kind, name, message)
}

fn short_read(kind: Kind, name: &str, offset: u64, length: u64) -> StorageError {
    StorageError::new(
        ErrorKind::ShortRead,
        "read",
        kind,
        name,
        format!("range {offset}+{length} beyond end of object"),
    )
}

/// The key of an object relative to the prefix: `<kind dir>/<name>`, packs
/// `data/<first two hex digits>/<name>` ([`layout::object_key`]).
fn object_key(kind: Kind, name: &str) -> String {
    layout::object_key(kind, name)
}

/// The runtime that runs a storage's requests (up to 4 threads).
fn io_runtime(url: &str) -> Result<Runtime> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("tresor-s3")
        .enable_all()
        .build()
        .map_err(|e| location_error(url, format!("cannot start the I/O runtime: {e}")))
}

/// What every OpenDAL operator of one [`S3Storage`] is built from.
struct OperatorSpec<'a> {
    url: &'a str,
    location: &'a S3Location,
    root: String,
    region: &'a str,
    profile: Option<&'a str>,
    virtual_host: bool,
    disable_imds: bool,
    context: opendal::OperationContext,
}

impl OperatorSpec<'_> {
    /// The operator for objects of `storage_class`, with timeouts (retries are the storage's
    /// own, `call`).
    fn build(&self, opts: &S3Options, storage_class: Option<&str>) -> Result<Operator> {
        let mut builder = services::S3::default()
            .bucket(&self.location.bucket)
            .root(&self.root)
            .region(self.region)
            .skip_signature();
        if let Some(endpoint) = &self.location.endpoint {
            builder = builder.endpoint(endpoint);
        }
        if let Some(profile) = self.profile {
            builder = builder.profile(profile);
        }
        if self.virtual_host {
            builder = builder.enable_virtual_host_style();
        }
        if self.disable_imds {
            builder = builder.disable_ec2_metadata();
        }
        if let Some(class) = storage_class {
            builder = builder.default_storage_class(class);
        }
        builder = match &opts.sse {
            None => builder,
            Some(Sse::Aes256) => builder.server_side_encryption_with_s3_key(),
            Some(Sse::Kms(None)) => builder.server_side_encryption_with_aws_managed_kms_key(),
            Some(Sse::Kms(Some(key))) => {
                builder.server_side_encryption_with_customer_managed_kms_key(key)
            }
        };
        Ok(Operator::new(builder)
            .map_err(|e| location_error(self.url, format!("cannot configure S3: {e}")))?
            .with_context(self.context.clone())
            .layer(
                TimeoutLayer::new()
                    .with_timeout(opts.timeout)
                    .with_io_timeout(opts.io_timeout),
            ))
    }
}

impl S3Storage {
    /// Open the repository at `url` (see [`parse_s3_url`] for the forms). Does no network I/O:
    /// a wrong bucket or missing credentials show up on the first operation ([`Storage::create`]
    /// checks that the bucket can be listed).
    ///
    /// Credentials come from the standard AWS chain only (see the crate documentation). The
    /// region is resolved as [`S3Options::region`] describes.
    ///
    /// # Errors
    /// [`ErrorKind::Other`] for a malformed or refused URL (plain http to a non-loopback host
    /// without [`S3Options::insecure_http`], credentials in the URL), a missing AWS region, or
    /// when the runtime or the OpenDAL operator cannot be built.
    #[allow(
        clippy::too_many_lines,
        reason = "S3Storage::open; split after the issue-13 S3 retry work lands"
    )]
    pub fn open(url: &str, opts: &S3Options) -> Result<S3Storage> {
        let location = parse_s3_url(url, opts)?;
        let region = resolve_region(&location, opts, url)?;
        opendal::install_default();

        if let Some(class) = &opts.storage_class_data {
            check_data_storage_class(class)?;
        }
        if let Some(class) = &opts.storage_class_metadata {
            check_storage_class(class)?;
        }

        let virtual_host = opts
            .virtual_host_style
            .unwrap_or(location.endpoint.is_none() && !location.bucket.contains('.'));
        let disable_imds = env_nonempty("AWS_EC2_METADATA_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let profile = opts.profile.as_deref().filter(|p| !p.is_empty());
        let signer = signed::BucketSigner::new(
            location.endpoint.as_deref(),
            &location.bucket,
            &region,
            profile,
            virtual_host,
            disable_imds,
        );
        let lock = Arc::new(RwLock::new(opts.object_lock));
        // OpenDAL's requests are signed by our transport (see the signed module).
        let context = opendal::OperationContext::new().with_http_transport(
            opendal::HttpTransporter::new(signed::SigningTransport {
                signer: signer.clone(),
                lock: Arc::clone(&lock),
            }),
        );
        // One operator per storage class; retries are this storage's (`call`).
        let spec = OperatorSpec {
            url,
            location: &location,
            root: if location.prefix.is_empty() {
                "/".to_string()
            } else {
                format!("/{}/", location.prefix)
            },
            region: &region,
            profile,
            virtual_host,
            disable_imds,
            context,
        };
        let build = |storage_class: Option<&str>| spec.build(opts, storage_class);
        let op = build(opts.storage_class_metadata.as_deref())?;
        let op_pack = if opts.storage_class_data == opts.storage_class_metadata {
            op.clone()
        } else {
            build(opts.storage_class_data.as_deref())?
        };

        let rt = io_runtime(url)?;

        Ok(S3Storage {
            op,
            op_pack,
            signer,
            rt: Some(rt),
            location,
            region,
            etag_is_md5: !matches!(opts.sse, Some(Sse::Kms(_))),
            lock,
            retrier: Retrier::new(RetryPolicy::new(
                opts.retry_for,
                u32::try_from(opts.max_retries).unwrap_or(u32::MAX),
            )),
            io_timeout: opts.io_timeout,
            windows: Windows::default(),
            connections: opts.connections.max(1),
        })
    }

    /// Give every object written from now on this Object Lock retention (`None`: no per-object
    /// lock; a bucket default retention still applies).
    pub fn set_object_lock(&self, lock: Option<ObjectLock>) {
        *self.lock.write().unwrap_or_else(|e| e.into_inner()) = lock;
    }

    /// The per-object Object Lock retention in use.
    pub fn object_lock(&self) -> Option<ObjectLock> {
        *self.lock.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The parsed location.
    pub fn s3_location(&self) -> &S3Location {
        &self.location
    }

    /// The signing region in use.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// A request to the bucket, signed with the storage's credentials (for diagnostics, bucket
    /// settings and tests): `method` to `key` (relative to the bucket, not to the prefix; not
    /// encoded; empty for the bucket itself), with an already encoded `query` (e.g.
    /// `versions&prefix=p%2F`), extra `headers` and a `body`. The response is returned whatever
    /// its status; only transport failures (and timeouts) are retried, as every call is
    /// ([`S3Options::retry_for`]).
    ///
    /// # Errors
    /// Only transport failures ([`ErrorKind::Transient`]) and credential problems.
    pub fn bucket_request(
        &self,
        method: &str,
        key: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<BucketResponse> {
        let signer = self.signer.clone();
        let (m, k, q, b) = (
            method.to_string(),
            key.to_string(),
            query.to_string(),
            body.to_vec(),
        );
        let h: Vec<(String, String)> = headers
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let timeout = self.io_timeout;
        self.call("request", key, || {
            let (signer, m, k, q, b, h) = (
                signer.clone(),
                m.clone(),
                k.clone(),
                q.clone(),
                b.clone(),
                h.clone(),
            );
            async move {
                let h: Vec<(&str, &str)> =
                    h.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                tokio::time::timeout(timeout, signer.send(&m, &k, &q, &h, b))
                    .await
                    .unwrap_or_else(|_| {
                        Err(opendal::Error::new(
                            opendal::ErrorKind::Unexpected,
                            "request timed out",
                        )
                        .set_temporary())
                    })
            }
        })
        .map_err(|e| map_err("request", Kind::Config, key, &e))
    }

    /// `HEAD` of one object, with the headers OpenDAL does not report: storage class, server-side
    /// encryption, Object Lock mode and retain-until date. Passing failures (5xx, 429, transport)
    /// are retried as every call is ([`S3Options::retry_for`]).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`], [`ErrorKind::PermissionDenied`] and transport errors.
    pub fn head(&self, kind: Kind, name: &str) -> Result<ObjectHead> {
        check_name(kind, name)?;
        self.retrier.run(
            "head",
            &what(kind, name),
            || self.head_once(kind, name),
            |e| match e.kind {
                ErrorKind::Transient => Verdict::Backoff,
                _ => Verdict::Final,
            },
        )
    }

    fn head_once(&self, kind: Kind, name: &str) -> Result<ObjectHead> {
        let key = self.key(kind, name);
        let r = self.bucket_request("HEAD", &key, "", &[], &[])?;
        match r.status {
            200 => Ok(ObjectHead::from_response(&r)),
            404 => Err(StorageError::new(
                ErrorKind::NotFound,
                "head",
                kind,
                name,
                "no such object",
            )),
            403 => Err(StorageError::new(
                ErrorKind::PermissionDenied,
                "head",
                kind,
                name,
                "access denied",
            )),
            s if s >= 500 || s == 429 => Err(StorageError::new(
                ErrorKind::Transient,
                "head",
                kind,
                name,
                format!("HTTP {s}"),
            )),
            s => Err(StorageError::new(
                ErrorKind::Other,
                "head",
                kind,
                name,
                format!("HTTP {s}"),
            )),
        }
    }

    /// The bucket's Object Lock settings (`GetObjectLockConfiguration`). A bucket without Object
    /// Lock gives `enabled: false`.
    ///
    /// # Errors
    /// [`ErrorKind::PermissionDenied`] (the credentials lack
    /// `s3:GetBucketObjectLockConfiguration`), other HTTP errors, transport errors.
    pub fn bucket_object_lock(&self) -> Result<BucketObjectLock> {
        let r = self.bucket_request("GET", "", "object-lock", &[], b"")?;
        let text = r.text();
        let fail = |kind, what: &str| {
            StorageError::new(
                kind,
                "object-lock",
                Kind::Config,
                &self.location.to_url(),
                format!("{what}: HTTP {} {}", r.status, text.trim()),
            )
        };
        match r.status {
            200 => {}
            404 => return Ok(BucketObjectLock::default()),
            400 | 409 if text.contains("ObjectLockConfigurationNotFound") => {
                return Ok(BucketObjectLock::default());
            }
            403 => return Err(fail(ErrorKind::PermissionDenied, "access denied")),
            s if s >= 500 => return Err(fail(ErrorKind::Transient, "server error")),
            _ => return Err(fail(ErrorKind::Other, "unexpected answer")),
        }
        let tag = |t: &str| {
            text.split(&format!("<{t}>"))
                .nth(1)
                .and_then(|x| x.split(&format!("</{t}>")).next())
                .map(str::trim)
        };
        let days = tag("Days").and_then(|d| d.parse::<u32>().ok()).or_else(|| {
            tag("Years")
                .and_then(|y| y.parse::<u32>().ok())
                .map(|y| y.saturating_mul(365))
        });
        Ok(BucketObjectLock {
            enabled: tag("ObjectLockEnabled") == Some("Enabled"),
            default_mode: tag("Mode").and_then(|m| LockMode::parse(m).ok()),
            default_days: days,
        })
    }

    /// Whether the store applies the per-object Object Lock that [`S3Storage::set_object_lock`]
    /// configured: writes a random probe object `PREFIX/probe/<32 hex digits>` (it stays locked
    /// for that retention), `HEAD`s it and compares mode and retain-until date. Garage, for one,
    /// accepts the headers and ignores them.
    ///
    /// # Errors
    /// No lock configured ([`ErrorKind::Other`]), the write or the `HEAD` failing.
    pub fn probe_object_lock(&self) -> Result<bool> {
        let Some(lock) = self.object_lock() else {
            return Err(option_error("no Object Lock retention configured to probe"));
        };
        let mut rnd = [0u8; 16];
        getrandom::fill(&mut rnd)
            .map_err(|e| StorageError::new(ErrorKind::Other, "probe", Kind::Config, "probe", e))?;
        let path = format!("probe/{}", hex::encode(rnd));
        let key = self.full_key(&path);
        let before = jiff::Timestamp::now();
        let etag_is_md5 = self.etag_is_md5;
        self.call("probe", &path, || {
            let (op, p) = (self.op.clone(), path.clone());
            async move {
                let probe = Buffer::from(b"tresor lock probe".to_vec());
                create_object(&op, &p, probe, etag_is_md5).await
            }
        })
        .map_err(|e| map_err("probe", Kind::Config, &key, &e))?;
        let r = self.bucket_request("HEAD", &key, "", &[], b"")?;
        if r.status != 200 {
            return Err(StorageError::new(
                ErrorKind::Other,
                "probe",
                Kind::Config,
                &key,
                format!("HEAD of the probe object: HTTP {}", r.status),
            ));
        }
        let head = ObjectHead::from_response(&r);
        let until = head
            .lock_retain_until
            .as_deref()
            .and_then(|u| u.parse::<jiff::Timestamp>().ok());
        let min = before + jiff::SignedDuration::from_hours(24 * i64::from(lock.days.max(1)))
            - jiff::SignedDuration::from_secs(5);
        Ok(
            head.lock_mode.as_deref() == Some(lock.mode.as_str())
                && until.is_some_and(|u| u >= min),
        )
    }

    /// Full object key in the bucket (`PREFIX/<kind dir>/<name>`), for messages and tests.
    /// `name` is not checked.
    pub fn key(&self, kind: Kind, name: &str) -> String {
        self.full_key(&object_key(kind, name))
    }

    fn full_key(&self, relative: &str) -> String {
        if self.location.prefix.is_empty() {
            relative.to_string()
        } else {
            format!("{}/{relative}", self.location.prefix)
        }
    }

    /// Run the request that `make` builds, under the retry policy: a failure in passing builds
    /// and sends it again after a backoff ([`S3Options::retry_for`]); `op` and `object` name it
    /// in wait notices.
    fn call<T, F, Fut>(&self, op: &str, object: &str, make: F) -> opendal::Result<T>
    where
        T: Send + 'static,
        F: Fn() -> Fut,
        Fut: Future<Output = opendal::Result<T>> + Send + 'static,
    {
        self.retrier
            .run(
                op,
                object,
                || self.run(make()).map_err(Brief),
                |b| verdict(&b.0),
            )
            .map_err(|b| b.0)
    }

    /// Run a future to completion on the private runtime, blocking the calling thread.
    fn run<T, F>(&self, fut: F) -> opendal::Result<T>
    where
        T: Send + 'static,
        F: Future<Output = opendal::Result<T>> + Send + 'static,
    {
        let rt = self.rt.as_ref().expect("runtime lives until drop");
        if tokio::runtime::Handle::try_current().is_ok() {
            // Inside another runtime `block_on` would panic: hand the future over and wait.
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            rt.spawn(async move {
                let _ = tx.send(fut.await);
            });
            rx.recv().expect("S3 storage task panicked")
        } else {
            rt.block_on(fut)
        }
    }

    /// Every object of `kind` at its own key ([`layout::name_at`]) with the metadata the
    /// listing gave.
    fn list_entries(&self, kind: Kind) -> Result<Vec<(String, opendal::Metadata)>> {
        let dir = format!("{}/", kind.dir());
        let entries = self
            .call("list", &dir, || {
                let (op, d) = (self.op.clone(), dir.clone());
                async move { op.list_with(&d).recursive(true).await }
            })
            .map_err(|e| map_err("list", kind, &self.key(kind, ""), &e))?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            if !entry.metadata().is_file() {
                continue;
            }
            let path = entry.path().trim_start_matches('/');
            let Some(rest) = path.strip_prefix(&dir) else {
                continue;
            };
            if let Some(name) = layout::name_at(kind, rest) {
                out.push((name.to_string(), entry.metadata().clone()));
            }
        }
        Ok(out)
    }

    /// The store's clock: the `Date` header of a one-key ListObjectsV2 of `kind`'s folder (the
    /// grant listing needs anyway — also under a prefix, where an IAM policy conditions
    /// `s3:ListBucket` on `s3:prefix`), to the second. `None` when the answer carries no
    /// parsable `Date`.
    ///
    /// # Errors
    /// Transport errors and HTTP errors.
    pub fn server_now(&self, kind: Kind) -> Result<Option<std::time::SystemTime>> {
        let prefix = self.full_key(&format!("{}/", kind.dir()));
        let query = format!(
            "list-type=2&max-keys=1&prefix={}",
            signed::encode_path(&prefix).replace('/', "%2F")
        );
        let r = self.bucket_request("GET", "", &query, &[], &[])?;
        if !r.is_success() {
            let kind = match r.status {
                403 => ErrorKind::PermissionDenied,
                s if s >= 500 || s == 429 => ErrorKind::Transient,
                _ => ErrorKind::Other,
            };
            let msg = format!("HTTP {} asking the time", r.status);
            return Err(StorageError::new(kind, "list", Kind::Config, "", msg));
        }
        let date = r.header("date").map(opendal::raw::Timestamp::parse_rfc2822);
        Ok(date.and_then(|d| d.ok()).map(std::time::SystemTime::from))
    }

    /// Whether the store enforces `If-None-Match: *` on `PUT`, which [`Storage::write`] relies
    /// on to never replace an object.
    ///
    /// Writes a random probe object `PREFIX/probe/<32 hex digits>` twice with `If-None-Match: *`
    /// (different bytes the second time) and returns `true` when the second write is refused
    /// (412), `false` when the store accepted it (Garage 2.5 silently overwrites). Then deletes
    /// the probe object; a refused delete (append-only credentials) is ignored.
    ///
    /// # Errors
    /// The first write failing (permissions, network, a store that rejects the header), or the
    /// second failing with anything other than 412.
    pub fn probe_conditional_writes(&self) -> Result<bool> {
        let mut rnd = [0u8; 16];
        getrandom::fill(&mut rnd)
            .map_err(|e| StorageError::new(ErrorKind::Other, "probe", Kind::Config, "probe", e))?;
        let path = format!("probe/{}", hex::encode(rnd));
        let name = self.full_key(&path);
        let etag_is_md5 = self.etag_is_md5;
        let result = self.call("probe", &path, || {
            probe_twice(self.op.clone(), path.clone(), etag_is_md5)
        });
        result.map_err(|e| map_err("probe", Kind::Config, &name, &e))
    }
}

impl Storage for S3Storage {
    fn write_concurrency(&self) -> usize {
        self.connections
    }

    fn location(&self) -> String {
        self.location.to_url()
    }

    /// S3 has no folders to create: this checks that the bucket exists and can be listed.
    fn create(&self) -> Result<()> {
        let loc = self.location.to_url();
        self.call("check", &loc, || {
            let op = self.op.clone();
            async move { op.check().await }
        })
        .map_err(|e| {
            let mut err = map_err("create", Kind::Config, &self.location.to_url(), &e);
            if e.kind() == opendal::ErrorKind::ConfigInvalid {
                err.message = format!("bucket missing or misconfigured: {}", err.message);
            }
            err
        })
    }

    fn list(&self, kind: Kind) -> Result<Vec<(String, u64)>> {
        let listed = self.list_entries(kind)?;
        Ok(listed
            .into_iter()
            .map(|(n, m)| (n, m.content_length()))
            .collect())
    }

    /// `LastModified` of ListObjectsV2; "now" is the `Date` of a one-key listing sent first
    /// ([`S3Storage::server_now`]). `None` when the store sends no usable `Date` or an entry
    /// lacks its `LastModified`.
    fn list_stamped(&self, kind: Kind) -> Result<Option<Stamped>> {
        let Some(now) = self.server_now(kind)? else {
            return Ok(None);
        };
        let mut objects = Vec::new();
        for (name, m) in self.list_entries(kind)? {
            let Some(at) = m.last_modified() else {
                return Ok(None);
            };
            objects.push((name, at.into()));
        }
        Ok(Some(Stamped { now, objects }))
    }

    /// A signed ListObjectsV2 of its own (paginated, [`S3Storage::list_classes_of`]): OpenDAL's
    /// listing drops `StorageClass`.
    fn list_classes(&self, kind: Kind) -> Result<Option<Vec<tresor_storage::Classed>>> {
        self.list_classes_of(kind).map(Some)
    }

    fn read(&self, kind: Kind, name: &str) -> Result<Vec<u8>> {
        check_name(kind, name)?;
        let path = object_key(kind, name);
        self.call("read", &what(kind, name), || {
            let (op, path) = (self.op.clone(), path.clone());
            async move { op.read(&path).await }
        })
        .map(|b| b.to_vec())
        .map_err(|e| map_err("read", kind, name, &e))
    }

    /// Small ranges of packs are served from read-ahead windows (see [`WINDOW`]).
    fn read_range(&self, kind: Kind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        check_name(kind, name)?;
        if kind == Kind::Pack && length > 0 && length <= WINDOW / 2 {
            let w = offset / WINDOW;
            let rel = offset - w * WINDOW;
            if rel + length <= WINDOW
                && let Some(data) = self.window(name, w)
            {
                let (rel, len) = (rel as usize, length as usize);
                if rel + len <= data.len() {
                    return Ok(data[rel..rel + len].to_vec());
                }
                if (data.len() as u64) < WINDOW {
                    // The window is the end of the pack.
                    return Err(short_read(kind, name, offset, length));
                }
            }
        }
        self.read_range_direct(kind, name, offset, length)
    }

    fn write(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()> {
        self.write_object(kind, name, Buffer::from(data.to_vec()), false)
    }

    /// The buffer itself is the request body (no copy): nothing comes back to reuse.
    fn write_vec(&self, kind: Kind, name: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
        self.write_object(kind, name, Buffer::from(data), false)?;
        Ok(None)
    }

    /// Written with [`S3Options::storage_class_metadata`] whatever the kind (tree packs); the
    /// buffer is the request body, as in [`Storage::write_vec`].
    fn write_vec_hot(&self, kind: Kind, name: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
        self.write_object(kind, name, Buffer::from(data), true)?;
        Ok(None)
    }

    /// From `HEAD`: `x-amz-storage-class` and `x-amz-restore` (an unreadable one is an error).
    fn cold_state(
        &self,
        kind: Kind,
        name: &str,
    ) -> Result<Option<tresor_storage::cold::ColdState>> {
        self.cold_state_of(kind, name)
    }

    /// `POST ?restore` (RestoreObject), signed; 409 (a thaw under way) counts as success.
    fn request_thaw(
        &self,
        kind: Kind,
        name: &str,
        tier: tresor_storage::cold::ThawTier,
        days: u32,
    ) -> Result<()> {
        self.request_thaw_of(kind, name, tier, days)
    }

    /// `HEAD` first, because S3 `DELETE` of a missing key succeeds, and because a locked object
    /// is refused here ([`ErrorKind::PermissionDenied`]): on a versioned bucket S3 would accept
    /// the `DELETE`, hide the object behind a delete marker and keep (and bill) the locked
    /// version.
    fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        self.delete_object(kind, name)
    }

    fn size(&self, kind: Kind, name: &str) -> Result<u64> {
        check_name(kind, name)?;
        let path = object_key(kind, name);
        self.call("stat", &what(kind, name), || {
            let (op, path) = (self.op.clone(), path.clone());
            async move { op.stat(&path).await }
        })
        .map(|m| m.content_length())
        .map_err(|e| map_err("stat", kind, name, &e))
    }

    fn locked_until(&self, kind: Kind, name: &str) -> Result<Option<std::time::SystemTime>> {
        let head = self.head(kind, name)?;
        Ok(head.locked_until())
    }

    fn set_wait_observer(
        &self,
        observer: Option<Arc<dyn WaitObserver>>,
    ) -> Option<Arc<dyn WaitObserver>> {
        self.retrier.set_observer(observer)
    }
}

/// Read-ahead window of pack range reads: restore and the trees of a backup's parent read one
/// blob at a time, and one request per blob is slow over HTTP. A small range read of a pack
/// fetches the aligned window of this size around it instead (one `HEAD` per pack for its size,
/// then one `GET` per window) and later reads in that window are served from memory. Packs are
/// immutable, so a cached window never goes stale.
pub const WINDOW: u64 = 4 << 20;
/// Windows kept (least recently used dropped): at most `WINDOW_SLOTS × WINDOW` bytes (48 MiB).
const WINDOW_SLOTS: usize = 12;

/// One cached window: filled once, by the first reader; the others wait for it.
type WindowCell = Arc<std::sync::OnceLock<Option<Arc<Vec<u8>>>>>;

/// The read-ahead cache of an [`S3Storage`].
#[derive(Default)]
struct Windows {
    /// `(pack name, window number)` → window, least recently used first.
    slots: std::sync::Mutex<std::collections::VecDeque<((String, u64), WindowCell)>>,
    /// Pack sizes learnt by `HEAD`.
    sizes: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl S3Storage {
    /// The bytes of window `w` of pack `name` (shorter at the end of the pack), or `None` when
    /// it could not be fetched (the caller then reads directly and reports the error).
    fn window(&self, name: &str, w: u64) -> Option<Arc<Vec<u8>>> {
        let key = (name.to_string(), w);
        let cell = {
            let mut slots = self.windows.slots.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = slots.iter().position(|(k, _)| *k == key) {
                let entry = slots.remove(i).expect("index from position");
                let cell = Arc::clone(&entry.1);
                slots.push_back(entry);
                cell
            } else {
                let cell = WindowCell::default();
                slots.push_back((key.clone(), Arc::clone(&cell)));
                while slots.len() > WINDOW_SLOTS {
                    slots.pop_front();
                }
                cell
            }
        };
        let data = cell
            .get_or_init(|| self.fetch_window(name, w).ok().map(Arc::new))
            .clone();
        if data.is_none() {
            let mut slots = self.windows.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.retain(|(k, c)| !(*k == key && Arc::ptr_eq(c, &cell)));
        }
        data
    }

    fn fetch_window(&self, name: &str, w: u64) -> Result<Vec<u8>> {
        let known = self
            .windows
            .sizes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied();
        let size = match known {
            Some(s) => s,
            None => {
                let s = self.size(Kind::Pack, name)?;
                let mut sizes = self.windows.sizes.lock().unwrap_or_else(|e| e.into_inner());
                if sizes.len() >= 65_536 {
                    sizes.clear();
                }
                sizes.insert(name.to_string(), s);
                s
            }
        };
        let start = w * WINDOW;
        let end = (start + WINDOW).min(size);
        if start >= end {
            return Ok(Vec::new());
        }
        let path = object_key(Kind::Pack, name);
        let buf = self
            .call("read", &what(Kind::Pack, name), || {
                let (op, path) = (self.op.clone(), path.clone());
                async move { op.read_with(&path).range(start..end).await }
            })
            .map_err(|e| map_err("read", Kind::Pack, name, &e))?;
        if buf.len() as u64 != end - start {
            return Err(short_read(Kind::Pack, name, start, end - start));
        }
        Ok(buf.to_vec())
    }

    /// A range read without the read-ahead windows.
    fn read_range_direct(
        &self,
        kind: Kind,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>> {
        if length == 0 {
            let size = self.size(kind, name)?;
            return if offset <= size {
                Ok(Vec::new())
            } else {
                Err(short_read(kind, name, offset, length))
            };
        }
        let end = offset
            .checked_add(length)
            .ok_or_else(|| short_read(kind, name, offset, length))?;
        let path = object_key(kind, name);
        let outcome = self.call("read", &what(kind, name), || {
            let (op, path) = (self.op.clone(), path.clone());
            async move {
                use opendal::ErrorKind as D;
                match op.read_with(&path).range(offset..end).await {
                    Ok(buf) => Ok(Some(buf)),
                    Err(e) if e.kind() == D::RangeNotSatisfied => Ok(None),
                    Err(e) if matches!(e.kind(), D::NotFound | D::PermissionDenied) => Err(e),
                    // A range that runs past the end comes back short, which OpenDAL reports as
                    // an `Unexpected` "reader got too little data" error: the size tells it
                    // from a passing fault (retried, when it is one).
                    Err(e) => match op.stat(&path).await {
                        Ok(m) if end > m.content_length() => Ok(None),
                        Ok(_) => Err(e),
                        Err(s) => Err(s),
                    },
                }
            }
        });
        match outcome {
            Ok(Some(buf)) if buf.len() as u64 == length => Ok(buf.to_vec()),
            Ok(_) => Err(short_read(kind, name, offset, length)),
            Err(e) if e.kind() == opendal::ErrorKind::RangeNotSatisfied => {
                Err(short_read(kind, name, offset, length))
            }
            Err(e) => Err(map_err("read", kind, name, &e)),
        }
    }

    fn write_object(&self, kind: Kind, name: &str, data: Buffer, hot: bool) -> Result<()> {
        check_name(kind, name)?;
        let path = object_key(kind, name);
        let op = if kind == Kind::Pack && !hot {
            self.op_pack.clone()
        } else {
            self.op.clone()
        };
        let etag_is_md5 = self.etag_is_md5;
        let created = self.call("write", &what(kind, name), || {
            let (op, path, data) = (op.clone(), path.clone(), data.clone());
            async move { create_object(&op, &path, data, etag_is_md5).await }
        });
        match created {
            Ok(Created::Stored) => Ok(()),
            Ok(Created::Conflict) => Err(StorageError::new(
                ErrorKind::AlreadyExists,
                "write",
                kind,
                name,
                "object exists with other content",
            )),
            Err(e) => Err(map_err("write", kind, name, &e)),
        }
    }

    fn delete_object(&self, kind: Kind, name: &str) -> Result<()> {
        if let Some(until) = self.locked_until(kind, name)? {
            return Err(StorageError::new(
                ErrorKind::PermissionDenied,
                "delete",
                kind,
                name,
                format!(
                    "Object Lock retention until {}",
                    jiff::Timestamp::try_from(until)
                        .map(|t| t.to_string())
                        .unwrap_or_else(|_| "far in the future".into())
                ),
            ));
        }
        let path = object_key(kind, name);
        self.call("delete", &what(kind, name), || {
            let (op, path) = (self.op.clone(), path.clone());
            async move { op.delete(&path).await }
        })
        .map_err(|e| map_err("delete", kind, name, &e))
    }
}
