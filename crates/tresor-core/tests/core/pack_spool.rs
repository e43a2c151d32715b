//! Packs spooled to a file as they fill (`repo/packer/spool.rs`): a backup's packs of a local
//! repository are written to a spool file in `data/` and moved into place, restore byte for
//! byte and read clean; a spool that cannot be written or a pack that cannot be stored fails
//! the backup and leaves the repository clean and no spool file; spool files a dead run left
//! are removed (unless a live writer holds them) and do not disturb the next backup.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tresor_core::archiver;
use tresor_core::{NoProgress, Repository, check};
use tresor_format::config::Config;
use tresor_storage::faulty::{Fault, FaultyStorage, Method};
use tresor_storage::local::LocalStorage;
use tresor_storage::{ErrorKind, Forward, Kind, Storage};
use tresor_testkit::repo::*;

const PACK_SIZE: u64 = 8 << 20;

/// A local storage that records the packs stored from a spool file, and may name another
/// spool folder.
#[derive(Debug)]
struct Spied {
    inner: LocalStorage,
    spool: Option<PathBuf>,
    /// (name, length) of each object stored with `write_file`.
    files: Mutex<Vec<(String, u64)>>,
}

impl Forward for Spied {
    fn inner(&self) -> &dyn Storage {
        &self.inner
    }
    fn spool_dir(&self) -> Option<PathBuf> {
        self.spool.clone().or_else(|| self.inner.spool_dir())
    }
    fn write_file(
        &self,
        kind: Kind,
        name: &str,
        path: &Path,
        len: u64,
        hot: bool,
    ) -> tresor_storage::Result<()> {
        self.inner.write_file(kind, name, path, len, hot)?;
        self.files.lock().unwrap().push((name.to_string(), len));
        Ok(())
    }
}

/// A repository of 8 MiB packs in `dir/repo` on `storage`.
fn init(storage: Arc<dyn Storage>) -> Repository {
    let config = Config {
        pack_size: PACK_SIZE,
        ..Config::new().unwrap()
    };
    Repository::init(storage, "admin", KDF, &owner("admin"), config).unwrap()
}

/// 20 MiB of incompressible files and 100 small text files in `dir`.
fn source(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = (0..20u64)
        .map(|i| (format!("big/{i:02}"), noise(i + 7, 1 << 20)))
        .collect();
    files.extend((0..100).map(|i| (format!("small/{i}"), format!("{i}\n").repeat(99).into())));
    for (name, bytes) in &files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    files
}

/// The spool files in `dir`.
fn spool_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-spool-"))
        .collect();
    v.sort();
    v
}

/// Every stored pack is named by the BLAKE3 of its bytes (nothing half-written under a pack
/// name), and the repository checks clean, every pack read.
fn assert_clean(repo: &Repository, storage: &dyn Storage) {
    for (name, _) in storage.list(Kind::Pack).unwrap() {
        let bytes = storage.read(Kind::Pack, &name).unwrap();
        assert_eq!(tresor_storage::name_of(&bytes), name, "pack {name}");
    }
    let report = check::check(repo, check::ReadData::All).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[test]
fn packs_are_spooled_in_the_repository_moved_into_place_and_restore_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let spied = Arc::new(Spied {
        inner: LocalStorage::new(dir.path().join("repo")),
        spool: None,
        files: Mutex::default(),
    });
    let repo = init(spied.clone());
    let src = dir.path().join("src");
    let files = source(&src);
    let b = backup(&repo, &src, "h", None);

    // Every pack of 2 MiB or more came from a spool file, whole.
    let stored = spied.inner.list(Kind::Pack).unwrap();
    let big: Vec<_> = stored.iter().filter(|(_, n)| *n >= 2 << 20).collect();
    assert!(big.len() >= 2, "{stored:?}");
    let spooled = spied.files.lock().unwrap().clone();
    for (name, len) in &big {
        assert!(
            spooled.contains(&(name.clone(), *len)),
            "{name} not spooled"
        );
    }
    assert!(spool_files(&dir.path().join("repo/data")).is_empty());

    assert_clean(&repo, spied.as_ref());
    let index = repo.load_index().unwrap();
    let target = dir.path().join("restore");
    let restored = restore_verified(&repo, &index, &b.snapshot_id.unwrap(), &target, &src);
    for (name, bytes) in &files {
        let back = std::fs::read(restored.join(name)).unwrap();
        assert!(&back == bytes, "{name} differs");
    }
}

