//! [`RemoteStorage`]: the [`Storage`] trait over the tresor protocol, to a `tresor serve`
//! server over HTTP(S), or to a `tresor serve --stdio` child process (usually `ssh`).
//!
//! Like `tresor-s3`, it hides an asynchronous client behind the blocking trait: each
//! `RemoteStorage` owns a private tokio runtime (2 worker threads) and every method waits for its
//! future on the calling thread (or, when called from inside another runtime, hands the future
//! over and waits on a channel). Many threads may call it at once: requests go out as concurrent
//! HTTP/2 streams on one connection or pipe (with prior knowledge for `tresor+http://`, by ALPN
//! for `tresor+https://`, where HTTP/1.1 on pooled connections is the fallback).
//!
//! Requests that fail in passing (connection errors and resets, 408, 429, 500, 502–504) are
//! retried with exponential backoff and jitter until [`RemoteOptions::retry_for`] (five minutes
//! by default) has passed since the first attempt ([`tresor_storage::retry`]); every operation
//! of the protocol is idempotent (a repeated create of the same bytes succeeds). A busy server
//! (503 or 429 with `Retry-After`, e.g. over its budget of uploads in flight) is waited for as
//! long as it asks, within the same time. The storage's wait observer hears of every wait.

use crate::protocol::{self, STDIO_REPOSITORY};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::runtime::Runtime;
use tresor_storage::retry::{Retrier, RetryPolicy, Verdict, WaitObserver};
use tresor_storage::{ErrorKind, Kind, Result, Storage, StorageError, check_name};

/// The environment variable holding the client token (`NAME.SECRET`).
pub const TOKEN_ENV: &str = "TRESOR_SERVER_TOKEN";
/// The environment variable naming a file whose first line is the client token.
pub const TOKEN_FILE_ENV: &str = "TRESOR_SERVER_TOKEN_FILE";

/// Options for [`RemoteStorage::open`]. Construct with [`RemoteOptions::default`] and set fields.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteOptions {
    /// The client token for `tresor+http(s)://` (sent as `Authorization: Bearer`). Never part of
    /// the URL. See [`token_from_env`].
    pub token: Option<String>,
    /// A PEM file of CA certificates: `tresor+https://` then trusts only these (for a private
    /// CA or a self-signed server certificate). `None`: the system's roots.
    pub tls_ca: Option<PathBuf>,
    /// For `ssh://` locations: run this command with `sh -c` instead of
    /// `ssh [-p PORT] [USER@]HOST tresor serve --stdio --repo PATH --role admin`; it must speak
    /// the protocol on its standard input and output (e.g. `ssh backup@host` with a forced
    /// command, or `tresor serve --stdio --repo /srv/repo --role append` locally).
    pub server_command: Option<String>,
    /// Timeout of one request, body included. Default 300 s.
    pub timeout: Duration,
    /// How long a request that fails in passing, or meets a busy server, is retried, from its
    /// first attempt. Default 300 s; zero never retries.
    pub retry_for: Duration,
    /// At most this many retries of one request after passing failures, whatever
    /// [`RemoteOptions::retry_for`] leaves (a busy server's `Retry-After` waits count only
    /// against the time). Default: no limit (`u32::MAX`); 0 retries only busy answers.
    pub retries: u32,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            token: None,
            tls_ca: None,
            server_command: None,
            timeout: Duration::from_secs(300),
            retry_for: tresor_storage::retry::DEFAULT_RETRY_FOR,
            retries: u32::MAX,
        }
    }
}

impl fmt::Debug for RemoteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteOptions")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("tls_ca", &self.tls_ca)
            .field("server_command", &self.server_command)
            .field("timeout", &self.timeout)
            .field("retry_for", &self.retry_for)
            .field("retries", &self.retries)
            .finish()
    }
}

