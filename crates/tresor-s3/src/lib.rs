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
//!   [`S3Options::io_timeout`] for a read or write body), and its `RetryLayer` wraps it:
//!   temporary failures (5xx, 429/SlowDown, connection errors, timeouts) are retried with
//!   exponential backoff and jitter, at most [`S3Options::max_retries`] times. What still fails is
//!   reported as [`ErrorKind::Transient`].
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
//! ## Locations
//!
//! See [`parse_s3_url`]: `s3:https://ENDPOINT/BUCKET[/PREFIX]`, `s3:http://...` (loopback only
//! unless [`S3Options::insecure_http`]), and `s3://BUCKET[/PREFIX]` for AWS.

#![warn(missing_docs)]

use opendal::layers::{RetryEvent, RetryLayer, TimeoutLayer};
use opendal::{Buffer, Operator, services};
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;
use tokio::runtime::Runtime;
use tresor_storage::{ErrorKind, Kind, Result, Storage, StorageError, check_name};

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
    /// Retries of a request that failed temporarily (after the first attempt), with exponential
    /// backoff from 100 ms to 5 s plus jitter. Default 5; 0 disables the retry layer.
    pub max_retries: usize,
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
            max_retries: 5,
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
    /// With timeouts and retries: used for everything...
    op: Operator,
    /// ...except the first attempt of a range read: timeouts only.
    op_once: Operator,
    /// `Some` until drop, where it is shut down in the background.
    rt: Option<Runtime>,
    location: S3Location,
    region: String,
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

/// Result of a conditional create.
enum Created {
    /// Stored now, or the same bytes were already there.
    Stored,
    /// The key holds other bytes.
    Conflict,
}

tokio::task_local! {
    /// Set when the retry layer retried something during the current storage call.
    static RETRIED: Cell<bool>;
}

/// Retry-layer interceptor: records in [`RETRIED`] that a temporary error was retried.
fn note_retry(_event: RetryEvent<'_>) {
    let _ = RETRIED.try_with(|r| r.set(true));
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

/// `PUT` with `If-None-Match: *`; on 412 compare with what is stored.
async fn create_object(op: &Operator, path: &str, data: Buffer) -> opendal::Result<Created> {
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
                    Err(e) => return Err(e),
                }
            }
            Err(e) if is_conditional_conflict(&e) && attempt < MAX_ATTEMPTS => {}
            Err(e) => return Err(e),
        }
        tokio::time::sleep(conflict_backoff(attempt)).await;
    }
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

