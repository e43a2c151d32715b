//! Issue 11, item 1: a put-only host cannot make prune delete other hosts' data. The attacker
//! (put-only key `evil`) knows the blob ids of the victim's data (the test hands them over, as
//! a leak of any kind would), uploads garbage under them in a pack listed by an index object
//! whose name sorts before every other, and forges snapshots to approve the deletion. Prune
//! keeps the victim's copies (read and verified before the forger's pack is condemned), the
//! forged snapshots approve nothing, and after every run the victim's and the admin's
//! snapshots restore byte for byte.

use tresor_testkit::repo::*;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tresor_core::prune::{self, PruneOptions, PrunePlan, PruneStats};
use tresor_core::repo::blobs::BlobReader;
use tresor_core::repo::tree;
use tresor_core::restorer::{self, RestoreOptions};
use tresor_core::{NoProgress, Repository, check, keys};
use tresor_format::blob::BlobType;
use tresor_format::index::{IndexFile, IndexPack};
use tresor_format::keyfile::KeyKind;
use tresor_format::pack::PackBuilder;
use tresor_format::snapshot::Snapshot;
use tresor_format::{BlobId, ObjectId};
use tresor_storage::{Kind, Storage};

/// A snapshot and the bytes its `data.bin` and `note.txt` held.
struct Kept {
    id: ObjectId,
    src: PathBuf,
    data: Vec<u8>,
    note: Vec<u8>,
}

struct World {
    dir: tempfile::TempDir,
    storage: Arc<dyn Storage>,
    /// The victim's first snapshot (its data is what the forger goes after) and the admin's.
    kept: Vec<Kept>,
}

fn write_source(src: &Path, data: &[u8], note: &[u8]) {
    std::fs::create_dir_all(src).unwrap();
    std::fs::write(src.join("data.bin"), data).unwrap();
    std::fs::write(src.join("note.txt"), note).unwrap();
}

/// Admin (full key, host `admin`), put-only `victim` and `evil` (certified for hosts of the
/// same names); the admin and the victim back up once, then the victim's files change (so its
/// later backups never upload the first snapshot's data again).
fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let (storage, admin) = setup(dir.path());
    keys::add(&admin, "victim", KeyKind::PutOnly, KDF, &owner("victim")).unwrap();
    keys::add(&admin, "evil", KeyKind::PutOnly, KDF, &owner("evil")).unwrap();
    let victim = Repository::open(storage.clone(), "victim").unwrap();
    let mut kept = Vec::new();
    for (repo, host, seed) in [(&victim, "victim", 1), (&admin, "admin", 2)] {
        let src = dir.path().join(host);
        // 9 MiB: more than twice the chunker's 4 MiB maximum, so every repository's keyed cuts
        // make several blobs (3 MiB was one blob in some repositories).
        let (d, note) = (noise(seed, 9 << 20), format!("host {host}").into_bytes());
        write_source(&src, &d, &note);
        let id = backup(repo, &src, host, None).snapshot_id.unwrap();
        kept.push(Kept {
            id,
            src,
            data: d,
            note,
        });
    }
    write_source(&kept[0].src, &noise(9, 1 << 20), b"host victim, later");
    World { dir, storage, kept }
}

impl World {
    fn open(&self, password: &str) -> Repository {
        Repository::open(self.storage.clone(), password).unwrap()
    }

    fn exists(&self, kind: Kind, id: &ObjectId) -> bool {
        self.storage.size(kind, &id.to_hex()).is_ok()
    }

