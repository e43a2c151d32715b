//! The lean index `check` loads when it reads no data (`Index::lean`): it knows the same blobs
//! as the full index, locates the same trees, places every listing's end where the full one
//! does, and leaves out the same superseded index objects.

use tresor_testkit::repo::*;

use std::path::Path;
use tresor_core::Repository;
use tresor_core::repo::index::Index;
use tresor_format::blob::BlobType;
use tresor_format::{BlobId, ObjectId};
use tresor_storage::Kind;

/// A source of a few small files (sharing frames), a subdirectory and one larger file.
fn source(dir: &Path, name: &str, seed: u8) -> std::path::PathBuf {
    let src = dir.join(name);
    std::fs::create_dir_all(src.join("sub")).unwrap();
    for i in 0..4u8 {
        let d = data(seed.wrapping_add(i), 20 << 10);
        std::fs::write(src.join("sub").join(format!("f{i}")), d).unwrap();
    }
    std::fs::write(src.join("big"), data(seed, 300 << 10)).unwrap();
    src
}

/// The end of the furthest blob each listing places in its pack, from the full index.
fn ends(full: &Index) -> Vec<u64> {
    let mut ends = vec![0u64; full.packs().len()];
    for (_, loc) in full.all_locations() {
        let e = &mut ends[loc.pack as usize];
        *e = (*e).max(loc.offset + u64::from(loc.length));
    }
    ends
}

/// The lean index agrees with the full one on every blob id in `ids` and every listing.
fn assert_agree(repo: &Repository, ids: &[BlobId]) -> (Index, Index) {
    let full = repo.load_index().unwrap();
    let (lean, skipped) = repo.load_lean_index_lenient().unwrap();
    assert!(skipped.is_empty(), "{}", skipped.len());
    assert!(lean.is_lean() && !full.is_lean());
    assert_eq!(lean.len(), full.len());
    assert_eq!(lean.packs().len(), full.packs().len());
    for id in ids {
        assert_eq!(lean.contains(id), full.contains(id), "{id}");
        match full.get(id) {
            Some(loc) if loc.blob_type == BlobType::Tree => assert_eq!(lean.get(id), Some(loc)),
            _ => assert_eq!(lean.get(id), None, "a lean index locates no data blob"),
        }
    }
    let expected = ends(&full);
    for (pos, end) in expected.iter().enumerate() {
        assert_eq!(lean.listing_end(pos as u32), *end, "listing {pos}");
        assert_eq!(full.listing_end(pos as u32), *end, "listing {pos}");
    }
    assert!(!lean.contains(&BlobId(ObjectId::of(b"never stored").0)));
    (full, lean)
}

#[test]
fn the_lean_index_knows_what_the_full_index_knows() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, admin) = setup(dir.path());
    backup(&admin, &source(dir.path(), "a", 11), "a", None);
    backup(&admin, &source(dir.path(), "b", 111), "b", None);
    let full = admin.load_index().unwrap();
    let ids: Vec<BlobId> = full.blobs().map(|(id, _)| *id).collect();
    let trees = full.blobs().filter(|(_, l)| l.blob_type == BlobType::Tree);
    assert!(trees.count() >= 4 && ids.len() >= 12, "{}", ids.len());
    assert_agree(&admin, &ids);

    // An index object superseded by a full key's object: both indexes leave its blobs out.
    let objects = storage.list(Kind::Index).unwrap();
    assert_eq!(objects.len(), 2);
    let retired: ObjectId = objects[0].0.parse().unwrap();
    let f = tresor_format::index::IndexFile {
        version: admin.config().version,
        supersedes: vec![retired],
        packs: vec![],
    };
    admin
        .write_object(
            Kind::Index,
            &f.to_object(admin.key(), admin.signer()).unwrap(),
        )
        .unwrap();
    let (after, lean) = assert_agree(&admin, &ids);
    assert!(
        after.len() < full.len(),
        "{} of {}",
        after.len(),
        full.len()
    );
    let gone = ids.iter().filter(|id| !lean.contains(id)).count();
    assert_eq!(gone, full.len() - after.len());
}

/// The data blobs the files of a snapshot name, read through the full index.
fn data_of(repo: &Repository, full: &Index, snap: &ObjectId) -> Vec<BlobId> {
    let s = repo.load_snapshot(snap).unwrap();
    let reader = tresor_core::repo::blobs::BlobReader::new(repo, full);
    let mut out = Vec::new();
    tresor_core::repo::tree::walk(&reader, &s.tree, "/", &mut |_, n| {
        out.extend(n.content.iter().copied())
    })
    .unwrap();
    out
}

#[test]
fn a_snapshots_index_locates_its_data_and_every_tree_and_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = setup(dir.path());
    let a = source(dir.path(), "a", 11);
    let a_id = backup(&admin, &a, "a", None).snapshot_id.unwrap();
    let b_id = backup(&admin, &source(dir.path(), "b", 111), "b", None)
        .snapshot_id
        .unwrap();
    let full = admin.load_index().unwrap();
    let (of_a, of_b) = (data_of(&admin, &full, &a_id), data_of(&admin, &full, &b_id));
    assert!(of_a.len() >= 5 && of_b.iter().any(|b| !of_a.contains(b)));
    let snap = admin.load_snapshot(&a_id).unwrap();
    let index = admin
        .load_index_below(&snap.tree, admin.snapshot_signer(&a_id).ok())
        .unwrap();
    let mut located = 0;
    for (id, loc) in full.blobs() {
        let wanted = loc.blob_type == BlobType::Tree || of_a.contains(id);
        assert_eq!(index.get(id), wanted.then_some(loc), "{id}");
        located += usize::from(wanted);
    }
    assert_eq!(index.len(), located);
    assert!(located < full.len(), "{located} of {}", full.len());

    // Restored with it, byte for byte.
    let back = restore_verified(&admin, &index, &a_id, &dir.path().join("restored"), &a);
    for rel in ["big", "sub/f0", "sub/f3"] {
        assert_eq!(
            std::fs::read(a.join(rel)).unwrap(),
            std::fs::read(back.join(rel)).unwrap(),
            "{rel}"
        );
    }
}
