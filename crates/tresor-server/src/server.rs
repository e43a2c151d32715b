//! The repository server: HTTP/1.1 and HTTP/2 on TCP (by ALPN over TLS; by the connection
//! preface on plain connections), or HTTP/2 on stdin/stdout for SSH forced commands.
//!
//! Every request goes through [`handle`]: parse the path ([`crate::protocol::parse_path`]),
//! authenticate, check that the repository is the client's own (others answer 404), check the
//! permission table ([`crate::auth::allowed`]), then do the storage operation on a blocking
//! thread. One access log line per request, without secrets.

use crate::auth::{self, Op, Role};
use crate::config::{ClientConfig, Limits, ServerConfig};
use crate::conn::{self, Activity, AddressSlots, Deadlines, Ended, TrackedBody};
use crate::protocol::{self, PROTOCOL_VERSION, STDIO_REPOSITORY, Target};
use crate::upload::{self, Meter, ReceiveError, Spool};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tresor_storage::{ErrorKind, Kind, Storage, StorageError, name_of_hash};

/// Verified tokens kept in memory (keyed hash of the token → client name), so that only the
/// first request of a client pays for Argon2.
const TOKEN_CACHE: usize = 4096;
/// Longest token accepted, in bytes.
const MAX_TOKEN_LEN: usize = 256;
/// Argon2 verifications running at once (each takes ~19 MiB and tens of milliseconds).
const VERIFY_PERMITS: usize = 2;
/// HTTP/2 flow-control windows: large enough for packs to stream at loopback speed.
const H2_STREAM_WINDOW: u32 = 4 << 20;
const H2_CONN_WINDOW: u32 = 16 << 20;

/// Where the access log goes.
#[derive(Debug)]
pub enum AccessLog {
    /// One line per request to standard error (the default for `--listen`).
    Stderr,
    /// Only refused or failed requests (status 400 and up) to standard error (the default for
    /// `--stdio`, whose standard error is the SSH client's terminal).
    StderrErrors,
    /// One line per request appended to this file.
    File(std::fs::File),
    /// No access log.
    Off,
}

/// How requests are authenticated.
#[derive(Debug)]
enum Auth {
    /// `Authorization: Bearer NAME.SECRET`, checked against the configured clients.
    Tokens(BTreeMap<String, ClientConfig>),
    /// Stdio mode: the other end of the pipe is this client (SSH authenticated it).
    Fixed {
        client: String,
        role: Role,
        repository: String,
    },
}

/// A configured server, ready to be started with [`Server::spawn`], [`Server::run`] or
/// [`Server::serve_stdio`].
#[derive(Debug, Clone)]
pub struct Server {
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    repos: HashMap<String, Arc<dyn Storage>>,
    /// Where each repository's large uploads are spooled.
    spools: HashMap<String, Spool>,
    auth: Auth,
    limits: Limits,
    /// Bytes of uploads being received (by `Content-Length`), capped.
    in_flight: Arc<Meter>,
    /// Body bytes held in memory by the handlers.
    buffered: Arc<Meter>,
    addresses: Arc<AddressSlots>,
    counters: Counters,
    token_cache: Mutex<HashMap<[u8; 32], String>>,
    cache_key: [u8; 32],
    verify_permits: Semaphore,
    /// Argon2id hash of a random token, checked for unknown client names.
    dummy_hash: String,
    log: Mutex<AccessLog>,
}

/// Event counts behind [`ServerStats`].
#[derive(Debug, Default)]
struct Counters {
    spooled: AtomicU64,
    busy: AtomicU64,
    refused: AtomicU64,
    idle_closed: AtomicU64,
}

/// What the server's limits are doing: for monitoring, and for tests that check that uploads
/// do not grow memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Bytes of uploads being received now (their `Content-Length`s).
    pub in_flight_bytes: u64,
    /// The most [`ServerStats::in_flight_bytes`] ever reached.
    pub peak_in_flight_bytes: u64,
    /// Request body bytes the handlers hold in memory now (small bodies whole, large ones up to
    /// one 1 MiB batch each on their way to the spool file). Excludes HTTP/2 flow-control
    /// buffers inside hyper (at most one connection window, 16 MiB, per connection).
    pub buffered_bytes: u64,
    /// The most [`ServerStats::buffered_bytes`] ever reached.
    pub peak_buffered_bytes: u64,
    /// Uploads received through a spool file.
    pub spooled_uploads: u64,
    /// Uploads answered 503 because of `max_in_flight_bytes`.
    pub busy_refusals: u64,
    /// Connections closed at once because of `max_connections_per_address`.
    pub refused_connections: u64,
    /// Connections closed by the first-request or idle deadline.
    pub idle_closed: u64,
}

