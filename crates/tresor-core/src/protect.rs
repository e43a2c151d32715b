//! `protect` and lock extension (docs/format.md §16): the objects a snapshot needs — its
//! snapshot object, the packs holding its trees and data blobs, and the index objects (or
//! prune records) listing those packs — get their Object Lock retention extended to a date.
//!
//! A retention is only ever extended: an object whose retain-until date already reaches the
//! target is left alone. Extension after a backup is bounded twice: only objects whose
//! retain-until date is earlier than a threshold are touched (now + half the repository's lock
//! days, so each object is extended about twice per lock period), and at most a given number of
//! extension requests is sent per run; the rest is left for the next run.
//!
//! The retention itself is set through a [`Retention`] (the S3 storage in the CLI), so this
//! module knows nothing of S3.

use crate::error::{CoreError, Result};
use crate::repo::Repository;
use crate::repo::blobs::BlobReader;
use crate::repo::index::Index;
use crate::repo::tree::walk;
use std::collections::BTreeSet;
use std::time::SystemTime;
use tresor_format::{BlobId, ObjectId};
use tresor_storage::{Kind, StorageError};

/// Reading and extending the retention of objects (an S3 bucket with Object Lock).
pub trait Retention {
    /// Until when object `name` of `kind` is retained: a retain-until date still in the future
    /// (or far in the future under a legal hold), `None` when it may be deleted now.
    ///
    /// # Errors
    /// Storage errors of asking (one request, e.g. `HEAD`).
    fn retain_until(
        &self,
        kind: Kind,
        name: &str,
    ) -> std::result::Result<Option<SystemTime>, StorageError>;

    /// Retain object `name` of `kind` until `until`, which is later than its current
    /// retain-until date (one request, e.g. `PutObjectRetention`).
    ///
    /// # Errors
    /// Storage errors of the request (refused, missing object, transport).
    fn extend(
        &self,
        kind: Kind,
        name: &str,
        until: SystemTime,
    ) -> std::result::Result<(), StorageError>;
}

/// An object a snapshot needs, ordered by kind then id.
pub type Needed = (Kind, ObjectId);

/// Every object snapshot `id` needs to be restored: its snapshot object, the pack holding the
/// preferred copy of each of its tree and data blobs, and the index object (or prune record)
/// that lists that pack. Sorted, each once.
///
/// # Errors
/// [`CoreError::PutOnly`] for a put-only key (the trees cannot be read); damage when a tree
/// does not load; [`CoreError::Damaged`] naming a blob that no index lists.
pub fn needed_objects(repo: &Repository, index: &Index, id: &ObjectId) -> Result<Vec<Needed>> {
    repo.require_read("protect")?;
    let snap = repo.load_snapshot(id)?;
    let reader = BlobReader::for_snapshot(repo, index, repo.snapshot_signer(id).ok());
    let mut blobs: BTreeSet<BlobId> = BTreeSet::from([snap.tree]);
    walk(&reader, &snap.tree, "/", &mut |_, n| {
        blobs.extend(n.subtree);
        blobs.extend(n.content.iter().copied());
    })?;
    let listed: BTreeSet<ObjectId> = index.index_ids().iter().copied().collect();
    let mut out: BTreeSet<Needed> = BTreeSet::from([(Kind::Snapshot, *id)]);
    for b in &blobs {
        let loc = reader
            .location(b)
            .ok_or_else(|| CoreError::Damaged(reader.not_indexed(b)))?;
        let pack = index.pack(loc.pack);
        out.insert((Kind::Pack, pack.id));
        let kind = if listed.contains(&pack.index_id) {
            Kind::Index
        } else {
            Kind::PruneRecord
        };
        out.insert((kind, pack.index_id));
    }
    Ok(out.into_iter().collect())
}

/// How [`extend`] treats objects.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The retain-until date given to objects that are extended.
    pub until: SystemTime,
    /// Objects retained at least until this date are left alone (`until` for `protect`; now +
    /// half the lock days for lock extension).
    pub threshold: SystemTime,
    /// At most this many extension requests; the objects after that are left.
    pub max_requests: usize,
    /// Only count: send no extension request.
    pub dry_run: bool,
}

/// What [`extend`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extended {
    /// Objects looked at.
    pub objects: usize,
    /// Objects whose retention was extended (or, in a dry run, would be).
    pub extended: usize,
    /// Objects already retained until the threshold: nothing sent.
    pub covered: usize,
    /// Objects that needed extending but were left because the request cap was reached.
    pub left: usize,
}

