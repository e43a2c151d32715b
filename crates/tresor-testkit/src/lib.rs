//! # tresor-testkit: what the integration tests of every crate share
//!
//! A dev-dependency only (never published). Each crate's integration tests are one test binary
//! (`tests/<crate>/main.rs`, one module per subject) that uses this kit:
//!
//! * [`require`] — the one rule for tests that need something from the machine (S3, moto,
//!   sshd, FUSE, restic, root, setpriv): run when present, skip with a note on a developer
//!   machine, **fail** in CI.
//! * [`serial`] — tests that must not overlap (signals, mounts, daemons, deadlines).
//! * [`child`] — a test body in a child process, for tests that change the environment.
//! * [`cli`] — a temporary repository and the `tresor` binary run against it.
//! * [`tree`] — tree generators and field-by-field comparison of trees.
//! * `repo` (feature `core`) — repositories and backups through the library.
//! * `craft` (feature `core`) — hostile objects made straight from bytes.
//! * `server` (feature `server`) — a `tresor serve` server on loopback with a client per role.
//!
//! `use tresor_testkit::prelude::*` brings the common helpers into a test module.

#![warn(missing_docs)]

pub mod child;
pub mod cli;
#[cfg(feature = "core")]
pub mod craft;
#[cfg(feature = "core")]
pub mod repo;
pub mod require;
pub mod serial;
#[cfg(feature = "server")]
pub mod server;
pub mod tree;

/// The helpers most test modules use.
pub mod prelude {
    pub use crate::cli::{Env, PASSWORD, put_only_key_args, run_expecting, tresor_bin};
    #[cfg(feature = "core")]
    pub use crate::repo::{KDF, backup, backup_options, data, owner, setup};
    pub use crate::require::{
        Moto, Need, absent, in_ci, is_root, moto, random_hex, require, require_all, s3_url,
        s3_url_under,
    };
    pub use crate::serial::exclusive;
    #[cfg(feature = "server")]
    pub use crate::server::{TestServer, connect_from, status_of};
    pub use crate::tree::{
        Entry, assert_same, make_tree, posix_acl, pseudo_random, scan, set_times, write,
    };
}
