//! Garbage and hostile objects never stop work on honest data (issue 10): a 6-byte index object,
//! a garbage snapshot, a truncated index object, a validly signed index object of an unknown
//! signer, a put-only key's garbage copies of another host's blobs (its index object named to
//! sort first), objects too large to read, and blob copies that fail in every way. Each time the
//! honest snapshots still restore byte for byte, `ls`, `check`, `forget` and `prune` work,
//! `check` names the object, and an admin's prune deletes exactly the garbage.

use tresor_testkit::repo::*;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tresor_core::prune::{self, PruneOptions};
use tresor_core::repo::Defect;
use tresor_core::repo::blobs::BlobReader;
use tresor_core::repo::index::{Index, Lister};
use tresor_core::repo::tree;
use tresor_core::restorer::{self, RestoreOptions};
use tresor_core::vfs::{ROOT, Vfs};
use tresor_core::{CoreError, NoProgress, Repository, check, forget, keys};
use tresor_format::blob::BlobType;
use tresor_format::config::Config;
use tresor_format::crypto::DataKey;
use tresor_format::index::{IndexFile, IndexPack};
use tresor_format::keyfile::KeyKind;
use tresor_format::pack::{BlobEntry, PackBuilder};
use tresor_format::sign::Signer;
use tresor_format::{BlobId, ObjectId};
use tresor_storage::faulty::{Fault, FaultyStorage, Method};
use tresor_storage::local::LocalStorage;
use tresor_storage::{ErrorKind, Kind, Storage};

/// Local storage behind the fault layer, which records every call; the range reads of chosen
/// objects fail with a transient error.
type Watched = FaultyStorage<LocalStorage>;

/// The bytes of every read (whole or range) of the object `name`.
fn read_of(w: &Watched, name: &str) -> Vec<u64> {
    w.calls()
        .iter()
        .filter(|c| matches!(c.method, Method::Read | Method::ReadRange) && c.name == name)
        .map(|c| c.len)
        .collect()
}

/// An honest snapshot and what it holds.
struct Honest {
    id: ObjectId,
    src: PathBuf,
    content: Vec<u8>,
}

/// A repository with an admin (full key) and a put-only host "good", each with an honest
/// snapshot, an extra admin snapshot to forget, and a put-only key "evil".
struct World {
    dir: tempfile::TempDir,
    watched: Arc<Watched>,
    storage: Arc<dyn Storage>,
    honest: Vec<Honest>,
    extra: ObjectId,
}

fn source(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let src = dir.join(name);
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data.bin"), content).unwrap();
    std::fs::write(src.join("note.txt"), format!("host {name}")).unwrap();
    src
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let watched = Arc::new(Watched::new(LocalStorage::new(dir.path().join("repo"))));
    let storage: Arc<dyn Storage> = watched.clone();
    let admin = Repository::init(
        storage.clone(),
        "admin",
        KDF,
        &owner("admin"),
        Config::new().unwrap(),
    )
    .unwrap();
    keys::add(&admin, "good", KeyKind::PutOnly, KDF, &owner("good")).unwrap();
    keys::add(&admin, "evil", KeyKind::PutOnly, KDF, &owner("evil")).unwrap();
    let good = Repository::open(storage.clone(), "good").unwrap();
    let mut honest = Vec::new();
    for (repo, host, seed) in [(&admin, "admin", 1u8), (&good, "good", 2)] {
        let content = data(seed, 3 << 20);
        let src = source(dir.path(), host, &content);
        let id = backup(repo, &src, host, None).snapshot_id.unwrap();
        honest.push(Honest { id, src, content });
    }
    let extra_src = source(dir.path(), "extra", b"to be forgotten");
    let extra = backup(&admin, &extra_src, "extra", None)
        .snapshot_id
        .unwrap();
    World {
        dir,
        watched,
        storage,
        honest,
        extra,
    }
}

impl World {
    fn admin(&self) -> Repository {
        Repository::open(self.storage.clone(), "admin").unwrap()
    }