/// Opens the storage of one configured repository: given its name and its config, the storage
/// or a message. See [`Server::from_config_with`].
pub type OpenStorage<'a> =
    &'a dyn Fn(&str, &crate::config::RepositoryConfig) -> Result<Arc<dyn Storage>, String>;

impl Server {
    /// A server for a config whose repositories are local directories: opens each and creates
    /// its folders. A repository in S3 is refused: the caller opens those
    /// ([`Server::from_config_with`]; `tresor serve` does, with the one function that opens every
    /// repository location), so this crate does not depend on an S3 client.
    ///
    /// # Errors
    /// A message naming the repository whose storage cannot be opened.
    pub fn from_config(config: &ServerConfig) -> Result<Server, String> {
        Self::from_config_with(config, &|name, r| match &r.path {
            Some(p) => Ok(Arc::new(tresor_storage::local::LocalStorage::new(
                std::path::absolute(p).map_err(|e| format!("repository {name}: {e}"))?,
            ))),
            None => Err(format!(
                "repository {name}: only local directories are opened here; \
                 give S3 storage with Server::from_config_with"
            )),
        })
    }

    /// A server for a config, with every repository's storage opened by `open` (given the
    /// repository's name and config; errors are messages). Creates each storage's folders
    /// ([`Storage::create`]: directories locally, a listing check in S3). Large uploads are
    /// spooled in `limits.spool_dir`, else in a local repository's own directory, else in the
    /// system temporary folder.
    ///
    /// # Errors
    /// A message naming the repository whose storage cannot be opened or created.
    pub fn from_config_with(
        config: &ServerConfig,
        open: OpenStorage<'_>,
    ) -> Result<Server, String> {
        let mut repos: HashMap<String, Arc<dyn Storage>> = HashMap::new();
        let mut spools = HashMap::new();
        for (name, r) in &config.repositories {
            let spool_dir = match &r.path {
                Some(p) => std::path::absolute(p).map_err(|e| format!("repository {name}: {e}"))?,
                None => std::env::temp_dir(),
            };
            spools.insert(name.clone(), Spool::new(&config.limits, &spool_dir));
            let storage = open(name, r)?;
            storage
                .create()
                .map_err(|e| format!("repository {name}: {e}"))?;
            repos.insert(name.clone(), storage);
        }
        Ok(Self::build(
            repos,
            spools,
            Auth::Tokens(config.clients.clone()),
            config.limits.clone(),
        ))
    }

    /// A server of one repository in `storage`, named [`STDIO_REPOSITORY`], whose one client
    /// `client` (a name for the log) has `role` without a token: for `--stdio`, where SSH
    /// authenticated the other end. Large uploads are spooled in `limits.spool_dir`, else in the
    /// system temporary folder.
    pub fn single(storage: Arc<dyn Storage>, client: &str, role: Role, limits: Limits) -> Server {
        let mut repos = HashMap::new();
        repos.insert(STDIO_REPOSITORY.to_string(), storage);
        let mut spools = HashMap::new();
        spools.insert(
            STDIO_REPOSITORY.to_string(),
            Spool::new(&limits, &std::env::temp_dir()),
        );
        Self::build(
            repos,
            spools,
            Auth::Fixed {
                client: client.to_string(),
                role,
                repository: STDIO_REPOSITORY.to_string(),
            },
            limits,
        )
    }

    fn build(
        repos: HashMap<String, Arc<dyn Storage>>,
        spools: HashMap<String, Spool>,
        auth: Auth,
        limits: Limits,
    ) -> Server {
        let mut cache_key = [0u8; 32];
        // Without randomness the cache key is fixed, which only makes cache entries guessable
        // to someone who can already read the server's memory.
        let _ = getrandom::fill(&mut cache_key);
        let dummy_hash = match &auth {
            Auth::Tokens(_) => auth::generate_token("unknown")
                .ok()
                .and_then(|t| auth::hash_token(&t).ok())
                .unwrap_or_default(),
            Auth::Fixed { .. } => String::new(),
        };
        Server {
            state: Arc::new(State {
                repos,
                spools,
                auth,
                in_flight: Meter::new(limits.max_in_flight_bytes),
                buffered: Meter::new(u64::MAX),
                addresses: AddressSlots::new(limits.max_connections_per_address),
                counters: Counters::default(),
                limits,
                token_cache: Mutex::new(HashMap::new()),
                cache_key,
                verify_permits: Semaphore::new(VERIFY_PERMITS),
                dummy_hash,
                log: Mutex::new(AccessLog::Stderr),
            }),
        }
    }