    /// Restore the kept snapshots with the admin key and compare them byte for byte.
    fn restores_exactly(&self, round: &str) {
        let admin = self.open("admin");
        let index = admin.load_index().unwrap();
        for k in &self.kept {
            let snap = admin.load_snapshot(&k.id).unwrap();
            let target = self.dir.path().join(format!("t-{round}-{}", k.id.short()));
            let opts = RestoreOptions {
                verify: true,
                signer: admin.snapshot_signer(&k.id).ok(),
                ..RestoreOptions::new(target.clone())
            };
            let r = restorer::restore(&admin, &index, &snap, &opts, &NoProgress).unwrap();
            assert!(r.problems.is_empty(), "{round}: {:?}", r.problems);
            let back = target.join(k.src.strip_prefix("/").unwrap());
            assert!(
                std::fs::read(back.join("data.bin")).unwrap() == k.data,
                "{round}"
            );
            assert_eq!(std::fs::read(back.join("note.txt")).unwrap(), k.note);
        }
    }

    /// Everyone honest backs up again (new snapshots of `victim` and `admin`).
    fn honest_backups(&self) {
        for (pw, host) in [("victim", "victim"), ("admin", "admin")] {
            backup(&self.open(pw), &self.dir.path().join(host), host, None);
        }
    }

    /// The victim's data blobs of its first snapshot, with their plaintext lengths.
    fn victim_blobs(&self) -> Vec<(BlobId, usize)> {
        let admin = self.open("admin");
        let index = admin.load_index().unwrap();
        let reader = BlobReader::new(&admin, &index);
        let snap = admin.load_snapshot(&self.kept[0].id).unwrap();
        let path = format!("{}/data.bin", self.kept[0].src.display());
        let node = tree::find_node(&reader, &snap.tree, path.as_bytes())
            .unwrap()
            .unwrap();
        assert!(
            node.content.len() >= 2,
            "several blobs: {}",
            node.content.len()
        );
        let len = |id: &BlobId| reader.location(id).unwrap().raw_length as usize;
        node.content.iter().map(|id| (*id, len(id))).collect()
    }

    /// The packs holding the victim's first snapshot's blobs (its own uploads).
    fn victim_packs(&self) -> Vec<ObjectId> {
        let admin = self.open("admin");
        let index = admin.load_index().unwrap();
        let mut v: Vec<ObjectId> = self
            .victim_blobs()
            .iter()
            .map(|(id, _)| index.pack(index.get(id).unwrap().pack).id)
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// `evil` uploads garbage of the same lengths under the victim's blob ids, listed by an
    /// index object (signed by its certified put-only key) whose name sorts before every other
    /// index object. Returns the forged pack.
    fn forge_copies(&self) -> ObjectId {
        let evil = self.open("evil");
        let mut pb = PackBuilder::new(0, 4 << 20).unwrap();
        for (id, len) in self.victim_blobs() {
            pb.add(BlobType::Data, id, &vec![0xEE; len]).unwrap();
        }
        let (bytes, header) = pb.finish(evil.key()).unwrap();
        let pack = evil.write_object(Kind::Pack, &bytes).unwrap();
        let first = self.storage.list(Kind::Index).unwrap();
        let first = first.iter().map(|(n, _)| n).min().unwrap().clone();
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
                evil.write_object(Kind::Index, &obj).unwrap();
                return pack;
            }
        }
        panic!("no index object name sorted first");
    }

    /// `evil` signs a copy of the victim's first snapshot claiming `host`, dated now.
    fn forge_snapshot(&self, host: &str) -> ObjectId {
        let admin = self.open("admin");
        let mut s: Snapshot = admin.load_snapshot(&self.kept[0].id).unwrap();
        s.hostname = host.into();
        s.time = jiff::Timestamp::now().to_string();
        let evil = self.open("evil");
        let bytes = s.seal(evil.key(), evil.signer()).unwrap();
        evil.write_object(Kind::Snapshot, &bytes).unwrap()
    }

    fn prune(&self) -> (PrunePlan, PruneStats) {
        let admin = self.open("admin");
        let plan = prune::plan(&admin, &PruneOptions::default()).unwrap();
        let stats = plan.execute(&admin, &NoProgress).unwrap();
        (plan, stats)
    }
}

