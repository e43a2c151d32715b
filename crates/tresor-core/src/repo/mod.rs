//! The repository layer: the mechanics every operation uses.

pub mod blobs;
pub mod cache;
pub mod handle;
pub mod highwater;
pub mod index;
pub mod limits;
pub mod markers;
pub mod packer;
pub mod tree;
pub mod trust;

pub use handle::{
    Defect, Judged, KeyOwner, Repository, Skipped, SnapshotList, make_key_file, rfc3339_utc,
    trusted_key,
};
