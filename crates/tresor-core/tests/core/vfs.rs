//! The file system view behind `tresor mount`, without FUSE: layout, lookups, reads across
//! blob boundaries, hard links sharing an inode, put-only keys refused.

use tresor_core::vfs::{ROOT, Vfs};
use tresor_core::{CoreError, Repository, keys};
use tresor_format::keyfile::KeyKind;
use tresor_format::tree::NodeKind;
use tresor_testkit::repo::*;

/// The names in directory `ino`, in order.
fn names(vfs: &Vfs, ino: u64) -> Vec<String> {
    vfs.readdir(ino)
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8(e.name).unwrap())
        .collect()
}

/// Walk `path` (slash-separated) from the root; panics when a component is missing.
fn resolve(vfs: &Vfs, path: &str) -> u64 {
    path.split('/')
        .filter(|c| !c.is_empty())
        .fold(ROOT, |ino, c| {
            vfs.lookup(ino, c.as_bytes())
                .unwrap()
                .unwrap_or_else(|| panic!("{c} missing in {path}"))
                .ino
        })
}

#[test]
#[allow(
    clippy::cognitive_complexity,
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn view_lists_snapshots_and_reads_files_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, repo) = setup(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let big = data(9, 5 << 20);
    std::fs::write(src.join("big"), &big).unwrap();
    std::fs::write(src.join("sub/a"), b"alpha").unwrap();
    std::fs::hard_link(src.join("sub/a"), src.join("a-link")).unwrap();
    std::os::unix::fs::symlink("sub/a", src.join("sym")).unwrap();
    let snap = backup(&repo, &src, "h1", None).snapshot_id.unwrap();

    let (list, _) = repo.load_snapshots().unwrap();
    let index = repo.load_index().unwrap();
    let vfs = Vfs::new(repo, index, &list, (1000, 1000)).unwrap();
    let names = |ino| names(&vfs, ino);
    assert_eq!(names(ROOT), ["hosts", "ids", "snapshots", "tags"]);
    assert_eq!(names(resolve(&vfs, "ids")), [snap.short()]);
    assert_eq!(names(resolve(&vfs, "hosts")), ["h1"]);
    assert!(names(resolve(&vfs, "tags")).is_empty());
    let snaps = names(resolve(&vfs, "snapshots"));
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[1], "latest");
    let latest = resolve(&vfs, "snapshots/latest");
    assert_eq!(vfs.getattr(latest).unwrap().kind, NodeKind::Symlink);
    assert_eq!(vfs.readlink(latest).unwrap(), snaps[0].as_bytes());
    let root_attr = vfs.getattr(ROOT).unwrap();
    assert_eq!(
        (root_attr.uid, root_attr.gid, root_attr.mode),
        (1000, 1000, 0o555)
    );

    let base = format!("ids/{}{}", snap.short(), src.display());
    let big_ino = resolve(&vfs, &format!("{base}/big"));
    let attr = vfs.getattr(big_ino).unwrap();
    assert_eq!((attr.kind, attr.size), (NodeKind::File, big.len() as u64));
    // Whole file in 128 KiB requests, as the kernel asks.
    let mut back = Vec::new();
    while back.len() < big.len() {
        let part = vfs.read(big_ino, back.len() as u64, 128 << 10).unwrap();
        assert!(!part.is_empty());
        back.extend(part);
    }
    assert!(back == big, "content differs");
    // Odd ranges, across blob boundaries, and past the end.
    for (off, len) in [
        (0usize, 0usize),
        (1, 3 << 20),
        (2_000_003, 1_500_000),
        (big.len() - 5, 50),
    ] {
        let got = vfs.read(big_ino, off as u64, len).unwrap();
        assert!(
            got == big[off..(off + len).min(big.len())],
            "range {off}+{len}"
        );
    }
    assert!(
        vfs.read(big_ino, big.len() as u64 + 10, 10)
            .unwrap()
            .is_empty()
    );

    // Hard links share one inode; the symlink reads its target.
    let a = resolve(&vfs, &format!("{base}/sub/a"));
    assert_eq!(resolve(&vfs, &format!("{base}/a-link")), a);
    assert_eq!(vfs.getattr(a).unwrap().links, 2);
    assert_eq!(vfs.read(a, 0, 100).unwrap(), b"alpha");
    assert_eq!(vfs.path_of(big_ino), format!("/{base}/big"));
    assert_eq!(vfs.path_of(ROOT), "/");
    let sym = resolve(&vfs, &format!("{base}/sym"));
    assert_eq!(vfs.readlink(sym).unwrap(), b"sub/a");
    // The same snapshot under another path is another directory with its own inodes.
    let other = resolve(
        &vfs,
        &format!("snapshots/{}{}/sub/a", snaps[0], src.display()),
    );
    assert_ne!(other, a);
    assert_eq!(vfs.read(other, 0, 100).unwrap(), b"alpha");
    // Not found, not a directory, not a file.
    assert!(vfs.lookup(ROOT, b"nope").unwrap().is_none());
    assert!(vfs.readdir(big_ino).is_err());
    assert!(vfs.read(ROOT, 0, 1).is_err());
    assert!(vfs.getattr(1 << 40).is_err());

    // A put-only key cannot make a view.
    let admin = Repository::open(storage.clone(), "admin").unwrap();
    keys::add(&admin, "host", KeyKind::PutOnly, KDF, &owner("vps")).unwrap();
    let host = Repository::open(storage, "host").unwrap();
    let index = admin.load_index().unwrap();
    match Vfs::new(host, index, &list, (0, 0)) {
        Err(CoreError::PutOnly(what)) => assert_eq!(what, "mount"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a put-only key made a view"),
    }
}

