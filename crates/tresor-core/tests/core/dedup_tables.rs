//! Deduplication through local tables (repo/dedup_index.rs): each index object is read once per
//! machine and key, a backup with a cached parent reads no index object and no pack, the rules
//! of who counts for deduplication hold, and damaged or stale tables are mended.

use tresor_testkit::repo::*;

use std::path::Path;
use std::sync::Arc;
use tresor_core::{Repository, keys};
use tresor_format::ObjectId;
use tresor_format::keyfile::KeyKind;
use tresor_storage::faulty::{FaultyStorage, Method};
use tresor_storage::local::LocalStorage;
use tresor_storage::{Kind, Storage};

type Faulty = FaultyStorage<LocalStorage>;

fn faulty_setup(dir: &Path) -> (Arc<Faulty>, Repository) {
    let f = Arc::new(FaultyStorage::new(LocalStorage::new(dir.join("repo"))));
    let storage: Arc<dyn Storage> = f.clone();
    let config = tresor_format::config::Config::new().unwrap();
    let repo = Repository::init(storage, "admin", KDF, &owner("admin"), config).unwrap();
    (f, repo)
}

/// A source of `files` files of 20 KiB (small: they share frames) and one of 300 KiB.
fn source(dir: &Path, name: &str, seed: u8, files: usize) -> std::path::PathBuf {
    let src = dir.join(name);
    std::fs::create_dir_all(src.join("sub")).unwrap();
    for i in 0..files {
        let d = data(seed.wrapping_add(i as u8), 20 << 10);
        std::fs::write(src.join("sub").join(format!("f{i}")), d).unwrap();
    }
    std::fs::write(src.join("big"), data(seed, 300 << 10)).unwrap();
    src
}

/// Reads of objects of `kind` (whole or ranges) since the calls were last cleared.
fn reads(f: &Faulty, kind: Kind) -> usize {
    f.calls()
        .iter()
        .filter(|c| matches!(c.method, Method::Read | Method::ReadRange) && c.kind == Some(kind))
        .count()
}

fn restore_and_compare(repo: &Repository, snap: &ObjectId, src: &Path, to: &Path) {
    let back = restore_verified(repo, &repo.load_index().unwrap(), snap, to, src);
    for e in walkdir(src) {
        let rel = e.strip_prefix(src).unwrap();
        assert_eq!(
            std::fs::read(&e).unwrap(),
            std::fs::read(back.join(rel)).unwrap(),
            "{}",
            rel.display()
        );
    }
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn each_index_object_is_read_once_per_machine_and_a_cached_rerun_reads_none() {
    let dir = tempfile::tempdir().unwrap();
    let (f, admin) = faulty_setup(dir.path());
    // Everything the test creates later goes under `others`.
    let cache = dir.path().join("cache");
    let others = dir.path().join("others");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::create_dir_all(&others).unwrap();
    let a = source(dir.path(), "a", 1, 12);
    let first = backup(&admin, &a, "a", Some(&cache));
    assert!(first.summary.data_blobs > 0);
    // Another host (same full key, no cache) writes one more index object.
    let b = source(&others, "b", 100, 5);
    backup(&admin, &b, "b", None);

    f.clear_calls();
    let second = backup(&admin, &a, "a", Some(&cache));
    // Only b's index object: a's own, written by the first run, got its table then.
    assert_eq!(reads(&f, Kind::Index), 1);
    assert_eq!(
        reads(&f, Kind::Pack),
        0,
        "parent trees come from the local cache"
    );
    assert_eq!(second.summary.files_unmodified, 13);
    assert_eq!(second.summary.data_blobs, 0);
    // `a` and `a/sub` are the parent's trees; only the directories leading to `a` (/, /tmp and
    // the test's directory, whose times change as other tests run) may be new.
    assert_eq!(second.summary.dirs_unmodified, 2, "{:?}", second.summary);
    assert!(second.summary.tree_blobs <= 3, "{:?}", second.summary);
    assert_eq!(second.parent, first.snapshot_id);

    // The third run reads no index object: the second's own (if the directories leading to
    // `a` changed meanwhile, as other tests create files in /tmp) got its table when written.
    f.clear_calls();
    let third = backup(&admin, &a, "a", Some(&cache));
    assert_eq!(reads(&f, Kind::Index), 0);
    assert_eq!(reads(&f, Kind::Pack), 0);
    assert_eq!(third.parent, second.snapshot_id);
    assert_eq!(third.summary.data_blobs, 0);

    // A copy of b's files backed up by a third host deduplicates against b's blobs through
    // the tables.
    let c = others.join("c");
    std::fs::rename(&b, &c).unwrap();
    let copy = backup(&admin, &c, "c", Some(&cache));
    assert_eq!(copy.summary.data_blobs, 0, "{:?}", copy.summary);

    // A changed file is read again and the snapshot restores byte for byte.
    std::fs::write(a.join("sub").join("f3"), data(77, 25 << 10)).unwrap();
    let changed = backup(&admin, &a, "a", Some(&cache));
    assert_eq!(changed.summary.files_changed, 1, "{:?}", changed.summary);
    assert_eq!(changed.summary.files_unmodified, 12);
    let to = others.join("restored");
    restore_and_compare(&admin, changed.snapshot_id.as_ref().unwrap(), &a, &to);
}

#[test]
fn without_a_matching_cache_the_parent_trees_are_read_from_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let (f, admin) = faulty_setup(dir.path());
    let a = source(dir.path(), "a", 3, 6);
    let first = backup(&admin, &a, "a", None);
    // Another machine's cache (empty): the parent's trees are read from packs, and nothing
    // is read again.
    f.clear_calls();
    let cache = dir.path().join("cache");
    let second = backup(&admin, &a, "a", Some(&cache));
    assert!(reads(&f, Kind::Pack) > 0);
    assert_eq!(second.parent, first.snapshot_id);
    assert_eq!(second.summary.bytes_read, 0, "{:?}", second.summary);
    // The cache now holds the parent: the next run reads no pack.
    f.clear_calls();
    let third = backup(&admin, &a, "a", Some(&cache));
    assert_eq!(reads(&f, Kind::Pack), 0);
    assert_eq!(third.summary.bytes_read, 0);
    // A cache of an older snapshot than the repository's newest is not used.
    backup(&admin, &a, "a", None);
    f.clear_calls();
    let fifth = backup(&admin, &a, "a", Some(&cache));
    assert!(reads(&f, Kind::Pack) > 0);
    assert_eq!(fifth.summary.bytes_read, 0);
}

