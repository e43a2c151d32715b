//! The integration tests of `tresor-core`, one test binary: a module per subject. Run one with
//! `cargo test -p tresor-core --test core prune::`. Repositories and backups through the library
//! come from `tresor_testkit::repo`; the restic comparison needs restic (`tresor_testkit::require`).

mod copy;
mod dedup_tables;
mod deep_trees;
mod hostile_format;
mod hostile_objects;
mod hostile_prune;
mod hostile_snapshots;
mod lean_index;
mod marker_order;
mod open_reads;
mod pack_spool;
mod packer_tail;
mod progress;
mod prune;
mod put_only;
mod restore_hostile;
mod restore_waiting;
mod retention_vs_restic;
mod snapshot_cache;
mod spool;
mod vfs;
