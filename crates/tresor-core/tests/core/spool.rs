//! The offline spool (format §17) through the library: a flush interrupted after N uploads and
//! run again loses nothing; objects not produced for the repository by this key are refused
//! before anything is uploaded.

use std::collections::BTreeSet;
use std::sync::Arc;
use tresor_core::Repository;
use tresor_core::spool::{self, FLUSH_ORDER};
use tresor_storage::faulty::{Fault, FaultyStorage, Method};
use tresor_storage::local::LocalStorage;
use tresor_storage::{ErrorKind, Kind, Storage};
use tresor_testkit::prelude::*;

/// Every (kind, name, bytes) a flush moves, as they lie in `s`.
fn objects(s: &dyn Storage) -> BTreeSet<(Kind, String, Vec<u8>)> {
    let mut out = BTreeSet::new();
    for kind in FLUSH_ORDER {
        for (name, _) in s.list(kind).unwrap() {
            let bytes = s.read(kind, &name).unwrap();
            out.insert((kind, name, bytes));
        }
    }
    out
}

/// A repository in `dir/repo`, a spool of it in `dir/spool` holding one spooled backup of a
/// small tree; returns the repository's storage and the spool.
fn spooled(dir: &std::path::Path) -> (Arc<dyn Storage>, Arc<dyn Storage>) {
    let (storage, repo) = setup(dir);
    let spool_dir = dir.join("spool");
    let spool = spool::prepare(&repo, &spool_dir).unwrap();
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    write(&src.join("a"), &data(1, 3_000_000));
    write(&src.join("d/b"), b"bee\n");
    let in_spool = Repository::open(spool.clone(), "admin").unwrap();
    backup(&in_spool, &src, "h", None);
    (storage, spool)
}

#[test]
fn prepare_copies_config_key_and_trust_verbatim_mode_0700() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, repo) = setup(dir.path());
    let spool_dir = dir.path().join("spool");
    let spool = spool::prepare(&repo, &spool_dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&spool_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    for kind in [Kind::Config, Kind::Key, Kind::Trust] {
        let mut a = storage.list(kind).unwrap();
        let mut b = spool.list(kind).unwrap();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{kind}");
        for (name, _) in a {
            assert_eq!(
                storage.read(kind, &name).unwrap(),
                spool.read(kind, &name).unwrap()
            );
        }
    }
    assert_eq!(spool::status(spool.as_ref()).unwrap(), Default::default());
    // A second prepare is harmless.
    spool::prepare(&repo, &spool_dir).unwrap();
}

#[test]
fn interrupted_flush_then_rerun_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, spool) = spooled(dir.path());
    let waiting = objects(spool.as_ref());
    let status = spool::status(spool.as_ref()).unwrap();
    assert_eq!(status.snapshots.objects, 1);
    assert_eq!(status.markers.objects, 1);
    assert!(status.packs.objects >= 2, "{status:?}");
    assert_eq!(
        waiting.len() as u64,
        2 + status.packs.objects + status.index.objects
    );
    // The repository fails every write after the first two.
    let faulty = FaultyStorage::new(LocalStorage::new(dir.path().join("repo")));
    faulty.inject(Fault::on(Method::Write, ErrorKind::Transient).after(2));
    let faulty = Arc::new(faulty);
    let repo = Repository::open(faulty.clone(), "admin").unwrap();
    let err = spool::flush(&repo, spool.as_ref(), &mut |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    let left = objects(spool.as_ref());
    let moved: BTreeSet<_> = waiting.difference(&left).cloned().collect();
    assert_eq!(
        moved.len(),
        2,
        "two objects uploaded, then deleted from the spool"
    );
    // Markers first, then packs: no snapshot reached the repository.
    assert!(
        moved
            .iter()
            .all(|(k, _, _)| matches!(k, Kind::Marker | Kind::Pack))
    );
    assert!(storage.list(Kind::Snapshot).unwrap().is_empty());
    for (kind, name, bytes) in &moved {
        assert_eq!(&storage.read(*kind, name).unwrap(), bytes);
    }
    // Run again: everything arrives, verbatim, and the spool keeps only config, key, trust.
    faulty.clear();
    let mut told = 0;
    let done = spool::flush(&repo, spool.as_ref(), &mut |_, _| told += 1).unwrap();
    assert_eq!(told as usize, waiting.len() - 2);
    assert_eq!(done.snapshots.objects, 1);
    assert!(objects(spool.as_ref()).is_empty());
    assert_eq!(objects(storage.as_ref()).len(), waiting.len());
    assert_eq!(objects(storage.as_ref()), waiting);
    let real = Repository::open(storage.clone(), "admin").unwrap();
    let (list, skipped) = real.load_snapshots().unwrap();
    assert_eq!((list.len(), skipped.len()), (1, 0));
}

/// Plant `bytes` as object `name` of `kind` in the spool; the flush must refuse, naming it,
/// and upload nothing.
fn refused(kind: Kind, name: &str, bytes: &[u8], why: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (storage, spool) = spooled(dir.path());
    let local = LocalStorage::new(dir.path().join("spool"));
    std::fs::create_dir_all(local.path(kind, name).parent().unwrap()).unwrap();
    std::fs::write(local.path(kind, name), bytes).unwrap();
    let before = objects(storage.as_ref());
    let repo = Repository::open(storage.clone(), "admin").unwrap();
    let err = spool::flush(&repo, spool.as_ref(), &mut |_, _| {}).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(name) && msg.contains(why), "{msg}");
    assert!(msg.contains("refusing to flush"), "{msg}");
    assert_eq!(objects(storage.as_ref()), before, "nothing uploaded");
}

#[test]
fn a_snapshot_of_another_repository_is_refused() {
    let other = tempfile::tempdir().unwrap();
    let (ostorage, orepo) = setup(other.path());
    std::fs::create_dir_all(other.path().join("s")).unwrap();
    write(&other.path().join("s/f"), b"foreign\n");
    let r = backup(&orepo, &other.path().join("s"), "h", None);
    let id = r.snapshot_id.unwrap().to_hex();
    let bytes = ostorage.read(Kind::Snapshot, &id).unwrap();
    refused(Kind::Snapshot, &id, &bytes, "signed by another key");
}

#[test]
fn a_marker_with_a_name_that_does_not_match_is_refused() {
    let name = "ab".repeat(32);
    refused(
        Kind::Marker,
        &name,
        b"not a marker",
        "does not match its name",
    );
}

#[test]
fn garbage_under_its_own_name_is_refused() {
    let bytes = b"TRS2 garbage index object".to_vec();
    let name = tresor_storage::name_of(&bytes);
    refused(
        Kind::Index,
        &name,
        &bytes,
        "not produced for this repository",
    );
}
