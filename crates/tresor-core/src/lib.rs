//! # tresor-core: repository handle and operations
//!
//! * [`repository`] opens and initialises repositories, holds the key and config, reads and writes
//!   snapshots; [`index`] is the in-memory blob → pack map; [`blobs`] reads blobs back;
//!   [`packer`] turns blobs into packs and index objects in the background.
//! * Operations, each in its own module, each returning a typed result and printing nothing:
//!   [`archiver`] (backup, with its start [`markers`]), [`restorer`] (restore), [`check`], [`ls`],
//!   [`snapshots`] (selection), [`forget`], [`prune`], [`repair`], [`vfs`] (the view `mount` shows).
//! * [`trust`] judges signers by the newest trust record; [`highwater`] remembers what this
//!   machine saw of a repository (rollback and hidden snapshots).
//! * [`fsmeta`] reads and applies file metadata; [`exclude`] matches exclude patterns;
//!   [`limits`] bounds every object and blob a reader takes in.
//!
//! The CLI crate renders results; nothing here writes to stdout.

#![warn(missing_docs)]

pub mod archiver;
pub mod blobs;
pub mod cache;
pub mod check;
pub mod error;
pub mod exclude;
pub mod forget;
pub mod fsmeta;
pub mod highwater;
pub mod index;
pub mod keys;
pub mod limits;
pub mod ls;
pub mod markers;
pub mod packer;
pub mod prune;
pub mod repair;
pub mod repository;
pub mod restorer;
pub mod retention;
pub mod snapshots;
pub mod trust;
pub mod vfs;
pub mod waiting;

pub use error::{CoreError, Result};
pub use repository::Repository;

/// Program name and version written into snapshots, e.g. `"tresor 0.1.0"`.
pub const PROGRAM_VERSION: &str = concat!("tresor ", env!("CARGO_PKG_VERSION"));

/// Progress callbacks; all methods have empty defaults. Implementations must be thread-safe.
pub trait Progress: Send + Sync {
    /// A file (or other entry) was processed; `bytes` of its content were read.
    fn file_done(&self, _bytes: u64) {}
    /// `bytes` of content were read.
    fn bytes_read(&self, _bytes: u64) {}
    /// Total work is known: `files` entries, `bytes` content bytes.
    fn set_total(&self, _files: u64, _bytes: u64) {}
    /// A storage request waits for the store — throttled (503 SlowDown, 429), a passing server
    /// error or a reset connection — and is sent again after `notice.delay`
    /// ([`tresor_storage::retry`]). Called on a thread of its own, in order.
    fn store_waiting(&self, _notice: &tresor_storage::retry::WaitNotice) {}
    /// A request that had waited for the store went through.
    fn store_recovered(&self) {}
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}
