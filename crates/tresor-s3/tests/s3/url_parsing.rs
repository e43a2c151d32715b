//! Location parsing: no server needed (opening does no network I/O).

use tresor_s3::{S3Location, S3Options, S3Storage, is_s3_url, parse_s3_url};
use tresor_storage::{ErrorKind, Kind, Storage};

fn parse(url: &str) -> S3Location {
    parse_s3_url(url, &S3Options::default()).unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn refused(url: &str, opts: &S3Options) -> String {
    let err = parse_s3_url(url, opts).expect_err(url);
    assert_eq!(err.kind, ErrorKind::Other, "{url}");
    // Opening refuses it the same way.
    let err2 = S3Storage::open(url, opts).expect_err(url);
    assert_eq!(err2.kind, ErrorKind::Other, "{url}");
    err.to_string()
}

#[test]
fn is_s3_url_recognises_the_scheme() {
    assert!(is_s3_url("s3:https://s3.example.com/bucket"));
    assert!(is_s3_url("s3:http://127.0.0.1:8333/bucket"));
    assert!(is_s3_url("s3://bucket/prefix"));
    assert!(!is_s3_url("/srv/backup"));
    assert!(!is_s3_url("sftp:host:/x"));
    assert!(!is_s3_url("https://s3.example.com/bucket"));
}

#[test]
fn custom_endpoints() {
    assert_eq!(
        parse("s3:https://s3.example.com/bucket"),
        S3Location {
            endpoint: Some("https://s3.example.com".into()),
            bucket: "bucket".into(),
            prefix: String::new(),
        }
    );
    assert_eq!(
        parse("s3:https://s3.example.com:9000/my-bucket/some/prefix/"),
        S3Location {
            endpoint: Some("https://s3.example.com:9000".into()),
            bucket: "my-bucket".into(),
            prefix: "some/prefix".into(),
        }
    );
    assert_eq!(
        parse("s3:http://127.0.0.1:8333/tresor-test/a//b"),
        S3Location {
            endpoint: Some("http://127.0.0.1:8333".into()),
            bucket: "tresor-test".into(),
            prefix: "a/b".into(),
        }
    );
    assert_eq!(
        parse("s3:http://localhost:9000/b1").endpoint.as_deref(),
        Some("http://localhost:9000")
    );
    assert_eq!(
        parse("s3:http://[::1]:9000/b1/p").endpoint.as_deref(),
        Some("http://[::1]:9000")
    );
    assert_eq!(
        parse("s3:http://127.1.2.3/b1").endpoint.as_deref(),
        Some("http://127.1.2.3")
    );
}

#[test]
fn aws_urls() {
    assert_eq!(
        parse("s3://bucket"),
        S3Location {
            endpoint: None,
            bucket: "bucket".into(),
            prefix: String::new(),
        }
    );
    assert_eq!(
        parse("s3://bucket/host-1/repo"),
        S3Location {
            endpoint: None,
            bucket: "bucket".into(),
            prefix: "host-1/repo".into(),
        }
    );
}

#[test]
fn plain_http_only_to_loopback() {
    let opts = S3Options::default();
    for url in [
        "s3:http://s3.example.com/bucket",
        "s3:http://10.0.0.5:9000/bucket",
        "s3:http://[2001:db8::1]:9000/bucket",
        "s3:http://128.0.0.1/bucket",
    ] {
        let msg = refused(url, &opts);
        assert!(msg.contains("plain http"), "{url}: {msg}");
        assert!(msg.contains("insecure_http"), "{url}: {msg}");
    }
    let mut insecure = S3Options::default();
    insecure.insecure_http = true;
    let loc = parse_s3_url("s3:http://s3.example.com/bucket", &insecure).unwrap();
    assert_eq!(loc.endpoint.as_deref(), Some("http://s3.example.com"));
    S3Storage::open("s3:http://s3.example.com/bucket", &insecure).unwrap();
}

#[test]
fn credentials_in_the_url_are_refused_and_not_echoed() {
    let opts = S3Options::default();
    for url in [
        "s3:https://AKIAEXAMPLE:s3cr3t@s3.example.com/bucket",
        "s3:http://key:s3cr3t@127.0.0.1:8333/bucket",
        "s3://AKIAEXAMPLE:s3cr3t@bucket/prefix",
    ] {
        let msg = refused(url, &opts);
        assert!(msg.contains("credentials"), "{url}: {msg}");
        assert!(!msg.contains("s3cr3t"), "secret leaked into {msg}");
    }
}

#[test]
fn malformed_urls_are_refused() {
    let opts = S3Options::default();
    for url in [
        "s3:",
        "s3:ftp://host/bucket",
        "s3:https://",
        "s3:https://s3.example.com",
        "s3:https://s3.example.com/",
        "s3:https://:9000/bucket",
        "s3:https://s3.example.com:notaport/bucket",
        "s3:https://s3.example.com:0/bucket",
        "s3:https://[::1/bucket",
        "s3:https://s3.example.com/bucket?x=1",
        "s3:https://s3.example.com/bucket#frag",
        "s3:https://s3.example.com/bucket/../etc",
        "s3:https://s3.example.com/bucket/a/./b",
        "s3:https://s3.example.com/bucket/with%20space",
        "s3:https://s3.example.com/bucket/with space",
        "s3:https://s3.example.com/bu$ket",
        "s3://",
        "s3:///prefix",
        "s3:https://s3.example.com//bucket",
    ] {
        refused(url, &opts);
    }
}

#[test]
fn open_defaults_and_layout() {
    let mut opts = S3Options::default();
    opts.region = Some("eu-central-2".into());
    let s = S3Storage::open("s3:https://s3.example.com/bucket/repo/one", &opts).unwrap();
    assert_eq!(s.region(), "eu-central-2");
    assert_eq!(s.location(), "s3:https://s3.example.com/bucket/repo/one");
    let name = "ab".to_string() + &"0".repeat(62);
    assert_eq!(s.key(Kind::Pack, &name), format!("repo/one/data/ab/{name}"));
    assert_eq!(s.key(Kind::Index, &name), format!("repo/one/index/{name}"));
    assert_eq!(s.key(Kind::Key, &name), format!("repo/one/keys/{name}"));
    assert_eq!(
        s.key(Kind::Snapshot, &name),
        format!("repo/one/snapshots/{name}")
    );
    assert_eq!(
        s.key(Kind::Config, &name),
        format!("repo/one/config/{name}")
    );

    let root = S3Storage::open("s3:https://s3.example.com/bucket", &opts).unwrap();
    assert_eq!(root.key(Kind::Index, &name), format!("index/{name}"));

    let aws = S3Storage::open("s3://bucket/p", &opts).unwrap();
    assert_eq!(aws.location(), "s3://bucket/p");
    assert_eq!(aws.region(), "eu-central-2");

    // Without an explicit region, a custom endpoint falls back to the environment, then
    // us-east-1 (the AWS config file is not consulted here unless the tester has one).
    let s = S3Storage::open("s3:https://s3.example.com/bucket", &S3Options::default()).unwrap();
    let env_region = std::env::var("AWS_REGION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            std::env::var("AWS_DEFAULT_REGION")
                .ok()
                .filter(|r| !r.is_empty())
        });
    if let Some(r) = env_region {
        assert_eq!(s.region(), r);
    } else if std::env::var_os("AWS_CONFIG_FILE").is_none()
        && !std::path::Path::new(&std::env::var("HOME").unwrap_or_default())
            .join(".aws/config")
            .exists()
    {
        assert_eq!(s.region(), "us-east-1");
    }
}

#[test]
fn debug_shows_the_location_and_storage_is_send_sync() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    let mut opts = S3Options::default();
    opts.region = Some("us-east-1".into());
    let s = S3Storage::open("s3:https://s3.example.com/bucket/p", &opts).unwrap();
    assert_send_sync(&s);
    let dbg = format!("{s:?}");
    assert!(dbg.contains("s3:https://s3.example.com/bucket/p"), "{dbg}");
}
