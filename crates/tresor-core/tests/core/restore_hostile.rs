//! Restore of hostile snapshots (issue 10): trees crafted directly through `tresor-format` with
//! bad, duplicate and unsorted names, symlink/directory clashes, trees nested too deep, and index
//! objects whose plaintext lengths lie. Every test asserts that nothing outside the restore
//! target changed and that the honest part of the snapshot restores byte for byte. Also
//! (issue 13) a snapshot whose ACL and mode disagree: the difference is reported.

use tresor_testkit::repo::*;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tresor_core::repo::packer::Packer;
use tresor_core::restorer::{self, RestoreOptions, RestoreResult};
use tresor_core::{CoreError, NoProgress, Repository, keys};
use tresor_format::blob::BlobType;
use tresor_format::index::IndexFile;
use tresor_format::keyfile::KeyKind;
use tresor_format::tree::{MAX_TREE_DEPTH, Node, NodeKind, Timestamp, Tree};
use tresor_format::{BlobId, ObjectId};
use tresor_storage::Kind;

/// Writes crafted trees and files through a packer signed by the repository's key.
struct Craft<'r> {
    repo: &'r Repository,
    packer: Packer,
}

const T: Timestamp = Timestamp {
    secs: 1_600_000_000,
    nanos: 5,
};

fn base(name: &[u8], kind: NodeKind, mode: u32) -> Node {
    Node {
        mode,
        uid: rustix::process::geteuid().as_raw(),
        gid: rustix::process::getegid().as_raw(),
        mtime: T,
        atime: T,
        ctime: T,
        device: 1,
        links: 1,
        ..Node::bare(name, kind)
    }
}

impl<'r> Craft<'r> {
    fn new(repo: &'r Repository) -> Self {
        let cfg = repo.config();
        let packer = Packer::new(
            repo.storage().clone(),
            repo.key().clone(),
            repo.signer_copy(),
            cfg.pack_size,
            cfg.compression_level,
            1,
            false,
        );
        Craft { repo, packer }
    }

    /// A file node with `content` in blobs of at most 256 KiB.
    fn file(&self, name: &[u8], content: &[u8]) -> Node {
        let mut n = base(name, NodeKind::File, 0o644);
        for chunk in content.chunks(256 << 10) {
            let id = self.repo.key().blob_id(chunk);
            self.packer.add(BlobType::Data, id, chunk.to_vec()).unwrap();
            n.content.push(id);
        }
        n.size = content.len() as u64;
        n
    }

    /// A directory node listing `nodes` exactly in the order given.
    fn dir(&self, name: &[u8], mode: u32, nodes: Vec<Node>) -> Node {
        let mut n = base(name, NodeKind::Dir, mode);
        n.subtree = Some(self.tree(nodes));
        n
    }

    fn tree(&self, nodes: Vec<Node>) -> BlobId {
        let bytes = Tree { nodes }.encode();
        let id = self.repo.key().blob_id(&bytes);
        self.packer.add(BlobType::Tree, id, bytes).unwrap();
        id
    }

    /// Store the root tree and a snapshot of it; returns the snapshot id.
    fn snapshot(self, root: Vec<Node>) -> ObjectId {
        let tree = self.tree(root);
        self.packer.finish().unwrap();
        let snap = tresor_testkit::craft::snapshot_record(
            tree,
            "/crafted",
            "crafted",
            "2026-11-30T12:00:00Z",
        );
        self.repo.save_snapshot(&snap).unwrap()
    }
}

fn symlink(name: &[u8], target: &Path) -> Node {
    let mut n = base(name, NodeKind::Symlink, 0o777);
    n.target = target.as_os_str().as_encoded_bytes().to_vec();
    n.size = n.target.len() as u64;
    n
}

fn restore_with(
    repo: &Repository,
    id: &ObjectId,
    opts: RestoreOptions,
) -> tresor_core::Result<RestoreResult> {
    let snap = repo.load_snapshot(id)?;
    let index = repo.load_index()?;
    restorer::restore(repo, &index, &snap, &opts, &NoProgress)
}