    /// The counters of the server's limits (see [`ServerStats`]).
    pub fn stats(&self) -> ServerStats {
        let s = &self.state;
        let (in_flight_bytes, peak_in_flight_bytes) = s.in_flight.now_and_peak();
        let (buffered_bytes, peak_buffered_bytes) = s.buffered.now_and_peak();
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServerStats {
            in_flight_bytes,
            peak_in_flight_bytes,
            buffered_bytes,
            peak_buffered_bytes,
            spooled_uploads: n(&s.counters.spooled),
            busy_refusals: n(&s.counters.busy),
            refused_connections: n(&s.counters.refused),
            idle_closed: n(&s.counters.idle_closed),
        }
    }

    /// Send the access log elsewhere (default: [`AccessLog::Stderr`]).
    pub fn set_access_log(&self, log: AccessLog) {
        *self.state.log.lock().unwrap_or_else(|e| e.into_inner()) = log;
    }

    /// Start serving on `listener` on a background thread with its own runtime; TLS when `tls`
    /// is given (see [`tls_config`]). Stops when the handle is dropped or stopped.
    ///
    /// # Errors
    /// The runtime or the listener cannot be set up.
    pub fn spawn(
        &self,
        listener: std::net::TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<ServerHandle> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(
                std::thread::available_parallelism()
                    .map_or(2, |n| n.get())
                    .clamp(2, 8),
            )
            .thread_name("tresor-serve")
            .enable_all()
            .build()?;
        let listener = {
            let _guard = rt.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let state = self.state.clone();
        let thread = std::thread::Builder::new()
            .name("tresor-serve".into())
            .spawn(move || {
                rt.block_on(accept_loop(
                    state,
                    listener,
                    tls.map(TlsAcceptor::from),
                    stop_rx,
                ));
                rt.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(ServerHandle {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Serve on `listener` until the process ends (the `tresor serve --listen` loop).
    ///
    /// # Errors
    /// As [`Server::spawn`].
    pub fn run(
        &self,
        listener: std::net::TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<()> {
        let mut handle = self.spawn(listener, tls)?;
        if let Some(t) = handle.thread.take() {
            let _ = t.join();
        }
        Ok(())
    }

    /// Serve HTTP/2 (prior knowledge, no TLS) on standard input and output until the client
    /// closes its end (`tresor serve --stdio`). Nothing else may write to standard output.
    ///
    /// # Errors
    /// The runtime cannot be started; protocol errors on the pipe.
    pub fn serve_stdio(&self) -> std::io::Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tresor-serve")
            .enable_all()
            .build()?;
        let state = self.state.clone();
        let result = rt.block_on(async move {
            let io = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
            serve_h2(state, io, Arc::from("stdio"), Activity::new(), None)
                .await
                .0
        });
        rt.shutdown_timeout(Duration::from_millis(100));
        match result {
            Err(e) if !peer_went_away(&e) => Err(std::io::Error::other(e)),
            _ => Ok(()),
        }
    }

    /// Serve HTTP/2 (prior knowledge) on one connection `io` until it closes, in the current
    /// tokio runtime: the stdio mode on any pipe.
    ///
    /// # Errors
    /// Protocol errors on the connection.
    pub async fn serve_connection<I>(&self, io: I, peer: &str) -> Result<(), hyper::Error>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        serve_h2(
            self.state.clone(),
            io,
            Arc::from(peer),
            Activity::new(),
            None,
        )
        .await
        .0
    }
}

/// Whether a connection error only says that the client closed its end.
fn peer_went_away(e: &hyper::Error) -> bool {
    if e.is_closed() || e.is_incomplete_message() {
        return true;
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            return matches!(
                io.kind(),
                K::BrokenPipe | K::ConnectionReset | K::UnexpectedEof
            );
        }
        src = s.source();
    }
    false
}

/// A running server started by [`Server::spawn`].
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, drop open connections and wait for the server thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A rustls server config from PEM files: the certificate chain (leaf first) and its private key
/// (PKCS#8, PKCS#1 or SEC1). ALPN offers `h2` and `http/1.1`.
///
/// # Errors
/// A message naming the file that cannot be read or parsed.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("TLS certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("TLS certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "TLS certificate {}: no certificate in PEM file",
            cert.display()
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("TLS key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

async fn accept_loop(
    state: Arc<State>,
    listener: tokio::net::TcpListener,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(state.limits.max_connections));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => {
                    // Out of descriptors or a connection reset before accept: try again soon.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Some(slot) = state.addresses.try_take(peer.ip()) else {
            // Closed before anything is read: one address cannot take every connection.
            state.counters.refused.fetch_add(1, Ordering::Relaxed);
            state.log_event(&format!(
                "peer={peer} connection refused: {} connections from this address \
                 (max_connections_per_address)",
                state.limits.max_connections_per_address
            ));
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _slot = slot;
            let peer_name: Arc<str> = Arc::from(peer.to_string());
            let ended = serve_tcp(&state, tcp, tls, peer_name).await;
            if let Ended::Idle { had_requests } = ended {
                state.counters.idle_closed.fetch_add(1, Ordering::Relaxed);
                if !had_requests {
                    state.log_event(&format!(
                        "peer={peer} connection closed: no request within {} s \
                         (header_timeout_secs)",
                        state.limits.header_timeout().as_secs()
                    ));
                }
            }
        });
    }
}

/// Serve one accepted TCP connection (TLS, protocol detection, HTTP/1.1 or HTTP/2) with the
/// first-request and idle deadlines.
async fn serve_tcp(
    state: &Arc<State>,
    tcp: tokio::net::TcpStream,
    tls: Option<TlsAcceptor>,
    peer: Arc<str>,
) -> Ended {
    let limits = &state.limits;
    let activity = Activity::new();
    let deadlines = Some(Deadlines {
        first: limits.header_timeout(),
        idle: limits.idle_timeout(),
        grace: limits.header_timeout(),
    });
    let no_request = Ended::Idle {
        had_requests: false,
    };
    let state = state.clone();
    match tls {
        None => {
            // HTTP/2 with prior knowledge or HTTP/1.1, by the first bytes; a client that sends
            // them too slowly is dropped.
            let detect = tokio::time::timeout(limits.header_timeout(), starts_with_h2(&tcp));
            match detect.await {
                Ok(Ok(true)) => serve_h2(state, tcp, peer, activity, deadlines).await.1,
                Ok(Ok(false)) => serve_h1(state, tcp, peer, activity, deadlines).await.1,
                Ok(Err(_)) => Ended::Closed,
                Err(_) => no_request,
            }
        }
        Some(acceptor) => {
            let handshake = tokio::time::timeout(limits.header_timeout(), acceptor.accept(tcp));
            let stream = match handshake.await {
                Ok(Ok(stream)) => stream,
                Ok(Err(_)) => return Ended::Closed,
                Err(_) => return no_request,
            };
            if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                serve_h2(state, stream, peer, activity, deadlines).await.1
            } else {
                serve_h1(state, stream, peer, activity, deadlines).await.1
            }
        }
    }
}

/// Whether the connection starts with the HTTP/2 connection preface (RFC 9113 §3.4), by
/// peeking at its first bytes without consuming them.
async fn starts_with_h2(tcp: &tokio::net::TcpStream) -> std::io::Result<bool> {
    const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut buf = [0u8; 24];
    loop {
        let n = tcp.peek(&mut buf).await?;
        if n == 0 || buf[..n] != PREFACE[..n] {
            return Ok(false);
        }
        if n == PREFACE.len() {
            return Ok(true);
        }
        // A partial preface: wait for more (peek returns at once while data is pending).
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Handle one request; the connection counts as busy until the response has been sent.
async fn handle_tracked(
    state: Arc<State>,
    req: Request<Incoming>,
    peer: Arc<str>,
    activity: Arc<Activity>,
) -> Result<Response<TrackedBody>, Infallible> {
    let active = activity.begin();
    let response = handle(state, req, peer).await;
    Ok(response.map(|b| TrackedBody::new(b, Some(active))))
}

async fn serve_h1<I>(
    state: Arc<State>,
    io: I,
    peer: Arc<str>,
    activity: Arc<Activity>,
    deadlines: Option<Deadlines>,
) -> (Result<(), hyper::Error>, Ended)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeout = state.limits.header_timeout();
    let a = activity.clone();
    let svc = hyper::service::service_fn(move |req| {
        handle_tracked(state.clone(), req, peer.clone(), a.clone())
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        // A client that shuts down its sending side after the request still gets the answer.
        .half_close(true)
        .serve_connection(TokioIo::new(io), svc);
    conn::drive(conn, &activity, deadlines, |c| c.graceful_shutdown()).await
}

async fn serve_h2<I>(
    state: Arc<State>,
    io: I,
    peer: Arc<str>,
    activity: Arc<Activity>,
    deadlines: Option<Deadlines>,
) -> (Result<(), hyper::Error>, Ended)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = state.limits.clone();
    let a = activity.clone();
    let svc = hyper::service::service_fn(move |req| {
        handle_tracked(state.clone(), req, peer.clone(), a.clone())
    });
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONN_WINDOW)
        .max_frame_size(1 << 20)
        .max_concurrent_streams(limits.max_streams_per_connection);
    if let Some(ping) = limits.h2_keepalive() {
        builder.keep_alive_interval(ping).keep_alive_timeout(ping);
    }
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    conn::drive(conn, &activity, deadlines, |c| c.graceful_shutdown()).await
}

/// `Retry-After` of every 503 answer, in seconds.
const RETRY_AFTER: &str = "1";

/// Largest unread request body read and dropped after a refusal, in bytes.
const DRAIN_LIMIT: u64 = 64 << 10;

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok())
}

