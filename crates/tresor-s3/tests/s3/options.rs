//! Storage classes per object kind and server-side encryption, against a real S3 server
//! (`TRESOR_TEST_S3_URL`, see `store`; SeaweedFS in CI, which echoes both in `HEAD` and in
//! listings).

use tresor_s3::{S3Options, S3Storage, Sse};
use tresor_storage::{ErrorKind, Kind, Storage, name_of};
use tresor_testkit::require::{random_hex, s3_url as server_url};

fn open(url: &str, opts: &S3Options) -> S3Storage {
    let url = format!("{}/o-{}", url.trim_end_matches('/'), random_hex(8));
    let s = S3Storage::open(&url, opts).expect("open");
    s.create().expect("create");
    s
}

fn cleanup(s: &S3Storage) {
    for kind in Kind::ALL {
        for (name, _) in s.list(kind).unwrap_or_default() {
            let _ = s.delete(kind, &name);
        }
    }
}

/// `(key, storage class)` of every object under `prefix`, from ListObjectsV2.
fn listed_classes(s: &S3Storage, prefix: &str) -> Vec<(String, String)> {
    let r = s
        .bucket_request(
            "GET",
            "",
            &format!("list-type=2&prefix={}", prefix.replace('/', "%2F")),
            &[],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    text.split("<Contents>")
        .skip(1)
        .map(|c| {
            let tag = |t: &str| {
                c.split(&format!("<{t}>"))
                    .nth(1)
                    .and_then(|x| x.split(&format!("</{t}>")).next())
                    .unwrap_or_default()
                    .to_string()
            };
            (tag("Key"), tag("StorageClass"))
        })
        .collect()
}

#[test]
fn packs_get_the_data_storage_class_and_the_rest_the_metadata_class() {
    let Some(url) = server_url() else { return };
    let mut o = S3Options::default();
    o.storage_class_data = Some("STANDARD_IA".into());
    o.storage_class_metadata = Some("REDUCED_REDUNDANCY".into());
    let s = open(&url, &o);
    let mut written = Vec::new();
    for kind in Kind::ALL {
        let data = format!("an object of kind {kind}").into_bytes();
        let name = name_of(&data);
        s.write(kind, &name, &data).unwrap();
        written.push((kind, name));
    }
    for (kind, name) in &written {
        let want = if *kind == Kind::Pack {
            "STANDARD_IA"
        } else {
            "REDUCED_REDUNDANCY"
        };
        let head = s.head(*kind, name).unwrap();
        assert_eq!(
            head.storage_class.as_deref(),
            Some(want),
            "{kind}: {head:?}"
        );
    }
    let prefix = s.s3_location().prefix.clone() + "/";
    let listed = listed_classes(&s, &prefix);
    assert_eq!(listed.len(), written.len(), "{listed:?}");
    for (key, class) in &listed {
        let want = if key.contains("/data/") {
            "STANDARD_IA"
        } else {
            "REDUCED_REDUNDANCY"
        };
        assert_eq!(class, want, "{key}");
    }
    cleanup(&s);
}

#[test]
fn no_storage_class_means_the_bucket_default() {
    let Some(url) = server_url() else { return };
    let s = open(&url, &S3Options::default());
    let data = b"default class".to_vec();
    let name = name_of(&data);
    s.write(Kind::Pack, &name, &data).unwrap();
    let head = s.head(Kind::Pack, &name).unwrap();
    // AWS leaves the header out for STANDARD; SeaweedFS sends it.
    assert!(
        matches!(head.storage_class.as_deref(), None | Some("STANDARD")),
        "{head:?}"
    );
    cleanup(&s);
}

#[test]
fn bad_storage_classes_are_refused_at_open() {
    for bad in ["standard_ia", "", "STANDARD IA"] {
        let mut o = S3Options::default();
        o.storage_class_data = Some(bad.into());
        let e = S3Storage::open("s3:http://127.0.0.1:1/b/p", &o).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Other, "{bad}: {e}");
    }
    // The cold classes are for data packs only: metadata must stay readable.
    for cold in ["GLACIER", "DEEP_ARCHIVE"] {
        let mut o = S3Options::default();
        o.storage_class_data = Some(cold.into());
        S3Storage::open("s3:http://127.0.0.1:1/b/p", &o).unwrap();
        o.storage_class_metadata = Some(cold.into());
        let e = S3Storage::open("s3:http://127.0.0.1:1/b/p", &o).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Other, "{cold}: {e}");
        assert!(e.message.contains("data packs only"), "{e}");
    }
}

#[test]
fn sse_parsing() {
    assert_eq!(Sse::parse("AES256", None).unwrap(), Sse::Aes256);
    assert_eq!(Sse::parse("aes256", None).unwrap(), Sse::Aes256);
    assert_eq!(Sse::parse("aws:kms", None).unwrap(), Sse::Kms(None));
    assert_eq!(
        Sse::parse("aws:kms", Some("k-1")).unwrap(),
        Sse::Kms(Some("k-1".into()))
    );
    assert!(Sse::parse("AES256", Some("k-1")).is_err());
    assert!(Sse::parse("rot13", None).is_err());
}

#[test]
fn sse_s3_is_asked_for_on_every_write() {
    let Some(url) = server_url() else { return };
    let mut o = S3Options::default();
    o.sse = Some(Sse::Aes256);
    let s = open(&url, &o);
    for kind in [Kind::Pack, Kind::Index, Kind::Snapshot] {
        let data: Vec<u8> = format!("encrypted at rest too: {kind}")
            .into_bytes()
            .repeat(1000);
        let name = name_of(&data);
        s.write(kind, &name, &data).unwrap();
        assert_eq!(s.read(kind, &name).unwrap(), data);
        assert_eq!(s.read_range(kind, &name, 5, 100).unwrap(), &data[5..105]);
        let head = s.head(kind, &name).unwrap();
        assert_eq!(
            head.server_side_encryption.as_deref(),
            Some("AES256"),
            "{kind}: {head:?}"
        );
        // Idempotent and conflicting rewrites behave as without encryption.
        s.write(kind, &name, &data).unwrap();
        assert_eq!(
            s.write(kind, &name, b"other").unwrap_err().kind,
            ErrorKind::AlreadyExists
        );
    }
    cleanup(&s);
}

/// SSE-KMS needs a KMS the store can reach. SeaweedFS without a configured KMS refuses the write
/// (it does not store the object unencrypted); a store with KMS reports `aws:kms`.
#[test]
fn sse_kms_is_refused_or_honoured_never_ignored() {
    let Some(url) = server_url() else { return };
    let mut o = S3Options::default();
    o.sse = Some(Sse::Kms(Some("tresor-test-key".into())));
    o.max_retries = 1;
    let s = open(&url, &o);
    let data = b"kms".to_vec();
    let name = name_of(&data);
    match s.write(Kind::Pack, &name, &data) {
        Ok(()) => {
            let head = s.head(Kind::Pack, &name).unwrap();
            assert_eq!(
                head.server_side_encryption.as_deref(),
                Some("aws:kms"),
                "{head:?}"
            );
        }
        Err(e) => {
            eprintln!("SSE-KMS refused by this server: {e}");
            let plain = S3Storage::open(&s.location(), &S3Options::default()).unwrap();
            assert_eq!(
                plain.size(Kind::Pack, &name).unwrap_err().kind,
                ErrorKind::NotFound,
                "a refused SSE-KMS write must leave nothing behind"
            );
        }
    }
    cleanup(&s);
}