fn opts(target: &Path) -> RestoreOptions {
    RestoreOptions {
        verify: true,
        privileged: true,
        workers: 4,
        ..RestoreOptions::new(target.to_path_buf())
    }
}

/// Per path: mode, owner, size, mtime (seconds, nanoseconds) and content.
type State = BTreeMap<PathBuf, (u32, u32, u64, i64, i64, Vec<u8>)>;

/// Everything below `dir` except `skip` (the target and the repository): type, mode, owner,
/// size, mtime and content, to show that a restore changed nothing outside its target.
fn outside(dir: &Path, skip: &[&Path]) -> State {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if skip.contains(&p.as_path()) {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            let content = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else if m.is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                vec![]
            };
            if m.is_dir() {
                stack.push(p.clone());
            }
            let v = (
                m.mode(),
                m.uid(),
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                content,
            );
            out.insert(p, v);
        }
    }
    out
}

/// A tempdir with a repository, a sentinel file and a directory of victims next to where
/// targets go.
struct Scene {
    dir: tempfile::TempDir,
    storage: std::sync::Arc<dyn tresor_storage::Storage>,
    admin: Repository,
}

impl Scene {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (storage, admin) = setup(dir.path());
        std::fs::write(dir.path().join("sentinel"), b"sentinel content").unwrap();
        std::fs::create_dir(dir.path().join("victims")).unwrap();
        std::fs::write(dir.path().join("victims/keep"), b"keep me").unwrap();
        Scene {
            dir,
            storage,
            admin,
        }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    /// The state outside the targets (`t*`) and the repository.
    fn outside(&self) -> State {
        let skip: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                n == "repo" || n.starts_with('t')
            })
            .collect();
        let skip: Vec<&Path> = skip.iter().map(PathBuf::as_path).collect();
        outside(self.dir.path(), &skip)
    }
}

fn assert_damage_below(r: &RestoreResult, below: &str, at_least: usize) {
    assert!(r.problems.len() >= at_least, "{:?}", r.problems);
    for p in &r.problems {
        assert!(p.damage, "{p:?}");
        assert!(p.path.starts_with(below), "{p:?} not below {below}");
    }
}

/// A snapshot with a directory `evil` holding entries named ``, `.`, `..` (a directory),
/// `../sentinel` and `a/b`, then one honest entry `ok`; and a directory `honest`.
fn bad_names(s: &Scene) -> ObjectId {
    let c = Craft::new(&s.admin);
    let above = vec![c.file(b"x", b"written above the target")];
    let evil = vec![
        c.file(b"", b"empty name"),
        c.file(b".", b"dot"),
        c.dir(b"..", 0o777, above),
        c.file(b"../sentinel", b"overwritten"),
        c.file(b"a/b", b"slash"),
        c.file(b"ok", b"the one honest entry of this tree"),
    ];
    let honest = vec![
        c.file(b"big", &data(7, 3 << 20)),
        c.dir(b"sub", 0o750, vec![c.file(b"inner", b"inner")]),
    ];
    let root = vec![c.dir(b"evil", 0o755, evil), c.dir(b"honest", 0o755, honest)];
    c.snapshot(root)
}

