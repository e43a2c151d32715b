//! # The repository layer: the mechanics every operation uses
//!
//! Everything here reads and writes repository objects and knows nothing of the operations
//! built on it (backup, restore, check, prune, …): no module in `repo` uses one outside it but
//! [`crate::error`] and the crate root's items, and its modules depend on each other without a
//! cycle (`src/architecture.rs` checks both). [`Repository`] is one type whose methods are
//! grouped by concern, each group in its own module.
//!
//! | module | what it holds |
//! |---|---|
//! | [`handle`] | [`Repository`]: storage, config, unlocked key, trust; reading (bounded, name-checked) and writing whole objects, object locks; the [`Defect`] classes of objects loaders leave out |
//! | [`open`] | creating (`init`) and opening repositories, reading the config |
//! | [`keyfiles`] | making certified key files, reading them cheapest first, trust record entries |
//! | [`trust`] | the newest trust record: trusted and revoked keys, verdicts on signers |
//! | [`highwater`] | what this machine saw of a repository: trust record `seq`, snapshots |
//! | [`snapshot_cache`] | the snapshots this machine opened, so a listing opens only new ones |
//! | [`localfile`] | local cache files written whole (temporary file, rename) |
//! | [`snapshots`] | saving, loading and judging snapshots; snapshot times |
//! | [`index`] | the in-memory blob → pack map, and who listed each pack |
//! | [`index_load`] | loading the index (index objects, then the fossils of the live prune state), dedup sets |
//! | [`dedup_table`] | one index object's blob ids as a local sorted table file, looked up without loading it |
//! | [`dedup_index`] | the blobs a backup deduplicates against, from local tables: memory bounded by the host's data |
//! | [`index_writer`] | index objects written in parts of [`index_writer::PART_BLOBS`] blobs |
//! | [`records`] | prune records (format §16): reading, writing, forget records, hidden snapshots |
//! | [`blobs`] | reading blobs back through the index, copies by trust |
//! | [`tree`] | paths in snapshots: finding a node, walking trees |
//! | [`packs`] | pack headers by range reads, packs verified whole |
//! | [`packer`] | blobs into packs and index objects, in the background |
//! | [`markers`] | backup start markers (format §16.1), the backup side |
//! | [`cache`] | the put-only writers' local tree cache |
//! | [`limits`] | the largest objects, blobs and tree depth readers take in |

pub mod blobs;
pub mod cache;
pub mod dedup_index;
pub mod dedup_table;
pub mod frames;
pub mod handle;
pub mod highwater;
pub mod index;
pub mod index_load;
pub mod index_writer;
pub mod keyfiles;
pub mod limits;
pub mod localfile;
pub mod markers;
pub mod open;
pub mod packer;
pub mod packs;
pub mod records;
pub mod snapshot_cache;
pub mod snapshots;
pub mod tree;
pub(crate) mod tree_rewrite;
pub mod trust;

pub use handle::{Defect, Judged, Repository, Skipped, SnapshotList, rfc3339_utc};
pub use keyfiles::{KeyOwner, make_key_file, trusted_key};