    fn put(&self, kind: Kind, bytes: &[u8]) -> ObjectId {
        let id = ObjectId::of(bytes);
        self.storage.write(kind, &id.to_hex(), bytes).unwrap();
        id
    }

    fn exists(&self, kind: Kind, id: &ObjectId) -> bool {
        self.storage.size(kind, &id.to_hex()).is_ok()
    }

    /// Restore every honest snapshot into a fresh directory and compare it byte for byte.
    fn restores_exactly(&self, repo: &Repository, round: &str) {
        let index = repo.load_index().unwrap();
        for h in &self.honest {
            let snap = repo.load_snapshot(&h.id).unwrap();
            let target = self.dir.path().join(format!("t-{round}-{}", h.id.short()));
            let opts = RestoreOptions {
                verify: true,
                signer: repo.snapshot_signer(&h.id).ok(),
                ..RestoreOptions::new(target.clone())
            };
            let r = restorer::restore(repo, &index, &snap, &opts, &NoProgress).unwrap();
            assert!(r.problems.is_empty(), "{round}: {:?}", r.problems);
            let back = target.join(h.src.strip_prefix("/").unwrap());
            assert!(std::fs::read(back.join("data.bin")).unwrap() == h.content);
            let name = h.src.file_name().unwrap().to_str().unwrap();
            let note = std::fs::read(back.join("note.txt")).unwrap();
            assert_eq!(note, format!("host {name}").as_bytes(), "{round}");
        }
    }

    /// `ls` of every honest snapshot lists its two files.
    fn lists(&self, repo: &Repository) {
        let index = repo.load_index().unwrap();
        for h in &self.honest {
            let snap = repo.load_snapshot(&h.id).unwrap();
            let signer = repo.snapshot_signer(&h.id).ok();
            let reader = BlobReader::for_snapshot(repo, &index, signer);
            let mut files = Vec::new();
            tree::walk(&reader, &snap.tree, "/", &mut |p, n| {
                if n.kind == tresor_format::tree::NodeKind::File {
                    files.push(String::from_utf8(p.to_vec()).unwrap());
                }
            })
            .unwrap();
            let d = h.src.display();
            assert_eq!(files, [format!("{d}/data.bin"), format!("{d}/note.txt")]);
        }
    }

    /// Everything an admin does works on the honest data: snapshots, restore, ls, check (which
    /// names exactly `named` among its problems, as errors when `damage`), forget, and a prune
    /// that deletes exactly `garbage` (and nothing in `kept`); then restore and check again.
    fn honest_work_goes_on(&self, named: &[ObjectId], damage: bool, garbage: &[(Kind, ObjectId)]) {
        let admin = self.admin();
        let (list, _) = admin.load_snapshots().unwrap();
        let ids: BTreeSet<ObjectId> = list.iter().map(|(id, _)| *id).collect();
        let want: BTreeSet<ObjectId> = self
            .honest
            .iter()
            .map(|h| h.id)
            .chain([self.extra])
            .collect();
        assert_eq!(ids, want);
        self.restores_exactly(&admin, "before");
        self.lists(&admin);
        let report = check::check(&admin, check::ReadData::All).unwrap();
        let problems = if damage {
            &report.errors
        } else {
            &report.warnings
        };
        for id in named {
            let hits = problems.iter().filter(|e| e.contains(&id.to_hex())).count();
            assert_eq!(hits, 1, "{id} named once: {report:?}");
        }
        if !damage {
            assert!(report.errors.is_empty(), "{:?}", report.errors);
        }
        assert_eq!(
            report.errors.len(),
            if damage { named.len() } else { 0 },
            "{report:?}"
        );
        // forget: a policy is planned over the honest snapshots, and one is removed by id.
        let groups = forget::plan(
            &admin,
            &Default::default(),
            Default::default(),
            &Default::default(),
            &jiff::tz::TimeZone::UTC,
        )
        .unwrap();
        assert_eq!(groups.iter().map(|g| g.decisions.len()).sum::<usize>(), 3);
        assert_eq!(
            forget::remove(&admin, &[self.extra]).unwrap().deleted,
            [self.extra]
        );
        // prune: deletes exactly the garbage.
        let plan = prune::plan(&admin, &PruneOptions::default()).unwrap();
        let planned: BTreeSet<(String, ObjectId)> = plan
            .garbage
            .iter()
            .map(|g| (g.kind.to_string(), g.id))
            .collect();
        let expected: BTreeSet<(String, ObjectId)> =
            garbage.iter().map(|(k, id)| (k.to_string(), *id)).collect();
        assert_eq!(planned, expected, "{plan:?}");
        let stats = plan.execute(&admin, &NoProgress).unwrap();
        assert_eq!(stats.garbage_deleted, garbage.len());
        for (kind, id) in garbage {
            assert!(!self.exists(*kind, id), "{kind} {id} deleted");
        }
        let admin = self.admin();
        self.restores_exactly(&admin, "after");
        // What is left: the named objects that are damaged but not garbage (kept, reported).
        let report = check::check(&admin, check::ReadData::All).unwrap();
        let left = if damage {
            named.len() - garbage.len()
        } else {
            0
        };
        assert_eq!(report.errors.len(), left, "{report:?}");
    }
}