/// Bad names are damage naming their path: nothing is created for them, nothing outside the
/// target changes, and the honest entries restore. (Should the tree decoder refuse such a tree
/// as a whole, `evil` stays empty; either way nothing else changes.)
#[test]
fn bad_names_are_damage_and_nothing_leaves_the_target() {
    let s = Scene::new();
    let id = bad_names(&s);
    let before = s.outside();
    let t = s.path("t");
    let r = restore_with(&s.admin, &id, opts(&t)).unwrap();
    // The tree decoder refuses `evil`'s tree whole: the damage is named at `evil` itself.
    assert_damage_below(&r, &format!("{}/evil", t.display()), 1);
    assert_eq!(
        std::fs::read(t.join("honest/big")).unwrap(),
        data(7, 3 << 20)
    );
    assert_eq!(std::fs::read(t.join("honest/sub/inner")).unwrap(), b"inner");
    let in_evil: Vec<_> = std::fs::read_dir(t.join("evil"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(in_evil.len() <= 1, "{in_evil:?}");
    if let Some(n) = in_evil.first() {
        assert_eq!(n, "ok");
        let ok = std::fs::read(t.join("evil/ok")).unwrap();
        assert_eq!(ok, b"the one honest entry of this tree");
    }
    assert_eq!(s.outside(), before);
}

/// The hostile directory's entries restored straight into a target that exists (where the old
/// code removed what `.` and `..` named, and wrote `../sentinel`): damage, the target's own
/// file stays, nothing outside changes.
#[test]
fn bad_names_in_an_existing_target_touch_nothing_outside() {
    let s = Scene::new();
    let id = bad_names(&s);
    let before = s.outside();
    let t = s.path("t");
    std::fs::create_dir(&t).unwrap();
    std::fs::write(t.join("present"), b"was here").unwrap();
    let sub = RestoreOptions {
        subpath: "/evil".into(),
        ..opts(&t)
    };
    let r = restore_with(&s.admin, &id, sub).unwrap();
    assert_damage_below(&r, &t.display().to_string(), 1);
    assert_eq!(std::fs::read(t.join("present")).unwrap(), b"was here");
    assert_eq!(s.outside(), before);
}

/// A subpath through `..` (`restore SNAP:/evil/..`) is refused before anything is written.
#[test]
fn a_subpath_through_dot_dot_is_refused() {
    let s = Scene::new();
    let id = bad_names(&s);
    let before = s.outside();
    let t = s.path("t");
    std::fs::create_dir(&t).unwrap();
    let sub = RestoreOptions {
        subpath: "/evil/..".into(),
        ..opts(&t)
    };
    match restore_with(&s.admin, &id, sub) {
        Err(CoreError::Invalid(m)) => assert!(m.contains("`..`"), "{m}"),
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(std::fs::read_dir(&t).unwrap().count(), 0);
    assert_eq!(s.outside(), before);
}

/// The chmod attack: a directory `d` (mode 06777, large files) followed by a symlink
/// `d` to a file outside the target, and a fifo followed by a symlink of the same name, and
/// names out of order. The second `d` and `f` are damage; the outside file keeps its mode.
/// (Once the tree decoder refuses such a listing as a whole, nothing of it is restored.)
#[test]
fn duplicate_and_unsorted_names_cannot_redirect_metadata() {
    let s = Scene::new();
    let c = Craft::new(&s.admin);
    let sentinel = s.path("sentinel");
    let files: Vec<Node> = (0..6u8)
        .map(|i| c.file(format!("f{i}").as_bytes(), &data(i, 2 << 20)))
        .collect();
    let fifo = base(b"f", NodeKind::Fifo, 0o666);
    let top = vec![
        c.dir(b"d", 0o6777, files),
        symlink(b"d", &sentinel),
        fifo,
        symlink(b"f", &sentinel),
        c.file(b"z", b"last"),
        c.file(b"a", b"out of order"),
    ];
    let root = vec![c.dir(b"top", 0o755, top)];
    let id = c.snapshot(root);
    let before = s.outside();
    let t = s.path("t");
    std::fs::create_dir(&t).unwrap();
    let r = restore_with(
        &s.admin,
        &id,
        RestoreOptions {
            subpath: "/top".into(),
            ..opts(&t)
        },
    )
    .unwrap();
    assert_eq!(s.outside(), before);
    let root = t.display().to_string();
    if r.problems.iter().any(|p| p.path == root) {
        // The tree decoder refused the listing as a whole: nothing of it was restored.
        assert_damage_below(&r, &root, 1);
        assert_eq!(std::fs::read_dir(&t).unwrap().count(), 0);
        return;
    }
    assert_damage_below(&r, &root, 3);
    let named: Vec<&str> = r.problems.iter().map(|p| p.path.as_str()).collect();
    for n in ["/d", "/f", "/a"] {
        let want = format!("{root}{n}");
        assert!(named.contains(&want.as_str()), "{named:?}");
    }
    let d = std::fs::symlink_metadata(t.join("d")).unwrap();
    assert!(d.is_dir());
    assert_eq!(d.mode() & 0o7777, 0o6777);
    for i in 0..6u8 {
        let f = std::fs::read(t.join(format!("d/f{i}"))).unwrap();
        assert_eq!(f, data(i, 2 << 20));
    }
    let f = std::fs::symlink_metadata(t.join("f")).unwrap();
    assert!(f.file_type().is_fifo());
    assert_eq!(std::fs::read(t.join("z")).unwrap(), b"last");
    assert!(!t.join("a").exists());
}

use std::os::unix::fs::FileTypeExt;

/// Directories nested deeper than MAX_TREE_DEPTH are damage; restore and the walk for include
/// patterns stop there without recursing once per level.
#[test]
fn trees_deeper_than_the_limit_are_damage() {
    let s = Scene::new();
    let c = Craft::new(&s.admin);
    let mut node = c.file(b"leaf", b"at the bottom");
    for _ in 0..=MAX_TREE_DEPTH {
        node = c.dir(b"d", 0o755, vec![node]);
    }
    let id = c.snapshot(vec![node]);
    let before = s.outside();
    let t = s.path("t");
    let r = restore_with(&s.admin, &id, opts(&t)).unwrap();
    assert_eq!(
        r.problems.len(),
        1,
        "{:?}",
        &r.problems[..r.problems.len().min(3)]
    );
    let p = &r.problems[0];
    assert!(
        p.damage && p.message.contains("nested deeper than 16384 levels"),
        "{}",
        p.message
    );
    assert_eq!(r.dirs as usize, MAX_TREE_DEPTH);
    // With an include pattern the tree is walked for the directories that lead to matches.
    let t2 = s.path("t2");
    let r = restore_with(
        &s.admin,
        &id,
        RestoreOptions {
            includes: tresor_core::exclude::PatternSet::new(&["leaf".into()]).unwrap(),
            ..opts(&t2)
        },
    )
    .unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.dirs, 0);
    assert_eq!(std::fs::read_dir(&t2).unwrap().count(), 0);
    assert_eq!(s.outside(), before);
    // Exactly MAX_TREE_DEPTH levels exist below the target, the last one empty.
    remove_chain(&t, MAX_TREE_DEPTH);
}

/// Remove the chain `root/d/d/…` of exactly `levels` directories below `root` (and `root`),
/// checking that the last one is empty, bottom up through directory descriptors (`rm -rf`
/// takes quadratic time on such a chain).
fn remove_chain(root: &Path, levels: usize) {
    use rustix::fs::{AtFlags, Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW;
    let mut fds = vec![rustix::fs::open(root, flags, Mode::empty()).unwrap()];
    for _ in 0..levels {
        let next = rustix::fs::openat(fds.last().unwrap(), "d", flags, Mode::empty()).unwrap();
        fds.push(next);
    }
    let last = fds.pop().unwrap();
    let inside = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&last));
    assert_eq!(std::fs::read_dir(inside).unwrap().count(), 0);
    drop(last);
    while let Some(parent) = fds.pop() {
        rustix::fs::unlinkat(&parent, "d", AtFlags::REMOVEDIR).unwrap();
    }
    std::fs::remove_dir(root).unwrap();
}

/// Rewrite `host`'s index objects with each blob's plaintext length changed by `lie(i, len)`
/// (signed by `host` again, the originals deleted); returns the new objects' ids.
fn lying_index(
    storage: &dyn tresor_storage::Storage,
    admin: &Repository,
    host: &Repository,
    written: &[ObjectId],
    lie: &dyn Fn(usize, u64) -> u64,
    sort_before: &[ObjectId],
) -> Vec<ObjectId> {
    let mut out = Vec::new();
    for id in written {
        let bytes = storage.read(Kind::Index, &id.to_hex()).unwrap();
        let (_, mut f) = IndexFile::open(admin.key(), &bytes).unwrap();
        let mut i = 0;
        for p in &mut f.packs {
            for b in &mut p.blobs {
                b.raw_length = lie(i, b.raw_length);
                i += 1;
            }
        }
        // Sealing is randomised: seal again until the object sorts before `sort_before`.
        let mut tries = 0;
        let obj = loop {
            let obj = f.to_object(host.key(), &host.signer_copy()).unwrap();
            let new_id = ObjectId::of(&obj);
            tries += 1;
            if sort_before.iter().all(|o| new_id < *o) || tries >= 20_000 {
                break obj;
            }
        };
        assert!(tries < 20_000, "no index object sorting first");
        out.push(host.write_object(Kind::Index, &obj).unwrap());
        storage.delete(Kind::Index, &id.to_hex()).unwrap();
    }
    out
}

fn index_ids(storage: &dyn tresor_storage::Storage) -> Vec<ObjectId> {
    let mut v: Vec<ObjectId> = storage
        .list(Kind::Index)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n.parse().unwrap())
        .collect();
    v.sort();
    v
}

