//! The packer's last packs: the workers' unfinished packs are combined at the end of a run when
//! they fit one pack, so a backup writes one pack below `pack_size` where it wrote one per
//! worker; what was combined restores byte for byte and reads clean.

use std::path::Path;
use std::sync::Arc;
use tresor_core::{Repository, check};
use tresor_format::blob::BlobType;
use tresor_format::config::Config;
use tresor_format::index::{IndexFile, IndexPack};
use tresor_storage::local::LocalStorage;
use tresor_storage::{Kind, Storage};
use tresor_testkit::repo::*;

const PACK_SIZE: u64 = 8 << 20;

/// A source of 320 incompressible files of 64 KiB (20 MiB: 2.6 packs as stored, in 20 batches
/// of 1 MiB for the workers) and 100 small text files (frame members).
fn source(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = (0..320u64)
        .map(|i| (format!("big/{i:03}"), noise(i + 1, 64 << 10)))
        .collect();
    files.extend((0..100).map(|i| {
        (
            format!("small/{i:03}.txt"),
            format!("line {i}\n").repeat(120).into_bytes(),
        )
    }));
    for (name, bytes) in &files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    files
}

/// Every pack listed by the repository's index objects, and how many index objects there are.
fn listed_packs(repo: &Repository, storage: &dyn Storage) -> (Vec<IndexPack>, usize) {
    let names = storage.list(Kind::Index).unwrap();
    let mut packs = vec![];
    for (name, _) in &names {
        let bytes = storage.read(Kind::Index, name).unwrap();
        packs.extend(IndexFile::open(repo.key(), &bytes).unwrap().1.packs);
    }
    (packs, names.len())
}

/// Bytes of stored blobs in a pack (up to the end of its last blob).
fn blob_bytes(p: &IndexPack) -> u64 {
    p.blobs
        .iter()
        .map(|b| b.offset + b.length)
        .max()
        .unwrap_or(0)
}

#[test]
fn two_workers_write_one_unfinished_data_pack_and_the_combined_pack_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path().join("repo")));
    let config = Config {
        pack_size: PACK_SIZE,
        ..Config::new().unwrap()
    };
    let repo = Repository::init(storage.clone(), "admin", KDF, &owner("admin"), config).unwrap();
    let src = dir.path().join("src");
    let files = source(&src);
    // Two workers (backup_options), each taking about half of the 20 batches.
    let b = backup(&repo, &src, "h", None);
    assert_eq!(b.summary.data_blobs, 420, "{:?}", b.summary);

    let (packs, _) = listed_packs(&repo, storage.as_ref());
    let data: Vec<u64> = packs
        .iter()
        .filter(|p| p.blobs.iter().all(|e| e.blob_type == BlobType::Data))
        .map(blob_bytes)
        .collect();
    let trees = packs.len() - data.len();
    let blobs: usize = packs.iter().map(|p| p.blobs.len()).sum();
    assert_eq!(blobs as u64, 420 + b.summary.tree_blobs);
    // 2.6 packs of blobs make three packs however the batches were shared: two full ones and
    // the workers' unfinished ones combined, or one full one and two that do not fit one (each
    // worker's own unfinished pack made four when both had closed a full one).
    assert_eq!(data.len(), 3, "data packs of {data:?} bytes");
    let full = PACK_SIZE - (256 << 10);
    assert!(data.iter().any(|&n| n >= full), "{data:?}");
    assert_eq!(trees, 1, "tree packs");
    assert_eq!(storage.list(Kind::Pack).unwrap().len(), 4);

    // The repository reads clean and restores byte for byte.
    let report = check::check(&repo, check::ReadData::All).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.packs_read, 4);
    let index = repo.load_index().unwrap();
    let target = dir.path().join("restore");
    let restored = restore_verified(&repo, &index, &b.snapshot_id.unwrap(), &target, &src);
    for (name, bytes) in &files {
        assert_eq!(
            &std::fs::read(restored.join(name)).unwrap(),
            bytes,
            "{name}"
        );
    }
}
