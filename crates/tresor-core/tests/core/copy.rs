//! `copy` interrupted: the target's storage fails the second snapshot's write (after its packs
//! and index objects are stored); a second run skips the first snapshot, writes no blob again
//! and only the missing snapshot; the copies read back byte for byte.

use std::path::Path;
use std::sync::Arc;
use tresor_core::copy::{CopyOptions, copy, read_record};
use tresor_core::repo::blobs::BlobReader;
use tresor_core::repo::tree::find_node;
use tresor_core::{NoProgress, Repository};
use tresor_format::ObjectId;
use tresor_format::blob::BlobType;
use tresor_format::config::Config;
use tresor_format::snapshot::Snapshot;
use tresor_storage::faulty::{Fault, FaultyStorage, Method};
use tresor_storage::local::LocalStorage;
use tresor_storage::{ErrorKind, Kind, Storage};
use tresor_testkit::prelude::*;

fn source_tree(dir: &Path, name: &str, seed: u64) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.join("sub")).unwrap();
    std::fs::write(p.join("big"), pseudo_random(seed, 3 << 20)).unwrap();
    std::fs::write(p.join("sub/small"), pseudo_random(seed + 100, 5000)).unwrap();
    p
}

fn selected(repo: &Repository) -> Vec<(ObjectId, Snapshot)> {
    repo.load_snapshots().unwrap().0
}

/// The bytes of the file at `path` in snapshot `id` of `repo`.
fn file_bytes(repo: &Repository, id: &ObjectId, path: &Path) -> Vec<u8> {
    let index = repo.load_index().unwrap();
    let reader = BlobReader::new(repo, &index);
    let root = repo.load_snapshot(id).unwrap().tree;
    let node = find_node(&reader, &root, path.as_os_str().as_encoded_bytes())
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    for b in &node.content {
        out.extend(reader.load(b, BlobType::Data).unwrap());
    }
    out
}

#[test]
fn an_interrupted_copy_completes_on_the_second_run_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (_, src) = setup(dir.path());
    let one = source_tree(dir.path(), "one", 1);
    let two = source_tree(dir.path(), "two", 2);
    backup(&src, &one, "h", None);
    backup(&src, &two, "h", None);
    let faulty = Arc::new(FaultyStorage::new(LocalStorage::new(dir.path().join("t"))));
    let storage: Arc<dyn Storage> = faulty.clone();
    let dst = Repository::init(storage, "other", KDF, &owner("t"), Config::new().unwrap()).unwrap();
    let list = selected(&src);
    let index = src.load_index().unwrap();
    let rec = dir.path().join("cache/copied");
    let opts = CopyOptions {
        workers: 2,
        record: Some(rec.clone()),
        ..CopyOptions::default()
    };
    faulty.inject(
        Fault::on(Method::Write, ErrorKind::NoSpace)
            .kind(Kind::Snapshot)
            .after(1),
    );
    let e = copy(&src, &index, &dst, &list, &opts, &NoProgress).unwrap_err();
    assert!(e.to_string().contains("injected"), "{e}");
    faulty.clear();
    assert_eq!(dst.load_snapshots().unwrap().0.len(), 1);
    // The record names the snapshot copied before the failure, at once.
    assert_eq!(read_record(&rec), [list[0].0].into_iter().collect());
    let packs = faulty.list(Kind::Pack).unwrap().len();
    let r = copy(&src, &index, &dst, &list, &opts, &NoProgress).unwrap();
    assert_eq!(r.snapshots.len(), 2);
    assert!(!r.snapshots[0].written);
    assert!(r.snapshots[1].written);
    // The second snapshot's blobs were indexed by the first run: only the snapshot is new.
    assert_eq!((r.data_blobs, r.tree_blobs, r.objects_written), (0, 0, 1));
    // Its data is read once more (to learn the target's ids), but not stored again.
    assert_eq!(r.bytes_read, (3 << 20) + 5000);
    assert_eq!(faulty.list(Kind::Pack).unwrap().len(), packs);
    let copies = selected(&dst);
    assert_eq!(copies.len(), 2);
    let both: tresor_core::repo::index::IdSet<ObjectId> = list.iter().map(|s| s.0).collect();
    assert_eq!(read_record(&rec), both);
    for ((sid, s), (cid, c)) in list.iter().zip(&copies) {
        assert_eq!(c.original, Some(*sid));
        assert_eq!(
            (&c.time, &c.paths, &c.hostname),
            (&s.time, &s.paths, &s.hostname)
        );
        for f in ["big", "sub/small"] {
            let p = Path::new(&s.paths[0]).join(f);
            assert_eq!(
                file_bytes(&dst, cid, &p),
                file_bytes(&src, sid, &p),
                "{p:?}"
            );
        }
    }
    // A third run copies nothing and reads nothing.
    let r = copy(&src, &index, &dst, &list, &opts, &NoProgress).unwrap();
    assert_eq!((r.objects_written, r.bytes_read), (0, 0));
}
