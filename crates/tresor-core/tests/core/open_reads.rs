//! Opening a repository reads each of its objects once: the key files read to find the key are
//! the ones the trust is built from (`keyfiles::read_key_files`, `Trust::load_with_key_files`),
//! with a password and with an unlocked key file — on S3 every listing and read is a request.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tresor_core::Repository;
use tresor_storage::local::LocalStorage;
use tresor_storage::{Forward, Kind, Storage};
use tresor_testkit::repo::*;

/// A local storage that counts listings and reads by kind.
#[derive(Debug)]
struct Counting {
    inner: LocalStorage,
    calls: Mutex<BTreeMap<(&'static str, String), usize>>,
}

impl Counting {
    fn count(&self, what: &'static str, kind: Kind) {
        *self
            .calls
            .lock()
            .unwrap()
            .entry((what, format!("{kind:?}")))
            .or_default() += 1;
    }
    fn take(&self) -> BTreeMap<(&'static str, String), usize> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl Forward for Counting {
    fn inner(&self) -> &dyn Storage {
        &self.inner
    }
    fn list(&self, kind: Kind) -> tresor_storage::Result<Vec<(String, u64)>> {
        self.count("list", kind);
        self.inner.list(kind)
    }
    fn read(&self, kind: Kind, name: &str) -> tresor_storage::Result<Vec<u8>> {
        self.count("read", kind);
        self.inner.read(kind, name)
    }
    fn read_range(
        &self,
        kind: Kind,
        name: &str,
        offset: u64,
        length: u64,
    ) -> tresor_storage::Result<Vec<u8>> {
        self.count("read", kind);
        self.inner.read_range(kind, name, offset, length)
    }
}

#[test]
fn opening_lists_and_reads_every_object_once() {
    let dir = tempfile::tempdir().unwrap();
    let counting = Arc::new(Counting {
        inner: LocalStorage::new(dir.path().join("repo")),
        calls: Mutex::default(),
    });
    let storage: Arc<dyn Storage> = counting.clone();
    let repo = Repository::init(
        storage.clone(),
        "admin",
        KDF,
        &owner("admin"),
        tresor_format::config::Config::new().unwrap(),
    )
    .unwrap();
    // A second key: two key files to read.
    tresor_core::keys::add(
        &repo,
        "second",
        tresor_format::keyfile::KeyKind::Full,
        KDF,
        &owner("h2"),
    )
    .unwrap();
    let unlocked =
        tresor_format::unlocked::UnlockedKey::new(&repo.config().id, repo.payload().clone());
    counting.take();

    Repository::open_with(storage.clone(), "admin", None).unwrap();
    let with_password = counting.take();
    let config = Repository::read_config_with_id(storage.as_ref()).unwrap();
    counting.take();
    Repository::open_unlocked_with_config(storage.clone(), config, unlocked, None).unwrap();
    let with_file = counting.take();

    for (calls, what) in [
        (&with_password, "password"),
        (&with_file, "unlocked key file"),
    ] {
        let n = |op: &'static str, kind: &str| calls.get(&(op, kind.to_string())).copied();
        assert_eq!(n("list", "Key"), Some(1), "{what}: {calls:?}");
        assert_eq!(n("read", "Key"), Some(2), "{what}: {calls:?}");
        assert_eq!(n("list", "Trust"), Some(1), "{what}: {calls:?}");
        assert!(calls.values().all(|&c| c <= 2), "{what}: {calls:?}");
    }
    let config_calls = |calls: &BTreeMap<(&'static str, String), usize>| {
        calls.get(&("list", "Config".to_string())).copied()
    };
    assert_eq!(config_calls(&with_password), Some(1), "{with_password:?}");
    assert_eq!(config_calls(&with_file), None, "read before: {with_file:?}");
}
