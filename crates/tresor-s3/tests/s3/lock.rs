//! Object Lock against a real S3 server (`TRESOR_TEST_S3_URL`; SeaweedFS in CI): every object
//! written carries its retention, the store refuses to delete it, `locked_until` reports it, and
//! `delete` refuses locked objects itself (on a versioned bucket S3 would only hide them).

use std::time::{Duration, SystemTime};
use tresor_s3::{LockMode, ObjectLock, S3Options, S3Storage};
use tresor_storage::{ErrorKind, Kind, Storage, name_of};
use tresor_testkit::require::{random_hex, s3_url};

/// The server's endpoint (`s3:http://host:port`), or `None` when S3 tests are not configured.
fn endpoint() -> Option<String> {
    let url = s3_url()?;
    let (scheme, rest) = url.split_once("://").unwrap();
    Some(format!("{scheme}://{}", rest.split('/').next().unwrap()))
}

/// A new bucket with Object Lock enabled (and so versioning); a storage under `p` in it.
fn lock_bucket(endpoint: &str, lock: Option<ObjectLock>) -> S3Storage {
    let url = format!("{endpoint}/tresor-lock-{}/p", random_hex(6));
    let mut o = S3Options::default();
    o.object_lock = lock;
    let s = S3Storage::open(&url, &o).unwrap();
    let r = s
        .bucket_request(
            "PUT",
            "",
            "",
            &[("x-amz-bucket-object-lock-enabled", "true")],
            b"",
        )
        .unwrap();
    // The name is fresh and random: "already owned by you" can only be our own create, retried
    // by the client after the first attempt succeeded (seen on a loaded CI machine).
    assert!(
        r.is_success() || (r.status == 409 && r.text().contains("BucketAlreadyOwnedByYou")),
        "create lock bucket: {} {}",
        r.status,
        r.text()
    );
    s
}

fn near(a: SystemTime, b: SystemTime, slack: Duration) -> bool {
    a.duration_since(b)
        .or_else(|_| b.duration_since(a))
        .unwrap()
        <= slack
}

#[test]
fn every_object_written_carries_its_retain_until_date() {
    let Some(ep) = endpoint() else { return };
    let lock = ObjectLock {
        mode: LockMode::Governance,
        days: 1,
    };
    let s = lock_bucket(&ep, Some(lock));
    let b = s.bucket_object_lock().unwrap();
    assert!(b.enabled, "{b:?}");
    assert_eq!(b.default_days, None, "no default retention: {b:?}");
    assert!(
        s.probe_object_lock().unwrap(),
        "the store applies per-object locks"
    );

    let want = SystemTime::now() + Duration::from_secs(86_400);
    for kind in Kind::ALL {
        let data = format!("locked {kind}").into_bytes();
        let name = name_of(&data);
        s.write(kind, &name, &data).unwrap();
        let head = s.head(kind, &name).unwrap();
        assert_eq!(
            head.lock_mode.as_deref(),
            Some("GOVERNANCE"),
            "{kind}: {head:?}"
        );
        let until = s.locked_until(kind, &name).unwrap().expect("locked");
        assert!(
            near(until, want, Duration::from_secs(120)),
            "{kind}: {head:?}"
        );
        // tresor refuses to delete it...
        let e = s.delete(kind, &name).unwrap_err();
        assert_eq!(e.kind, ErrorKind::PermissionDenied, "{e}");
        assert!(e.message.contains("Object Lock"), "{e}");
        // ...and so does the store, for the version itself.
        let version = head.version_id.expect("lock buckets are versioned");
        let r = s
            .bucket_request(
                "DELETE",
                &s.key(kind, &name),
                &format!("versionId={version}"),
                &[],
                b"",
            )
            .unwrap();
        assert_eq!(r.status, 403, "{kind}: the store refuses: {}", r.text());
        assert_eq!(s.read(kind, &name).unwrap(), data);
        // Rewriting the same bytes is still success, other bytes still refused.
        s.write(kind, &name, &data).unwrap();
        assert_eq!(
            s.write(kind, &name, b"other").unwrap_err().kind,
            ErrorKind::AlreadyExists
        );
    }

    // Without a per-object lock (and no bucket default) objects are not locked.
    s.set_object_lock(None);
    let data = b"not locked".to_vec();
    let name = name_of(&data);
    s.write(Kind::Pack, &name, &data).unwrap();
    assert_eq!(s.locked_until(Kind::Pack, &name).unwrap(), None);
    s.delete(Kind::Pack, &name).unwrap();
    assert_eq!(
        s.size(Kind::Pack, &name).unwrap_err().kind,
        ErrorKind::NotFound
    );
}

#[test]
fn compliance_mode_and_the_probe() {
    let Some(ep) = endpoint() else { return };
    let lock = ObjectLock {
        mode: LockMode::Compliance,
        days: 1,
    };
    let s = lock_bucket(&ep, Some(lock));
    assert!(s.probe_object_lock().unwrap());
    let data = b"compliance".to_vec();
    let name = name_of(&data);
    s.write(Kind::Snapshot, &name, &data).unwrap();
    let head = s.head(Kind::Snapshot, &name).unwrap();
    assert_eq!(head.lock_mode.as_deref(), Some("COMPLIANCE"), "{head:?}");
    // Not even with the governance bypass.
    let r = s
        .bucket_request(
            "DELETE",
            &s.key(Kind::Snapshot, &name),
            &format!("versionId={}", head.version_id.unwrap()),
            &[("x-amz-bypass-governance-retention", "true")],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
}

#[test]
fn a_bucket_without_object_lock_is_recognised() {
    let Some(ep) = endpoint() else { return };
    let url = std::env::var("TRESOR_TEST_S3_URL").unwrap();
    assert!(url.contains(&ep));
    let mut o = S3Options::default();
    o.max_retries = 0;
    o.object_lock = Some(ObjectLock {
        mode: LockMode::Governance,
        days: 1,
    });
    let s = S3Storage::open(&format!("{url}/nolock-{}", random_hex(6)), &o).unwrap();
    let b = s.bucket_object_lock().unwrap();
    assert!(!b.enabled, "{b:?}");
    // Writing with lock headers there: refused, or accepted without a lock. Never "locked".
    match s.probe_object_lock() {
        Ok(locked) => assert!(!locked, "a bucket without Object Lock cannot lock"),
        Err(e) => eprintln!("lock headers refused on a plain bucket: {e}"),
    }
}

#[test]
fn lock_mode_parsing_and_dates() {
    assert_eq!(LockMode::parse("Governance").unwrap(), LockMode::Governance);
    assert_eq!(LockMode::parse("COMPLIANCE").unwrap(), LockMode::Compliance);
    assert!(LockMode::parse("legal").is_err());
    let l = ObjectLock {
        mode: LockMode::Compliance,
        days: 30,
    };
    let until: jiff::Timestamp = l.retain_until_from_now().parse().unwrap();
    let want = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 30);
    assert!((until - want).abs() < jiff::SignedDuration::from_secs(5));
    assert!(l.retain_until_from_now().ends_with('Z'));
}