/// The spool folder is a file (as a full or broken disk, every spool write fails): the backup
/// fails with the spool's error; the repository is clean; the next backup succeeds.
#[test]
fn a_spool_that_cannot_be_written_fails_the_backup_and_leaves_the_repository_clean() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("not-a-dir");
    std::fs::write(&not_a_dir, b"").unwrap();
    let spied = Arc::new(Spied {
        inner: LocalStorage::new(dir.path().join("repo")),
        spool: Some(not_a_dir.clone()),
        files: Mutex::default(),
    });
    let repo = init(spied.clone());
    let src = dir.path().join("src");
    source(&src);
    let e = archiver::backup(&repo, backup_options(&src, "h"), &NoProgress).unwrap_err();
    assert!(e.to_string().contains("spool file"), "{e}");
    assert!(spied.files.lock().unwrap().is_empty());
    assert!(spied.inner.list(Kind::Snapshot).unwrap().is_empty());
    assert_clean(&repo, spied.as_ref());
    assert!(spool_files(&dir.path().join("repo/data")).is_empty());

    let fine = Arc::new(LocalStorage::new(dir.path().join("repo")));
    let repo = Repository::open(fine.clone(), "admin").unwrap();
    backup(&repo, &src, "h", None);
    assert_clean(&repo, fine.as_ref());
}

/// The storage refuses the second pack (full): the backup fails, the spool files of the packs
/// not stored are removed, nothing is left half-written.
#[test]
fn a_pack_the_storage_refuses_leaves_no_spool_file() {
    let dir = tempfile::tempdir().unwrap();
    let faulty = Arc::new(FaultyStorage::new(LocalStorage::new(
        dir.path().join("repo"),
    )));
    let repo = init(faulty.clone());
    let src = dir.path().join("src");
    source(&src);
    faulty.inject(
        Fault::on(Method::Write, ErrorKind::NoSpace)
            .kind(Kind::Pack)
            .after(1),
    );
    let e = archiver::backup(&repo, backup_options(&src, "h"), &NoProgress).unwrap_err();
    assert!(e.to_string().contains("injected"), "{e}");
    // The refused writes were spooled packs (8 MiB), not packs in memory.
    let refused: Vec<u64> = (faulty.calls().into_iter())
        .filter(|c| c.kind == Some(Kind::Pack) && c.error.is_some())
        .map(|c| c.len)
        .collect();
    assert!(refused.iter().any(|&n| n >= 4 << 20), "{refused:?}");
    faulty.clear();
    assert!(spool_files(&dir.path().join("repo/data")).is_empty());
    assert_clean(&repo, faulty.as_ref());
}

/// Spool files a dead run left in `data/`: an old one no process holds is removed by the next
/// backup; a fresh one and one a live writer holds locked stay. None is taken for a pack.
#[test]
fn leftover_spool_files_are_swept_and_do_not_break_the_next_backup() {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path().join("repo")));
    let repo = init(storage.clone());
    let data = dir.path().join("repo/data");
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let make = |name: &str, old: bool| {
        let f = std::fs::File::create_new(data.join(name)).unwrap();
        std::fs::write(data.join(name), noise(3, 100_000)).unwrap();
        if old {
            f.set_modified(hour_ago).unwrap();
        }
        f
    };
    drop(make(".tmp-spool-00000000000000aa", true));
    drop(make(".tmp-spool-00000000000000bb", false));
    let held = make(".tmp-spool-00000000000000cc", true);
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let src = dir.path().join("src");
    source(&src);
    backup(&repo, &src, "h", None);
    assert_eq!(
        spool_files(&data),
        [".tmp-spool-00000000000000bb", ".tmp-spool-00000000000000cc"]
    );
    assert_clean(&repo, storage.as_ref());
    let report = check::check(&repo, check::ReadData::None).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}
