//! The protocol with raw HTTP/1.1 requests: statuses, headers, ranges.

use tresor_storage::{Storage, name_of};
use tresor_testkit::prelude::TestServer;

#[test]
fn raw_protocol() {
    let srv = TestServer::start("max_object_size = 1000");
    let body = b"object bytes".to_vec();
    let name = name_of(&body);
    let path = format!("/main/index/{name}");
    let (s, t) = srv.request("PUT", &path, &srv.append, &body);
    assert_eq!(s, 201, "{t}");
    let (s, t) = srv.request("PUT", &path, &srv.append, &body);
    assert_eq!(s, 200, "same bytes again: {t}");
    let (s, t) = srv.request("PUT", &path, &srv.append, b"other bytes");
    assert_eq!(s, 409, "{t}");
    let (s, t) = srv.request("HEAD", &path, &srv.append, b"");
    assert_eq!(s, 200, "{t}");
    assert!(
        t.to_ascii_lowercase().contains("content-length: 12\r\n"),
        "{t}"
    );
    let (s, t) = srv.request("GET", &path, &srv.append, b"");
    assert_eq!(s, 200);
    assert!(t.ends_with("\r\n\r\nobject bytes"), "{t}");
    let (s, t) = srv.request("GET", "/main/index/", &srv.append, b"");
    assert_eq!(s, 200);
    assert!(t.ends_with(&format!("[[\"{name}\",12]]")), "{t}");
    let ranged = |range: &str| {
        srv.raw(
            format!(
                "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nRange: {range}\r\nConnection: close\r\n\r\n",
                srv.read
            )
            .as_bytes(),
        )
    };
    let t = ranged("bytes=7-11");
    assert!(t.starts_with("HTTP/1.1 206"), "{t}");
    assert!(
        t.to_ascii_lowercase()
            .contains("content-range: bytes 7-11/12"),
        "{t}"
    );
    assert!(t.ends_with("\r\n\r\nbytes"), "{t}");
    assert!(ranged("bytes=7-").ends_with("\r\n\r\nbytes"));
    assert!(ranged("bytes=7-12").starts_with("HTTP/1.1 416"));
    assert!(ranged("bytes=12-").starts_with("HTTP/1.1 416"));
    assert!(ranged("bytes=-3").starts_with("HTTP/1.1 400"));
    let (s, t) = srv.request("POST", &path, &srv.admin, b"");
    assert_eq!(s, 405, "{t}");
    let big = vec![b'x'; 1001];
    let (s, t) = srv.request(
        "PUT",
        &format!("/main/data/{}", name_of(&big)),
        &srv.admin,
        &big,
    );
    assert_eq!(s, 413, "{t}");
    let (s, t) = srv.request("DELETE", &path, &srv.admin, b"");
    assert_eq!(s, 204, "{t}");
    let (s, _) = srv.request("DELETE", &path, &srv.admin, b"");
    assert_eq!(s, 404);
    let (s, t) = srv.request("GET", "/main/", &srv.read, b"");
    assert_eq!(s, 200);
    assert!(t.contains("\"role\":\"read\""), "{t}");
}

#[test]
fn slow_http2_preface_is_dropped() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let srv = TestServer::start("header_timeout_secs = 1");
    let mut s = srv.connect();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = Instant::now();
    s.write_all(b"PRI * HT").unwrap();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // Meanwhile and afterwards the server answers.
    let (status, _) = srv.request("GET", "/main/", &srv.read, b"");
    assert_eq!(status, 200);
}

/// `Tresor-Hot: 1` on a `PUT` (a tree pack for the metadata class) is taken from any role that
/// may write, the object stored as any other; another value is `400` and stores nothing.
#[test]
fn hot_hint_on_put() {
    let srv = TestServer::start("");
    let put = |body: &[u8], hot: &str| {
        let path = format!("/main/data/{}", name_of(body));
        let mut req = format!(
            "PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nTresor-Hot: {hot}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            srv.append,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        srv.raw(&req)
    };
    let t = put(b"tree pack", "1");
    assert!(t.starts_with("HTTP/1.1 201"), "{t}");
    let stored = srv
        .storage("main", &srv.admin)
        .read(tresor_storage::Kind::Pack, &name_of(b"tree pack"))
        .unwrap();
    assert_eq!(stored, b"tree pack");
    for bad in ["yes", "0", "11"] {
        let t = put(b"other pack", bad);
        assert!(t.starts_with("HTTP/1.1 400"), "{bad}: {t}");
        assert!(t.contains("Tresor-Hot must be 1"), "{t}");
    }
    let (s, _) = srv.request(
        "HEAD",
        &format!("/main/data/{}", name_of(b"other pack")),
        &srv.admin,
        b"",
    );
    assert_eq!(s, 404, "nothing stored");
}
