//! The server's connection and upload limits, on loopback with small limits: deadlines for the
//! first request and for idle connections, connections per address, the budget of uploads in
//! flight, and spooling of large bodies to disk.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use tresor_storage::{Kind, Storage, name_of};
use tresor_testkit::prelude::{TestServer, status_of};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty HTTP/2 SETTINGS frame: length 0, type 4, no flags, stream 0.
const SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// Read until the server closes the connection; how long that took (panics after `max`).
fn wait_closed(s: &mut std::net::TcpStream, max: Duration) -> Duration {
    let start = Instant::now();
    s.set_read_timeout(Some(max)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return start.elapsed(),
            Err(e) => panic!("not closed after {:?}: {e}", start.elapsed()),
        }
    }
}

/// Wait (at most 2 s) until `f` holds: counters are updated just after a connection closes.
fn eventually(f: impl Fn() -> bool) -> bool {
    for _ in 0..100 {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Pseudo-random bytes (splitmix64), different for every seed.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

#[test]
fn preface_only_connections_do_not_starve_a_client() {
    let srv = TestServer::start("max_connections = 4\nheader_timeout_secs = 1");
    let mut silent: Vec<_> = (0..4)
        .map(|_| {
            let mut s = srv.connect();
            s.write_all(PREFACE).unwrap();
            s.write_all(SETTINGS).unwrap();
            s
        })
        .collect();
    // They hold every connection the server serves at once; the client waits in the queue.
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let (status, text) = srv.request("GET", "/main/", &srv.read, b"");
    assert_eq!(status, 200, "{text}");
    let waited = start.elapsed();
    assert!(waited < Duration::from_secs(6), "served after {waited:?}");
    for s in &mut silent {
        wait_closed(s, Duration::from_secs(5));
    }
    assert!(eventually(|| srv.server.stats().idle_closed == 4));
    assert!(eventually(|| srv
        .access_log()
        .matches("connection closed: no request within 1 s")
        .count()
        == 4));
}

#[test]
fn idle_http1_connection_is_closed_after_its_deadline() {
    let srv = TestServer::start("header_timeout_secs = 10\nidle_timeout_secs = 1");
    let mut s = srv.connect();
    s.write_all(
        format!(
            "GET /main/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
            srv.read
        )
        .as_bytes(),
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    assert_eq!(status_of(&String::from_utf8_lossy(&buf[..n])), 200);
    let idle = wait_closed(&mut s, Duration::from_secs(8));
    assert!(
        idle >= Duration::from_millis(800) && idle < Duration::from_secs(4),
        "{idle:?}"
    );
    assert!(eventually(|| srv.server.stats().idle_closed == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connection_is_closed_after_its_deadline() {
    let srv = TestServer::start("header_timeout_secs = 10\nidle_timeout_secs = 1");
    let tcp = tokio::net::TcpStream::connect(srv.handle.addr())
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    let driver = tokio::spawn(conn);
    let request = || {
        http::Request::get("http://x/main/")
            .header(http::header::AUTHORIZATION, format!("Bearer {}", srv.read))
            .body(Empty::<Bytes>::new())
            .unwrap()
    };
    // Requests keep the connection open past the deadline as long as they come.
    for _ in 0..3 {
        let resp = send.send_request(request()).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("\"role\":\"read\""));
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let idle_since = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(10), driver).await;
    let idle = idle_since.elapsed();
    assert!(ended.is_ok(), "the server never closed the idle connection");
    assert!(
        idle >= Duration::from_millis(300) && idle < Duration::from_secs(4),
        "{idle:?}"
    );
    assert!(send.send_request(request()).await.is_err());
    let closed =
        tokio::task::spawn_blocking(move || eventually(|| srv.server.stats().idle_closed == 1));
    assert!(closed.await.unwrap());
}

#[test]
fn per_address_cap_refuses_the_extra_connection() {
    let srv = TestServer::start("max_connections_per_address = 2\nheader_timeout_secs = 10");
    let first = srv.connect();
    let _second = srv.connect();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = srv.connect();
    let closed = wait_closed(&mut third, Duration::from_secs(5));
    assert!(closed < Duration::from_secs(2), "{closed:?}");
    // Another address is served meanwhile.
    let (status, text) = srv.request_from([127, 0, 0, 2], "/main/", &srv.read);
    assert_eq!(status, 200, "{text}");
    // Once one of the two closes, the address may connect again.
    drop(first);
    let mut served = false;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        if srv.request("GET", "/main/", &srv.read, b"").0 == 200 {
            served = true;
            break;
        }
    }
    assert!(served);
    assert!(srv.server.stats().refused_connections >= 1);
    let log = srv.access_log();
    assert!(
        log.contains("peer=127.0.0.1:")
            && log.contains("connection refused: 2 connections from this address"),
        "{log}"
    );
}

#[test]
fn uploads_over_the_in_flight_cap_wait_and_do_not_grow_memory() {
    const MIB: usize = 1 << 20;
    let srv = TestServer::start(
        "max_object_size = 4194304\nmax_in_flight_bytes = 8388608\nspool_threshold = 65536",
    );
    // Two slow uploads take the whole budget: 4 MiB declared each, 1 MiB sent so far.
    let slow: Vec<Vec<u8>> = (100..102).map(|i| bytes(4 * MIB, i)).collect();
    let mut held: Vec<_> = slow
        .iter()
        .map(|o| {
            let mut c = srv.connect();
            c.write_all(
                format!(
                    "PUT /main/data/{} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    name_of(o),
                    srv.append,
                    o.len()
                )
                .as_bytes(),
            )
            .unwrap();
            c.write_all(&o[..MIB]).unwrap();
            c
        })
        .collect();
    assert!(eventually(
        || srv.server.stats().in_flight_bytes == 8 * MIB as u64
    ));
    let host = srv.storage("main", &srv.append);
    let objects: Vec<Vec<u8>> = (0..8).map(|i| bytes(4 * MIB, i)).collect();
    std::thread::scope(|sc| {
        for o in &objects {
            let host = &host;
            sc.spawn(move || host.write(Kind::Pack, &name_of(o), o).unwrap());
        }
        // Meanwhile the uploads are refused (503) and wait; then the slow ones finish.
        std::thread::sleep(Duration::from_millis(1500));
        assert!(srv.server.stats().busy_refusals > 0);
        for (c, o) in held.iter_mut().zip(&slow) {
            c.write_all(&o[MIB..]).unwrap();
            let mut out = Vec::new();
            let _ = c.read_to_end(&mut out);
            assert_eq!(status_of(&String::from_utf8_lossy(&out)), 201);
        }
    });
    let st = srv.server.stats();
    assert!(st.peak_in_flight_bytes <= 8 * MIB as u64, "{st:?}");
    // At most two uploads at once, each holding at most one 1 MiB batch and one frame.
    assert!(st.peak_buffered_bytes <= 4 * MIB as u64, "{st:?}");
    assert_eq!(st.spooled_uploads, 10, "{st:?}");
    assert_eq!((st.in_flight_bytes, st.buffered_bytes), (0, 0), "{st:?}");
    let admin = srv.storage("main", &srv.admin);
    for o in objects.iter().chain(&slow) {
        assert!(admin.read(Kind::Pack, &name_of(o)).unwrap() == *o);
    }
    let log = srv.access_log();
    assert!(log.contains("status=503"), "{log}");
}

#[test]
fn spooled_uploads_are_stored_whole_or_not_at_all() {
    let srv = TestServer::start("spool_threshold = 1000\nbody_timeout_secs = 1");
    let body = bytes(200_000, 7);
    let name = name_of(&body);
    // Under another name: refused, nothing stored.
    let wrong = name_of(b"something else");
    let (s, t) = srv.request("PUT", &format!("/main/data/{wrong}"), &srv.append, &body);
    assert_eq!(s, 400, "{t}");
    // Cut short: the connection closes mid-body.
    let mut c = srv.connect();
    c.write_all(
        format!(
            "PUT /main/data/{name} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
            srv.append,
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    c.write_all(&body[..100_000]).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    // Paused longer than the body timeout: 408.
    let mut c = srv.connect();
    c.write_all(
        format!(
            "PUT /main/data/{name} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
            srv.append,
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    c.write_all(&body[..50_000]).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    assert_eq!(status_of(&String::from_utf8_lossy(&out)), 408);
    // Without a Content-Length (chunked): 411.
    let t = srv.raw(
        format!(
            "PUT /main/data/{name} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            srv.append
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&t), 411, "{t}");
    let admin = srv.storage("main", &srv.admin);
    assert_eq!(admin.list(Kind::Pack).unwrap(), vec![]);
    // Then whole: stored byte for byte, and nothing else is left in the repository.
    let (s, t) = srv.request("PUT", &format!("/main/data/{name}"), &srv.append, &body);
    assert_eq!(s, 201, "{t}");
    assert!(admin.read(Kind::Pack, &name).unwrap() == body);
    assert_eq!(
        admin.list(Kind::Pack).unwrap(),
        vec![(name.clone(), body.len() as u64)]
    );
    let mut files = Vec::new();
    let mut dirs = vec![srv.repo_path("main")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                files.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    assert_eq!(files, vec![name]);
    assert_eq!(srv.server.stats().spooled_uploads, 2, "the 400 and the 201");
}

#[test]
fn spool_dir_from_the_config_is_used() {
    let missing = std::env::temp_dir().join(format!("tresor-no-such-spool-{}", std::process::id()));
    let srv = TestServer::start(&format!(
        "spool_threshold = 10\nspool_dir = \"{}\"",
        missing.display()
    ));
    let small = b"small body".to_vec();
    let big = bytes(5000, 3);
    let (s, t) = srv.request(
        "PUT",
        &format!("/main/index/{}", name_of(&small)),
        &srv.append,
        &small,
    );
    assert_eq!(s, 201, "at most the threshold: in memory: {t}");
    let (s, t) = srv.request(
        "PUT",
        &format!("/main/index/{}", name_of(&big)),
        &srv.append,
        &big,
    );
    assert_eq!(s, 503, "{t}");
    assert!(t.to_ascii_lowercase().contains("retry-after: 1\r\n"), "{t}");
    let log = srv.access_log();
    assert!(
        log.contains("spool file") && log.contains("tresor-no-such-spool"),
        "{log}"
    );
}