#[test]
fn a_six_byte_index_object_is_garbage() {
    let w = world();
    let id = w.put(Kind::Index, b"\x00hello");
    w.honest_work_goes_on(&[id], true, &[(Kind::Index, id)]);
}

#[test]
fn a_garbage_snapshot_is_garbage() {
    let w = world();
    let id = w.put(Kind::Snapshot, &data(7, 700));
    w.honest_work_goes_on(&[id], true, &[(Kind::Snapshot, id)]);
}

#[test]
fn a_truncated_index_object_is_garbage() {
    let w = world();
    let (name, _) = w.storage.list(Kind::Index).unwrap().remove(0);
    let whole = w.storage.read(Kind::Index, &name).unwrap();
    let id = w.put(Kind::Index, &whole[..whole.len() / 2]);
    w.honest_work_goes_on(&[id], true, &[(Kind::Index, id)]);
}

#[test]
fn an_index_object_of_an_unknown_signer_is_ignored_and_kept() {
    let w = world();
    let admin = w.admin();
    // A made-up key (a lost key's, or a forger's) lists a copy of an honest pack.
    let (name, _) = w.storage.list(Kind::Index).unwrap().remove(0);
    let (_, honest) =
        IndexFile::open(admin.key(), &w.storage.read(Kind::Index, &name).unwrap()).unwrap();
    let stranger = Signer::generate().unwrap();
    let obj = honest
        .to_object(&admin.key().put_only(), &stranger)
        .unwrap();
    let id = w.put(Kind::Index, &obj);
    let (_, skipped) = admin.load_index_lenient().unwrap();
    assert_eq!(
        skipped.iter().map(|s| (s.id, s.defect)).collect::<Vec<_>>(),
        [(id, Defect::Ignored)]
    );
    w.honest_work_goes_on(&[id], false, &[]);
    assert!(
        w.exists(Kind::Index, &id),
        "an unknown signer's object is never deleted"
    );
}