impl Extended {
    /// Add `other`'s counts to these.
    pub fn add(&mut self, other: &Extended) {
        self.objects += other.objects;
        self.extended += other.extended;
        self.covered += other.covered;
        self.left += other.left;
    }
}

/// Extend the retention of `objects` as `target` says: each object's retain-until date is read;
/// one at or after `target.threshold` is counted covered, an earlier one is extended to
/// `target.until` while fewer than `target.max_requests` extensions were sent, and left after
/// that. Objects in `done` (already handled in this run) count as covered; handled ones are
/// added to it.
///
/// # Errors
/// The first storage error of reading or extending a retention.
pub fn extend(
    r: &dyn Retention,
    objects: &[Needed],
    target: &Target,
    sent: &mut usize,
    done: &mut BTreeSet<Needed>,
) -> Result<Extended> {
    let mut out = Extended {
        objects: objects.len(),
        ..Extended::default()
    };
    for o in objects {
        if done.contains(o) {
            out.covered += 1;
            continue;
        }
        let name = o.1.to_hex();
        if r.retain_until(o.0, &name)?
            .is_some_and(|t| t >= target.threshold)
        {
            out.covered += 1;
            done.insert(*o);
            continue;
        }
        if *sent >= target.max_requests {
            out.left += 1;
            continue;
        }
        if !target.dry_run {
            r.extend(o.0, &name, target.until)?;
        }
        *sent += 1;
        out.extended += 1;
        done.insert(*o);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::time::Duration;

    /// Retentions in memory; counts extension requests.
    #[derive(Default)]
    struct Fake {
        held: RefCell<HashMap<String, SystemTime>>,
        puts: RefCell<Vec<String>>,
    }

    impl Retention for Fake {
        fn retain_until(
            &self,
            _: Kind,
            name: &str,
        ) -> std::result::Result<Option<SystemTime>, StorageError> {
            Ok(self.held.borrow().get(name).copied())
        }
        fn extend(
            &self,
            _: Kind,
            name: &str,
            until: SystemTime,
        ) -> std::result::Result<(), StorageError> {
            let mut h = self.held.borrow_mut();
            assert!(h.get(name).is_none_or(|t| *t < until), "never shortens");
            h.insert(name.to_string(), until);
            self.puts.borrow_mut().push(name.to_string());
            Ok(())
        }
    }

    fn obj(i: u8) -> Needed {
        (Kind::Pack, ObjectId([i; 32]))
    }

    #[test]
    fn extends_only_what_is_short_and_stops_at_the_cap() {
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let f = Fake::default();
        f.held
            .borrow_mut()
            .insert(obj(1).1.to_hex(), now + 40 * day);
        f.held.borrow_mut().insert(obj(2).1.to_hex(), now + day);
        let objects = [obj(1), obj(2), obj(3), obj(4)];
        let target = Target {
            until: now + 30 * day,
            threshold: now + 15 * day,
            max_requests: 2,
            dry_run: false,
        };
        let (mut sent, mut done) = (0, BTreeSet::new());
        let e = extend(&f, &objects, &target, &mut sent, &mut done).unwrap();
        assert_eq!(
            e,
            Extended {
                objects: 4,
                extended: 2,
                covered: 1,
                left: 1
            }
        );
        assert_eq!(*f.puts.borrow(), [obj(2).1.to_hex(), obj(3).1.to_hex()]);
        assert_eq!(f.held.borrow()[&obj(1).1.to_hex()], now + 40 * day);
        // The next run (a new cap) takes the rest; what was extended is covered now.
        let (mut sent, mut done) = (0, BTreeSet::new());
        let e = extend(&f, &objects, &target, &mut sent, &mut done).unwrap();
        assert_eq!((e.extended, e.covered, e.left), (1, 3, 0));
        assert_eq!(f.puts.borrow().len(), 3);
        // A dry run sends nothing.
        let dry = Target {
            until: now + 90 * day,
            threshold: now + 90 * day,
            dry_run: true,
            max_requests: usize::MAX,
        };
        let e = extend(&f, &objects, &dry, &mut 0, &mut BTreeSet::new()).unwrap();
        assert_eq!((e.extended, e.covered), (4, 0));
        assert_eq!(f.puts.borrow().len(), 3);
    }
}
