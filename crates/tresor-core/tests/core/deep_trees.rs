//! A snapshot whose directories nest one level deeper than `MAX_TREE_DEPTH`: `check`, `ls`,
//! `prune`, `repair snapshots` and the mount view report it as damage naming the path, and none
//! of them needs a deep call stack (this test runs on the test harness's small thread stack).

use tresor_testkit::repo::*;

use tresor_core::prune::{self, PruneOptions};
use tresor_core::repair::{self, RepairSnapshotsOptions};
use tresor_core::repo::blobs::BlobReader;
use tresor_core::repo::packer::Packer;
use tresor_core::repo::tree;
use tresor_core::vfs::{ROOT, Vfs};
use tresor_core::{CoreError, Damage, NoProgress, check};
use tresor_format::BlobId;
use tresor_format::blob::BlobType;
use tresor_format::snapshot::Snapshot;
use tresor_format::tree::{MAX_TREE_DEPTH, Node, NodeKind, Tree};

fn dir(sub: BlobId) -> Node {
    Node {
        mode: 0o755,
        links: 1,
        subtree: Some(sub),
        ..Node::bare(b"d", NodeKind::Dir)
    }
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn one_level_too_deep_is_damage_everywhere() {
    let dir_ = tempfile::tempdir().unwrap();
    let (_, repo) = setup(dir_.path());
    // Trees T0 (root) … TL, each holding "d" → the next; TL (empty) lies at depth L.
    let levels = MAX_TREE_DEPTH + 1;
    let packer = tree_packer(&repo);
    let mut bytes = Tree::default().encode();
    let mut id = repo.key().blob_id(&bytes);
    for _ in 0..levels {
        packer.add(BlobType::Tree, id, bytes).unwrap();
        bytes = Tree {
            nodes: vec![dir(id)],
        }
        .encode();
        id = repo.key().blob_id(&bytes);
    }
    packer.add(BlobType::Tree, id, bytes).unwrap();
    packer.finish().unwrap();
    let snap = snapshot(id, "/d", "deep");
    let snap_id = repo.save_snapshot(&snap).unwrap();
    let too_deep = format!("nested deeper than {MAX_TREE_DEPTH} directories");
    let path = "/d".repeat(levels);

    let report = check::check(&repo, check::ReadData::None).unwrap();
    assert_eq!(
        report.errors,
        [format!(
            "snapshot {} directory {path}/: {too_deep}",
            snap_id.short()
        )]
    );

    let index = repo.load_index().unwrap();
    let reader = BlobReader::new(&repo, &index);
    let mut seen = 0usize;
    let e = tree::walk(&reader, &snap.tree, "/", &mut |_, _| seen += 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("repository damaged: {path}: {too_deep}")
    );
    assert_eq!(seen, levels);

    let e = prune::plan(&repo, &PruneOptions::default()).unwrap_err();
    assert!(matches!(
        e,
        CoreError::KnownDamage {
            damage: Damage::SnapshotTree,
            ..
        }
    ));
    let m = e.to_string();
    assert!(
        m.contains(&format!("directory /{}: {too_deep}", "d/".repeat(levels))),
        "{}",
        &m[..200]
    );

    let opts = RepairSnapshotsOptions {
        dry_run: true,
        ..Default::default()
    };
    let r = repair::repair_snapshots(&repo, &opts, &NoProgress).unwrap();
    assert_eq!(r.repaired.len(), 1);
    assert_eq!(
        r.repaired[0].removed,
        [format!(
            "/{}/ (directory unreadable: {too_deep})",
            "d/".repeat(levels - 1) + "d"
        )]
    );

    let (list, _) = repo.load_snapshots().unwrap();
    let vfs = Vfs::new(repo, index, &list, (0, 0)).unwrap();
    let base = format!("ids/{}", snap_id.short());
    let mut ino = base.split('/').fold(ROOT, |ino, c| {
        vfs.lookup(ino, c.as_bytes()).unwrap().unwrap().ino
    });
    for _ in 0..levels {
        ino = vfs.lookup(ino, b"d").unwrap().unwrap().ino;
    }
    let e = vfs.readdir(ino).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("repository damaged: /{base}{path}: {too_deep}")
    );
}

