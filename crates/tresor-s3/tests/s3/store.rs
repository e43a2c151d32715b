//! Tests against a real S3 server, named by `TRESOR_TEST_S3_URL` (credentials from the standard
//! AWS environment variables). Start one with
//!
//! ```text
//! eval "$(scripts/s3-server.sh start)"   # SeaweedFS on 127.0.0.1:8333
//! cargo test -p tresor-s3
//! scripts/s3-server.sh stop
//! ```
//!
//! Without `TRESOR_TEST_S3_URL` these tests print a notice and pass, except under CI (`CI` set
//! and not `false`/`0`), where they fail: CI must always run them (`tresor_testkit::require`).

use std::sync::{Arc, Barrier};
use std::time::Duration;
use tresor_s3::{S3Options, S3Storage};
use tresor_storage::{ErrorKind, Kind, Storage, conformance, name_of};
use tresor_testkit::require::{random_hex, s3_url as server_url};

/// A storage under a fresh random prefix of the test bucket, created.
fn fresh_storage(url: &str) -> S3Storage {
    let url = format!("{}/t-{}", url.trim_end_matches('/'), random_hex(8));
    let s = S3Storage::open(&url, &S3Options::default()).expect("open");
    s.create().expect("create (bucket reachable)");
    s
}

/// Delete everything the test wrote (best effort).
fn cleanup(s: &S3Storage) {
    for kind in Kind::ALL {
        if let Ok(objects) = s.list(kind) {
            for (name, _) in objects {
                let _ = s.delete(kind, &name);
            }
        }
    }
}

#[test]
fn conformance_suite() {
    let Some(url) = server_url() else { return };
    let s = fresh_storage(&url);
    conformance::run_all(&s);
    cleanup(&s);
}

#[test]
fn probe_conditional_writes_is_true_on_this_server() {
    let Some(url) = server_url() else { return };
    let s = fresh_storage(&url);
    assert!(
        s.probe_conditional_writes().expect("probe"),
        "server must refuse a second If-None-Match: * PUT"
    );
    // Twice: the probe object is random and removed afterwards.
    assert!(s.probe_conditional_writes().expect("probe again"));
    for kind in Kind::ALL {
        assert!(
            s.list(kind).unwrap().is_empty(),
            "probe left no {kind} object"
        );
    }
}

#[test]
fn overwrite_with_other_bytes_is_refused_and_leaves_the_original() {
    let Some(url) = server_url() else { return };
    let s = fresh_storage(&url);
    for kind in Kind::ALL {
        let original = format!("original {kind}").into_bytes();
        let name = name_of(&original);
        s.write(kind, &name, &original).expect("write");
        let err = s
            .write(kind, &name, b"something else")
            .expect_err("overwrite refused");
        assert_eq!(err.kind, ErrorKind::AlreadyExists, "{kind}: {err}");
        // Same length, different bytes.
        let mut same_len = original.clone();
        same_len[0] ^= 1;
        let err = s.write(kind, &name, &same_len).expect_err("refused");
        assert_eq!(err.kind, ErrorKind::AlreadyExists, "{kind}: {err}");
        assert_eq!(s.read(kind, &name).unwrap(), original, "{kind} intact");
        // Identical bytes again: success.
        s.write(kind, &name, &original).expect("idempotent write");
    }
    cleanup(&s);
}

