//! The cold tier (issue 18): data packs may lie in a class that cannot be read without a thaw
//! (S3 `GLACIER`, `DEEP_ARCHIVE`), so everything but restore, dump, `check --read-data` and copy
//! must work without reading one. Here every data pack of a local repository is overwritten
//! with garbage of the same size (any read of one fails to decrypt) and backup (first and
//! incremental), ls, find, diff, snapshots, forget and stats must still succeed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tresor_core::Repository;
use tresor_format::blob::BlobType;
use tresor_testkit::prelude::*;

/// The local paths of the packs holding data blobs and of those holding tree blobs, from the
/// index.
fn packs_by_type(repo_dir: &Path) -> (BTreeSet<PathBuf>, BTreeSet<PathBuf>) {
    let storage = Arc::new(tresor_storage::local::LocalStorage::new(
        repo_dir.to_path_buf(),
    ));
    let repo = Repository::open(storage, PASSWORD).unwrap();
    let index = repo.load_index().unwrap();
    let (mut data, mut trees) = (BTreeSet::new(), BTreeSet::new());
    for (_, loc) in index.blobs() {
        let id = index.pack(loc.pack).id.to_hex();
        let path = repo_dir.join("data").join(&id[..2]).join(&id);
        match loc.blob_type {
            BlobType::Data => data.insert(path),
            BlobType::Tree => trees.insert(path),
        };
    }
    (data, trees)
}

/// Overwrite every data pack with 0xAA bytes of the same length: a stand-in for a cold object
/// (listed, sized, unreadable). Returns how many were spoiled.
fn freeze_data_packs(repo_dir: &Path) -> usize {
    let (data, trees) = packs_by_type(repo_dir);
    assert!(data.is_disjoint(&trees), "a pack holds both kinds");
    for p in &data {
        let len = std::fs::metadata(p).unwrap().len() as usize;
        std::fs::write(p, vec![0xAA; len]).unwrap();
    }
    data.len()
}

#[test]
fn metadata_commands_never_read_data_packs() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("docs")).unwrap();
    std::fs::write(src.join("a.txt"), b"alpha").unwrap();
    std::fs::write(
        src.join("docs/b.txt"),
        tresor_testkit::repo::data(1, 300_000),
    )
    .unwrap();
    env.backup_json(&[&src], &[], 0);
    assert!(freeze_data_packs(&env.repo) >= 1);
    // The spoiled packs are unreadable: a restore fails.
    let target = env.path("out");
    let t = target.display().to_string();
    let o = env.run(&["restore", "latest", "--target", &t]);
    assert_ne!(o.status.code(), Some(0), "restore read a spoiled pack");

    // Incremental backup: an unchanged file, a changed one, a new one.
    std::fs::write(
        src.join("docs/b.txt"),
        tresor_testkit::repo::data(2, 200_000),
    )
    .unwrap();
    std::fs::write(src.join("c.txt"), b"gamma").unwrap();
    let v = env.backup_json(&[&src], &[], 0);
    assert_eq!(v["files_new"], 1, "{v}");
    assert_eq!(v["files_changed"], 1, "{v}");
    assert_eq!(v["files_unmodified"], 1, "{v}");
    assert!(freeze_data_packs(&env.repo) >= 2);
    // A second backup of the same tree with --force (rereads every file, dedups by index).
    env.backup_json(&[&src], &["--force"], 0);

    let ids = env.snapshot_ids();
    assert_eq!(ids.len(), 3);
    let ls = env.ok(&["ls", &ids[1]]);
    let ls = String::from_utf8_lossy(&ls.stdout);
    assert!(ls.contains("c.txt") && ls.contains("b.txt"), "{ls}");
    let found = env.ok(&["find", "*.txt"]);
    assert!(String::from_utf8_lossy(&found.stdout).contains("c.txt"));
    let diff = env.ok(&["diff", &ids[0], &ids[1]]);
    let diff = String::from_utf8_lossy(&diff.stdout);
    assert!(diff.contains("c.txt") && diff.contains("b.txt"), "{diff}");
    env.ok(&["snapshots"]);
    for mode in [
        "restore-size",
        "files-by-contents",
        "raw-data",
        "blobs-per-file",
    ] {
        env.ok(&["stats", "--mode", mode]);
    }
    env.ok(&["forget", "--keep-last", "2"]);
    assert_eq!(env.snapshot_ids().len(), 2);
}
