//! `tag`: edit the tags of snapshots (restic's `tag`). A snapshot is immutable, so each snapshot
//! whose tags change is replaced: a new snapshot with the same fields but the tags and
//! `original` (format §11: the edited snapshot's own `original`, or its id), signed by the
//! current key (a full key: it keeps the host name of a put-only key's snapshot), is written
//! first; then the old one is deleted by [`crate::forget::remove`] (a forget record first, the
//! backup start markers it lists go with it, a snapshot under an Object Lock stays and is
//! reported).

use crate::error::Result;
use crate::forget;
use crate::repo::Repository;
use serde::Serialize;
use tresor_format::ObjectId;
use tresor_format::snapshot::Snapshot;
use tresor_storage::Kind;

/// A tag edit: `set` replaces the tags (restic: `--set` cannot be combined with the others);
/// otherwise `add` appends tags not there yet, then `remove` drops tags.
#[derive(Debug, Clone, Default)]
pub struct TagEdit {
    /// The new tags, when set.
    pub set: Option<Vec<String>>,
    /// Tags to add.
    pub add: Vec<String>,
    /// Tags to remove.
    pub remove: Vec<String>,
}

impl TagEdit {
    /// The tags after the edit of `tags` (order kept, added tags at the end).
    pub fn apply(&self, tags: &[String]) -> Vec<String> {
        let mut out: Vec<String> = match &self.set {
            Some(s) => s.clone(),
            None => tags.to_vec(),
        };
        for t in &self.add {
            if !out.contains(t) {
                out.push(t.clone());
            }
        }
        out.retain(|t| !self.remove.contains(t));
        let mut seen = std::collections::HashSet::new();
        out.retain(|t| seen.insert(t.clone()));
        out
    }
}

/// One snapshot replaced.
#[derive(Debug, Clone, Serialize)]
pub struct Replaced {
    /// The snapshot edited.
    pub old: ObjectId,
    /// Its replacement (`None` in a dry run).
    pub new: Option<ObjectId>,
    /// Whether the old snapshot was deleted.
    pub forgotten: bool,
}

/// The snapshot replacing `old` (id `id`): its fields with `original` set and this program's
/// version.
pub fn successor(id: &ObjectId, old: &Snapshot) -> Snapshot {
    let mut s = old.clone();
    s.original = Some(old.original.unwrap_or(*id));
    s.program_version = crate::PROGRAM_VERSION.into();
    s
}

/// Save the new snapshots, then (with `forget`) delete the ones they replace; snapshots under
/// an Object Lock are not deleted ([`forget::Removed::locked`]).
///
/// # Errors
/// [`crate::CoreError::PutOnly`]; storage errors (snapshots saved before stay).
pub fn replace(
    repo: &Repository,
    new: Vec<(ObjectId, Snapshot)>,
    forget: bool,
) -> Result<(Vec<Replaced>, forget::Removed)> {
    repo.require_read("replacing snapshots")?;
    let mut done = Vec::new();
    let mut locked = Vec::new();
    for (old, s) in new {
        // A snapshot the storage keeps under a lock cannot be replaced: it would stay beside
        // its replacement.
        if forget && let Some(until) = repo.lock_end(Kind::Snapshot, &old)? {
            locked.push((old, until));
            continue;
        }
        let id = repo.save_snapshot(&s)?;
        done.push(Replaced {
            old,
            new: Some(id),
            forgotten: false,
        });
    }
    if !forget {
        return Ok((done, forget::Removed::default()));
    }
    let olds: Vec<ObjectId> = done.iter().map(|r| r.old).collect();
    let mut removed = forget::remove(repo, &olds)?;
    removed.locked.extend(locked);
    for r in &mut done {
        r.forgotten = removed.deleted.contains(&r.old);
    }
    Ok((done, removed))
}

/// Edit the tags of `snaps`: each whose tags change is replaced (see the module
/// documentation); the others are left alone. Returns the replaced ones and what deletion did.
///
/// # Errors
/// [`crate::CoreError::PutOnly`] before anything is written; storage errors.
pub fn tag(
    repo: &Repository,
    snaps: &[(ObjectId, Snapshot)],
    edit: &TagEdit,
) -> Result<(Vec<Replaced>, forget::Removed)> {
    repo.require_read("tag")?;
    let new = snaps
        .iter()
        .filter_map(|(id, s)| {
            let tags = edit.apply(&s.tags);
            (tags != s.tags).then(|| {
                let mut n = successor(id, s);
                n.tags = tags;
                (*id, n)
            })
        })
        .collect();
    replace(repo, new, true)
}
