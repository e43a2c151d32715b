//! Hostile objects on the decoding side (issue 10): key files with costly Argon2id parameters,
//! and trees that break the rules of format §10 written with a put-only key. (The prune record
//! decoder is fed garbage in `tresor-format/tests/decoders.rs`.)

use tresor_testkit::repo::*;

use std::time::{Duration, Instant};
use tresor_core::repo::packer::Packer;
use tresor_core::{Repository, check, keys};
use tresor_format::blob::BlobType;
use tresor_format::keyfile::{KdfParams, KeyFile, KeyKind};
use tresor_format::snapshot::Snapshot;
use tresor_format::tree::{Node, NodeKind, Timestamp, Tree};
use tresor_format::{BlobId, ObjectId};
use tresor_storage::{Kind, Storage};

/// Store `kf` as a key file; returns its name.
fn plant_key(storage: &dyn Storage, kf: &KeyFile) -> String {
    let bytes = serde_json::to_vec_pretty(kf).unwrap();
    let name = ObjectId::of(&bytes).to_hex();
    storage.write(Kind::Key, &name, &bytes).unwrap();
    name
}

#[test]
fn a_planted_key_file_cannot_delay_opening() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, admin) = setup(dir.path());
    let (honest_name, _) = storage.list(Kind::Key).unwrap().pop().unwrap();
    keys::add(&admin, "host", KeyKind::PutOnly, KDF, &owner("vps")).unwrap();
    let honest = KeyFile::from_bytes(&storage.read(Kind::Key, &honest_name).unwrap()).unwrap();
    // Out of bounds: malformed, never attempted (the old code ran Argon2 with 4 TiB).
    let mut huge = honest.clone();
    huge.params = KdfParams {
        m_kib: u32::MAX,
        t: u32::MAX,
        p: 1,
    };
    let huge_name = plant_key(storage.as_ref(), &huge);
    // Within bounds but as costly as allowed (2 GiB × 1 pass), named to sort before the
    // honest key file: the old code tried key files in name order.
    let mut costly = honest.clone();
    costly.params = KdfParams {
        m_kib: KdfParams::MAX_M_KIB,
        t: 1,
        p: 1,
    };
    assert_eq!(costly.params.cost(), KdfParams::MAX_COST);
    let costly_name = (0..)
        .find_map(|i| {
            costly.username = format!("planted{i}");
            let bytes = serde_json::to_vec_pretty(&costly).unwrap();
            (ObjectId::of(&bytes).to_hex() < honest_name)
                .then(|| plant_key(storage.as_ref(), &costly))
        })
        .unwrap();
    assert!(costly_name < honest_name);
    let started = Instant::now();
    let repo = Repository::open(storage.clone(), "admin").unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(repo.key_id().to_hex(), honest_name);
    // `check` names the malformed one (the key check and the trust loader both report it);
    // the costly one is a well-formed key file.
    let report = check::check(&repo, check::ReadData::None).unwrap();
    let msg = format!(
        "key {huge_name}: malformed key file: kdf parameters: memory 4294967295 KiB over 2097152 KiB"
    );
    assert!(!report.errors.is_empty());
    assert!(
        report.errors.iter().all(|e| *e == msg),
        "{:?}",
        report.errors
    );
    // Other keys open at once too.
    let started = Instant::now();
    let host = Repository::open(storage.clone(), "host").unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(host.key_kind(), KeyKind::PutOnly);
}