/// A parent snapshot whose directory, gone from the source, is a lattice: 60 levels, each tree
/// listing the next twice, one file at the bottom — 2⁶⁰ paths. The backup counts 2⁶⁰ deleted
/// files by reading each of the 61 trees once (one visit per path would never end), finds the
/// parent tree of the directory after it (the read-ahead, which follows the parent path by
/// path, is given up after `MAX_PASSED_OVER` trees), and its snapshot is the source's.
#[test]
fn a_deleted_directory_built_as_a_lattice_is_counted_without_walking_every_path() {
    let dir_ = tempfile::tempdir().unwrap();
    let (storage, repo) = setup(dir_.path());
    let src = dir_.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("kept"), b"kept").unwrap();
    std::fs::create_dir_all(src.join("zz")).unwrap();
    std::fs::write(src.join("zz/f"), b"zz").unwrap();
    let parent = lattice_parent(&repo, &src);
    let opts = tresor_core::archiver::BackupOptions {
        parent: tresor_core::archiver::ParentChoice::Id(parent),
        ..backup_options(&src, "lattice")
    };
    // Bounded: one visit per path would run for years; fail after a minute instead (the
    // backup runs on a thread of its own, left behind then).
    let (tx, rx) = std::sync::mpsc::channel();
    let opened = storage.clone();
    std::thread::spawn(move || {
        let repo = tresor_core::Repository::open(opened, "admin").unwrap();
        let _ = tx.send(tresor_core::archiver::backup(&repo, opts, &NoProgress));
    });
    let b = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the backup ends within a minute")
        .unwrap();
    assert_eq!(b.parent, Some(parent));
    assert_eq!(b.summary.files_deleted, 1 << 60, "{:?}", b.summary);
    // zz/f against its parent node: zz's parent tree was found after the lattice.
    let s = &b.summary;
    assert_eq!((s.files_new, s.files_changed), (1, 1), "{s:?}");
    let target = dir_.path().join("t");
    let index = repo.load_index().unwrap();
    let restored = restore_verified(&repo, &index, &b.snapshot_id.unwrap(), &target, &src);
    assert_eq!(std::fs::read(restored.join("kept")).unwrap(), b"kept");
    assert_eq!(std::fs::read(restored.join("zz/f")).unwrap(), b"zz");
    assert!(!restored.join("lattice").exists());
}

/// A snapshot of `src` for host `lattice` whose tree holds, at `src`, a directory `lattice` —
/// 60 levels, each tree listing the next twice as `a` and `b`, one file at the bottom — and a
/// directory `zz` with a file `f`.
fn lattice_parent(
    repo: &tresor_core::Repository,
    src: &std::path::Path,
) -> tresor_format::ObjectId {
    let packer = tree_packer(repo);
    let store = |nodes: Vec<Node>| {
        let bytes = Tree { nodes }.encode_checked().unwrap();
        let id = repo.key().blob_id(&bytes);
        packer.add(BlobType::Tree, id, bytes).unwrap();
        id
    };
    let named = |name: &[u8], sub: BlobId| Node {
        name: name.to_vec(),
        ..dir(sub)
    };
    let mut id = store(vec![Node::bare(b"file", NodeKind::File)]);
    for _ in 0..60 {
        id = store(vec![named(b"a", id), named(b"b", id)]);
    }
    // The source's path down to it, the lattice in the place of a directory now gone, and
    // after it a directory still there.
    let zz = store(vec![Node::bare(b"f", NodeKind::File)]);
    id = store(vec![named(b"lattice", id), named(b"zz", zz)]);
    let components: Vec<Vec<u8>> = src
        .components()
        .skip(1)
        .map(|c| c.as_os_str().as_encoded_bytes().to_vec())
        .collect();
    for name in components.iter().rev() {
        id = store(vec![named(name, id)]);
    }
    packer.finish().unwrap();
    let path = src.display().to_string();
    repo.save_snapshot(&snapshot(id, &path, "lattice")).unwrap()
}

/// A packer for crafted trees (no compression, two workers).
fn tree_packer(repo: &tresor_core::Repository) -> Packer {
    let cfg = repo.config();
    Packer::new(
        repo.storage().clone(),
        repo.key().clone(),
        repo.signer_copy(),
        cfg.pack_size,
        0,
        2,
        false,
    )
}

/// A snapshot of root tree `tree` for `path` and `host`, dated 2026-01-01.
fn snapshot(tree: BlobId, path: &str, host: &str) -> Snapshot {
    tresor_testkit::craft::snapshot_record(tree, path, host, "2026-01-01T00:00:00Z")
}