/// The table directory of the only key that wrote tables under `cache`.
fn tables_of(cache: &Path) -> std::path::PathBuf {
    let repos: Vec<_> = std::fs::read_dir(cache).unwrap().flatten().collect();
    assert_eq!(repos.len(), 1);
    let keys: Vec<_> = std::fs::read_dir(repos[0].path().join("dedup"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(keys.len(), 1);
    keys[0].path()
}

#[test]
fn damaged_and_stale_tables_are_mended() {
    let dir = tempfile::tempdir().unwrap();
    let (f, admin) = faulty_setup(dir.path());
    let cache = dir.path().join("cache");
    let a = source(dir.path(), "a", 5, 4);
    backup(&admin, &a, "a", Some(&cache));
    let b = source(dir.path(), "b", 50, 4);
    backup(&admin, &b, "b", None);
    let opened = admin.open_dedup_index(&cache).unwrap();
    assert_eq!(
        opened.fetched, 1,
        "b's only: a's own object got its table when a's backup wrote it"
    );
    let all = opened.len();
    let tables = tables_of(&cache);
    let names: Vec<String> = f
        .list(Kind::Index)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names.len(), 2);
    // Damage: a table cut short, another overwritten.
    let t0 = tables.join(&names[0]);
    let len = std::fs::metadata(&t0).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&t0)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    std::fs::write(tables.join(&names[1]), b"garbage").unwrap();
    std::fs::write(tables.join("left-over.tmp123"), b"x").unwrap();
    let mended = admin.open_dedup_index(&cache).unwrap();
    assert_eq!(mended.fetched, 2);
    assert_eq!(mended.len(), all);
    assert!(!tables.join("left-over.tmp123").exists());
    // An index object deleted (as prune would): its table goes, its blobs no longer count.
    admin.storage().delete(Kind::Index, &names[1]).unwrap();
    let after = admin.open_dedup_index(&cache).unwrap();
    assert_eq!(after.fetched, 0);
    assert!(after.len() < all);
    assert!(!tables.join(&names[1]).exists());
    assert!(tables.join(&names[0]).exists());
}

