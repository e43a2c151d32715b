//! A wrong secret key gives `PermissionDenied` (the server answers 403). A test binary of its own,
//! because credentials come only from the process environment, which it changes.

use tresor_s3::{S3Options, S3Storage};
use tresor_storage::{ErrorKind, Kind, Storage, name_of};

#[test]
fn wrong_secret_is_permission_denied() {
    let url = match std::env::var("TRESOR_TEST_S3_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            let ci = std::env::var("CI").unwrap_or_default();
            assert!(
                ci.is_empty() || ci == "false" || ci == "0",
                "TRESOR_TEST_S3_URL is not set, but CI={ci}: CI must run the S3 tests \
                 (eval \"$(scripts/s3-server.sh start)\")"
            );
            eprintln!("notice: TRESOR_TEST_S3_URL is not set, skipping this S3 test");
            return;
        }
    };
    // SAFETY: this is the only test in this binary, so no other thread reads the environment.
    unsafe {
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "definitely-not-the-secret");
        std::env::remove_var("AWS_SESSION_TOKEN");
    }
    let s = S3Storage::open(
        &format!("{}/wrong-creds", url.trim_end_matches('/')),
        &S3Options::default(),
    )
    .expect("open");
    let data = b"never stored".to_vec();
    let name = name_of(&data);
    let err = s
        .write(Kind::Snapshot, &name, &data)
        .expect_err("write refused");
    assert_eq!(err.kind, ErrorKind::PermissionDenied, "{err}");
    let err = s.read(Kind::Snapshot, &name).expect_err("read refused");
    assert_eq!(err.kind, ErrorKind::PermissionDenied, "{err}");
    let err = s.list(Kind::Snapshot).expect_err("list refused");
    assert_eq!(err.kind, ErrorKind::PermissionDenied, "{err}");
}