/// The token from `TRESOR_SERVER_TOKEN`, else the first line of the file named by
/// `TRESOR_SERVER_TOKEN_FILE` (or by `file`, which takes precedence over the variable).
///
/// # Errors
/// The token file cannot be read or is empty.
pub fn token_from_env(file: Option<&std::path::Path>) -> Result<Option<String>> {
    let file = file
        .map(PathBuf::from)
        .or_else(|| std::env::var_os(TOKEN_FILE_ENV).map(PathBuf::from));
    if let Some(f) = file {
        let text = std::fs::read_to_string(&f)
            .map_err(|e| open_error(&f.display().to_string(), format!("token file: {e}")))?;
        let line = text.lines().next().unwrap_or("").trim().to_string();
        if line.is_empty() {
            return Err(open_error(&f.display().to_string(), "token file is empty"));
        }
        return Ok(Some(line));
    }
    Ok(std::env::var(TOKEN_ENV)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

/// Whether `url` is a location [`RemoteStorage::open`] handles: `tresor+http://`,
/// `tresor+https://` or `ssh://`.
pub fn is_remote_url(url: &str) -> bool {
    url.starts_with("tresor+http://")
        || url.starts_with("tresor+https://")
        || url.starts_with("ssh://")
}

/// A parsed remote location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteLocation {
    /// `tresor+http(s)://HOST[:PORT]/REPO`.
    Http {
        /// `true` for `tresor+https`.
        tls: bool,
        /// Host name or IP address (IPv6 in brackets).
        host: String,
        /// Port; `None`: 80 or 443.
        port: Option<u16>,
        /// Repository name on the server.
        repository: String,
    },
    /// `ssh://[USER@]HOST[:PORT]/PATH`.
    Ssh {
        /// `USER@`, if given.
        user: Option<String>,
        /// Host name or address.
        host: String,
        /// SSH port, if given.
        port: Option<u16>,
        /// Repository path on the server (from the `/` on).
        path: String,
    },
}

fn open_error(location: &str, message: impl fmt::Display) -> StorageError {
    StorageError {
        kind: ErrorKind::Other,
        op: "open",
        kind_name: "location".to_string(),
        name: location.to_string(),
        message: message.to_string(),
    }
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn split_host_port(url: &str, auth: &str) -> Result<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = auth.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| open_error(url, "unclosed [ in host"))?;
        (format!("[{h}]"), after.strip_prefix(':'))
    } else {
        match auth.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (auth.to_string(), None),
        }
    };
    if host.is_empty()
        || !host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        })
    {
        return Err(open_error(url, "bad host"));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| open_error(url, "bad port"))?,
        ),
    };
    Ok((host, port))
}

/// Parse a remote location.
///
/// # Errors
/// An unknown scheme, credentials in a `tresor+http(s)` URL (tokens never go in URLs), a bad
/// host, port or repository name, or `tresor+http://` to a host that is not a loopback address.
pub fn parse_remote_url(url: &str) -> Result<RemoteLocation> {
    if let Some(rest) = url.strip_prefix("ssh://") {
        let (auth, path) = rest
            .split_once('/')
            .ok_or_else(|| open_error(url, "expected ssh://[USER@]HOST[:PORT]/PATH"))?;
        let (user, hostport) = match auth.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, auth),
        };
        if user.as_deref().is_some_and(|u| {
            u.is_empty()
                || !u
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        }) {
            return Err(open_error(url, "bad user name"));
        }
        let (host, port) = split_host_port(url, hostport)?;
        // ssh would take `-oProxyCommand=…` as an option, not as a destination.
        if host.starts_with('-') {
            return Err(open_error(url, "an ssh host name must not start with '-'"));
        }
        if user.as_deref().is_some_and(|u| u.starts_with('-')) {
            return Err(open_error(url, "an ssh user name must not start with '-'"));
        }
        if path.is_empty() {
            return Err(open_error(url, "no repository path"));
        }
        return Ok(RemoteLocation::Ssh {
            user,
            host,
            port,
            path: format!("/{path}"),
        });
    }
    let (tls, rest) = if let Some(r) = url.strip_prefix("tresor+https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("tresor+http://") {
        (false, r)
    } else {
        return Err(open_error(
            url,
            "expected tresor+https://HOST[:PORT]/REPO, tresor+http://, or ssh://",
        ));
    };
    let (auth, path) = rest.split_once('/').unwrap_or((rest, ""));
    if auth.contains('@') {
        return Err(open_error(
            "tresor+http(s)://***@…",
            format!("tokens never go in the URL: set {TOKEN_ENV} or {TOKEN_FILE_ENV}"),
        ));
    }
    let (host, port) = split_host_port(url, auth)?;
    let repository = path.trim_end_matches('/');
    if !protocol::valid_name(repository) {
        return Err(open_error(
            url,
            "expected a repository name after the host: tresor+https://HOST[:PORT]/REPO",
        ));
    }
    if !tls && !is_loopback(&host) {
        return Err(open_error(
            url,
            "tresor+http:// (plain text) only to a loopback address; use tresor+https://",
        ));
    }
    Ok(RemoteLocation::Http {
        tls,
        host,
        port,
        repository: repository.to_string(),
    })
}

