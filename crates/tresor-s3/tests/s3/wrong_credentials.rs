//! A wrong secret key gives `PermissionDenied` (the server answers 403). Credentials come only
//! from the process environment, which the test changes: its body runs alone in a child process
//! of the test binary (`tresor_testkit::child`), so the other tests never see the change.

use tresor_s3::{S3Options, S3Storage};
use tresor_storage::{ErrorKind, Kind, Storage, name_of};
use tresor_testkit::child;
use tresor_testkit::require::s3_url;

#[test]
fn wrong_secret_is_permission_denied() {
    let Some(url) = s3_url() else { return };
    if !child::is_child() {
        child::run_alone(
            "wrong_credentials::wrong_secret_is_permission_denied",
            &[
                ("AWS_SECRET_ACCESS_KEY", Some("definitely-not-the-secret")),
                ("AWS_SESSION_TOKEN", None),
            ],
        );
        return;
    }
    assert_eq!(
        std::env::var("AWS_SECRET_ACCESS_KEY").as_deref(),
        Ok("definitely-not-the-secret"),
        "the child runs with the wrong secret"
    );
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