/// The evil host uploads, under the ids of the good host's data blobs, garbage of the same
/// length, listed by an index object (signed by its certified put-only key) whose name sorts
/// before every other index object. Returns the forged pack, the evil index object and the
/// good host's blob ids.
fn forge_copies(w: &World, raw_length_delta: u64) -> (ObjectId, ObjectId, Vec<BlobId>) {
    let admin = w.admin();
    let good = &w.honest[1];
    let index = admin.load_index().unwrap();
    let reader = BlobReader::new(&admin, &index);
    let snap = admin.load_snapshot(&good.id).unwrap();
    let path = format!("{}/data.bin", good.src.display());
    let node = tree::find_node(&reader, &snap.tree, path.as_bytes())
        .unwrap()
        .unwrap();
    let evil = Repository::open(w.storage.clone(), "evil").unwrap();
    let mut pb = PackBuilder::new(0, 4 << 20).unwrap();
    for id in &node.content {
        let len = reader.location(id).unwrap().raw_length as usize;
        pb.add(BlobType::Data, *id, &vec![0xEE; len]).unwrap();
    }
    let (bytes, mut header) = pb.finish(evil.key()).unwrap();
    let pack = w.put(Kind::Pack, &bytes);
    for b in &mut header.blobs {
        b.raw_length += raw_length_delta;
    }
    let first = w
        .storage
        .list(Kind::Index)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .min()
        .unwrap();
    // Vary `supersedes` (which a put-only key's object cannot use) until the name sorts first.
    for n in 0u32..10_000 {
        let f = IndexFile {
            version: tresor_format::FORMAT_VERSION,
            supersedes: vec![ObjectId::of(&n.to_le_bytes())],
            packs: vec![IndexPack {
                id: pack,
                data_key: header.data_key.clone(),
                blobs: header.blobs.clone(),
            }],
        };
        let obj = f.to_object(evil.key(), evil.signer()).unwrap();
        if ObjectId::of(&obj).to_hex() < first {
            return (pack, w.put(Kind::Index, &obj), node.content.clone());
        }
    }
    panic!("no index object name sorted first");
}

#[test]
fn forged_copies_under_another_hosts_blob_ids_do_not_win() {
    let w = world();
    let (forged_pack, evil_index, ids) = forge_copies(&w, 0);
    let admin = w.admin();
    let index = admin.load_index().unwrap();
    let good_signer = admin.snapshot_signer(&w.honest[1].id).unwrap();
    let reader = BlobReader::for_snapshot(&admin, &index, Some(good_signer));
    for id in &ids {
        let preferred = index.pack(reader.location(id).unwrap().pack);
        assert_eq!(preferred.lister, Lister::PutOnly(good_signer));
        // Without a snapshot to prefer, the forged copy comes first and fails: the next is read.
        let any = BlobReader::new(&admin, &index);
        assert_eq!(index.pack(any.location(id).unwrap().pack).id, forged_pack);
        let plain = reader.load(id, BlobType::Data).unwrap();
        assert!(any.load(id, BlobType::Data).unwrap() == plain);
        assert_eq!(admin.key().blob_id(&plain), *id);
    }
    // Prune keeps the good host's copies (its snapshot uses them; the forger's snapshot-less
    // copies are nobody's), after reading them: the forged pack is condemned.
    let plan = prune::plan(&admin, &PruneOptions::default()).unwrap();
    let condemned: Vec<ObjectId> = plan.condemn_unused.iter().map(|p| p.id).collect();
    assert_eq!(condemned, [forged_pack], "{plan:?}");
    assert!(plan.repack.is_empty(), "{plan:?}");
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    // check --read-data names every forged copy and its writer, as warnings.
    let report = check::check(&admin, check::ReadData::All).unwrap();
    let forged: Vec<_> = report
        .warnings
        .iter()
        .filter(|m| m.contains(&forged_pack.to_hex()))
        .collect();
    assert_eq!(forged.len(), ids.len(), "{report:?}");
    assert!(
        forged
            .iter()
            .all(|m| m.contains("host evil") && m.contains(&evil_index.short()))
    );
    w.honest_work_goes_on(&[], false, &[]);
    // Several prune runs later (every generation approved and deleted), still byte for byte.
    for round in 0..3 {
        for (repo, h) in [
            (w.admin(), &w.honest[0]),
            (
                Repository::open(w.storage.clone(), "good").unwrap(),
                &w.honest[1],
            ),
        ] {
            let host = h.src.file_name().unwrap().to_str().unwrap().to_string();
            backup(&repo, &h.src, &host, None);
        }
        let admin = w.admin();
        let plan = prune::plan(&admin, &PruneOptions::default()).unwrap();
        plan.execute(&admin, &NoProgress).unwrap();
        w.restores_exactly(&w.admin(), &format!("round {round}"));
    }
    assert!(
        !w.exists(Kind::Pack, &forged_pack),
        "the forged pack is deleted"
    );
}