async fn drain(mut body: Incoming) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    let mut seen = 0u64;
    while seen <= DRAIN_LIMIT {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(f))) => {
                seen += f.data_ref().map_or(0, |d| d.len() as u64);
            }
            _ => break,
        }
    }
}

/// A refused or failed request: status and a message for the JSON error body.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
    /// Detail for the log only (storage errors may name server paths).
    detail: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            detail: None,
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn storage(e: StorageError) -> Self {
        let status = StatusCode::from_u16(protocol::status_of(e.kind))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = match e.kind {
            ErrorKind::NotFound => "no such object".to_string(),
            ErrorKind::AlreadyExists => "an object with other bytes exists under that name".into(),
            ErrorKind::ShortRead => "range beyond the end of the object".into(),
            ErrorKind::InvalidName => "bad object name".into(),
            ErrorKind::PermissionDenied => "the storage refused the operation".into(),
            ErrorKind::NoSpace => "the storage is full".into(),
            ErrorKind::Transient => "the storage failed temporarily; retry".into(),
            ErrorKind::Other => "storage error".into(),
        };
        ApiError {
            status,
            message,
            detail: Some(e.to_string()),
        }
    }

    fn response(&self) -> Response<Full<Bytes>> {
        let mut r = Response::new(Full::new(Bytes::from(protocol::error_body(&self.message))));
        *r.status_mut() = self.status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match self.status {
            StatusCode::UNAUTHORIZED => {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tresor\""),
                );
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                r.headers_mut().insert(
                    header::ALLOW,
                    HeaderValue::from_static("GET, HEAD, PUT, DELETE"),
                );
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER));
            }
            _ => {}
        }
        r
    }
}