#[test]
fn hosts_and_tags_that_sanitise_alike_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (_, repo) = setup(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    for host in ["a/b", "a_b", ".."] {
        backup(&repo, &src, host, None);
    }
    let (list, _) = repo.load_snapshots().unwrap();
    let index = repo.load_index().unwrap();
    let vfs = Vfs::new(repo, index, &list, (0, 0)).unwrap();
    let names = |ino| names(&vfs, ino);
    let hosts = resolve(&vfs, "hosts");
    assert_eq!(names(hosts), ["_..", "a_b", "a_b~2"]);
    for h in ["_..", "a_b", "a_b~2"] {
        let in_host = names(resolve(&vfs, &format!("hosts/{h}")));
        assert_eq!(
            in_host.len(),
            2,
            "{h}: one snapshot and latest: {in_host:?}"
        );
    }
}

/// A local repository whose packs in `cold` behave as S3 archived objects do: reads fail (as
/// moto's `InvalidObjectState`), `cold_state` says DEEP_ARCHIVE, thawing when `thawing`.
#[derive(Debug)]
struct Frozen {
    inner: std::sync::Arc<dyn tresor_storage::Storage>,
    cold: std::sync::Mutex<std::collections::BTreeSet<String>>,
    thawing: std::sync::atomic::AtomicBool,
    /// `cold_state` answers "hot" for every pack (reads of cold ones still fail: damage).
    silent: std::sync::atomic::AtomicBool,
}

impl Frozen {
    fn is_cold(&self, kind: tresor_storage::Kind, name: &str) -> bool {
        kind == tresor_storage::Kind::Pack && self.cold.lock().unwrap().contains(name)
    }
    fn refuse(&self, kind: tresor_storage::Kind, name: &str) -> tresor_storage::StorageError {
        let k = tresor_storage::ErrorKind::PermissionDenied;
        tresor_storage::StorageError::new(k, "read", kind, name, "InvalidObjectState")
    }
}

