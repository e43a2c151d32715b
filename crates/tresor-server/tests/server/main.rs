//! The integration tests of `tresor-server`, one test binary: a module per subject. Run one
//! with `cargo test -p tresor-server --test server tls::`. The server on loopback comes from
//! `tresor_testkit::server`.

mod conformance;
mod http;
mod limits;
mod retries;
mod throughput;
mod tls;