/// What the access log says about one request.
#[derive(Debug, Default)]
struct Entry {
    client: Option<String>,
    repository: Option<String>,
    role: Option<Role>,
    op: Option<&'static str>,
    kind: Option<Kind>,
    name: Option<String>,
    bytes_in: u64,
    detail: Option<String>,
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
    peer: Arc<str>,
) -> Response<Full<Bytes>> {
    let start = Instant::now();
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let raw_path: String = parts.uri.path().chars().take(80).collect();
    let mut entry = Entry::default();
    let mut body = Some(body);
    let response = match route(&state, &parts, &mut body, &mut entry).await {
        Ok(r) => r,
        Err(e) => {
            entry.detail = e.detail.clone().or_else(|| Some(e.message.clone()));
            let mut r = e.response();
            if method == Method::HEAD {
                // A HEAD answer has no body: over HTTP/2 one would break the stream, and the
                // client would see a transport error instead of the status (a missing object
                // would look like a passing fault).
                *r.body_mut() = Full::new(Bytes::new());
            }
            r
        }
    };
    if let Some(body) = body {
        // A refused request's small body is read and dropped, so that the client sees the
        // answer instead of a connection reset.
        if declared_length(&parts.headers).is_some_and(|n| n <= DRAIN_LIMIT) {
            drain(body).await;
        }
    }
    let bytes_out = if method == Method::HEAD {
        0
    } else {
        hyper::body::Body::size_hint(response.body())
            .exact()
            .unwrap_or(0)
    };
    state.log_line(
        &entry, &method, &raw_path, &peer, &response, bytes_out, start,
    );
    response
}