#[test]
fn names_that_cannot_enter_a_tree_are_refused_before_anything_is_written() {
    use tresor_core::archiver::{self, StdinSource};
    let dir = tempfile::tempdir().unwrap();
    let (storage, repo) = setup(dir.path());
    let stdin = |name: &str| {
        let mut o = backup_options(dir.path(), "h");
        o.paths.clear();
        o.stdin = Some(StdinSource {
            filename: name.into(),
            reader: Box::new(&b"data"[..]),
        });
        o
    };
    for (name, shown) in [
        ("../../../../tmp/x", r#""../../../../tmp/x""#),
        ("..", r#""..""#),
        ("", r#""""#),
        ("a/b", r#""a/b""#),
        ("nul\0", r#""nul\x00""#),
    ] {
        let e = archiver::backup(&repo, stdin(name), &tresor_core::NoProgress).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "stdin file name {shown}: not a valid file name (not empty, not . or .., no / or NUL)"
            )
        );
    }
    let path = |p: &str| {
        let mut o = backup_options(dir.path(), "h");
        o.paths = vec![p.into()];
        o
    };
    let rel = dir.path().join("x/../y").display().to_string();
    for p in ["relative/x", &rel, "/a/./b", "/a//b", "/a/b/", "./a"] {
        let e = archiver::backup(&repo, path(p), &tresor_core::NoProgress).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("backup path {p}: not absolute and normalised (no ., .., // or trailing /)")
        );
    }
    for kind in [Kind::Marker, Kind::Pack, Kind::Index, Kind::Snapshot] {
        assert_eq!(storage.list(kind).unwrap(), vec![], "{kind:?}");
    }
}

fn node(name: &[u8], kind: NodeKind, subtree: Option<BlobId>) -> Node {
    Node {
        name: name.to_vec(),
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
        user: None,
        group: None,
        mtime: Timestamp::default(),
        atime: Timestamp::default(),
        ctime: Timestamp::default(),
        size: 0,
        device: 0,
        inode: 0,
        links: 1,
        rdev: 0,
        target: Vec::new(),
        xattrs: Vec::new(),
        sparse: false,
        content: Vec::new(),
        subtree,
    }
}

fn snapshot(tree: BlobId) -> Snapshot {
    tresor_testkit::craft::snapshot_record(tree, "/home", "evil", "2026-12-01T00:00:00Z")
}

/// A put-only host stores trees that break format §10 (postcard written directly, no
/// validation), in its own packs and index object, and snapshots that use them: `check` reports
/// each as damage naming the snapshot, the directory and the reason; an honest snapshot stays
/// clean.
#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn check_names_trees_that_break_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, admin) = setup(dir.path());
    keys::add(&admin, "evil", KeyKind::PutOnly, KDF, &owner("evil")).unwrap();
    let evil = Repository::open(storage.clone(), "evil").unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"honest").unwrap();
    let honest = backup(&admin, &src, "good", None);
    let file = |n: &[u8]| node(n, NodeKind::File, None);
    let cases: Vec<(Vec<Node>, &str)> = vec![
        (vec![file(b"..")], r#""..": not a valid name"#),
        (
            vec![file(b"../../etc/cron.d/x")],
            r#""../../etc/cron.d/x": not a valid name"#,
        ),
        (vec![file(b"")], r#""": not a valid name"#),
        (
            vec![
                node(b"d", NodeKind::Dir, Some(BlobId([1; 32]))),
                node(b"d", NodeKind::Symlink, None),
            ],
            r#""d": duplicate name"#,
        ),
        (
            vec![file(b"b"), file(b"a")],
            r#""a": out of order (after "b")"#,
        ),
        (
            vec![node(b"p", NodeKind::Fifo, Some(BlobId([1; 32])))],
            r#""p": subtree on a node that is not a directory"#,
        ),
    ];
    let cfg = evil.config();
    let packer = Packer::new(
        storage.clone(),
        evil.key().clone(),
        evil.signer_copy(),
        cfg.pack_size,
        cfg.compression_level,
        1,
        false,
    );
    let mut expect = Vec::new();
    let mut roots = Vec::new();
    for (nodes, reason) in cases {
        let bad = Tree { nodes }.encode();
        let bad_id = evil.key().blob_id(&bad);
        packer.add(BlobType::Tree, bad_id, bad).unwrap();
        let root = Tree {
            nodes: vec![node(b"home", NodeKind::Dir, Some(bad_id))],
        }
        .encode_checked()
        .unwrap();
        let root_id = evil.key().blob_id(&root);
        packer.add(BlobType::Tree, root_id, root).unwrap();
        roots.push(root_id);
        expect.push((bad_id, reason));
    }
    // A root tree that is bad itself.
    let bad_root = Tree {
        nodes: vec![file(b"x\0y")],
    }
    .encode();
    let bad_root_id = evil.key().blob_id(&bad_root);
    packer.add(BlobType::Tree, bad_root_id, bad_root).unwrap();
    packer.finish().unwrap();
    let mut want = Vec::new();
    for (root, (bad_id, reason)) in roots.into_iter().zip(expect) {
        let id = evil.save_snapshot(&snapshot(root)).unwrap();
        want.push(format!(
            "snapshot {} directory /home/: tree {bad_id}: malformed tree: {reason}",
            id.short()
        ));
    }
    let id = evil.save_snapshot(&snapshot(bad_root_id)).unwrap();
    want.push(format!(
        "snapshot {} directory /: tree {bad_root_id}: malformed tree: \"x\\x00y\": not a valid name",
        id.short()
    ));
    let admin = Repository::open(storage.clone(), "admin").unwrap();
    let report = check::check(&admin, check::ReadData::All).unwrap();
    let mut got = report.errors.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(report.snapshots, 8);
    // The honest snapshot is intact and restores as before.
    let snap = admin.load_snapshot(&honest.snapshot_id.unwrap()).unwrap();
    let index = admin.load_index().unwrap();
    let tree = tresor_core::repo::blobs::BlobReader::new(&admin, &index)
        .load_tree(&snap.tree)
        .unwrap();
    assert!(!tree.nodes.is_empty());
}