/// Quote a word for a POSIX shell (the remote side of `ssh`).
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The arguments of `ssh` for an `ssh://` location: options, then `--`, so that nothing after it
/// (the destination, the remote command) is taken as an option even if it starts with `-`.
fn ssh_args(user: Option<&str>, host: &str, port: Option<u16>, path: &str) -> Vec<String> {
    let mut args = vec!["-T".to_string()];
    if let Some(p) = port {
        args.extend(["-p".to_string(), p.to_string()]);
    }
    args.push("--".to_string());
    args.push(match user {
        Some(u) => format!("{u}@{host}"),
        None => host.to_string(),
    });
    args.push(format!(
        "tresor serve --stdio --repo {} --role admin",
        shell_quote(path)
    ));
    args
}

enum Transport {
    Http {
        client: reqwest::Client,
        base: String,
        token: Option<String>,
    },
    Pipe {
        sender: Mutex<Option<hyper::client::conn::http2::SendRequest<Full<Bytes>>>>,
        child: Mutex<Option<tokio::process::Child>>,
    },
}

/// A response: status, headers, body.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// A transport failure (no HTTP status): connection refused, reset, timeout, closed pipe.
struct TransportError(String);

/// An attempt that may be worth repeating: a transport failure, or an answer that says to try
/// again (busy, throttled, a passing server error).
enum Attempt {
    Failed(TransportError),
    Answered(Box<Reply>),
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attempt::Failed(TransportError(m)) => f.write_str(m),
            Attempt::Answered(r) => write!(
                f,
                "server answered {}: {}",
                r.status,
                protocol::error_message(&r.body)
            ),
        }
    }
}

/// A repository behind a `tresor serve` server. See the module docs.
pub struct RemoteStorage {
    location: String,
    repository: String,
    transport: Transport,
    /// Retries every request ([`RemoteOptions::retry_for`]).
    retrier: Retrier,
    rt: Option<Runtime>,
    /// Request body buffers of large writes, handed back when the transport drops the body.
    bodies: Arc<BodyPool>,
}

/// Bodies of large uploads (packs) are copied into buffers that come back here once sent, so
/// that every upload does not map and fault in fresh memory.
#[derive(Default)]
struct BodyPool(std::sync::Mutex<Vec<Vec<u8>>>);

/// Bodies at least this large (bytes) use [`BodyPool`] buffers.
const POOLED_BODY: usize = 1 << 20;

/// A pooled buffer lent to a request body.
struct PooledBody {
    buf: Vec<u8>,
    pool: Arc<BodyPool>,
}

impl AsRef<[u8]> for PooledBody {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let mut pool = self.pool.0.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < 8 {
            pool.push(buf);
        }
    }
}

impl BodyPool {
    /// A buffer whose request has completed, if any.
    fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// `data` itself as a request body (no copy); the buffer comes back to the pool when the
    /// transport drops the body.
    fn body_owned(self: &Arc<Self>, data: Vec<u8>) -> Bytes {
        Bytes::from_owner(PooledBody {
            buf: data,
            pool: Arc::clone(self),
        })
    }

    /// `data` as a request body.
    fn body(self: &Arc<Self>, data: &[u8]) -> Bytes {
        if data.len() < POOLED_BODY {
            return Bytes::copy_from_slice(data);
        }
        let mut buf = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        Bytes::from_owner(PooledBody {
            buf,
            pool: Arc::clone(self),
        })
    }
}