fn is_object_name(n: &str) -> bool {
    n.len() == 64
        && n.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The key of an object relative to the prefix: `<kind dir>/<name>`, packs
/// `data/<first two hex digits>/<name>`.
fn object_key(kind: Kind, name: &str) -> String {
    if kind == Kind::Pack {
        format!("{}/{}/{}", kind.dir(), &name[..2.min(name.len())], name)
    } else {
        format!("{}/{}", kind.dir(), name)
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
    pub fn open(url: &str, opts: &S3Options) -> Result<S3Storage> {
        let location = parse_s3_url(url, opts)?;
        let region = resolve_region(&location, opts, url)?;
        opendal::install_default();

        let root = if location.prefix.is_empty() {
            "/".to_string()
        } else {
            format!("/{}/", location.prefix)
        };
        let mut builder = services::S3::default()
            .bucket(&location.bucket)
            .root(&root)
            .region(&region);
        if let Some(endpoint) = &location.endpoint {
            builder = builder.endpoint(endpoint);
        }
        if let Some(profile) = opts.profile.as_deref().filter(|p| !p.is_empty()) {
            builder = builder.profile(profile);
        }
        let virtual_host = opts
            .virtual_host_style
            .unwrap_or(location.endpoint.is_none() && !location.bucket.contains('.'));
        if virtual_host {
            builder = builder.enable_virtual_host_style();
        }
        if env_nonempty("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            builder = builder.disable_ec2_metadata();
        }
        let op_once = Operator::new(builder)
            .map_err(|e| location_error(url, format!("cannot configure S3: {e}")))?
            .layer(
                TimeoutLayer::new()
                    .with_timeout(opts.timeout)
                    .with_io_timeout(opts.io_timeout),
            );
        let op = if opts.max_retries == 0 {
            op_once.clone()
        } else {
            op_once.clone().layer(
                RetryLayer::new()
                    .with_jitter()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_delay(Duration::from_secs(5))
                    .with_max_times(opts.max_retries)
                    .with_notify(note_retry),
            )
        };

        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("tresor-s3")
            .enable_all()
            .build()
            .map_err(|e| location_error(url, format!("cannot start the I/O runtime: {e}")))?;

        Ok(S3Storage {
            op,
            op_once,
            rt: Some(rt),
            location,
            region,
        })
    }

    /// The parsed location.
    pub fn s3_location(&self) -> &S3Location {
        &self.location
    }

    /// The signing region in use.
    pub fn region(&self) -> &str {
        &self.region
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

    /// Run a future to completion on the private runtime, blocking the calling thread.
    ///
    /// The retry layer marks every error it returns "persistent", temporary or not. So that
    /// [`map_err`] can still tell passing faults apart, a failure of a call in which the retry
    /// layer retried something is marked temporary again.
    fn run<T, F>(&self, fut: F) -> opendal::Result<T>
    where
        T: Send + 'static,
        F: Future<Output = opendal::Result<T>> + Send + 'static,
    {
        let fut = RETRIED.scope(Cell::new(false), async move {
            match fut.await {
                Err(e) if e.is_persistent() && RETRIED.with(Cell::get) => Err(e.set_temporary()),
                r => r,
            }
        });
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
        let op = self.op.clone();
        let result = self.run(async move {
            let first = op
                .write_with(&path, Buffer::from(b"tresor probe 1".to_vec()))
                .if_not_exists(true)
                .await
                .map(|_| ());
            let outcome = match first {
                Err(e) => Err(e),
                Ok(()) => match op
                    .write_with(&path, Buffer::from(b"tresor probe 2".to_vec()))
                    .if_not_exists(true)
                    .await
                {
                    Ok(_) => Ok(false),
                    Err(e) if e.kind() == opendal::ErrorKind::ConditionNotMatch => Ok(true),
                    Err(e) => Err(e),
                },
            };
            let _ = op.delete(&path).await;
            outcome
        });
        result.map_err(|e| map_err("probe", Kind::Config, &name, &e))
    }
}

impl Storage for S3Storage {
    fn location(&self) -> String {
        self.location.to_url()
    }

    /// S3 has no folders to create: this checks that the bucket exists and can be listed.
    fn create(&self) -> Result<()> {
        let op = self.op.clone();
        self.run(async move { op.check().await }).map_err(|e| {
            let mut err = map_err("create", Kind::Config, &self.location.to_url(), &e);
            if e.kind() == opendal::ErrorKind::ConfigInvalid {
                err.message = format!("bucket missing or misconfigured: {}", err.message);
            }
            err
        })
    }

    fn list(&self, kind: Kind) -> Result<Vec<(String, u64)>> {
        let dir = format!("{}/", kind.dir());
        let op = self.op.clone();
        let d = dir.clone();
        let entries = self
            .run(async move { op.list_with(&d).recursive(true).await })
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
            let name = if kind == Kind::Pack {
                match rest.split_once('/') {
                    Some((shard, n)) if shard.len() == 2 && !n.contains('/') => n,
                    _ => continue,
                }
            } else if rest.contains('/') {
                continue;
            } else {
                rest
            };
            if is_object_name(name) {
                out.push((name.to_string(), entry.metadata().content_length()));
            }
        }
        Ok(out)
    }

    fn read(&self, kind: Kind, name: &str) -> Result<Vec<u8>> {
        check_name(kind, name)?;
        let path = object_key(kind, name);
        let op = self.op.clone();
        self.run(async move { op.read(&path).await })
            .map(|b| b.to_vec())
            .map_err(|e| map_err("read", kind, name, &e))
    }

    fn read_range(&self, kind: Kind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        check_name(kind, name)?;
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
        let (once, op) = (self.op_once.clone(), self.op.clone());
        let outcome = self.run(async move {
            use opendal::ErrorKind as D;
            // First without retries: a range that runs past the end comes back short, which
            // OpenDAL reports as an `Unexpected` "reader got too little data" error, and which
            // the retry layer would retry for seconds.
            match once.read_with(&path).range(offset..end).await {
                Ok(buf) => Ok(Some(buf)),
                Err(e) if e.kind() == D::RangeNotSatisfied => Ok(None),
                Err(e) if matches!(e.kind(), D::NotFound | D::PermissionDenied) => Err(e),
                Err(_) => {
                    // Past the end, or a passing fault: the size tells which.
                    if end > op.stat(&path).await?.content_length() {
                        Ok(None)
                    } else {
                        op.read_with(&path).range(offset..end).await.map(Some)
                    }
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

    fn write(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()> {
        check_name(kind, name)?;
        let path = object_key(kind, name);
        let op = self.op.clone();
        let data = Buffer::from(data.to_vec());
        match self.run(async move { create_object(&op, &path, data).await }) {
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

    /// `HEAD` first, because S3 `DELETE` of a missing key succeeds.
    fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        check_name(kind, name)?;
        let path = object_key(kind, name);
        let op = self.op.clone();
        self.run(async move {
            op.stat(&path).await?;
            op.delete(&path).await
        })
        .map_err(|e| map_err("delete", kind, name, &e))
    }

    fn size(&self, kind: Kind, name: &str) -> Result<u64> {
        check_name(kind, name)?;
        let path = object_key(kind, name);
        let op = self.op.clone();
        self.run(async move { op.stat(&path).await })
            .map(|m| m.content_length())
            .map_err(|e| map_err("stat", kind, name, &e))
    }
}