#[test]
fn a_shadow_entry_with_a_wrong_length_does_not_reach_readers() {
    let w = world();
    let (_, _, ids) = forge_copies(&w, 1000);
    let admin = w.admin();
    let good = &w.honest[1];
    let (list, _) = admin.load_snapshots().unwrap();
    let index = admin.load_index().unwrap();
    let vfs = Vfs::new(admin, index, &list, (0, 0)).unwrap();
    let path = format!("ids/{}{}/data.bin", good.id.short(), good.src.display());
    let ino = path
        .split('/')
        .filter(|c| !c.is_empty())
        .fold(ROOT, |ino, c| {
            vfs.lookup(ino, c.as_bytes()).unwrap().unwrap().ino
        });
    let mut back = Vec::new();
    while back.len() < good.content.len() {
        let part = vfs.read(ino, back.len() as u64, 1 << 20).unwrap();
        assert!(!part.is_empty());
        back.extend(part);
    }
    assert!(back == good.content);
    // Without the snapshot's signer to prefer, the shadow entry would place the blobs.
    let index = w.admin().load_index().unwrap();
    let admin = w.admin();
    let shadow = BlobReader::new(&admin, &index)
        .location(&ids[0])
        .unwrap()
        .raw_length;
    let true_len = BlobReader::for_snapshot(&admin, &index, admin.snapshot_signer(&good.id).ok())
        .location(&ids[0])
        .unwrap()
        .raw_length;
    assert_eq!(shadow, true_len + 1000);
}

/// Bytes of a hostile object that is too large, as a sparse file, under a valid name.
fn sparse(w: &World, kind: Kind, dir: &str, len: u64) -> ObjectId {
    let id = ObjectId::of(format!("huge {dir}").as_bytes());
    let f = std::fs::File::create(w.dir.path().join("repo").join(dir).join(id.to_hex())).unwrap();
    f.set_len(len).unwrap();
    assert_eq!(w.storage.size(kind, &id.to_hex()).unwrap(), len);
    id
}

#[test]
fn huge_objects_are_refused_without_being_read() {
    let w = world();
    let index = sparse(&w, Kind::Index, "index", 1 << 30);
    let snapshot = sparse(&w, Kind::Snapshot, "snapshots", 20 << 20);
    let admin = w.admin();
    let (_, skipped) = admin.load_index_lenient().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!((skipped[0].id, skipped[0].defect), (index, Defect::Damaged));
    let m = skipped[0].error.to_string();
    assert!(
        m.contains("1073741824 bytes") && m.contains("refused unread"),
        "{m}"
    );
    let (_, skipped) = admin.load_snapshots().unwrap();
    assert_eq!(
        (skipped[0].id, skipped[0].defect),
        (snapshot, Defect::Damaged)
    );
    // Damaged, not provably garbage: reported, skipped, and never deleted by prune.
    w.honest_work_goes_on(&[index, snapshot], true, &[]);
    assert!(w.exists(Kind::Index, &index) && w.exists(Kind::Snapshot, &snapshot));
    assert_eq!(read_of(&w.watched, &index.to_hex()), Vec::<u64>::new());
    assert_eq!(read_of(&w.watched, &snapshot.to_hex()), Vec::<u64>::new());
}

