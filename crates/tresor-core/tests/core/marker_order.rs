//! Format §16.1: a backup stores its start marker before it reads the index — also now that the
//! parent snapshot is looked for meanwhile on another thread
//! (`archiver::start_and_find_parent`). A storage that takes its time storing the marker and
//! logs every call shows no index object listed or read before the marker is stored, with and
//! without the local dedup tables, and the snapshots listed while the marker was being stored.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tresor_core::Repository;
use tresor_storage::local::LocalStorage;
use tresor_storage::{Forward, Kind, Storage};
use tresor_testkit::repo::*;

/// What the storage was asked, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Listed(Kind),
    Read(Kind),
    /// An object of this kind is stored (its write returned).
    Stored(Kind),
}

/// A local storage that logs calls and stores markers slowly (also `open_reads.rs`).
#[derive(Debug)]
pub(crate) struct Ordered {
    inner: LocalStorage,
    log: Mutex<Vec<Call>>,
}

impl Ordered {
    /// A local storage at `path`, logging.
    pub(crate) fn new(path: std::path::PathBuf) -> Self {
        Ordered {
            inner: LocalStorage::new(path),
            log: Mutex::default(),
        }
    }
    /// A new repository (testkit's `init_on`) on a logging storage at `dir/repo`: the log, the
    /// storage, the repository.
    pub(crate) fn repository(dir: &Path) -> (Arc<Ordered>, Arc<dyn Storage>, Repository) {
        let logged = Arc::new(Ordered::new(dir.join("repo")));
        let storage: Arc<dyn Storage> = logged.clone();
        let repo = init_on(storage.clone());
        (logged, storage, repo)
    }
    /// The calls since the last take.
    pub(crate) fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
    fn note(&self, c: Call) {
        self.log.lock().unwrap().push(c);
    }
    /// Store an object of `kind` with `write`, noting it once stored; a marker waits first (a
    /// reader that does not wait for it then comes first).
    fn store<T>(
        &self,
        kind: Kind,
        write: impl FnOnce() -> tresor_storage::Result<T>,
    ) -> tresor_storage::Result<T> {
        if kind == Kind::Marker {
            std::thread::sleep(Duration::from_millis(300));
        }
        let r = write()?;
        self.note(Call::Stored(kind));
        Ok(r)
    }
}

impl Forward for Ordered {
    fn inner(&self) -> &dyn Storage {
        &self.inner
    }
    fn list(&self, kind: Kind) -> tresor_storage::Result<Vec<(String, u64)>> {
        self.note(Call::Listed(kind));
        self.inner.list(kind)
    }
    fn read(&self, kind: Kind, name: &str) -> tresor_storage::Result<Vec<u8>> {
        self.note(Call::Read(kind));
        self.inner.read(kind, name)
    }
    fn read_range(
        &self,
        kind: Kind,
        name: &str,
        offset: u64,
        length: u64,
    ) -> tresor_storage::Result<Vec<u8>> {
        self.note(Call::Read(kind));
        self.inner.read_range(kind, name, offset, length)
    }
    fn write(&self, kind: Kind, name: &str, data: &[u8]) -> tresor_storage::Result<()> {
        self.store(kind, || self.inner.write(kind, name, data))
    }
    fn write_vec(
        &self,
        kind: Kind,
        name: &str,
        data: Vec<u8>,
    ) -> tresor_storage::Result<Option<Vec<u8>>> {
        self.store(kind, || self.inner.write_vec(kind, name, data))
    }
    fn write_vec_hot(
        &self,
        kind: Kind,
        name: &str,
        data: Vec<u8>,
    ) -> tresor_storage::Result<Option<Vec<u8>>> {
        self.store(kind, || self.inner.write_vec_hot(kind, name, data))
    }
    fn write_parts(&self, kind: Kind, name: &str, parts: &[&[u8]]) -> tresor_storage::Result<()> {
        self.store(kind, || self.inner.write_parts(kind, name, parts))
    }
}

/// The calls of one backup of `src` (a second one: it has a parent and index objects to read).
fn second_backup_calls(dir: &Path, cache: Option<&Path>) -> Vec<Call> {
    let (ordered, storage, repo) = Ordered::repository(dir);
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/a"), data(1, 50_000)).unwrap();
    backup(&repo, &src, "h", cache);
    std::fs::write(src.join("d/b"), data(2, 50_000)).unwrap();
    let repo = Repository::open_with(storage, "admin", cache).unwrap();
    ordered.take();
    let b = backup(&repo, &src, "h", cache);
    assert!(b.parent.is_some(), "the second backup has a parent");
    ordered.take()
}

/// Where the marker is stored in `calls`, and every index call before it (none wanted); and
/// whether the snapshots were listed before it (the parent looked for meanwhile).
fn check(calls: &[Call]) {
    let stored = calls
        .iter()
        .position(|c| *c == Call::Stored(Kind::Marker))
        .unwrap_or_else(|| panic!("no marker stored: {calls:?}"));
    let early: Vec<&Call> = calls[..stored]
        .iter()
        .filter(|c| matches!(c, Call::Listed(Kind::Index) | Call::Read(Kind::Index)))
        .collect();
    assert!(
        early.is_empty(),
        "index used before the marker was stored: {calls:?}"
    );
    assert!(
        calls[stored..]
            .iter()
            .any(|c| matches!(c, Call::Listed(Kind::Index) | Call::Read(Kind::Index))),
        "the index is used after it: {calls:?}"
    );
    // The marker took 300 ms: the parent was looked for meanwhile, on the other thread.
    assert!(
        calls[..stored].contains(&Call::Listed(Kind::Snapshot)),
        "snapshots listed while the marker was stored: {calls:?}"
    );
}

#[test]
fn the_index_is_read_only_after_the_marker_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    check(&second_backup_calls(dir.path(), None));
}

#[test]
fn the_dedup_tables_list_the_index_only_after_the_marker_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    check(&second_backup_calls(dir.path(), Some(&cache)));
}
