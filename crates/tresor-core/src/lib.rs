//! # tresor-core: the repository layer and the operations on it
//!
//! Three layers, each using only the ones below it (`src/architecture.rs` checks this, and that
//! no modules depend on each other in a cycle):
//!
//! * **Operations**, each in its own module, each returning a typed result and printing
//!   nothing: [`archiver`] (backup), [`restorer`] (restore), [`check`], [`snapshots`]
//!   (selection), [`forget`] (with the pure [`retention`] policy), [`prune`], [`repair`],
//!   [`keys`], [`vfs`] (the view `mount` shows), [`spool`] (the offline spool), [`copy`]
//!   (snapshots into another repository), [`diff`], [`find`], [`stats`], [`dump`], [`edit`]
//!   (tag, rewrite), [`drill`] (restore drills). No operation uses another one, except
//!   `forget` using `retention` and `snapshots`, `edit` using `forget`, and `drill` using
//!   `restorer` and `snapshots`.
//! * **The repository layer**, [`repo`]: the [`Repository`] handle (open, init, keys and trust,
//!   snapshots, index, prune records), reading blobs and trees, the packer, markers, the tree
//!   cache, the limits readers hold objects to. It uses no operation.
//! * **Local helpers**: [`fsmeta`] reads and applies file metadata, [`exclude`] matches exclude
//!   patterns, [`time`] formats times for output (the one time rule), [`waiting`] passes the
//!   store's waits to a [`Progress`], [`metapolicy`] decides which metadata restore and dump
//!   may apply; and [`error`], which every layer uses.
//!
//! The CLI crate renders results and words the advice for errors; nothing here writes to
//! stdout.

#![warn(missing_docs)]

#[cfg(test)]
mod architecture;
pub mod archiver;
pub mod check;
pub mod copy;
pub mod diff;
pub mod drill;
pub mod dump;
pub mod edit;
pub mod error;
pub mod exclude;
pub mod find;
pub mod forget;
pub mod fsmeta;
pub mod keys;
pub mod metapolicy;
pub mod overdue;
pub mod protect;
pub mod prune;
pub mod repair;
pub mod repo;
pub mod restorer;
pub mod retention;
pub mod snapshots;
pub mod spool;
pub mod stats;
pub mod thaw;
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
    /// `bytes` of content were done without reading them: a backed-up file unchanged since the
    /// parent snapshot (its blob list is reused), a restored file already correct at the target.
    fn bytes_skipped(&self, _bytes: u64) {}
    /// The total work: `files` entries, `bytes` content bytes. May be called again and again
    /// while an estimate grows (backup: [`archiver::Estimate`] counting the sources as the walk
    /// runs); the last call holds. Done counts may pass an estimate (the sources grew).
    fn set_total(&self, _files: u64, _bytes: u64) {}
    /// Work started on the entry at `path` (backup: a source file about to be read; restore:
    /// a file about to be written). For display only.
    fn current_file(&self, _path: &std::path::Path) {}
    /// Whether [`Progress::current_file`] shows anything: callers that must build a path for
    /// it (restore, for each file) skip that when not.
    fn shows_current_file(&self) -> bool {
        true
    }
    /// An entry could not be processed: one more of the warnings or problems the operation's
    /// result lists.
    fn error(&self) {}
    /// The operation entered a new phase named `name` (e.g. check's `"reading packs"`), with
    /// `total` steps when known (0 when not), each one of `unit` (plural, e.g. `"packs"`); the
    /// counts of the phase start at zero, and its bytes have no total.
    fn phase(&self, _name: &str, _unit: &str, _total: u64) {}
    /// A storage request waits for the store — throttled (503 SlowDown, 429), a passing server
    /// error or a reset connection — and is sent again after `notice.delay`
    /// ([`tresor_storage::retry`]). Called on a thread of its own, in order.
    fn store_waiting(&self, _notice: &tresor_storage::retry::WaitNotice) {}
    /// A request that had waited for the store went through.
    fn store_recovered(&self) {}
    /// Backup saved the entry at source path `path` (a directory when `dir`, after its entries);
    /// `outcome` compares it with the parent snapshot. Entries left out with a warning are not
    /// reported. For listing (`backup -v`); called on the walking thread, in walk order.
    fn item_done(&self, _path: &std::path::Path, _dir: bool, _outcome: ItemOutcome) {}
}

/// What a backup made of one entry, compared with the parent snapshot ([`Progress::item_done`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Not in the parent snapshot.
    New,
    /// In the parent, changed: a file read again (its size, times or inode differ), a
    /// directory whose tree differs, another entry whose times or target differ.
    Modified,
    /// As in the parent snapshot (a file's content reused without reading it).
    Unchanged,
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}
