//! Fault injection between tresor and a real S3 server (SeaweedFS in CI, `TRESOR_TEST_S3_URL`
//! with a plain-http loopback endpoint): a loopback HTTP proxy in this test answers some requests
//! with 503 SlowDown or 500 InternalError, resets connections in the middle of uploads and
//! downloads, and stalls them, in bounded numbers.
//!
//! * Backup and restore through the faulty proxy complete (retries); `check --read-data`
//!   through a clean connection is clean; the next backup completes.
//! * When pack uploads keep failing, the backup ends with a clear one-line error, `check
//!   --read-data` is still clean, and the next backup completes.
//! * Everything runs in a bucket with versioning on: afterwards ListObjectVersions shows exactly
//!   one version of every object (nothing was ever overwritten, not even by retried writes).
//! * At the storage level, with short timeouts: stalls longer than the timeout are cut off and
//!   retried.
//! * Throttling is waited out (issue 13, item 8): during a 20-second burst in which the proxy
//!   answers every request with 503 SlowDown (an S3 XML error body) or resets the connection, a
//!   backup started in it completes, saying "waiting for the store"; every kind of storage call
//!   (list, read, range read, stat, write, delete, HEAD, hand-signed requests) waits out a
//!   shorter burst and tells its observer.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tresor_testkit::prelude::*;

// ---------------------------------------------------------------------------------------------
// The proxy.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Fault {
    /// 503 SlowDown, the body is read and dropped.
    SlowDown,
    /// 500 InternalError.
    Internal,
    /// Forward half of the request body, then reset both connections.
    ResetUpload,
    /// Forward the response head and part of the body, then reset the client connection.
    ResetDownload,
    /// Forward half of the request body, wait, then the rest.
    StallUpload,
    /// Forward part of the response, wait, then the rest.
    StallDownload,
    /// Like `StallUpload`, but wait for `stall_forever` and then reset: the client must time out.
    HangUpload,
    /// Reset the client connection as soon as the request head has arrived.
    ResetAtOnce,
}

/// What the proxy does.
#[derive(Debug, Clone)]
enum Mode {
    /// Forward everything.
    Clean,
    /// Every `every[1]`-th upload (PUT with a body) and every `every[0]`-th other request gets
    /// the next fault of `order` that applies to it and still has budget (each class keeps its
    /// own turn in `order`).
    Flaky { every: [u64; 2], order: Vec<Fault> },
    /// Pack uploads after the first `n` get a 500, forever.
    PackPutsFailAfter(u64),
    /// Until the instant, every request gets 503 SlowDown, but every fourth a reset; then
    /// everything is forwarded.
    Burst(std::time::Instant),
    /// Like `Burst`, for this long from the first pack upload on.
    BurstFromFirstPackPut(Duration),
}

struct State {
    upstream: SocketAddr,
    mode: Mutex<Mode>,
    /// Faults left, per kind and per request kind (`true`: object uploads, `false`: the rest).
    budget: Mutex<HashMap<(Fault, bool), u32>>,
    injected: Mutex<Vec<(Fault, String, String)>>,
    /// When set, only requests whose target contains this string are counted and faulted.
    only: Mutex<Option<String>>,
    /// Requests seen per class (other, upload).
    requests: [AtomicU64; 2],
    /// Next position in the fault order per class.
    cursor: Mutex<[usize; 2]>,
    pack_puts: AtomicU64,
    /// When the first pack upload arrived.
    first_pack_put: Mutex<Option<std::time::Instant>>,
    stall: Duration,
    stall_forever: Duration,
    stop: AtomicBool,
}

struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Proxy {
    fn start(
        upstream: SocketAddr,
        mode: Mode,
        budget: &[(Fault, bool, u32)],
        stall: Duration,
    ) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream,
            mode: Mutex::new(mode),
            budget: Mutex::new(budget.iter().map(|&(f, up, n)| ((f, up), n)).collect()),
            injected: Mutex::new(Vec::new()),
            only: Mutex::new(None),
            requests: [AtomicU64::new(0), AtomicU64::new(0)],
            cursor: Mutex::new([0, 0]),
            pack_puts: AtomicU64::new(0),
            first_pack_put: Mutex::new(None),
            stall,
            stall_forever: Duration::from_secs(30),
            stop: AtomicBool::new(false),
        });
        let st = Arc::clone(&state);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = Arc::clone(&st);
                std::thread::spawn(move || {
                    let _ = handle(conn, &st);
                });
            }
        });
        Proxy { addr, state }
    }

    fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Fault only requests whose target contains `only`, with a fresh budget.
    fn target(&self, only: &str, budget: &[(Fault, bool, u32)]) {
        *self.state.only.lock().unwrap() = Some(only.to_string());
        *self.state.budget.lock().unwrap() =
            budget.iter().map(|&(f, up, n)| ((f, up), n)).collect();
    }

    fn injected(&self) -> Vec<(Fault, String, String)> {
        self.state.injected.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Close with a TCP reset instead of a FIN.
fn reset(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    let _ = s.shutdown(Shutdown::Both);
}

/// Read up to the end of an HTTP head; returns (head, bytes read beyond it). `None` at EOF.
fn read_head(s: &mut TcpStream) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Ok(Some((buf, rest)));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.split("\r\n").skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// Copy exactly `n` bytes: first from `pre`, then from `from`.
fn copy_n(
    pre: &mut Vec<u8>,
    from: &mut TcpStream,
    to: &mut TcpStream,
    n: u64,
) -> std::io::Result<()> {
    let mut left = n;
    if !pre.is_empty() {
        let k = (pre.len() as u64).min(left) as usize;
        to.write_all(&pre[..k])?;
        pre.drain(..k);
        left -= k as u64;
    }
    let mut chunk = [0u8; 65536];
    while left > 0 {
        let want = (chunk.len() as u64).min(left) as usize;
        let got = from.read(&mut chunk[..want])?;
        if got == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        to.write_all(&chunk[..got])?;
        left -= got as u64;
    }
    Ok(())
}

impl State {
    /// The fault of a request in a burst that lasts until `until`.
    fn burst(&self, until: std::time::Instant) -> Option<Fault> {
        (std::time::Instant::now() < until).then(|| {
            match self.requests[0].fetch_add(1, Ordering::Relaxed) % 4 {
                3 => Fault::ResetAtOnce,
                _ => Fault::SlowDown,
            }
        })
    }

    fn decide(&self, method: &str, target: &str, body_len: u64) -> Option<Fault> {
        let mode = self.mode.lock().unwrap().clone();
        match mode {
            Mode::Clean => None,
            Mode::Burst(until) => self.burst(until),
            Mode::BurstFromFirstPackPut(len) => {
                let mut first = self.first_pack_put.lock().unwrap();
                if method == "PUT" && target.contains("/data/") && first.is_none() {
                    *first = Some(std::time::Instant::now());
                }
                let until = (*first)? + len;
                drop(first);
                self.burst(until)
            }
            Mode::PackPutsFailAfter(k) => {
                let is_pack_put = method == "PUT" && target.contains("/data/");
                (is_pack_put && self.pack_puts.fetch_add(1, Ordering::Relaxed) >= k)
                    .then_some(Fault::Internal)
            }
            Mode::Flaky { every, order } => {
                if let Some(only) = self.only.lock().unwrap().as_deref()
                    && !target.contains(only)
                {
                    return None;
                }
                // Two classes of requests, each with its own count and its own turn in `order`:
                // uploads (PUT with a body) and everything else.
                let upload = method == "PUT" && body_len > 1024;
                let class = usize::from(upload);
                let n = self.requests[class].fetch_add(1, Ordering::Relaxed) + 1;
                if !n.is_multiple_of(every[class]) {
                    return None;
                }
                let download = method == "GET" && !target.contains("list-type");
                let mut budget = self.budget.lock().unwrap();
                let mut cursor = self.cursor.lock().unwrap();
                for _ in 0..order.len() {
                    let f = order[cursor[class] % order.len()];
                    cursor[class] += 1;
                    let applies = match f {
                        Fault::SlowDown | Fault::Internal | Fault::ResetAtOnce => true,
                        Fault::ResetUpload | Fault::StallUpload | Fault::HangUpload => upload,
                        Fault::ResetDownload | Fault::StallDownload => download,
                    };
                    if let Some(left) = budget.get_mut(&(f, upload))
                        && *left > 0
                        && applies
                    {
                        *left -= 1;
                        return Some(f);
                    }
                }
                None
            }
        }
    }
}

fn error_response(status: &str, code: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>injected by the test proxy</Message></Error>"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn handle(mut client: TcpStream, st: &State) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(120)))?;
    let Some((head, mut rest)) = read_head(&mut client)? else {
        return Ok(());
    };
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut parts = head.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let body_len: u64 = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let chunked = header(&head, "transfer-encoding").is_some();
    let fault = if chunked {
        None
    } else {
        st.decide(&method, &target, body_len)
    };
    if let Some(f) = fault {
        st.injected
            .lock()
            .unwrap()
            .push((f, method.clone(), target.clone()));
    }
    // One request per connection: the client opens a new one for the next request.
    let mut new_head: String = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|l| {
            !l.split(':')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("connection")
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    new_head.push_str("\r\nConnection: close\r\n\r\n");

    match fault {
        Some(Fault::ResetAtOnce) => {
            reset(&client);
            return Ok(());
        }
        Some(Fault::SlowDown) | Some(Fault::Internal) => {
            let mut sink = std::io::sink();
            let k = (rest.len() as u64).min(body_len);
            let _ = std::io::copy(&mut (&mut client).take(body_len - k), &mut sink);
            let resp = if fault == Some(Fault::SlowDown) {
                error_response("503 Slow Down", "SlowDown")
            } else {
                error_response("500 Internal Server Error", "InternalError")
            };
            client.write_all(&resp)?;
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        _ => {}
    }

    let mut up = TcpStream::connect(st.upstream)?;
    up.write_all(new_head.as_bytes())?;
    if chunked {
        // Not used by tresor; relay both ways until the server closes.
        let (mut c2, mut u2) = (client.try_clone()?, up.try_clone()?);
        let pre = std::mem::take(&mut rest);
        std::thread::spawn(move || {
            let _ = u2.write_all(&pre);
            let _ = std::io::copy(&mut c2, &mut u2);
        });
        let _ = std::io::copy(&mut up, &mut client);
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }

    // The request body.
    let half = body_len / 2;
    match fault {
        Some(Fault::ResetUpload) => {
            copy_n(&mut rest, &mut client, &mut up, half)?;
            reset(&up);
            reset(&client);
            return Ok(());
        }
        Some(Fault::StallUpload) | Some(Fault::HangUpload) => {
            copy_n(&mut rest, &mut client, &mut up, half)?;
            up.flush()?;
            if fault == Some(Fault::HangUpload) {
                std::thread::sleep(st.stall_forever);
                reset(&up);
                reset(&client);
                return Ok(());
            }
            std::thread::sleep(st.stall);
            copy_n(&mut rest, &mut client, &mut up, body_len - half)?;
        }
        _ => copy_n(&mut rest, &mut client, &mut up, body_len)?,
    }

    // The response.
    match fault {
        Some(Fault::ResetDownload) | Some(Fault::StallDownload) => {
            let Some((rhead, mut rbody)) = read_head(&mut up)? else {
                reset(&client);
                return Ok(());
            };
            let text = String::from_utf8_lossy(&rhead).into_owned();
            let len: u64 = header(&text, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            client.write_all(&rhead)?;
            let part = len / 2;
            copy_n(&mut rbody, &mut up, &mut client, part)?;
            client.flush()?;
            if fault == Some(Fault::ResetDownload) {
                reset(&client);
                reset(&up);
                return Ok(());
            }
            std::thread::sleep(st.stall);
            client.write_all(&rbody)?;
            std::io::copy(&mut up, &mut client)?;
        }
        _ => {
            std::io::copy(&mut up, &mut client)?;
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// The S3 server's `http://host:port` endpoint, when the tests have one on plain http.
fn endpoint() -> Option<String> {
    let url = tresor_testkit::require::s3_url()?;
    let Some(rest) = url.strip_prefix("s3:http://") else {
        tresor_testkit::require::absent("an S3 server on plain http (for the fault proxy)");
        return None;
    };
    Some(format!("http://{}", rest.split('/').next().unwrap()))
}

fn hex8() -> String {
    let mut b = [0u8; 8];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A new bucket with versioning on; returns a storage handle on it (prefix `repo`).
fn versioned_bucket(endpoint: &str) -> (String, tresor_s3::S3Storage) {
    let bucket = format!("tresor-faults-{}", hex8());
    let url = format!("s3:{endpoint}/{bucket}/repo");
    let s = tresor_s3::S3Storage::open(&url, &tresor_s3::S3Options::default()).unwrap();
    let r = s.bucket_request("PUT", "", "", &[], b"").unwrap();
    // The name is fresh and random: "already owned by you" can only be our own create, retried
    // by the client after the first attempt succeeded but its answer was late (a loaded
    // machine; as in tresor-s3's tests/s3/lock.rs).
    assert!(
        r.is_success() || (r.status == 409 && r.text().contains("BucketAlreadyOwnedByYou")),
        "create bucket: {} {}",
        r.status,
        r.text()
    );
    let r = s
        .bucket_request(
            "PUT",
            "",
            "versioning",
            &[("content-type", "application/xml")],
            b"<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
              <Status>Enabled</Status></VersioningConfiguration>",
        )
        .unwrap();
    assert!(
        r.is_success(),
        "enable versioning: {} {}",
        r.status,
        r.text()
    );
    let r = s.bucket_request("GET", "", "versioning", &[], b"").unwrap();
    assert!(
        r.text().contains("<Status>Enabled</Status>"),
        "{}",
        r.text()
    );
    (bucket, s)
}

fn tag<'a>(xml: &'a str, t: &str) -> Option<&'a str> {
    xml.split(&format!("<{t}>"))
        .nth(1)
        .and_then(|x| x.split(&format!("</{t}>")).next())
}

/// Number of versions (not delete markers) per key under `prefix`, from ListObjectVersions.
fn versions(s: &tresor_s3::S3Storage, prefix: &str) -> (HashMap<String, usize>, Vec<String>) {
    let mut counts = HashMap::new();
    let mut markers = Vec::new();
    let mut marker = String::new();
    loop {
        let mut q = format!("versions&prefix={}", prefix.replace('/', "%2F"));
        if !marker.is_empty() {
            q.push_str(&format!("&key-marker={}", marker.replace('/', "%2F")));
        }
        let r = s.bucket_request("GET", "", &q, &[], b"").unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        for v in text.split("<Version>").skip(1) {
            let key = tag(v, "Key").unwrap().to_string();
            *counts.entry(key).or_insert(0) += 1;
        }
        for d in text.split("<DeleteMarker>").skip(1) {
            markers.push(tag(d, "Key").unwrap().to_string());
        }
        if tag(&text, "IsTruncated") == Some("true") {
            marker = tag(&text, "NextKeyMarker").unwrap_or_default().to_string();
            assert!(!marker.is_empty(), "truncated listing without a marker");
        } else {
            break;
        }
    }
    (counts, markers)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn check_clean(env: &Env, url: &str) {
    let o = env
        .cmd()
        .env("TRESOR_REPOSITORY", url)
        .args(["check", "--read-data", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "check: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["errors"], serde_json::json!([]), "{v}");
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn backup_and_restore_through_injected_faults() {
    let Some(endpoint) = endpoint() else { return };
    let upstream: SocketAddr = endpoint.strip_prefix("http://").unwrap().parse().unwrap();
    let (bucket, s) = versioned_bucket(&endpoint);
    let direct = format!("s3:{endpoint}/{bucket}/repo");
    let proxy = Proxy::start(
        upstream,
        Mode::Clean,
        &[
            (Fault::SlowDown, true, 2),
            (Fault::Internal, true, 2),
            (Fault::ResetUpload, true, 2),
            (Fault::StallUpload, true, 2),
            (Fault::SlowDown, false, 3),
            (Fault::Internal, false, 3),
            (Fault::ResetDownload, false, 8),
            (Fault::StallDownload, false, 6),
        ],
        Duration::from_secs(2),
    );
    let via_proxy = format!("s3:http://{}/{bucket}/repo", proxy.addr);
    let env = Env::new();
    let run = |url: &str, args: &[&str]| {
        env.cmd()
            .env("TRESOR_REPOSITORY", url)
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(
        &direct,
        &[
            "init",
            "--kdf-memory-kib",
            "8192",
            "--kdf-iterations",
            "1",
            "--pack-size-mib",
            "2",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let src = make_tree(env.dir.path());
    let before = scan(&src, is_root());

    proxy.set_mode(Mode::Flaky {
        every: [2, 1],
        order: vec![
            Fault::ResetUpload,
            Fault::SlowDown,
            Fault::StallUpload,
            Fault::Internal,
            Fault::ResetDownload,
            Fault::StallDownload,
        ],
    });
    let o = run(&via_proxy, &["backup", "--json", src.to_str().unwrap()]);
    let during_backup = proxy.injected();
    eprintln!("faults during backup: {during_backup:?}");
    for want in [
        Fault::ResetUpload,
        Fault::StallUpload,
        Fault::SlowDown,
        Fault::Internal,
    ] {
        assert!(
            during_backup
                .iter()
                .any(|(f, m, t)| *f == want && m == "PUT" && t.contains("/data/")),
            "a pack upload met {want:?}: {during_backup:?}"
        );
    }
    // Retries absorb bounded faults: the backup completes.
    assert_eq!(
        o.status.code(),
        Some(0),
        "backup through faults: {}",
        stderr(&o)
    );
    check_clean(&env, &direct);

    // Restore through the faults: pack downloads reset and stalled midway. Every pack download
    // is a candidate, so that the schedule does not depend on how many metadata reads come first.
    proxy.target(
        "/data/",
        &[
            (Fault::ResetDownload, false, 3),
            (Fault::StallDownload, false, 2),
            (Fault::SlowDown, false, 1),
        ],
    );
    proxy.set_mode(Mode::Flaky {
        every: [1, 1],
        order: vec![Fault::ResetDownload, Fault::StallDownload, Fault::SlowDown],
    });
    let t = env.path("restored");
    let o = run(
        &via_proxy,
        &[
            "restore",
            "latest",
            "--target",
            t.to_str().unwrap(),
            "--verify",
        ],
    );
    let all = proxy.injected();
    eprintln!("all faults: {all:?}");
    assert!(
        all.iter()
            .any(|(f, _, t)| *f == Fault::ResetDownload && t.contains("/data/")),
        "a pack download was reset midway: {all:?}"
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "restore through faults: {}",
        stderr(&o)
    );
    assert_same(
        &before,
        &scan(&t.join(src.strip_prefix("/").unwrap()), is_root()),
    );

    // The next backup completes (through the proxy, now clean) and finds everything unchanged.
    proxy.set_mode(Mode::Clean);
    std::fs::write(src.join("after-faults"), b"new file").unwrap();
    let o = run(&via_proxy, &["backup", "--json", src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files_new"], 1, "{v}");
    check_clean(&env, &direct);

    // Nothing was ever overwritten: one version per object.
    let (counts, markers) = versions(&s, "repo/");
    assert!(counts.len() > 10, "{counts:?}");
    for (key, n) in &counts {
        assert_eq!(*n, 1, "{key} has {n} versions");
    }
    for key in &markers {
        assert!(
            key.starts_with("repo/probe/"),
            "only probe objects are deleted: {key}"
        );
    }
}

#[test]
fn permanent_upload_failure_is_a_clear_error_and_the_next_backup_completes() {
    let Some(endpoint) = endpoint() else { return };
    let upstream: SocketAddr = endpoint.strip_prefix("http://").unwrap().parse().unwrap();
    let (bucket, s) = versioned_bucket(&endpoint);
    let direct = format!("s3:{endpoint}/{bucket}/repo");
    let proxy = Proxy::start(upstream, Mode::Clean, &[], Duration::from_secs(1));
    let via_proxy = format!("s3:http://{}/{bucket}/repo", proxy.addr);
    let env = Env::new();
    let run = |url: &str, args: &[&str]| {
        env.cmd()
            .env("TRESOR_REPOSITORY", url)
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(
        &direct,
        &[
            "init",
            "--kdf-memory-kib",
            "8192",
            "--kdf-iterations",
            "1",
            "--pack-size-mib",
            "2",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let src = make_tree(env.dir.path());
    let before = scan(&src, is_root());

    proxy.set_mode(Mode::PackPutsFailAfter(3));
    // Retried for 5 s (not the default five minutes), then given up.
    let o = run(
        &via_proxy,
        &["backup", "--retry-for", "5", src.to_str().unwrap()],
    );
    let all = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "the backup fails: {all}");
    // The waits are announced; the error that ends the backup is one line.
    let (waits, err): (Vec<&str>, Vec<&str>) = all
        .lines()
        .partition(|l| l.starts_with("tresor: waiting for the store: write pack "));
    assert!(!waits.is_empty(), "{all}");
    let err = err.join("\n");
    assert!(err.starts_with("tresor: "), "{all}");
    assert_eq!(err.lines().count(), 1, "one line: {all}");
    assert!(
        err.contains("write pack") && err.contains("InternalError"),
        "names the failed write and the server's answer: {err}"
    );
    let o = run(&direct, &["snapshots", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!([]),
        "no snapshot from the failed backup"
    );
    check_clean(&env, &direct);

    proxy.set_mode(Mode::Clean);
    let o = run(&via_proxy, &["backup", "--json", src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "next backup: {}", stderr(&o));
    check_clean(&env, &direct);
    let t = env.path("restored");
    let o = run(
        &direct,
        &["restore", "latest", "--target", t.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_same(
        &before,
        &scan(&t.join(src.strip_prefix("/").unwrap()), is_root()),
    );

    let (counts, _) = versions(&s, "repo/");
    for (key, n) in &counts {
        assert_eq!(*n, 1, "{key} has {n} versions");
    }
}

/// Storage level, with short timeouts: uploads that hang are cut off by the I/O timeout and
/// retried; stalls shorter than it just slow things down. Every object arrives exactly once.
#[test]
fn storage_retries_hung_uploads_after_the_timeout() {
    use tresor_storage::{Kind, Storage, name_of};
    let Some(endpoint) = endpoint() else { return };
    let upstream: SocketAddr = endpoint.strip_prefix("http://").unwrap().parse().unwrap();
    let (bucket, direct) = versioned_bucket(&endpoint);
    let proxy = Proxy::start(
        upstream,
        Mode::Flaky {
            every: [2, 2],
            order: vec![Fault::HangUpload, Fault::StallUpload, Fault::ResetUpload],
        },
        &[
            (Fault::HangUpload, true, 2),
            (Fault::StallUpload, true, 2),
            (Fault::ResetUpload, true, 2),
        ],
        Duration::from_millis(500),
    );
    let mut o = tresor_s3::S3Options::default();
    o.timeout = Duration::from_secs(3);
    o.io_timeout = Duration::from_secs(3);
    let s =
        tresor_s3::S3Storage::open(&format!("s3:http://{}/{bucket}/repo", proxy.addr), &o).unwrap();
    let mut written = Vec::new();
    for i in 0..12u64 {
        let data = pseudo_random(i, 200_000);
        let name = name_of(&data);
        s.write(Kind::Pack, &name, &data)
            .unwrap_or_else(|e| panic!("write {i}: {e}"));
        written.push((name, data));
    }
    let faults = proxy.injected();
    assert!(
        faults
            .iter()
            .filter(|(f, _, _)| *f == Fault::HangUpload)
            .count()
            == 2,
        "{faults:?}"
    );
    for (name, data) in &written {
        assert_eq!(&direct.read(Kind::Pack, name).unwrap(), data);
    }
    let (counts, _) = versions(&direct, "repo/");
    assert_eq!(counts.len(), written.len());
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
}

/// Issue 13, item 8: a backup that starts in a 20-second throttle burst — every request answered
/// with 503 SlowDown or a reset connection, reads, lists and uploads alike — completes after it,
/// saying that it waits for the store; the repository is clean and holds one version per object.
#[test]
fn a_backup_through_a_20_second_throttle_burst_succeeds() {
    let Some(endpoint) = endpoint() else { return };
    let upstream: SocketAddr = endpoint.strip_prefix("http://").unwrap().parse().unwrap();
    let (bucket, s) = versioned_bucket(&endpoint);
    let direct = format!("s3:{endpoint}/{bucket}/repo");
    let proxy = Proxy::start(upstream, Mode::Clean, &[], Duration::from_secs(1));
    let via_proxy = format!("s3:http://{}/{bucket}/repo", proxy.addr);
    let env = Env::new();
    let run = |url: &str, args: &[&str]| {
        env.cmd()
            .env("TRESOR_REPOSITORY", url)
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(
        &direct,
        &["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let src = make_tree(env.dir.path());
    let before = scan(&src, is_root());

    // A first, short burst as the backup starts (reads and listings), and a 20-second one from
    // its first pack upload on (uploads of packs, the index and the snapshot).
    let start = std::time::Instant::now();
    proxy.set_mode(Mode::Burst(start + Duration::from_secs(3)));
    let later = std::thread::spawn({
        let state = Arc::clone(&proxy.state);
        move || {
            std::thread::sleep(Duration::from_secs(3));
            *state.mode.lock().unwrap() = Mode::BurstFromFirstPackPut(Duration::from_secs(20));
        }
    });
    let o = run(&via_proxy, &["backup", src.to_str().unwrap()]);
    let took = start.elapsed();
    later.join().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "backup through the burst: {err}");
    let first_put = proxy
        .state
        .first_pack_put
        .lock()
        .unwrap()
        .expect("packs were uploaded");
    assert!(
        // About 30 s alone; the bound leaves room for a loaded machine.
        first_put.elapsed() >= Duration::from_secs(20) && took < Duration::from_secs(90),
        "{took:?}"
    );
    let faults = proxy.injected();
    for (fault, method) in [
        (Fault::SlowDown, "GET"),
        (Fault::SlowDown, "PUT"),
        (Fault::ResetAtOnce, "PUT"),
    ] {
        assert!(
            faults.iter().any(|(f, m, _)| *f == fault && m == method),
            "{fault:?} on a {method}: {faults:?}"
        );
    }
    let waits: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("tresor: waiting for the store: "))
        .collect();
    assert!(
        waits.len() >= 2 && waits.iter().any(|l| l.contains("SlowDown")),
        "{err}"
    );
    // At most one line every 10 s, not one per request.
    assert!(waits.len() <= 6, "{err}");
    check_clean(&env, &direct);
    let t = env.path("restored");
    let o = run(
        &direct,
        &["restore", "latest", "--target", t.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_same(
        &before,
        &scan(&t.join(src.strip_prefix("/").unwrap()), is_root()),
    );
    let (counts, _) = versions(&s, "repo/");
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
}

/// One storage call of [`every_storage_call_waits_out_a_throttle_burst`].
type Call<'a> = Box<dyn Fn() -> Result<(), String> + 'a>;

/// Records the operations that waited, and those that recovered.
#[derive(Default)]
struct Waits(Mutex<Vec<String>>);

impl tresor_storage::retry::WaitObserver for Waits {
    fn waiting(&self, n: &tresor_storage::retry::WaitNotice) {
        eprintln!("{n}");
        self.0.lock().unwrap().push(format!("wait {}", n.op));
    }
    fn recovered(&self, op: &str, _object: &str) {
        self.0.lock().unwrap().push(format!("ok {op}"));
    }
}

/// Each kind of storage call of [`every_storage_call_waits_out_a_throttle_burst`] on `s`, with
/// the operations that may wait in it: `(name, data)` is stored as an index object, `other` is
/// written as a snapshot, looked at and deleted.
fn storage_calls<'a>(
    s: &'a tresor_s3::S3Storage,
    (name, data): (&'a str, &'a [u8]),
    (other_name, other): (&'a str, &'a [u8]),
) -> Vec<(&'static [&'static str], Call<'a>)> {
    use tresor_storage::{Kind, Storage};
    fn err(e: tresor_storage::StorageError) -> String {
        e.to_string()
    }
    fn want(ok: bool, what: &str) -> Result<(), String> {
        ok.then_some(()).ok_or(what.to_string())
    }
    // (operations that may wait, the call)
    vec![
        (&["check"], Box::new(move || s.create().map_err(err))),
        (
            &["list"],
            Box::new(move || {
                let l = s.list(Kind::Index).map_err(err)?;
                want(l == [(name.to_string(), data.len() as u64)], "listing")
            }),
        ),
        (
            &["read"],
            Box::new(move || want(s.read(Kind::Index, name).map_err(err)? == data, "bytes")),
        ),
        (
            &["stat", "read"],
            Box::new(move || {
                let r = s.read_range(Kind::Index, name, 10, 50_000).map_err(err)?;
                want(r == data[10..50_010], "range")
            }),
        ),
        (
            &["stat"],
            Box::new(move || {
                let n = s.size(Kind::Index, name).map_err(err)?;
                want(n == data.len() as u64, "size")
            }),
        ),
        (
            &["write"],
            Box::new(move || s.write(Kind::Snapshot, other_name, other).map_err(err)),
        ),
        (
            &["head"],
            Box::new(move || s.head(Kind::Snapshot, other_name).map(drop).map_err(err)),
        ),
        (
            &["head", "delete"],
            Box::new(move || s.delete(Kind::Snapshot, other_name).map_err(err)),
        ),
        (
            // Answers of hand-signed requests are the caller's, whatever their status: only
            // transport failures (the resets) are retried.
            &["request"],
            Box::new(move || {
                let r = s
                    .bucket_request("GET", "", "versioning", &[], b"")
                    .map_err(err)?;
                want(r.status == 200 || r.status == 503, "status")
            }),
        ),
    ]
}

/// Every kind of S3 call waits out a throttle burst (not only uploads): each one, started in a
/// burst of 1.5 s, succeeds and has told the observer that it waited and recovered.
#[test]
fn every_storage_call_waits_out_a_throttle_burst() {
    use tresor_storage::{Kind, Storage, name_of};
    let Some(endpoint) = endpoint() else { return };
    let upstream: SocketAddr = endpoint.strip_prefix("http://").unwrap().parse().unwrap();
    let (bucket, direct) = versioned_bucket(&endpoint);
    let proxy = Proxy::start(upstream, Mode::Clean, &[], Duration::from_secs(1));
    let s = tresor_s3::S3Storage::open(
        &format!("s3:http://{}/{bucket}/repo", proxy.addr),
        &tresor_s3::S3Options::default(),
    )
    .unwrap();
    let waits = Arc::new(Waits::default());
    s.set_wait_observer(Some(waits.clone()));
    let data = pseudo_random(7, 100_000);
    let name = name_of(&data);
    direct.write(Kind::Index, &name, &data).unwrap();
    let other = pseudo_random(8, 1000);
    let other_name = name_of(&other);
    let burst = || {
        let until = std::time::Instant::now() + Duration::from_millis(1500);
        proxy.set_mode(Mode::Burst(until));
    };
    let calls = storage_calls(&s, (&name, &data), (&other_name, &other));
    for (ops, call) in &calls {
        waits.0.lock().unwrap().clear();
        burst();
        call().unwrap_or_else(|e| panic!("{ops:?}: {e}"));
        let log = waits.0.lock().unwrap().clone();
        if ops == &["request"] {
            continue;
        }
        assert!(
            log.iter()
                .any(|l| ops.iter().any(|op| *l == format!("wait {op}"))),
            "{ops:?}: {log:?}"
        );
        assert!(
            log.last().is_some_and(|l| l.starts_with("ok ")),
            "{ops:?}: {log:?}"
        );
    }
    assert_eq!(
        s.read(Kind::Snapshot, &other_name).unwrap_err().kind,
        tresor_storage::ErrorKind::NotFound
    );
}

/// Probes of conditional writes (two PUTs and a DELETE of a `probe/` object each) are not
/// repeated while this machine's cache records a refusal: `init` probes, the backups after it
/// do not; without a cache every backup probes again.
#[test]
fn a_store_that_refused_an_overwrite_is_not_probed_again_for_a_week() {
    let Some(endpoint) = endpoint() else { return };
    let (bucket, s) = versioned_bucket(&endpoint);
    let url = format!("s3:{endpoint}/{bucket}/repo");
    let env = Env::new();
    let cache = env.path("cache");
    let run = |args: &[&str]| {
        let o = env
            .cmd()
            .env("TRESOR_REPOSITORY", &url)
            .env("TRESOR_CACHE_DIR", &cache)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    };
    let probes = || {
        let (counts, _) = versions(&s, "repo/probe/");
        counts.len()
    };
    run(&["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"]);
    assert_eq!(probes(), 1);
    let records: Vec<_> = std::fs::read_dir(cache.join("probes")).unwrap().collect();
    assert_eq!(records.len(), 1);
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"probe once").unwrap();
    run(&["backup", "-q", src.to_str().unwrap()]);
    run(&["backup", "-q", src.to_str().unwrap()]);
    assert_eq!(probes(), 1, "backups probed again");
    run(&["--no-cache", "backup", "-q", src.to_str().unwrap()]);
    assert_eq!(probes(), 2, "without a cache a backup probes");
    // A record older than a week is probed again (and renewed).
    let record = records[0].as_ref().unwrap().path();
    std::fs::write(&record, "1000\n").unwrap();
    run(&["backup", "-q", src.to_str().unwrap()]);
    assert_eq!(probes(), 3);
    let secs: u64 = std::fs::read_to_string(&record)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(secs > 1_700_000_000, "{secs}");
    let _ = bucket;
}