impl fmt::Debug for RemoteStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteStorage")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// The HTTP client for `tresor+http(s)://HOST[:PORT]` (HTTP/2; plain HTTP with prior
/// knowledge), trusting only `opts.tls_ca` when given.
fn http_transport(
    url: &str,
    opts: &RemoteOptions,
    rt: &tokio::runtime::Runtime,
    tls: bool,
    host: &str,
    port: Option<u16>,
) -> Result<Transport> {
    let mut b = reqwest::Client::builder()
        .timeout(opts.timeout)
        .connect_timeout(Duration::from_secs(15))
        .pool_idle_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(32)
        .tcp_nodelay(true)
        .http2_initial_stream_window_size(4 << 20)
        .http2_initial_connection_window_size(16 << 20)
        .http2_max_frame_size(1 << 20)
        .user_agent(concat!("tresor/", env!("CARGO_PKG_VERSION")));
    if !tls {
        // TLS negotiates HTTP/2 by ALPN; plain connections use it with prior
        // knowledge: one connection carries the concurrent requests of a backup.
        b = b.http2_prior_knowledge();
    }
    if let Some(ca) = &opts.tls_ca {
        let pem = std::fs::read(ca)
            .map_err(|e| open_error(url, format!("CA file {}: {e}", ca.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| open_error(url, format!("CA file {}: {e}", ca.display())))?;
        if certs.is_empty() {
            return Err(open_error(
                url,
                format!("CA file {}: no certificate", ca.display()),
            ));
        }
        b = b.tls_certs_only(certs);
    }
    let client = {
        let _g = rt.enter();
        b.build()
            .map_err(|e| open_error(url, format!("HTTP client: {e}")))?
    };
    let scheme = if tls { "https" } else { "http" };
    let base = match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    };
    Ok(Transport::Http {
        client,
        base,
        token: opts.token.clone(),
    })
}

/// The server command for `ssh://` started, and the HTTP/2 handshake done over its standard
/// input and output.
fn ssh_transport(
    url: &str,
    opts: &RemoteOptions,
    rt: &tokio::runtime::Runtime,
    user: Option<&str>,
    host: &str,
    port: Option<u16>,
    path: &str,
) -> Result<Transport> {
    let mut cmd = match &opts.server_command {
        Some(c) => {
            let mut cmd = tokio::process::Command::new("sh");
            cmd.arg("-c").arg(c);
            cmd
        }
        None => {
            let mut cmd = tokio::process::Command::new("ssh");
            cmd.args(ssh_args(user, host, port, path));
            cmd
        }
    };
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    let (sender, child) = rt.block_on(async {
        let mut child = cmd
            .spawn()
            .map_err(|e| open_error(url, format!("cannot start server command: {e}")))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let io = TokioIo::new(tokio::io::join(stdout, stdin));
        let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(4 << 20)
            .initial_connection_window_size(16 << 20)
            .max_frame_size(1 << 20)
            .handshake(io)
            .await
            .map_err(|e| open_error(url, format!("server command: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok::<_, StorageError>((sender, child))
    })?;
    Ok(Transport::Pipe {
        sender: Mutex::new(Some(sender)),
        child: Mutex::new(Some(child)),
    })
}

impl RemoteStorage {
    /// Open a remote location (see [`parse_remote_url`]). For `tresor+http(s)://` nothing is
    /// sent yet; for `ssh://` the server process is started and the HTTP/2 handshake done.
    ///
    /// # Errors
    /// A bad location, an unreadable CA file, a server command that cannot be started.
    pub fn open(url: &str, opts: &RemoteOptions) -> Result<RemoteStorage> {
        let loc = parse_remote_url(url)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tresor-remote")
            .enable_all()
            .build()
            .map_err(|e| open_error(url, format!("cannot start the I/O runtime: {e}")))?;
        let (transport, repository) = match loc {
            RemoteLocation::Http {
                tls,
                host,
                port,
                repository,
            } => (
                http_transport(url, opts, &rt, tls, &host, port)?,
                repository,
            ),
            RemoteLocation::Ssh {
                user,
                host,
                port,
                path,
            } => (
                ssh_transport(url, opts, &rt, user.as_deref(), &host, port, &path)?,
                STDIO_REPOSITORY.to_string(),
            ),
        };
        Ok(RemoteStorage {
            location: url.to_string(),
            repository,
            transport,
            retrier: Retrier::new(RetryPolicy::new(opts.retry_for, opts.retries)),
            rt: Some(rt),
            bodies: Arc::default(),
        })
    }

    /// `GET /{repo}/`: the server's view of this client, as JSON (`protocol`, `repository`,
    /// `client`, `role`, `max_object_size`).
    ///
    /// # Errors
    /// 401 (bad token) and 404 (no such repository for this client) as
    /// [`ErrorKind::PermissionDenied`] and [`ErrorKind::NotFound`]; transport errors.
    pub fn info(&self) -> Result<serde_json::Value> {
        let path = protocol::path_of(&self.repository, None, None);
        let r = self.call(
            Method::GET,
            path,
            None,
            Bytes::new(),
            "info",
            Kind::Config,
            "",
        )?;
        if r.status != StatusCode::OK {
            return Err(status_error(&r, "info", Kind::Config, &self.location));
        }
        serde_json::from_slice(&r.body).map_err(|e| {
            StorageError::new(ErrorKind::Other, "info", Kind::Config, &self.location, e)
        })
    }

    fn run<T, F>(&self, fut: F) -> T
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let rt = self.rt.as_ref().expect("runtime lives until drop");
        if tokio::runtime::Handle::try_current().is_ok() {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            rt.spawn(async move {
                let _ = tx.send(fut.await);
            });
            rx.recv().expect("remote storage task panicked")
        } else {
            rt.block_on(fut)
        }
    }

    fn send_once(
        &self,
        method: &Method,
        path: &str,
        header: Option<&(header::HeaderName, String)>,
        body: &Bytes,
    ) -> std::result::Result<Reply, TransportError> {
        match &self.transport {
            Transport::Http {
                client,
                base,
                token,
            } => {
                let mut req = client.request(method.clone(), format!("{base}{path}"));
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                if let Some((n, v)) = header {
                    req = req.header(n, v);
                }
                if *method == Method::PUT {
                    req = req.body(body.clone());
                }
                self.run(async move {
                    let resp = req.send().await.map_err(|e| TransportError(chain(&e)))?;
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    let body = resp.bytes().await.map_err(|e| TransportError(chain(&e)))?;
                    Ok(Reply {
                        status,
                        headers,
                        body,
                    })
                })
            }
            Transport::Pipe { sender, .. } => {
                let Some(mut sender) = sender.lock().unwrap_or_else(|e| e.into_inner()).clone()
                else {
                    return Err(TransportError("server process closed".into()));
                };
                let mut b = http::Request::builder()
                    .method(method.clone())
                    .uri(format!("http://stdio{path}"));
                if let Some((n, v)) = header {
                    b = b.header(n, v);
                }
                let req = b
                    .body(Full::new(body.clone()))
                    .map_err(|e| TransportError(e.to_string()))?;
                self.run(async move {
                    sender
                        .ready()
                        .await
                        .map_err(|e| TransportError(format!("server process: {e}")))?;
                    let resp = sender
                        .send_request(req)
                        .await
                        .map_err(|e| TransportError(format!("server process: {e}")))?;
                    let (parts, body) = resp.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map_err(|e| TransportError(format!("server process: {e}")))?
                        .to_bytes();
                    Ok(Reply {
                        status: parts.status,
                        headers: parts.headers,
                        body,
                    })
                })
            }
        }
    }

    /// One request, retried when it fails in passing, and repeated after the server's
    /// `Retry-After` while the server says it is busy, under the retry policy. An answer that
    /// still says "try again" when the policy gives up is returned as it is (the caller turns
    /// its status into an error).
    #[allow(
        clippy::too_many_arguments,
        reason = "one request: method, path, header, body, and the object for the error"
    )]
    fn call(
        &self,
        method: Method,
        path: String,
        header: Option<(header::HeaderName, String)>,
        body: Bytes,
        op: &'static str,
        kind: Kind,
        name: &str,
    ) -> Result<Reply> {
        let object = format!("{kind} {}", name.get(..8).unwrap_or(name));
        let outcome = self.retrier.run(
            op,
            &object,
            || {
                let outcome = self.send_once(&method, &path, header.as_ref(), &body);
                match retry_of(&outcome, &self.transport) {
                    Retry::No => outcome.map_err(Attempt::Failed),
                    _ => Err(match outcome {
                        Ok(r) => Attempt::Answered(Box::new(r)),
                        Err(e) => Attempt::Failed(e),
                    }),
                }
            },
            |a| {
                match a {
                    Attempt::Failed(_) => retry_of_transport(&self.transport),
                    Attempt::Answered(r) => retry_of_reply(r),
                }
                .verdict()
            },
        );
        match outcome {
            Ok(r) => Ok(r),
            Err(Attempt::Answered(r)) => Ok(*r),
            Err(Attempt::Failed(TransportError(m))) => {
                Err(StorageError::new(ErrorKind::Transient, op, kind, name, m))
            }
        }
    }

    /// `PUT` of an owned buffer, sent as it is (with [`protocol::HOT_HEADER`] when `hot`); a
    /// buffer of an earlier, completed upload is returned.
    fn put_owned(
        &self,
        kind: Kind,
        name: &str,
        data: Vec<u8>,
        hot: bool,
    ) -> Result<Option<Vec<u8>>> {
        check_name(kind, name)?;
        let hint = hot.then(|| {
            let n = header::HeaderName::from_static(protocol::HOT_HEADER);
            (n, "1".to_string())
        });
        let r = self.call(
            Method::PUT,
            self.object_path(kind, name),
            hint,
            self.bodies.body_owned(data),
            "write",
            kind,
            name,
        )?;
        match r.status {
            StatusCode::OK | StatusCode::CREATED | StatusCode::NO_CONTENT => Ok(self.bodies.take()),
            _ => Err(status_error(&r, "write", kind, name)),
        }
    }

    fn object_path(&self, kind: Kind, name: &str) -> String {
        protocol::path_of(&self.repository, Some(kind), Some(name))
    }
}

/// Whether and how a request is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Final: success, or an error that another attempt would not change.
    No,
    /// A passing failure: again after an exponential backoff, within the retry time.
    Backoff,
    /// The server is busy: again after this long, within the retry time.
    After(Duration),
}

