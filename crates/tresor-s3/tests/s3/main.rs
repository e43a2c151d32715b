//! The integration tests of `tresor-s3`, one test binary: a module per subject. Run one with
//! `cargo test -p tresor-s3 --test s3 lock::`. All but `url_parsing` need an S3 server
//! (`TRESOR_TEST_S3_URL`, from `eval "$(scripts/s3-server.sh start)"`): without one they skip
//! with a note, and fail in CI (`tresor_testkit::require`).

mod lock;
mod options;
mod store;
mod url_parsing;
mod wrong_credentials;