impl State {
    #[allow(
        clippy::too_many_arguments,
        reason = "one access-log line: every field it prints"
    )]
    fn log_line(
        &self,
        e: &Entry,
        method: &Method,
        raw_path: &str,
        peer: &str,
        r: &Response<Full<Bytes>>,
        bytes_out: u64,
        start: Instant,
    ) {
        let status = r.status().as_u16();
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*log, AccessLog::Off)
            || (matches!(*log, AccessLog::StderrErrors) && status < 400)
        {
            return;
        }
        let mut line = format!(
            "tresor-serve: peer={peer} client={} role={} method={method} op={} kind={} name={} \
             status={status} in={} out={bytes_out} ms={}",
            e.client.as_deref().unwrap_or("-"),
            e.role.map_or("-", Role::as_str),
            e.op.unwrap_or("-"),
            e.kind.map_or("-", protocol::kind_segment),
            e.name.as_deref().map_or("-", |n| &n[..n.len().min(16)]),
            e.bytes_in,
            start.elapsed().as_millis(),
        );
        if e.op.is_none() && status >= 400 {
            // A malformed request: show what was asked for (escaped, cut short), never headers.
            line.push_str(&format!(" path={raw_path:?}"));
        }
        if let Some(d) = &e.detail {
            line.push_str(&format!(" error={d:?}"));
        }
        line.push('\n');
        match &mut *log {
            AccessLog::File(f) => {
                let _ = f.write_all(line.as_bytes());
            }
            _ => {
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
        }
    }

    /// A line about a connection (not a request) in the access log, unless it is off.
    fn log_event(&self, text: &str) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let line = format!("tresor-serve: {text}\n");
        match &mut *log {
            AccessLog::Off => {}
            AccessLog::File(f) => {
                let _ = f.write_all(line.as_bytes());
            }
            _ => {
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
        }
    }

    /// The client, its role and its repository, from the request headers.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<(String, Role, String), ApiError> {
        let clients = match &self.auth {
            Auth::Fixed {
                client,
                role,
                repository,
            } => return Ok((client.clone(), *role, repository.clone())),
            Auth::Tokens(c) => c,
        };
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing Authorization: Bearer token"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN)
            .ok_or_else(|| unauthorized("Authorization must be Bearer NAME.SECRET"))?;
        let name = auth::token_client(token).unwrap_or("");
        let known = clients.get(name);
        // An unknown name costs the same Argon2 verification as a known one (against a hash
        // made at start), so timing does not tell which client names exist.
        let phc = known.map_or(self.dummy_hash.as_str(), |c| c.token_hash.as_str());
        let key = *blake3::keyed_hash(&self.cache_key, token.as_bytes()).as_bytes();
        if let Some(client) = known
            && self
                .token_cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
                .is_some_and(|n| n == name)
        {
            return Ok((name.to_string(), client.role, client.repository.clone()));
        }
        let verified = {
            let _permit = self
                .verify_permits
                .acquire()
                .await
                .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
            let (token, phc) = (token.to_string(), phc.to_string());
            tokio::task::spawn_blocking(move || auth::verify_token(&token, &phc))
                .await
                .unwrap_or(false)
        };
        let Some(client) = known.filter(|_| verified) else {
            return Err(unauthorized("bad token"));
        };
        let ok = (name.to_string(), client.role, client.repository.clone());
        let mut cache = self.token_cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= TOKEN_CACHE {
            cache.clear();
        }
        cache.insert(key, name.to_string());
        Ok(ok)
    }
}

/// Run a storage operation on a blocking thread.
async fn blocking<T, F>(storage: &Arc<dyn Storage>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&dyn Storage) -> Result<T, ApiError> + Send + 'static,
{
    let s = storage.clone();
    tokio::task::spawn_blocking(move || f(s.as_ref()))
        .await
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal error".into(),
            detail: Some(e.to_string()),
        })?
}