/// Longest `Retry-After` the client honours as it is; longer ones are waited in such steps.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

impl Retry {
    fn verdict(self) -> Verdict {
        match self {
            Retry::No => Verdict::Final,
            Retry::Backoff => Verdict::Backoff,
            Retry::After(d) => Verdict::After(d),
        }
    }
}

fn retry_of(outcome: &std::result::Result<Reply, TransportError>, transport: &Transport) -> Retry {
    match outcome {
        Err(_) => retry_of_transport(transport),
        Ok(r) => retry_of_reply(r),
    }
}

/// A transport failure: over HTTP, try again; over a pipe the server process is gone.
fn retry_of_transport(transport: &Transport) -> Retry {
    match transport {
        Transport::Http { .. } => Retry::Backoff,
        Transport::Pipe { .. } => Retry::No,
    }
}

/// An answer: busy or throttled (after `Retry-After` when given), or a passing server error.
fn retry_of_reply(r: &Reply) -> Retry {
    match r.status.as_u16() {
        429 | 503 => match retry_after(&r.headers) {
            Some(d) => Retry::After(d),
            None => Retry::Backoff,
        },
        408 | 500 | 502 | 504 => Retry::Backoff,
        _ => Retry::No,
    }
}

/// A `Retry-After` header in seconds (at most [`MAX_RETRY_AFTER`]); HTTP dates are not used.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// An error and its sources, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