#[test]
fn forged_copies_and_forged_approvals_delete_nothing_of_the_victim() {
    let w = world();
    let victim_packs = w.victim_packs();
    let forged = w.forge_copies();
    w.restores_exactly("forged");

    // Run 1: the victim's copies are read and kept; the forger's pack (nobody's snapshot uses
    // it) is condemned, and the generation armed.
    let (plan, stats) = w.prune();
    let condemned: Vec<ObjectId> = plan.condemn_unused.iter().map(|p| p.id).collect();
    assert_eq!(condemned, [forged], "{plan:?}");
    assert!(plan.repack.is_empty(), "{plan:?}");
    assert!(stats.armed);
    w.restores_exactly("run 1");

    // The forger writes snapshots claiming the victim's and the admin's hosts (after the
    // arming, as approval asks): readers ignore them, and they approve nothing.
    let fake_victim = w.forge_snapshot("victim");
    let fake_admin = w.forge_snapshot("admin");
    let (plan, _) = w.prune();
    let g = &plan.generations[0];
    assert!(!g.approved, "{plan:?}");
    assert_eq!(g.waiting_for, ["admin", "victim"], "{plan:?}");
    assert!(w.exists(Kind::Pack, &forged));
    for p in &victim_packs {
        assert!(w.exists(Kind::Pack, p), "the victim's pack {p} is kept");
    }
    let admin = w.open("admin");
    let (list, skipped) = admin.load_snapshots().unwrap();
    assert_eq!(list.len(), 2, "the forged snapshots are not listed");
    let ignored: Vec<ObjectId> = skipped.iter().map(|s| s.id).collect();
    assert!(ignored.contains(&fake_victim) && ignored.contains(&fake_admin));
    w.restores_exactly("run 2");

    // The honest hosts back up: the generation is approved, and only the forged pack goes.
    w.honest_backups();
    let (plan, stats) = w.prune();
    assert!(plan.generations[0].approved, "{plan:?}");
    let deleted: Vec<ObjectId> = plan.delete.iter().map(|p| p.id).collect();
    assert_eq!(deleted, [forged], "{plan:?}");
    assert_eq!(stats.packs_deleted, 1);
    for p in &victim_packs {
        assert!(w.exists(Kind::Pack, p), "the victim's pack {p} is kept");
    }
    w.restores_exactly("run 3");
    w.honest_backups();
    w.prune();
    w.restores_exactly("run 4");
    let report = check::check(&w.open("admin"), check::ReadData::All).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[test]
fn a_forger_using_the_blobs_in_its_own_snapshot_keeps_only_its_own_copies() {
    let w = world();
    let victim_packs = w.victim_packs();
    let forged = w.forge_copies();
    // A snapshot of the forger's own host over the victim's tree: readers accept it, so the
    // forger's copies are its own snapshot's and are kept — next to the victim's.
    let own = w.forge_snapshot("evil");
    for round in 0..3 {
        let (plan, _) = w.prune();
        assert!(plan.condemn_unused.is_empty(), "{plan:?}");
        assert!(plan.repack.is_empty(), "{plan:?}");
        w.honest_backups();
        w.restores_exactly(&format!("round {round}"));
    }
    assert!(w.exists(Kind::Pack, &forged));
    for p in &victim_packs {
        assert!(w.exists(Kind::Pack, p), "the victim's pack {p} is kept");
    }
    // check --read-data names the forged copies as warnings (intact copies exist).
    let admin = w.open("admin");
    assert!(
        admin
            .load_snapshots()
            .unwrap()
            .0
            .iter()
            .any(|(id, _)| *id == own)
    );
    let report = check::check(&admin, check::ReadData::All).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let named = report
        .warnings
        .iter()
        .filter(|m| m.contains(&forged.to_hex()))
        .count();
    assert_eq!(named, w.victim_blobs().len(), "{:?}", report.warnings);
}