fn ok(status: StatusCode, body: Vec<u8>, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn route(
    state: &State,
    req: &http::request::Parts,
    body: &mut Option<Incoming>,
    e: &mut Entry,
) -> Result<Response<Full<Bytes>>, ApiError> {
    if req.uri.query().is_some() {
        return Err(ApiError::bad("query strings are not part of the protocol"));
    }
    let target = protocol::parse_path(req.uri.path()).map_err(ApiError::bad)?;
    let (client, role, repo) = state.authenticate(&req.headers).await?;
    e.client = Some(client.clone());
    e.role = Some(role);
    e.repository = Some(repo.clone());
    // Other repositories do not exist for this client.
    let storage = match state.repos.get(target.repository()) {
        Some(s) if target.repository() == repo => s.clone(),
        _ => {
            return Err(ApiError::new(StatusCode::NOT_FOUND, "no such repository"));
        }
    };
    let method = req.method.clone();
    let (kind, name, op) = match (target, &method) {
        (Target::Repository(r), &Method::GET | &Method::HEAD) => {
            return Ok(repository_info(state, r, &client, role));
        }
        (Target::List(_, k), &Method::GET) => (k, None, Op::List),
        (Target::Object(_, k, n), &Method::GET | &Method::HEAD) => (k, Some(n), Op::Read),
        (Target::Object(_, k, n), &Method::PUT) => (k, Some(n), Op::Write),
        (Target::Object(_, k, n), &Method::DELETE) => (k, Some(n), Op::Delete),
        _ => {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on this path"),
            ));
        }
    };
    e.op = Some(op.as_str());
    e.kind = Some(kind);
    e.name = name.map(str::to_string);
    if !auth::allowed(role, kind, op) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("role {role} may not {} {kind} objects", op.as_str()),
        ));
    }
    let what = (op, kind, name.map(str::to_string));
    perform(state, &storage, what, req, body, e).await
}

/// `GET /{repo}/`: what the server says about the repository and the client.
fn repository_info(
    state: &State,
    repository: &str,
    client: &str,
    role: Role,
) -> Response<Full<Bytes>> {
    let info = serde_json::json!({
        "protocol": PROTOCOL_VERSION,
        "repository": repository,
        "client": client,
        "role": role.as_str(),
        "max_object_size": state.limits.max_object_size,
    });
    ok(
        StatusCode::OK,
        info.to_string().into_bytes(),
        "application/json",
    )
}

/// Carry out an allowed request on `storage`: `what` is the operation, the kind and the name
/// of the object (none for a listing).
async fn perform(
    state: &State,
    storage: &Arc<dyn Storage>,
    (op, kind, name): (Op, Kind, Option<String>),
    req: &http::request::Parts,
    body: &mut Option<Incoming>,
    e: &mut Entry,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let method = &req.method;
    match op {
        Op::List => {
            let mut list =
                blocking(storage, move |s| s.list(kind).map_err(ApiError::storage)).await?;
            list.sort();
            let body = serde_json::to_vec(&list).map_err(|e| ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: "internal error".into(),
                detail: Some(e.to_string()),
            })?;
            Ok(ok(StatusCode::OK, body, "application/json"))
        }
        Op::Read => {
            read(
                storage,
                kind,
                name.unwrap_or_default(),
                method,
                &req.headers,
            )
            .await
        }
        Op::Write => {
            let Some(body) = body.take() else {
                return Err(ApiError::bad("no request body"));
            };
            write(
                state,
                storage,
                kind,
                name.unwrap_or_default(),
                &req.headers,
                body,
                e,
            )
            .await
        }
        Op::Delete => {
            let n = name.unwrap_or_default();
            blocking(storage, move |s| {
                s.delete(kind, &n).map_err(ApiError::storage)
            })
            .await?;
            Ok(ok(StatusCode::NO_CONTENT, Vec::new(), "application/json"))
        }
    }
}