fn source(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    for (n, c) in files {
        std::fs::write(src.join(n), c).unwrap();
    }
    src
}

/// A put-only host uploads its own copies of another host's blobs (the content is public) and
/// indexes them with wrong plaintext lengths, in an index object that sorts first: the honest
/// host's snapshot still restores byte for byte, verified.
#[test]
fn a_shadow_entry_with_a_wrong_raw_length_does_not_break_an_honest_restore() {
    let s = Scene::new();
    keys::add(&s.admin, "good", KeyKind::PutOnly, KDF, &owner("good")).unwrap();
    keys::add(&s.admin, "evil", KeyKind::PutOnly, KDF, &owner("evil")).unwrap();
    let good = Repository::open(s.storage.clone(), "good").unwrap();
    let evil = Repository::open(s.storage.clone(), "evil").unwrap();
    let (big, small) = (data(9, 5 << 20), b"a small public file".to_vec());
    let src = source(s.dir.path(), &[("big", &big), ("small", &small)]);
    let b = backup(&good, &src, "good", None);
    let good_index = index_ids(s.storage.as_ref());
    // The evil host stores real copies of the same chunks, then lies about their lengths.
    let c = Craft::new(&evil);
    let chunker =
        tresor_format::chunker::Chunker::new(&evil.config().chunker, &evil.key().chunker_key);
    for content in [&big[..], &small[..]] {
        let mut rest = content;
        while !rest.is_empty() {
            let n = chunker.next_cut(rest);
            c.packer
                .add(
                    BlobType::Data,
                    evil.key().blob_id(&rest[..n]),
                    rest[..n].to_vec(),
                )
                .unwrap();
            rest = &rest[n..];
        }
    }
    c.packer.finish().unwrap();
    let evil_written: Vec<ObjectId> = index_ids(s.storage.as_ref())
        .into_iter()
        .filter(|i| !good_index.contains(i))
        .collect();
    let admin = Repository::open(s.storage.clone(), "admin").unwrap();
    lying_index(
        s.storage.as_ref(),
        &admin,
        &evil,
        &evil_written,
        &|_, l| l + 4096,
        &good_index,
    );
    let before = s.outside();
    let t = s.path("t");
    let r = restore_with(&admin, &b.snapshot_id.unwrap(), opts(&t)).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let restored = t.join(src.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(restored.join("big")).unwrap(), big);
    assert_eq!(std::fs::read(restored.join("small")).unwrap(), small);
    assert_eq!(r.files_verified, 2);
    assert_eq!(s.outside(), before);
}