#[test]
fn concurrent_creators_of_one_name_exactly_one_wins() {
    let Some(url) = server_url() else { return };
    let s = Arc::new(fresh_storage(&url));
    const WRITERS: usize = 16;
    for round in 0..2 {
        let name = random_hex(32);
        let barrier = Arc::new(Barrier::new(WRITERS));
        let handles: Vec<_> = (0..WRITERS)
            .map(|i| {
                let (s, name, barrier) = (Arc::clone(&s), name.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    let data = format!("writer {i} of round {round} {}", "x".repeat(i * 100));
                    barrier.wait();
                    (data.clone(), s.write(Kind::Pack, &name, data.as_bytes()))
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<&String> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(d, _)| d)
            .collect();
        for (_, r) in &results {
            if let Err(e) = r {
                assert_eq!(e.kind, ErrorKind::AlreadyExists, "loser's error: {e}");
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one writer wins");
        assert_eq!(
            s.read(Kind::Pack, &name).unwrap(),
            winners[0].as_bytes(),
            "round {round}: the object holds the winner's bytes"
        );
    }
    cleanup(&s);
}

#[test]
fn prefixes_are_isolated_and_packs_are_sharded() {
    let Some(url) = server_url() else { return };
    let a = fresh_storage(&url);
    let b = fresh_storage(&url);
    let data = b"only in a".to_vec();
    let name = name_of(&data);
    a.write(Kind::Pack, &name, &data).unwrap();
    assert_eq!(a.list(Kind::Pack).unwrap(), vec![(name.clone(), 9)]);
    assert!(b.list(Kind::Pack).unwrap().is_empty());
    assert_eq!(
        b.read(Kind::Pack, &name).unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        b.size(Kind::Pack, &name).unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(a.size(Kind::Pack, &name).unwrap(), 9);
    assert!(
        a.key(Kind::Pack, &name)
            .ends_with(&format!("/data/{}/{name}", &name[..2]))
    );
    // Range reads at every boundary.
    assert_eq!(a.read_range(Kind::Pack, &name, 9, 0).unwrap(), b"");
    assert_eq!(
        a.read_range(Kind::Pack, &name, 10, 0).unwrap_err().kind,
        ErrorKind::ShortRead
    );
    assert_eq!(
        a.read_range(Kind::Pack, &name, 9, 1).unwrap_err().kind,
        ErrorKind::ShortRead
    );
    assert_eq!(
        a.read_range(Kind::Pack, &name, 100, 5).unwrap_err().kind,
        ErrorKind::ShortRead
    );
    assert_eq!(a.read_range(Kind::Pack, &name, 8, 1).unwrap(), b"a");
    assert_eq!(
        a.read_range(Kind::Pack, &name, 5, 10).unwrap_err().kind,
        ErrorKind::ShortRead
    );
    cleanup(&a);
}

#[test]
fn large_object_round_trip() {
    let Some(url) = server_url() else { return };
    let s = fresh_storage(&url);
    // Above S3's 5 MiB multipart threshold: still one conditional PUT.
    let data: Vec<u8> = (0..12 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let name = name_of(&data);
    s.write(Kind::Pack, &name, &data).expect("write 12 MiB");
    assert_eq!(s.size(Kind::Pack, &name).unwrap(), data.len() as u64);
    let (off, len) = (7 * 1024 * 1024 + 13, 300_000u64);
    assert_eq!(
        s.read_range(Kind::Pack, &name, off, len).unwrap(),
        &data[off as usize..(off + len) as usize]
    );
    assert!(s.read(Kind::Pack, &name).unwrap() == data, "whole read");
    s.write(Kind::Pack, &name, &data).expect("same bytes again");
    let mut other = data.clone();
    other[data.len() - 1] ^= 0xff;
    assert_eq!(
        s.write(Kind::Pack, &name, &other).unwrap_err().kind,
        ErrorKind::AlreadyExists
    );
    cleanup(&s);
}

#[test]
fn usable_from_inside_another_tokio_runtime() {
    let Some(url) = server_url() else { return };
    let s = fresh_storage(&url);
    let data = b"called from async code".to_vec();
    let name = name_of(&data);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        s.write(Kind::Snapshot, &name, &data).unwrap();
        assert_eq!(s.read(Kind::Snapshot, &name).unwrap(), data);
    });
    cleanup(&s);
    // Dropping inside a runtime must not panic either.
    rt.block_on(async move { drop(s) });
}

#[test]
fn unreachable_server_is_transient() {
    // Gated like the others so that credentials come from the test environment (no credential
    // lookup beyond it); the request itself goes to 127.0.0.1:1, where nothing listens.
    if server_url().is_none() {
        return;
    }
    for retries in [0, 1] {
        let mut opts = S3Options::default();
        opts.region = Some("us-east-1".into());
        opts.max_retries = retries;
        opts.timeout = Duration::from_secs(5);
        opts.io_timeout = Duration::from_secs(5);
        let s = S3Storage::open("s3:http://127.0.0.1:1/bucket/p", &opts).unwrap();
        let name = name_of(b"x");
        let err = s.read(Kind::Index, &name).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Transient, "retries {retries}: {err}");
        let err = s.read_range(Kind::Index, &name, 0, 1).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Transient, "retries {retries}: {err}");
        let err = s.write(Kind::Index, &name, b"x").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Transient, "retries {retries}: {err}");
        let err = s.list(Kind::Index).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Transient, "retries {retries}: {err}");
        let err = s.delete(Kind::Index, &name).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Transient, "retries {retries}: {err}");
    }
}

/// A stamped listing gives each object of the kind with its `LastModified` and the server's
/// `Date`, all by the server's clock (here on the same machine: within a few seconds of ours,
/// to the second); other kinds and sharded packs are listed apart.
#[test]
fn stamped_listing_gives_last_modified_and_the_server_date() {
    use std::time::SystemTime;
    let Some(url) = server_url() else { return };
    let s = fresh_storage(&url);
    let before = SystemTime::now() - Duration::from_secs(2);
    let (a, b) = (name_of(b"marker a"), name_of(b"marker b"));
    s.write(Kind::Marker, &a, b"marker a").unwrap();
    s.write(Kind::Marker, &b, b"marker b").unwrap();
    s.write(Kind::Pack, &name_of(b"pack"), b"pack").unwrap();
    let stamped = s.list_stamped(Kind::Marker).unwrap().expect("S3 stamps");
    let after = SystemTime::now() + Duration::from_secs(2);
    assert!(stamped.now >= before && stamped.now <= after, "{stamped:?}");
    let mut names: Vec<_> = stamped.objects.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(names, want);
    for (name, at) in &stamped.objects {
        assert!(*at >= before && *at <= after, "{name}: {at:?}");
    }
    let packs = s.list_stamped(Kind::Pack).unwrap().expect("S3 stamps");
    assert_eq!(packs.objects.len(), 1);
    assert_eq!(packs.objects[0].0, name_of(b"pack"));
    assert!(packs.now >= before && packs.now <= after, "{packs:?}");
    cleanup(&s);
}