async fn read(
    storage: &Arc<dyn Storage>,
    kind: Kind,
    name: String,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let range = match headers.get(header::RANGE) {
        None => None,
        Some(v) => Some(
            protocol::parse_range(v.to_str().map_err(|_| ApiError::bad("bad Range"))?)
                .map_err(ApiError::bad)?,
        ),
    };
    if *method == Method::HEAD {
        let size = blocking(storage, move |s| {
            s.size(kind, &name).map_err(ApiError::storage)
        })
        .await?;
        let mut r = ok(StatusCode::OK, Vec::new(), "application/octet-stream");
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        return Ok(r);
    }
    let Some(range) = range else {
        let data = blocking(storage, move |s| {
            s.read(kind, &name).map_err(ApiError::storage)
        })
        .await?;
        return Ok(ok(StatusCode::OK, data, "application/octet-stream"));
    };
    let (data, start, size) = blocking(storage, move |s| {
        let size = s.size(kind, &name).map_err(ApiError::storage)?;
        let end = range.end.unwrap_or(size.saturating_sub(1));
        if range.start >= size || end >= size {
            let mut err = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("range beyond the end of the object ({size} bytes)"),
            );
            err.detail = Some(format!("size {size}"));
            return Err(err);
        }
        let data = s
            .read_range(kind, &name, range.start, end - range.start + 1)
            .map_err(ApiError::storage)?;
        Ok((data, range.start, size))
    })
    .await?;
    let end = start + data.len() as u64 - 1;
    let mut r = ok(
        StatusCode::PARTIAL_CONTENT,
        data,
        "application/octet-stream",
    );
    r.headers_mut().insert(
        header::CONTENT_RANGE,
        HeaderValue::from_str(&format!("bytes {start}-{end}/{size}"))
            .expect("digits are a valid header value"),
    );
    Ok(r)
}

async fn write(
    state: &State,
    storage: &Arc<dyn Storage>,
    kind: Kind,
    name: String,
    headers: &HeaderMap,
    body: Incoming,
    e: &mut Entry,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let limit = state.limits.max_object_size;
    let declared = content_length(headers)?;
    let hot = protocol::parse_hot(headers.get(protocol::HOT_HEADER).map(HeaderValue::as_bytes))
        .map_err(ApiError::bad)?;
    if declared > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("objects are limited to {limit} bytes"),
        ));
    }
    // Admission: the upload's bytes count against the global budget until it is stored.
    let Some(_in_flight) = state.in_flight.try_take(declared) else {
        state.counters.busy.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is receiving too many uploads; retry",
        ));
    };
    let spool = state
        .spools
        .get(e.repository.as_deref().unwrap_or_default())
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such repository"))?;
    let received = upload::receive(
        body,
        declared,
        spool,
        state.limits.body_timeout(),
        &state.buffered,
        &mut e.bytes_in,
    )
    .await
    .map_err(receive_error)?;
    if received.spooled() {
        state.counters.spooled.fetch_add(1, Ordering::Relaxed);
    }
    let hash_ok = name_of_hash(&received.hash) == name;
    let status = blocking(storage, move |s| {
        if !hash_ok {
            return Err(match s.size(kind, &name) {
                Ok(_) => ApiError::new(
                    StatusCode::CONFLICT,
                    "an object with other bytes exists under that name",
                ),
                Err(err) if err.kind == ErrorKind::NotFound => {
                    ApiError::bad("object name is not the BLAKE3 hash of the body")
                }
                Err(err) => ApiError::storage(err),
            });
        }
        let existed = s.size(kind, &name).is_ok();
        received
            .store(s, kind, &name, hot)
            .map_err(ApiError::storage)?;
        Ok(if existed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        })
    })
    .await?;
    Ok(ok(status, Vec::new(), "application/json"))
}

/// The `Content-Length` of an upload: `411` without one, `400` when it is not a number.
fn content_length(headers: &HeaderMap) -> Result<u64, ApiError> {
    match headers.get(header::CONTENT_LENGTH) {
        None => Err(ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "uploads need a Content-Length",
        )),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| ApiError::bad("bad Content-Length")),
    }
}

fn receive_error(e: ReceiveError) -> ApiError {
    match e {
        ReceiveError::Slow => ApiError::new(StatusCode::REQUEST_TIMEOUT, "request body too slow"),
        ReceiveError::Incomplete(m) => ApiError::bad(format!("incomplete request body: {m}")),
        ReceiveError::WrongLength => ApiError::bad("body length differs from Content-Length"),
        ReceiveError::Spool(err) => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the server cannot store the upload now; retry".into(),
            detail: Some(err),
        },
    }
}
