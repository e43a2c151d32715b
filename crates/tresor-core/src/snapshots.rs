//! Selecting snapshots: by id prefix, or `latest` with host and path filters.

use crate::error::{CoreError, Result};
use crate::repository::Skipped;
use tresor_format::ObjectId;
use tresor_format::snapshot::Snapshot;

/// Snapshot time as a timestamp (snapshots with an unparsable time sort first).
pub fn time_of(s: &Snapshot) -> jiff::Timestamp {
    s.time
        .parse::<jiff::Timestamp>()
        .unwrap_or(jiff::Timestamp::MIN)
}

/// Filters for `latest` and for listings.
#[derive(Debug, Clone, Default)]
pub struct SnapshotFilter {
    /// Only snapshots of these hosts (any, when empty).
    pub hosts: Vec<String>,
    /// Only snapshots whose paths include all of these (any, when empty).
    pub paths: Vec<String>,
    /// Only snapshots carrying all of these tags (any, when empty).
    pub tags: Vec<String>,
}

impl SnapshotFilter {
    /// Whether `s` passes the filter.
    pub fn matches(&self, s: &Snapshot) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&s.hostname))
            && self.paths.iter().all(|p| s.paths.contains(p))
            && self.tags.iter().all(|t| s.tags.contains(t))
    }
}

/// Find one snapshot in `list` (oldest first) by `latest` or a hex id prefix. `skipped` are the
/// snapshot objects that could not be loaded ([`crate::Repository::load_snapshots`]): an id
/// prefix that names only such an object gets its error, not "not found".
///
/// # Errors
/// [`CoreError::SnapshotNotFound`], [`CoreError::AmbiguousSnapshot`]; for a damaged snapshot
/// object [`CoreError::Damaged`], for one of an untrusted key [`CoreError::Untrusted`].
pub fn find<'a>(
    list: &'a [(ObjectId, Snapshot)],
    skipped: &[Skipped],
    spec: &str,
    filter: &SnapshotFilter,
) -> Result<&'a (ObjectId, Snapshot)> {
    match find_loaded(list, spec, filter) {
        Err(CoreError::SnapshotNotFound(_)) if spec != "latest" => {
            match skipped_matching(skipped, spec).next() {
                Some(Skipped {
                    error: CoreError::Untrusted(m),
                    ..
                }) => Err(CoreError::Untrusted(m.clone())),
                Some(Skipped { id, error, .. }) => Err(CoreError::Damaged(format!(
                    "snapshot {}: {error}",
                    id.short()
                ))),
                None => Err(CoreError::SnapshotNotFound(spec.into())),
            }
        }
        r => r,
    }
}

/// The snapshot objects that could not be loaded whose id starts with the hex prefix `spec`.
pub fn skipped_matching<'a>(
    skipped: &'a [Skipped],
    spec: &str,
) -> impl Iterator<Item = &'a Skipped> {
    let spec = spec.to_ascii_lowercase();
    skipped
        .iter()
        .filter(move |s| !spec.is_empty() && s.id.to_hex().starts_with(&spec))
}

fn find_loaded<'a>(
    list: &'a [(ObjectId, Snapshot)],
    spec: &str,
    filter: &SnapshotFilter,
) -> Result<&'a (ObjectId, Snapshot)> {
    if spec == "latest" {
        return list
            .iter()
            .rev()
            .find(|(_, s)| filter.matches(s))
            .ok_or_else(|| CoreError::SnapshotNotFound(spec.into()));
    }
    let spec_l = spec.to_ascii_lowercase();
    if spec_l.is_empty() || !spec_l.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CoreError::SnapshotNotFound(spec.into()));
    }
    let mut it = list
        .iter()
        .filter(|(id, _)| id.to_hex().starts_with(&spec_l));
    match (it.next(), it.next()) {
        (Some(one), None) => Ok(one),
        (Some(_), Some(_)) => Err(CoreError::AmbiguousSnapshot(spec.into())),
        _ => Err(CoreError::SnapshotNotFound(spec.into())),
    }
}