/// A host's own index gives wrong plaintext lengths that still add up to the file's size (one
/// blob longer, the next shorter), and a wrong one for a one-blob file: the parallel writer
/// meets a verified blob of another length and writes the file again sequentially; verify
/// reads back with the verified lengths. Small files are members of one frame (format §7),
/// located by their member offset and listed length: a member whose listed length does not
/// check out is located by the pack's own header.
#[test]
fn a_wrong_raw_length_in_the_only_index_entry_is_survived() {
    let s = Scene::new();
    keys::add(&s.admin, "host", KeyKind::PutOnly, KDF, &owner("host")).unwrap();
    let host = Repository::open(s.storage.clone(), "host").unwrap();
    let big = data(3, 6 << 20);
    let small = b"one blob".to_vec();
    let (small2, small3) = (data(4, 3000), data(5, 700));
    let src = source(
        s.dir.path(),
        &[
            ("big", &big),
            ("small", &small),
            ("small2", &small2),
            ("small3", &small3),
        ],
    );
    let b = backup(&host, &src, "host", None);
    let written = index_ids(s.storage.as_ref());
    let admin = Repository::open(s.storage.clone(), "admin").unwrap();
    let lie = |i: usize, l: u64| match i % 2 {
        0 => l + 100,
        _ => l.saturating_sub(100),
    };
    lying_index(s.storage.as_ref(), &admin, &host, &written, &lie, &[]);
    let before = s.outside();
    let t = s.path("t");
    let r = restore_with(&admin, &b.snapshot_id.unwrap(), opts(&t)).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let restored = t.join(src.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(restored.join("big")).unwrap(), big);
    assert_eq!(std::fs::read(restored.join("small")).unwrap(), small);
    assert_eq!(std::fs::read(restored.join("small2")).unwrap(), small2);
    assert_eq!(std::fs::read(restored.join("small3")).unwrap(), small3);
    assert_eq!((r.files_restored, r.files_verified), (4, 4));
    // A second run finds both files correct (their lengths from the index fail the check, so
    // they are written again rather than trusted).
    let r = restore_with(&admin, &b.snapshot_id.unwrap(), opts(&t)).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(std::fs::read(restored.join("big")).unwrap(), big);
    assert_eq!(s.outside(), before);
}

