//! A restore that leaves files for later ([`RestoreOptions::skip_packs`], the cold tier's
//! "ready first"): a file needing a blob in a skipped pack gets nothing written (no temporary
//! file, no problem) and is counted and named as waiting; a hard-linked further name waits with
//! it; the rerun without skipped packs fetches only what waited.

use std::collections::HashSet;
use std::path::Path;
use tresor_core::restorer::{self, RestoreOptions, RestoreResult, Waiting};
use tresor_core::{NoProgress, Repository};
use tresor_format::ObjectId;
use tresor_testkit::repo::{backup, setup};
use tresor_testkit::tree::pseudo_random;

fn restore(
    repo: &Repository,
    snap: &ObjectId,
    target: &Path,
    skip: HashSet<ObjectId>,
) -> RestoreResult {
    let snap = repo.load_snapshot(snap).unwrap();
    let index = repo.load_index().unwrap();
    let opts = RestoreOptions {
        skip_packs: skip,
        ..RestoreOptions::new(target.to_path_buf())
    };
    restorer::restore(repo, &index, &snap, &opts, &NoProgress).unwrap()
}

fn pack_ids(repo: &Repository) -> HashSet<ObjectId> {
    let index = repo.load_index().unwrap();
    index.packs().iter().map(|p| p.id).collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = (std::fs::read_dir(dir).unwrap())
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    n.sort();
    n
}

#[test]
fn files_in_skipped_packs_wait_and_the_rerun_fetches_only_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_, repo) = setup(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let (old, new) = (pseudo_random(1, 200_000), pseudo_random(2, 300_000));
    std::fs::write(src.join("old"), &old).unwrap();
    backup(&repo, &src, "h", None);
    let first = pack_ids(&repo);
    std::fs::write(src.join("new"), &new).unwrap();
    std::fs::hard_link(src.join("new"), src.join("new-link")).unwrap();
    let snap = backup(&repo, &src, "h", None).snapshot_id.unwrap();
    // The second backup's packs (its trees' too: only data blobs are looked up).
    let skip: HashSet<ObjectId> = pack_ids(&repo).difference(&first).copied().collect();
    assert!(!skip.is_empty());

    let target = dir.path().join("out");
    let inner = target.join(src.strip_prefix("/").unwrap());
    let r = restore(&repo, &snap, &target, skip);
    let named = |n: &str| inner.join(n).display().to_string();
    let want = Waiting {
        files: 2,
        bytes: 300_000,
        paths: vec![named("new"), named("new-link")],
    };
    assert_eq!(r.waiting, want);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!((r.files_restored, r.others), (1, 0));
    assert_eq!((r.bytes_written, r.bytes_fetched), (200_000, 200_000));
    assert_eq!(names(&inner), ["old"]);
    assert_eq!(std::fs::read(inner.join("old")).unwrap(), old);

    let r = restore(&repo, &snap, &target, HashSet::new());
    assert_eq!(r.waiting, Waiting::default());
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!((r.files_restored, r.files_skipped, r.others), (1, 1, 1));
    assert_eq!((r.bytes_fetched, r.bytes_reused), (300_000, 0));
    assert_eq!(names(&inner), ["new", "new-link", "old"]);
    assert_eq!(std::fs::read(inner.join("new")).unwrap(), new);
    use std::os::unix::fs::MetadataExt;
    let ino = |n: &str| std::fs::metadata(inner.join(n)).unwrap().ino();
    assert_eq!(ino("new-link"), ino("new"));
}