/// One way a copy of a blob can fail, as a pack in storage and its listing.
fn failing_copy(w: &World, kind: &str, id: BlobId, plain: &[u8]) -> IndexPack {
    let key = w.admin().key().clone();
    let entry = |offset, length, raw_length| BlobEntry {
        blob_type: BlobType::Data,
        id,
        offset,
        length,
        raw_length,
        member: None,
    };
    let listing = |pack: ObjectId, data_key: DataKey, e: BlobEntry| IndexPack {
        id: pack,
        data_key,
        blobs: vec![e],
    };
    let mut pb = PackBuilder::new(0, 1 << 20).unwrap();
    let n = plain.len() as u64;
    match kind {
        "storage error" | "short read" | "length mismatch" => {
            pb.add(BlobType::Data, id, plain).unwrap();
            let (bytes, h) = pb.finish(&key).unwrap();
            let pack = w.put(Kind::Pack, &bytes);
            let mut e = h.blobs[0].clone();
            match kind {
                "storage error" => {
                    let fault = Fault::on(Method::ReadRange, ErrorKind::Transient);
                    w.watched.inject(fault.name(&pack.to_hex()));
                }
                "short read" => e.offset = bytes.len() as u64 - 10,
                _ => e.raw_length = n + 1,
            }
            listing(pack, h.data_key, e)
        }
        "authentication" => {
            let pack = w.put(Kind::Pack, &data(9, 100_000));
            listing(pack, DataKey([3; 32]), entry(64, n + 104, n))
        }
        "malformed" => {
            let dk = DataKey([4; 32]);
            let mut aad = vec![0u8];
            aad.extend_from_slice(&id.0);
            let inner = [vec![7u8], 5u32.to_le_bytes().to_vec(), vec![0; 59]].concat();
            let stored = dk.encrypt(&aad, inner).unwrap();
            let len = stored.len() as u64;
            listing(w.put(Kind::Pack, &stored), dk, entry(0, len, n))
        }
        "id mismatch" => {
            pb.add(BlobType::Data, id, &vec![0xAB; plain.len()])
                .unwrap();
            let (bytes, h) = pb.finish(&key).unwrap();
            listing(w.put(Kind::Pack, &bytes), h.data_key, h.blobs[0].clone())
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_failing_preferred_copy_falls_back_for_every_error_kind() {
    let w = world();
    let admin = w.admin();
    let plain = data(5, 50_000);
    let id = admin.key().blob_id(&plain);
    let mut pb = PackBuilder::new(3, 1 << 20).unwrap();
    pb.add(BlobType::Data, id, &plain).unwrap();
    let (bytes, h) = pb.finish(admin.key()).unwrap();
    let intact = IndexPack {
        id: w.put(Kind::Pack, &bytes),
        data_key: h.data_key,
        blobs: h.blobs,
    };
    let kinds = [
        "storage error",
        "short read",
        "authentication",
        "malformed",
        "id mismatch",
        "length mismatch",
    ];
    let mut all_failing = Index::default();
    for kind in kinds {
        let bad = failing_copy(&w, kind, id, &plain);
        // The failing copy is listed by a full key, the intact one by some put-only key: the
        // failing one is preferred, tried first, and the intact one is read after it.
        let mut index = Index::default();
        index.add_pack(ObjectId::of(b"b"), Lister::PutOnly([1; 32]), &intact);
        index.add_pack(ObjectId::of(b"a"), Lister::Full, &bad);
        let reader = BlobReader::new(&admin, &index);
        assert_eq!(
            index.pack(reader.location(&id).unwrap().pack).id,
            bad.id,
            "{kind}"
        );
        assert!(reader.load(&id, BlobType::Data).unwrap() == plain, "{kind}");
        let alone = {
            let mut i = Index::default();
            i.add_pack(ObjectId::of(b"a"), Lister::Full, &bad);
            i
        };
        let alone = BlobReader::new(&admin, &alone);
        if kind == "length mismatch" {
            // Authentic content under a wrong length: the copy itself is refused, but `load`
            // returns the content when no copy matches its listing (positioning callers check).
            let loc = alone.location(&id).unwrap();
            assert!(alone.load_at(&id, BlobType::Data, loc).is_err());
            assert!(alone.load(&id, BlobType::Data).unwrap() == plain);
            continue;
        }
        let e = alone.load(&id, BlobType::Data).unwrap_err();
        assert_eq!(kind == "storage error", !e.is_damage(), "{kind}: {e}");
        all_failing.add_pack(ObjectId::of(kind.as_bytes()), Lister::Full, &bad);
    }
    // No intact copy: every failure is named.
    let e = BlobReader::new(&admin, &all_failing)
        .load(&id, BlobType::Data)
        .unwrap_err();
    let m = e.to_string();
    assert!(m.contains("no intact copy") && m.contains("among 5"), "{m}");
    for (what, pack) in [
        ("injected transient fault", 0),
        ("authentication failed", 2),
        ("malformed blob", 3),
        ("does not match its id", 4),
    ] {
        assert!(m.contains(what), "{what} ({pack}): {m}");
    }
    assert!(matches!(e, CoreError::Damaged(_)));
}

/// Tree `tree` with the file at `comps` (path components below it) pointing at `content`; the
/// new trees are added to `out`.
fn swap_content(
    reader: &BlobReader<'_>,
    tree: BlobId,
    comps: &[&str],
    content: &[BlobId],
    out: &mut Vec<(BlobId, Vec<u8>)>,
) -> BlobId {
    let mut t = reader.load_tree(&tree).unwrap();
    let node = t
        .nodes
        .iter_mut()
        .find(|n| n.name == comps[0].as_bytes())
        .unwrap();
    if comps.len() == 1 {
        node.content = content.to_vec();
    } else {
        let sub = swap_content(reader, node.subtree.unwrap(), &comps[1..], content, out);
        node.subtree = Some(sub);
    }
    let bytes = t.encode();
    let id = reader.repo().key().blob_id(&bytes);
    out.push((id, bytes));
    id
}

#[test]
fn a_put_only_hosts_snapshot_is_never_an_automatic_parent() {
    let w = world();
    let admin = w.admin();
    let own = &w.honest[0];
    let index = admin.load_index().unwrap();
    let reader = BlobReader::new(&admin, &index);
    let snap = admin.load_snapshot(&own.id).unwrap();
    // The evil host copies the admin's last snapshot, names itself "admin", dates it later, and
    // points data.bin (same size, times and inode) at the blobs of note.txt.
    let note = format!("{}/note.txt", own.src.display());
    let other = tree::find_node(&reader, &snap.tree, note.as_bytes())
        .unwrap()
        .unwrap()
        .content;
    let path = format!("{}/data.bin", own.src.display());
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let mut trees = Vec::new();
    let root = swap_content(&reader, snap.tree, &comps, &other, &mut trees);
    let evil = Repository::open(w.storage.clone(), "evil").unwrap();
    let cfg = evil.config();
    let packer = tresor_core::repo::packer::Packer::new(
        w.storage.clone(),
        evil.key().clone(),
        evil.signer_copy(),
        cfg.pack_size,
        0,
        1,
        false,
    );
    for (id, bytes) in trees {
        packer.add(BlobType::Tree, id, bytes).unwrap();
    }
    packer.finish().unwrap();
    let mut forged = snap.clone();
    forged.tree = root;
    forged.time = "2100-01-01T00:00:00Z".into();
    let forged_id = w.put(
        Kind::Snapshot,
        &forged.seal(evil.key(), evil.signer()).unwrap(),
    );
    let admin = w.admin();
    // A put-only key writes only for its own host: readers ignore this one (format §11).
    let (_, skipped) = admin.load_snapshots().unwrap();
    assert!(
        skipped
            .iter()
            .any(|s| s.id == forged_id && s.defect == Defect::Ignored)
    );
    // The admin's next backup takes its own snapshot as parent, not the forged one.
    let b = backup(&admin, &own.src, "admin", None);
    assert_eq!(b.parent, Some(own.id));
    assert_eq!(b.summary.files_unmodified, 2, "{:?}", b.summary);
    // Under its own host name the forgery is accepted, but a full key backing up the same
    // paths as that host still never takes it as a parent: it reads every file.
    forged.hostname = "evil".into();
    forged.time = jiff::Timestamp::now().to_string();
    let forged_id = w.put(
        Kind::Snapshot,
        &forged.seal(evil.key(), evil.signer()).unwrap(),
    );
    let (list, _) = admin.load_snapshots().unwrap();
    assert!(list.iter().any(|(id, _)| *id == forged_id));
    let b = backup(&admin, &own.src, "evil", None);
    assert_eq!(b.parent, None);
    assert_eq!(b.summary.files_unmodified, 0, "{:?}", b.summary);
    let mut w = w;
    w.honest[0].id = b.snapshot_id.unwrap();
    w.restores_exactly(&w.admin(), "after the backup");
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn a_false_listing_of_another_hosts_pack_hides_nothing() {
    let w = world();
    let admin = w.admin();
    let good = &w.honest[1];
    let index = admin.load_index().unwrap();
    let reader = BlobReader::new(&admin, &index);
    let snap = admin.load_snapshot(&good.id).unwrap();
    let path = format!("{}/data.bin", good.src.display());
    let first = tree::find_node(&reader, &snap.tree, path.as_bytes())
        .unwrap()
        .unwrap()
        .content[0];
    let pack = index.pack(reader.location(&first).unwrap().pack).id;
    // The evil host lists the good host's pack under a made-up key, with one entry of a blob
    // nobody uses (so that the pack would look unused), in an index object that sorts first.
    let evil = Repository::open(w.storage.clone(), "evil").unwrap();
    let entry = BlobEntry {
        blob_type: BlobType::Data,
        id: BlobId([7; 32]),
        offset: 0,
        length: 104,
        raw_length: 10,
        member: None,
    };
    let lowest = w
        .storage
        .list(Kind::Index)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .min()
        .unwrap();
    let false_listing = (0u32..10_000)
        .map(|n| {
            let f = IndexFile {
                version: tresor_format::FORMAT_VERSION,
                supersedes: vec![ObjectId::of(&n.to_le_bytes())],
                packs: vec![IndexPack {
                    id: pack,
                    data_key: DataKey([9; 32]),
                    blobs: vec![entry.clone()],
                }],
            };
            f.to_object(evil.key(), evil.signer()).unwrap()
        })
        .find(|obj| ObjectId::of(obj).to_hex() < lowest)
        .unwrap();
    let evil_index = w.put(Kind::Index, &false_listing);
    // Readers keep the true listing: the good host's snapshot reads as before.
    let admin = w.admin();
    let index = admin.load_index().unwrap();
    let listings: Vec<_> = index.packs().iter().filter(|p| p.id == pack).collect();
    assert_eq!(listings.len(), 2);
    assert_eq!(listings[0].index_id, evil_index);
    w.restores_exactly(&admin, "with a false listing");
    // check --read-data names the false listing.
    let report = check::check(&admin, check::ReadData::All).unwrap();
    let named: Vec<_> = report
        .errors
        .iter()
        .filter(|e| e.contains(&evil_index.to_hex()))
        .collect();
    assert_eq!(named.len(), 1, "{report:?}");
    assert!(named[0].contains("header key differs") && named[0].contains("host evil"));
    // Prune judges the pack by its header: kept (its blobs are used), never condemned.
    let plan = prune::plan(&admin, &PruneOptions::default()).unwrap();
    assert!(
        !plan.condemn_unused.iter().any(|p| p.id == pack),
        "{plan:?}"
    );
    assert!(
        plan.warnings
            .iter()
            .any(|m| m.contains(&pack.to_hex()) && m.contains("different data keys"))
    );
    plan.execute(&admin, &NoProgress).unwrap();
    for round in 0..2 {
        backup(&w.admin(), &w.honest[0].src, "admin", None);
        backup(
            &Repository::open(w.storage.clone(), "good").unwrap(),
            &good.src,
            "good",
            None,
        );
        let admin = w.admin();
        prune::plan(&admin, &PruneOptions::default())
            .unwrap()
            .execute(&admin, &NoProgress)
            .unwrap();
        w.restores_exactly(&w.admin(), &format!("round {round}"));
    }
    // No index object of a full key ever lists the pack under the false key.
    let admin = w.admin();
    for (name, _) in w.storage.list(Kind::Index).unwrap() {
        let (signer, f) =
            IndexFile::open(admin.key(), &w.storage.read(Kind::Index, &name).unwrap()).unwrap();
        if signer == admin.signer().public() {
            assert!(
                !f.packs
                    .iter()
                    .any(|p| p.id == pack && p.data_key.0 == [9; 32]),
                "{name}"
            );
        }
    }
}
