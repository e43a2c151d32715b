//! Repositories through the library (feature `core`): a repository on local storage with cheap
//! key derivation, key owners, backups, deterministic content.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tresor_core::archiver::{self, BackupOptions, BackupResult, ParentChoice};
use tresor_core::exclude::PatternSet;
use tresor_core::repo::KeyOwner;
use tresor_core::repo::index::Index;
use tresor_core::restorer::{self, RestoreOptions};
use tresor_core::{NoProgress, Repository};
use tresor_format::ObjectId;
use tresor_format::config::Config;
use tresor_format::keyfile::KdfParams;
use tresor_storage::Storage;
use tresor_storage::local::LocalStorage;

/// Cheap key derivation for tests.
pub const KDF: KdfParams = KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

/// The owner of a key made on `host` by user `test`, on 2026-11-30.
pub fn owner(host: &str) -> KeyOwner {
    KeyOwner {
        host: host.into(),
        username: "test".into(),
        created: "2026-11-30T00:00:00Z".into(),
    }
}

/// A new repository in `dir/repo` (password `admin`, host `admin`, default config) and its
/// storage.
pub fn setup(dir: &Path) -> (Arc<dyn Storage>, Repository) {
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.join("repo")));
    (storage.clone(), init_on(storage))
}

/// A new repository on `storage` (password `admin`, host `admin`, default config), e.g. a
/// wrapper that records or delays calls.
pub fn init_on(storage: Arc<dyn Storage>) -> Repository {
    Repository::init(
        storage,
        "admin",
        KDF,
        &owner("admin"),
        Config::new().unwrap(),
    )
    .unwrap()
}

/// Add a full key with `password` made on `host` to `repo` (cheap key derivation); returns its
/// key file's id. Panics on failure.
pub fn add_full_key(repo: &Repository, password: &str, host: &str) -> ObjectId {
    tresor_core::keys::add(
        repo,
        password,
        tresor_format::keyfile::KeyKind::Full,
        KDF,
        &owner(host),
    )
    .unwrap()
}

/// Options for a plain backup of `path` as `host`, now, with the parent found automatically.
pub fn backup_options(path: &Path, host: &str) -> BackupOptions {
    BackupOptions {
        paths: vec![path.to_path_buf()],
        excludes: PatternSet::new(&[]).unwrap(),
        exclude_if_present: vec![],
        exclude_caches: false,
        exclude_larger_than: None,
        one_file_system: false,
        tags: vec![],
        hostname: host.into(),
        username: "test".into(),
        time: jiff::ZonedDateTime::now(),
        parent: ParentChoice::Auto,
        dry_run: false,
        stdin: None,
        workers: 2,
        cancel: None,
        cache_dir: None,
        marker_refresh: None,
    }
}

/// Back up `path` as `host` (with the file cache in `cache`, if given); panics on failure.
pub fn backup(repo: &Repository, path: &Path, host: &str, cache: Option<&Path>) -> BackupResult {
    let opts = BackupOptions {
        cache_dir: cache.map(Path::to_path_buf),
        ..backup_options(path, host)
    };
    archiver::backup(repo, opts, &NoProgress).unwrap()
}

/// Restore snapshot `snapshot` of `repo` through `index` into `target`, every file verified
/// against its blob ids (`--verify`); panics on an error or on any problem the restore reports.
/// Returns where the backed-up path `src` lies in `target` (restores keep absolute paths).
pub fn restore_verified(
    repo: &Repository,
    index: &Index,
    snapshot: &ObjectId,
    target: &Path,
    src: &Path,
) -> PathBuf {
    let snap = repo.load_snapshot(snapshot).unwrap();
    let opts = RestoreOptions {
        verify: true,
        ..RestoreOptions::new(target.to_path_buf())
    };
    let r = restorer::restore(repo, index, &snap, &opts, &NoProgress).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    target.join(src.strip_prefix("/").unwrap())
}

/// Deterministic test content: `len` bytes that depend on `seed`.
pub fn data(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

/// `len` bytes that do not compress and that the chunker cuts into several blobs: xorshift64
/// from `seed` (Marsaglia 2003), the low byte of each step.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