impl tresor_storage::Forward for Frozen {
    fn inner(&self) -> &dyn tresor_storage::Storage {
        &*self.inner
    }
    fn read(&self, kind: tresor_storage::Kind, name: &str) -> tresor_storage::Result<Vec<u8>> {
        if self.is_cold(kind, name) {
            return Err(self.refuse(kind, name));
        }
        self.inner.read(kind, name)
    }
    fn read_range(
        &self,
        kind: tresor_storage::Kind,
        name: &str,
        offset: u64,
        length: u64,
    ) -> tresor_storage::Result<Vec<u8>> {
        if self.is_cold(kind, name) {
            return Err(self.refuse(kind, name));
        }
        self.inner.read_range(kind, name, offset, length)
    }
    fn cold_state(
        &self,
        kind: tresor_storage::Kind,
        name: &str,
    ) -> tresor_storage::Result<Option<tresor_storage::cold::ColdState>> {
        use std::sync::atomic::Ordering::SeqCst;
        use tresor_storage::cold::{ColdClass, ColdState, Restore};
        if !self.is_cold(kind, name) || self.silent.load(SeqCst) {
            return Ok(None);
        }
        let thawing = self.thawing.load(SeqCst);
        Ok(Some(ColdState {
            class: ColdClass::DeepArchive,
            restore: if thawing {
                Restore::Ongoing
            } else {
                Restore::None
            },
            stored_at: None,
        }))
    }
}

/// Reading a file whose data pack is cold gives [`CoreError::Cold`] naming the file, the pack,
/// its class and thaw state, and the `SNAPSHOT:PATH` a restore takes; once thawed the file
/// reads exactly; a pack that fails without being cold gives the storage's error, as before.
#[test]
fn cold_data_reads_as_a_cold_error_naming_the_file() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = tempfile::tempdir().unwrap();
    let (storage, repo) = setup(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let content = data(5, 300_000);
    std::fs::write(src.join("f"), &content).unwrap();
    let snap = backup(&repo, &src, "h1", None).snapshot_id.unwrap();
    let index = repo.load_index().unwrap();
    let data_packs: std::collections::BTreeSet<String> = (index.blobs())
        .filter(|(_, l)| l.blob_type == tresor_format::blob::BlobType::Data)
        .map(|(_, l)| index.pack(l.pack).id.to_hex())
        .collect();
    assert_eq!(data_packs.len(), 1);
    let pack = data_packs.iter().next().unwrap().clone();
    let frozen = std::sync::Arc::new(Frozen {
        inner: storage,
        cold: std::sync::Mutex::new(data_packs),
        thawing: false.into(),
        silent: false.into(),
    });
    let repo = Repository::open(frozen.clone(), "admin").unwrap();
    let (list, _) = repo.load_snapshots().unwrap();
    let vfs = Vfs::new(repo, index, &list, (0, 0)).unwrap();
    let path = format!("ids/{}{}/f", snap.short(), src.display());
    let f = resolve(&vfs, &path);
    assert_eq!(vfs.getattr(f).unwrap().size, content.len() as u64);
    let cold = |state: &str| match vfs.read(f, 0, 4096) {
        Err(CoreError::Cold {
            file,
            class,
            pack: p,
            state: s,
            snapshot_path,
        }) => {
            assert_eq!(file, format!("/{path}"));
            assert_eq!((class, p.as_str(), s), ("DEEP_ARCHIVE", &pack[..8], state));
            let want = format!("{}:{}/f", snap.short(), src.display());
            assert_eq!(snapshot_path.as_deref(), Some(want.as_str()));
        }
        other => panic!("not a cold error: {other:?}"),
    };
    cold("not thawed");
    frozen.thawing.store(true, SeqCst);
    cold("still thawing");
    // A pack that fails to read but is not cold gives the read's own error.
    frozen.silent.store(true, SeqCst);
    match vfs.read(f, 0, 4096) {
        Err(CoreError::Storage(e)) => assert_eq!(e.message, "InvalidObjectState"),
        other => panic!("not the storage's error: {other:?}"),
    }
    // Thawed: the exact bytes.
    frozen.cold.lock().unwrap().clear();
    let mut back = Vec::new();
    while back.len() < content.len() {
        let part = vfs.read(f, back.len() as u64, 128 << 10).unwrap();
        assert!(!part.is_empty());
        back.extend(part);
    }
    assert!(back == content, "content differs");
}
