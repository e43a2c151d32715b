//! Selecting snapshots: by id prefix, or `latest` with host and path filters.

use crate::error::{CoreError, Result};
use crate::repo::Skipped;
use crate::repo::snapshots::{future_after, is_future};
use tresor_format::ObjectId;
use tresor_format::snapshot::Snapshot;

/// Who signed a snapshot, as listings show it (format §11).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignerInfo {
    /// Short id of the signer's key file (as `tresor key list` shows it), or `None` when it
    /// has none any more (a removed key whose objects stay accepted).
    pub id: Option<String>,
    /// `"full"` or `"put-only"`.
    pub kind: &'static str,
    /// The signing public key, 64 hex digits.
    pub public: String,
    /// The host its key is certified for, when known.
    pub host: Option<String>,
}

/// The signer of snapshot `id` (loaded through `repo`, so readers accepted it), or `None` when
/// it cannot be told (the object is gone, or readers do not accept its signer).
pub fn signer_info(repo: &crate::Repository, id: &ObjectId) -> Option<SignerInfo> {
    let signer = repo.snapshot_signer(id).ok()?;
    let trust = repo.trust();
    let kind = match trust.verdict(&signer, id) {
        crate::repo::trust::Verdict::Full => "full",
        crate::repo::trust::Verdict::PutOnly => "put-only",
        _ => return None,
    };
    Some(SignerInfo {
        id: trust.key(&signer).map(|k| k.id.short()),
        kind,
        public: hex::encode(signer),
        host: trust.certified_host(&signer).map(str::to_string),
    })
}

/// Filters for `latest` and for listings.
#[derive(Debug, Clone, Default)]
pub struct SnapshotFilter {
    /// Only snapshots of these hosts (any, when empty).
    pub hosts: Vec<String>,
    /// Only snapshots whose paths include all of these (any, when empty), compared after
    /// [`clean_path`] on both sides (`/srv/` matches `/srv`).
    pub paths: Vec<String>,
    /// Tag lists as restic's `--tag` takes them (`TagLists`): a snapshot passes when it
    /// carries every tag of at least one list (any snapshot, when there is no list). A list
    /// `[""]` matches snapshots without tags. Build one list per `--tag` option with
    /// [`crate::retention::parse_tag_list`]: `--tag a,b` is `[["a", "b"]]` ("has both"),
    /// `--tag a --tag b` is `[["a"], ["b"]]` ("has either").
    pub tags: Vec<Vec<String>>,
}

impl SnapshotFilter {
    /// Whether `s` passes the filter.
    pub fn matches(&self, s: &Snapshot) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&s.hostname))
            && self.paths.iter().all(|p| {
                let p = clean_path(p);
                s.paths.iter().any(|sp| clean_path(sp) == p)
            })
            && (self.tags.is_empty() || self.tags.iter().any(|l| has_tags(s, l)))
    }
}

/// `p` cleaned lexically, as Go's `filepath.Clean` (which restic applies to paths): repeated
/// slashes and `.` components removed, `..` taking away the component before it (never above
/// the root), no trailing slash except for `/` itself. `""` stays `""`.
pub fn clean_path(p: &str) -> String {
    let absolute = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) if !p.is_empty() => ".".to_string(),
        _ => joined,
    }
}

/// Whether `s` carries every tag of `list`, restic's `HasTags`: an empty tag in the list
/// matches a snapshot without tags.
fn has_tags(s: &Snapshot, list: &[String]) -> bool {
    for tag in list {
        if tag.is_empty() && s.tags.is_empty() {
            return true;
        }
        if !s.tags.contains(tag) {
            return false;
        }
    }
    true
}

/// Find one snapshot in `list` (oldest first) by `latest` (the newest that passes `filter` and
/// is not dated in the future, [`is_future`]) or a hex id prefix. `skipped` are the
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
        let future = future_after();
        return list
            .iter()
            .rev()
            .find(|(_, s)| filter.matches(s) && !is_future(s, future))
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

#[cfg(test)]
mod tests {
    use super::clean_path;

    #[test]
    fn paths_are_cleaned_as_go_filepath_clean() {
        for (p, want) in [
            ("/srv/", "/srv"),
            ("/srv//data/./x/", "/srv/data/x"),
            ("/srv/a/../b", "/srv/b"),
            ("/../..", "/"),
            ("/", "/"),
            ("a/../..", ".."),
            ("./", "."),
            ("", ""),
        ] {
            assert_eq!(clean_path(p), want, "{p}");
        }
    }
}