#[test]
fn who_counts_put_only_keys_see_their_own_and_removed_keys_stop_counting() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, admin) = setup(dir.path());
    let a = source(dir.path(), "a", 7, 4);
    backup(&admin, &a, "a", None);
    keys::add(&admin, "host", KeyKind::PutOnly, KDF, &owner("vps")).unwrap();
    let id = keys::add(&admin, "other", KeyKind::Full, KDF, &owner("other")).unwrap();
    let host = Repository::open(storage.clone(), "host").unwrap();
    let hcache = dir.path().join("hcache");
    // The put-only host: the admin's blobs do not count, its own do, and it never fetches
    // the admin's object again.
    let copy = dir.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(a.join("big"), copy.join("big")).unwrap();
    let first = backup(&host, &copy, "vps", Some(&hcache));
    assert!(
        first.summary.data_blobs > 0,
        "no other writer's blob counts"
    );
    let opened = host.open_dedup_index(&hcache).unwrap();
    assert_eq!(
        opened.fetched, 0,
        "its own object got its table when the backup wrote it"
    );
    assert_eq!(host.open_dedup_index(&hcache).unwrap().fetched, 0);
    assert_eq!(
        opened.len(),
        first.summary.data_blobs + first.summary.tree_blobs
    );
    // Another full key's blobs count for the admin until that key is removed.
    let other = Repository::open(storage.clone(), "other").unwrap();
    let o = source(dir.path(), "o", 90, 3);
    let written = backup(&other, &o, "o", None);
    let cache = dir.path().join("cache");
    let stale = admin.open_dedup_index(&cache).unwrap();
    // Judged by the trust record this handle read before `other` was added: not counted.
    let admin = Repository::open(storage.clone(), "admin").unwrap();
    let with = admin.open_dedup_index(&cache).unwrap();
    assert_eq!(with.fetched, 0);
    assert_eq!(
        with.len() - stale.len(),
        written.summary.data_blobs + written.summary.tree_blobs
    );
    // Removed, the key's earlier objects are still accepted; what it signs later is not.
    keys::remove(&admin, &id.to_hex(), "2026-12-07T00:00:00Z").unwrap();
    let late = source(dir.path(), "late", 140, 3);
    let late_run = backup(&other, &late, "late", None);
    assert!(late_run.summary.data_blobs > 0);
    let admin = Repository::open(storage.clone(), "admin").unwrap();
    let without = admin.open_dedup_index(&cache).unwrap();
    assert_eq!(without.fetched, 1, "the late object is read once");
    assert_eq!(without.len(), with.len(), "and its ids do not count");
    let again = admin.open_dedup_index(&cache).unwrap();
    assert_eq!((again.fetched, again.len()), (0, with.len()));
}

#[test]
fn superseded_index_objects_do_not_count_and_only_full_keys_retire() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, admin) = setup(dir.path());
    let cache = dir.path().join("cache");
    let a = source(dir.path(), "a", 11, 3);
    let a_run = backup(&admin, &a, "a", None);
    let b = source(dir.path(), "b", 111, 3);
    let b_run = backup(&admin, &b, "b", None);
    let objects = |s: &Arc<dyn Storage>| -> Vec<ObjectId> {
        let mut v: Vec<ObjectId> = s
            .list(Kind::Index)
            .unwrap()
            .iter()
            .map(|(n, _)| n.parse().unwrap())
            .collect();
        v.sort();
        v
    };
    let before = objects(&storage);
    let all = admin.open_dedup_index(&cache).unwrap().len();
    let blobs =
        |r: &tresor_core::archiver::BackupResult| r.summary.data_blobs + r.summary.tree_blobs;
    assert_eq!(all, blobs(&a_run) + blobs(&b_run));
    // Which object is b's: the one whose ids go when it is left out.
    let index = admin.load_index().unwrap();
    let b_obj = *before
        .iter()
        .find(|o| {
            index.packs().iter().any(|p| p.index_id == **o) && {
                let bytes = storage.read(Kind::Index, &o.to_hex()).unwrap();
                let (_, f) = tresor_format::index::IndexFile::open(admin.key(), &bytes).unwrap();
                f.packs.iter().map(|p| p.blobs.len() as u64).sum::<u64>() == blobs(&b_run)
            }
        })
        .unwrap();
    let superseding = |key: &Repository, retired: ObjectId| {
        let f = tresor_format::index::IndexFile {
            version: key.config().version,
            supersedes: vec![retired],
            packs: vec![],
        };
        let bytes = f.to_object(key.key(), key.signer()).unwrap();
        key.write_object(Kind::Index, &bytes).unwrap()
    };
    // A put-only key's object naming b's as superseded retires nothing.
    keys::add(&admin, "host", KeyKind::PutOnly, KDF, &owner("vps")).unwrap();
    let host = Repository::open(storage.clone(), "host").unwrap();
    superseding(&host, b_obj);
    let admin = Repository::open(storage.clone(), "admin").unwrap();
    let opened = admin.open_dedup_index(&cache).unwrap();
    assert_eq!((opened.fetched, opened.len()), (1, all));
    assert_eq!(admin.load_dedup_set().unwrap().len() as u64, all);
    // The admin's does (as a prune's consolidated index would): b's blobs no longer count,
    // though b's object is still listed (a storage serving it again).
    superseding(&admin, b_obj);
    let opened = admin.open_dedup_index(&cache).unwrap();
    assert_eq!(opened.fetched, 1);
    assert_eq!(opened.len(), blobs(&a_run));
    // The same without a cache directory (the ids in memory).
    assert_eq!(admin.load_dedup_set().unwrap().len() as u64, blobs(&a_run));
    assert!(storage.read(Kind::Index, &b_obj.to_hex()).is_ok());
}
