//! # tresor-core: the repository layer and the operations on it
//!
//! Three layers, each using only the ones below it (`src/architecture.rs` checks this, and that
//! no modules depend on each other in a cycle):
//!
//! * **Operations**, each in its own module, each returning a typed result and printing
//!   nothing: [`archiver`] (backup), [`restorer`] (restore), [`check`], [`snapshots`]
//!   (selection), [`forget`] (with the pure [`retention`] policy), [`prune`], [`repair`],
//!   [`keys`], [`vfs`] (the view `mount` shows). No operation uses another one, except `forget`
//!   using `retention` and `snapshots`.
//! * **The repository layer**, [`repo`]: the [`Repository`] handle (open, init, keys and trust,
//!   snapshots, index, prune records), reading blobs and trees, the packer, markers, the tree
//!   cache, the limits readers hold objects to. It uses no operation.
//! * **Local helpers**: [`fsmeta`] reads and applies file metadata, [`exclude`] matches exclude
//!   patterns, [`time`] formats times for output (the one time rule), [`waiting`] passes the
//!   store's waits to a [`Progress`]; and [`error`], which every layer uses.
//!
//! The CLI crate renders results and words the advice for errors; nothing here writes to
//! stdout.

#![warn(missing_docs)]

#[cfg(test)]
mod architecture;
pub mod archiver;
pub mod check;
pub mod error;
pub mod exclude;
pub mod forget;
pub mod fsmeta;
pub mod keys;
pub mod prune;
pub mod repair;
pub mod repo;
pub mod restorer;
pub mod retention;
pub mod snapshots;
pub mod time;
pub mod vfs;
pub mod waiting;

pub use error::{CoreError, Damage, Result};
pub use repo::Repository;

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
