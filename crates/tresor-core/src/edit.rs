//! Replacing snapshots with edited copies: `tag` (other tags) and `rewrite` (without excluded
//! paths). Both write the new snapshots first and delete the old ones through
//! [`crate::forget::remove`], the one delete path of snapshots (forget records, markers, Object
//! Lock).

pub mod rewrite;
pub mod tag;