fn status_error(r: &Reply, op: &'static str, kind: Kind, name: &str) -> StorageError {
    StorageError::new(
        protocol::kind_of(r.status.as_u16()),
        op,
        kind,
        name,
        match protocol::error_message(&r.body) {
            m if m.is_empty() => format!("server answered {}", r.status),
            m => format!("server answered {}: {m}", r.status),
        },
    )
}

impl Drop for RemoteStorage {
    fn drop(&mut self) {
        if let Transport::Pipe { sender, child } = &self.transport {
            // Closing our end of the connection ends the server; give it a moment to exit,
            // then kill it (kill_on_drop).
            drop(sender.lock().unwrap_or_else(|e| e.into_inner()).take());
            let child = child.lock().unwrap_or_else(|e| e.into_inner()).take();
            let outside_runtime = tokio::runtime::Handle::try_current().is_err();
            if let (Some(mut child), Some(rt), true) = (child, self.rt.as_ref(), outside_runtime) {
                let _ = rt.block_on(async {
                    tokio::time::timeout(Duration::from_secs(2), child.wait()).await
                });
            }
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Storage for RemoteStorage {
    /// Four uploads in flight: over HTTP, four connections; over a pipe (SSH), four streams of
    /// the one HTTP/2 connection.
    fn write_concurrency(&self) -> usize {
        4
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    /// The server creates its repositories' folders; this checks that the repository exists
    /// for this client and the token is accepted.
    fn create(&self) -> Result<()> {
        self.info().map(|_| ())
    }

    fn list(&self, kind: Kind) -> Result<Vec<(String, u64)>> {
        let path = protocol::path_of(&self.repository, Some(kind), None);
        let r = self.call(Method::GET, path, None, Bytes::new(), "list", kind, "")?;
        if r.status != StatusCode::OK {
            return Err(status_error(&r, "list", kind, ""));
        }
        serde_json::from_slice(&r.body).map_err(|e| {
            StorageError::new(
                ErrorKind::Other,
                "list",
                kind,
                "",
                format!("bad listing: {e}"),
            )
        })
    }

    fn read(&self, kind: Kind, name: &str) -> Result<Vec<u8>> {
        check_name(kind, name)?;
        let r = self.call(
            Method::GET,
            self.object_path(kind, name),
            None,
            Bytes::new(),
            "read",
            kind,
            name,
        )?;
        if r.status != StatusCode::OK {
            return Err(status_error(&r, "read", kind, name));
        }
        Ok(r.body.to_vec())
    }

    fn read_range(&self, kind: Kind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        check_name(kind, name)?;
        let short = || {
            StorageError::new(
                ErrorKind::ShortRead,
                "read",
                kind,
                name,
                format!("range {offset}+{length} beyond end of object"),
            )
        };
        if length == 0 {
            return if offset <= self.size(kind, name)? {
                Ok(Vec::new())
            } else {
                Err(short())
            };
        }
        let last = offset.checked_add(length - 1).ok_or_else(short)?;
        let r = self.call(
            Method::GET,
            self.object_path(kind, name),
            Some((header::RANGE, format!("bytes={offset}-{last}"))),
            Bytes::new(),
            "read",
            kind,
            name,
        )?;
        match r.status {
            StatusCode::PARTIAL_CONTENT if r.body.len() as u64 == length => Ok(r.body.to_vec()),
            StatusCode::PARTIAL_CONTENT => Err(short()),
            // A server may ignore the range and send everything.
            StatusCode::OK => {
                let end = usize::try_from(last + 1).map_err(|_| short())?;
                r.body
                    .get(usize::try_from(offset).map_err(|_| short())?..end)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(short)
            }
            _ => Err(status_error(&r, "read", kind, name)),
        }
    }

    fn write(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()> {
        check_name(kind, name)?;
        let r = self.call(
            Method::PUT,
            self.object_path(kind, name),
            None,
            self.bodies.body(data),
            "write",
            kind,
            name,
        )?;
        match r.status {
            StatusCode::OK | StatusCode::CREATED | StatusCode::NO_CONTENT => Ok(()),
            _ => Err(status_error(&r, "write", kind, name)),
        }
    }

    /// The buffer is sent as it is; a buffer of an earlier, completed upload is returned.
    fn write_vec(&self, kind: Kind, name: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
        self.put_owned(kind, name, data, false)
    }

    /// [`RemoteStorage::write_vec`] with `Tresor-Hot: 1` ([`protocol::HOT_HEADER`]): the server
    /// writes it with its storage's `write_vec_hot`.
    fn write_vec_hot(&self, kind: Kind, name: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
        self.put_owned(kind, name, data, true)
    }

    fn set_wait_observer(
        &self,
        observer: Option<Arc<dyn WaitObserver>>,
    ) -> Option<Arc<dyn WaitObserver>> {
        self.retrier.set_observer(observer)
    }

    fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        check_name(kind, name)?;
        let r = self.call(
            Method::DELETE,
            self.object_path(kind, name),
            None,
            Bytes::new(),
            "delete",
            kind,
            name,
        )?;
        match r.status {
            StatusCode::OK | StatusCode::NO_CONTENT => Ok(()),
            _ => Err(status_error(&r, "delete", kind, name)),
        }
    }

    fn size(&self, kind: Kind, name: &str) -> Result<u64> {
        check_name(kind, name)?;
        let r = self.call(
            Method::HEAD,
            self.object_path(kind, name),
            None,
            Bytes::new(),
            "stat",
            kind,
            name,
        )?;
        if r.status != StatusCode::OK {
            return Err(status_error(&r, "stat", kind, name));
        }
        r.headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                StorageError::new(
                    ErrorKind::Other,
                    "stat",
                    kind,
                    name,
                    "server sent no Content-Length",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            parse_remote_url("tresor+http://127.0.0.1:8080/main").unwrap(),
            RemoteLocation::Http {
                tls: false,
                host: "127.0.0.1".into(),
                port: Some(8080),
                repository: "main".into()
            }
        );
        assert!(parse_remote_url("tresor+https://backup.example.net/main/").is_ok());
        assert!(parse_remote_url("tresor+http://[::1]:80/main").is_ok());
        assert_eq!(
            parse_remote_url("ssh://backup@host:2222/srv/repo").unwrap(),
            RemoteLocation::Ssh {
                user: Some("backup".into()),
                host: "host".into(),
                port: Some(2222),
                path: "/srv/repo".into()
            }
        );
        for bad in [
            "tresor+http://example.net/main",
            "tresor+http://10.0.0.1:80/main",
            "tresor+https://vps1:secret@host/main",
            "tresor+https://host/",
            "tresor+https://host/a/b",
            "tresor+https://host:99999/main",
            "tresor+https://host/../x",
            "http://host/main",
            "ssh://host",
        ] {
            assert!(parse_remote_url(bad).is_err(), "{bad}");
        }
        let e = parse_remote_url("tresor+https://vps1.secrettoken@host/main").unwrap_err();
        assert!(!e.to_string().contains("secrettoken"));
    }

    #[test]
    fn ssh_destinations_are_never_options() {
        for (bad, why) in [
            (
                "ssh://-oProxyCommand/srv/repo",
                "an ssh host name must not start with '-'",
            ),
            (
                "ssh://backup@-v/srv/repo",
                "an ssh host name must not start with '-'",
            ),
            (
                "ssh://-lroot@host/srv/repo",
                "an ssh user name must not start with '-'",
            ),
            (
                "ssh://-@host/srv/repo",
                "an ssh user name must not start with '-'",
            ),
        ] {
            let e = parse_remote_url(bad).unwrap_err();
            assert_eq!(e.message, why, "{bad}");
            assert_eq!(e.name, bad);
        }
        // A dash inside a name is fine.
        assert!(parse_remote_url("ssh://back-up@my-host/srv/repo").is_ok());
        assert_eq!(
            ssh_args(Some("backup"), "host", Some(2222), "/srv/a b"),
            [
                "-T",
                "-p",
                "2222",
                "--",
                "backup@host",
                "tresor serve --stdio --repo '/srv/a b' --role admin"
            ]
        );
        assert_eq!(
            ssh_args(None, "host", None, "/r"),
            [
                "-T",
                "--",
                "host",
                "tresor serve --stdio --repo '/r' --role admin"
            ]
        );
    }

    #[test]
    fn busy_answers_are_waited_for() {
        let reply = |status: u16, retry_after: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(v) = retry_after {
                headers.insert(header::RETRY_AFTER, v.parse().unwrap());
            }
            Ok(Reply {
                status: StatusCode::from_u16(status).unwrap(),
                headers,
                body: Bytes::new(),
            })
        };
        let http = Transport::Http {
            client: reqwest::Client::new(),
            base: String::new(),
            token: None,
        };
        let secs = |n| Retry::After(Duration::from_secs(n));
        assert_eq!(retry_of(&reply(503, Some("1")), &http), secs(1));
        assert_eq!(retry_of(&reply(429, Some(" 7 ")), &http), secs(7));
        assert_eq!(retry_of(&reply(503, Some("3600")), &http), secs(30));
        assert_eq!(retry_of(&reply(503, None), &http), Retry::Backoff);
        assert_eq!(
            retry_of(&reply(503, Some("Wed, 21 Oct 2015 07:28:00 GMT")), &http),
            Retry::Backoff
        );
        for s in [408, 500, 502, 504] {
            assert_eq!(retry_of(&reply(s, None), &http), Retry::Backoff, "{s}");
        }
        for s in [200, 201, 400, 401, 403, 404, 409, 411, 413, 507] {
            assert_eq!(retry_of(&reply(s, Some("1")), &http), Retry::No, "{s}");
        }
        let failed = Err(TransportError("reset".into()));
        assert_eq!(retry_of(&failed, &http), Retry::Backoff);
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/srv/a b"), "'/srv/a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