/// The `system.posix_acl_access` value (version 2) of ACL entries `(tag, permissions, id)`.
fn posix_acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&id.to_le_bytes());
    }
    acl
}

/// Issue 13, class 2: a snapshot whose ACL disagrees with its mode (mask rwx, group bits r--).
/// The file system sets the group bits from the ACL's mask, so the mode read back is not the
/// one applied: a difference naming both values, not silence (and not an error).
#[test]
fn a_mode_the_file_system_changes_is_a_difference() {
    use tresor_core::restorer::{DiffKind, Difference};
    let s = Scene::new();
    let c = Craft::new(&s.admin);
    let mut f = c.file(b"f", b"content");
    f.mode = 0o640;
    let acl = posix_acl(&[
        (0x01, 6, u32::MAX),
        (0x02, 7, 1234),
        (0x04, 4, u32::MAX),
        (0x10, 7, u32::MAX),
        (0x20, 0, u32::MAX),
    ]);
    f.xattrs = vec![tresor_format::tree::Xattr {
        name: b"system.posix_acl_access".to_vec(),
        value: acl,
    }];
    let id = c.snapshot(vec![f]);
    let t = s.path("t");
    let r = restore_with(&s.admin, &id, opts(&t)).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let want = vec![Difference {
        path: format!("{}/f", t.display()),
        what: DiffKind::Mode,
        wanted: "0640".into(),
        got: "0670".into(),
    }];
    assert_eq!(r.differences, want);
    assert_eq!(
        (r.difference_counts.mode, r.difference_counts.total()),
        (1, 1)
    );
    let m = std::fs::metadata(t.join("f")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o670);
    assert_eq!(std::fs::read(t.join("f")).unwrap(), b"content");
}
