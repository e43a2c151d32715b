//! Fault injection for tests: wraps a storage and fails chosen operations.

use crate::{ErrorKind, Kind, Result, Storage, StorageError};
use std::sync::atomic::{AtomicU64, Ordering};

/// Fails every `write` of `kind` after the first `allow_writes` writes of that kind succeed, and
/// every read when `fail_reads` is set. Counts operations.
#[derive(Debug)]
pub struct FaultyStorage<S> {
    inner: S,
    fail_kind: Option<Kind>,
    allow_writes: u64,
    error: ErrorKind,
    writes: AtomicU64,
}

impl<S: Storage> FaultyStorage<S> {
    /// Wrap `inner`; writes of `fail_kind` fail with `error` after `allow_writes` successes.
    pub fn new(inner: S, fail_kind: Option<Kind>, allow_writes: u64, error: ErrorKind) -> Self {
        FaultyStorage {
            inner,
            fail_kind,
            allow_writes,
            error,
            writes: AtomicU64::new(0),
        }
    }

    /// The wrapped storage.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: Storage> Storage for FaultyStorage<S> {
    fn location(&self) -> String {
        format!("faulty:{}", self.inner.location())
    }
    fn set_wait_observer(
        &self,
        observer: Option<std::sync::Arc<dyn crate::retry::WaitObserver>>,
    ) -> Option<std::sync::Arc<dyn crate::retry::WaitObserver>> {
        self.inner.set_wait_observer(observer)
    }
    fn create(&self) -> Result<()> {
        self.inner.create()
    }
    fn list(&self, kind: Kind) -> Result<Vec<(String, u64)>> {
        self.inner.list(kind)
    }
    fn read(&self, kind: Kind, name: &str) -> Result<Vec<u8>> {
        self.inner.read(kind, name)
    }
    fn read_range(&self, kind: Kind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.inner.read_range(kind, name, offset, length)
    }
    fn write(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()> {
        if self.fail_kind == Some(kind)
            && self.writes.fetch_add(1, Ordering::SeqCst) >= self.allow_writes
        {
            return Err(StorageError::new(
                self.error,
                "write",
                kind,
                name,
                "injected fault",
            ));
        }
        self.inner.write(kind, name, data)
    }
    fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        self.inner.delete(kind, name)
    }
    fn size(&self, kind: Kind, name: &str) -> Result<u64> {
        self.inner.size(kind, name)
    }
}
