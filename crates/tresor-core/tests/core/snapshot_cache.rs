//! Listing snapshots opens each snapshot once per machine: later listings take the ones opened
//! before from the snapshot cache (`repo/snapshot_cache.rs`) and read only the new ones, and
//! what the cache gives back is judged again as a fresh snapshot is; a tampered cache file is
//! read around. On S3 every snapshot read is a GET.

use super::marker_order::{Call, Ordered};
use std::path::Path;
use tresor_core::Repository;
use tresor_core::repo::handle::Defect;
use tresor_core::repo::snapshot_cache::SnapshotCache;
use tresor_format::ObjectId;
use tresor_storage::Kind;
use tresor_testkit::repo::*;

/// Snapshot objects read since the last call.
fn snapshot_reads(logged: &Ordered) -> usize {
    let calls = logged.take();
    calls
        .iter()
        .filter(|c| **c == Call::Read(Kind::Snapshot))
        .count()
}

/// The ids of a listing's accepted and skipped snapshots (with why).
fn ids(
    listed: &(
        tresor_core::repo::handle::SnapshotList,
        Vec<tresor_core::repo::handle::Skipped>,
    ),
) -> (Vec<ObjectId>, Vec<(ObjectId, Defect)>) {
    let ok = listed.0.iter().map(|(id, _)| *id).collect();
    let bad = listed.1.iter().map(|s| (s.id, s.defect)).collect();
    (ok, bad)
}

fn source(dir: &Path) -> std::path::PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"contents").unwrap();
    src
}

#[test]
fn a_listing_reads_only_the_snapshots_this_machine_has_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let (logged, storage, writer) = Ordered::repository(dir.path());
    let src = source(dir.path());
    for _ in 0..3 {
        backup(&writer, &src, "h", None);
    }
    let cache = dir.path().join("cache");
    let repo = Repository::open_with(storage.clone(), "admin", Some(&cache)).unwrap();
    logged.take();
    let first = repo.load_snapshots().unwrap();
    assert_eq!(snapshot_reads(&logged), 3);
    assert_eq!(first.0.len(), 3);
    let again = repo.load_snapshots().unwrap();
    assert_eq!(snapshot_reads(&logged), 0, "all three from the cache");
    assert_eq!(again.0, first.0, "the same snapshots, field for field");

    backup(&writer, &src, "h", None);
    logged.take();
    let more = repo.load_snapshots().unwrap();
    assert_eq!(snapshot_reads(&logged), 1, "only the new one");
    assert_eq!(more.0[..3], first.0[..]);

    let reopened = Repository::open_with(storage.clone(), "admin", Some(&cache)).unwrap();
    logged.take();
    assert_eq!(reopened.load_snapshots().unwrap().0, more.0);
    assert_eq!(
        snapshot_reads(&logged),
        0,
        "another process: from the cache"
    );
    assert_eq!(reopened.load_snapshots_from_storage().unwrap().0, more.0);
    assert_eq!(
        snapshot_reads(&logged),
        4,
        "check and repair read the repository"
    );

    let file = cache.join(&repo.config().id).join("snapshots");
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    assert_eq!(reopened.load_snapshots().unwrap().0, more.0);
    assert_eq!(
        snapshot_reads(&logged),
        4,
        "a tampered cache is read around"
    );
    assert_eq!(reopened.load_snapshots().unwrap().0, more.0);
    assert_eq!(snapshot_reads(&logged), 0, "and written again");
}

#[test]
fn a_cached_snapshot_is_judged_again_under_the_current_trust() {
    let dir = tempfile::tempdir().unwrap();
    let (logged, storage, admin) = Ordered::repository(dir.path());
    let second_key = add_full_key(&admin, "second", "h2");
    let second = Repository::open_with(storage.clone(), "second", None).unwrap();
    let src = source(dir.path());
    let theirs = backup(&second, &src, "h2", None).snapshot_id.unwrap();
    let ours = backup(&admin, &src, "admin", None).snapshot_id.unwrap();
    let cache = dir.path().join("cache");
    let before = Repository::open_with(storage.clone(), "admin", Some(&cache)).unwrap();
    assert_eq!(
        ids(&before.load_snapshots().unwrap()).0.len(),
        2,
        "both accepted, cached"
    );

    // The storage deletes the second key's file: what it signed is no longer vouched for.
    storage.delete(Kind::Key, &second_key.to_hex()).unwrap();
    let after = Repository::open_with(storage.clone(), "admin", Some(&cache)).unwrap();
    logged.take();
    let cached = ids(&after.load_snapshots().unwrap());
    assert_eq!(snapshot_reads(&logged), 0, "both came from the cache");
    assert_eq!(cached.0, vec![ours]);
    assert_eq!(cached.1, vec![(theirs, Defect::Ignored)]);
    assert_eq!(cached, ids(&after.load_snapshots_from_storage().unwrap()));
}

#[test]
fn forget_drops_what_it_deletes_and_another_key_has_a_cache_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, repo) = setup(dir.path());
    let src = source(dir.path());
    let old = backup(&repo, &src, "h", None).snapshot_id.unwrap();
    let new = backup(&repo, &src, "h", None).snapshot_id.unwrap();
    let cache = dir.path().join("cache");
    let opened = Repository::open_with(storage.clone(), "admin", Some(&cache)).unwrap();
    opened.load_snapshots().unwrap();
    let key = opened
        .payload()
        .snapshot_cache_key(&opened.config().id)
        .unwrap();
    let file = SnapshotCache::new(&cache.join(&opened.config().id), key);
    let held = |f: &SnapshotCache| {
        let mut ids: Vec<ObjectId> = f.load().into_keys().collect();
        ids.sort();
        ids
    };
    let mut both = vec![old, new];
    both.sort();
    assert_eq!(held(&file), both);

    tresor_core::forget::remove(&opened, &[old]).unwrap();
    assert_eq!(
        held(&file),
        vec![new],
        "forget dropped the deleted snapshot"
    );

    // A second full key of the same repository cannot use (nor forge) the first key's file.
    add_full_key(&repo, "second", "h2");
    let second = Repository::open_with(storage.clone(), "second", Some(&cache)).unwrap();
    let other = second
        .payload()
        .snapshot_cache_key(&second.config().id)
        .unwrap();
    assert_ne!(other, key);
    assert!(
        SnapshotCache::new(&cache.join(&second.config().id), other)
            .load()
            .is_empty()
    );
    assert_eq!(ids(&second.load_snapshots().unwrap()).0, vec![new]);
}
