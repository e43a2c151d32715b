//! Waits for the store (throttling, passing failures retried by the storage, see
//! [`tresor_storage::retry`]) reported to a [`Progress`] while an operation runs.
//!
//! The storage tells its observer on the thread that is about to wait (an uploader, the
//! walker); the notices go through a channel to a thread of this scope, which calls the
//! progress — so a progress that is only borrowed for the operation can hear them.

use crate::Progress;
use crossbeam_channel::Sender;
use std::sync::{Arc, Mutex};
use tresor_storage::Storage;
use tresor_storage::retry::{WaitNotice, WaitObserver};

enum Event {
    Waiting(WaitNotice),
    Recovered,
}

/// The observer set on the storage: forwards into the channel while it is open.
struct Forward(Mutex<Option<Sender<Event>>>);

impl Forward {
    fn send(&self, e: Event) {
        if let Some(tx) = &*self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = tx.send(e);
        }
    }
}

impl WaitObserver for Forward {
    fn waiting(&self, notice: &WaitNotice) {
        self.send(Event::Waiting(notice.clone()));
    }
    fn recovered(&self, _op: &str, _object: &str) {
        self.send(Event::Recovered);
    }
}

/// Puts the storage's observer back and closes the channel, also when `f` panics.
struct Restore<'a> {
    storage: &'a Arc<dyn Storage>,
    before: Option<Option<Arc<dyn WaitObserver>>>,
    forward: Arc<Forward>,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        self.storage
            .set_wait_observer(self.before.take().unwrap_or_default());
        self.forward
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }
}

/// Run `f`, telling `progress` ([`Progress::store_waiting`], [`Progress::store_recovered`])
/// whenever a request of `storage` waits for the store meanwhile. The storage's observer is
/// replaced for that time and put back afterwards.
pub fn reported_to<T>(
    storage: &Arc<dyn Storage>,
    progress: &dyn Progress,
    f: impl FnOnce() -> T,
) -> T {
    let (tx, rx) = crossbeam_channel::unbounded();
    let forward = Arc::new(Forward(Mutex::new(Some(tx))));
    let before = storage.set_wait_observer(Some(forward.clone()));
    std::thread::scope(|s| {
        s.spawn(|| {
            for e in rx {
                match e {
                    Event::Waiting(n) => progress.store_waiting(&n),
                    Event::Recovered => progress.store_recovered(),
                }
            }
        });
        let _restore = Restore {
            storage,
            before: Some(before),
            forward,
        };
        f()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::RwLock;
    use std::time::Duration;
    use tresor_storage::memory::MemoryStorage;
    use tresor_storage::{Kind, Result};

    /// Memory storage that keeps its wait observer, so the test can play a retrying storage.
    #[derive(Default)]
    struct Observed {
        inner: MemoryStorage,
        observer: RwLock<Option<Arc<dyn WaitObserver>>>,
    }

    impl std::fmt::Debug for Observed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Observed")
        }
    }

    impl Storage for Observed {
        fn location(&self) -> String {
            self.inner.location()
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
        fn read_range(&self, kind: Kind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
            self.inner.read_range(kind, name, offset, len)
        }
        fn write(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()> {
            self.inner.write(kind, name, data)
        }
        fn delete(&self, kind: Kind, name: &str) -> Result<()> {
            self.inner.delete(kind, name)
        }
        fn size(&self, kind: Kind, name: &str) -> Result<u64> {
            self.inner.size(kind, name)
        }
        fn set_wait_observer(
            &self,
            o: Option<Arc<dyn WaitObserver>>,
        ) -> Option<Arc<dyn WaitObserver>> {
            std::mem::replace(&mut *self.observer.write().unwrap(), o)
        }
    }

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);
    impl Progress for Seen {
        fn store_waiting(&self, n: &WaitNotice) {
            self.0.lock().unwrap().push(n.error.clone());
        }
        fn store_recovered(&self) {
            self.0.lock().unwrap().push("recovered".into());
        }
    }
    impl WaitObserver for Seen {
        fn waiting(&self, _: &WaitNotice) {}
    }

    fn notice(error: &str) -> WaitNotice {
        WaitNotice {
            op: "write".into(),
            object: "pack 1a2b3c4d".into(),
            error: error.into(),
            attempt: 1,
            delay: Duration::from_millis(200),
            waited: Duration::ZERO,
            budget: Duration::from_secs(300),
        }
    }

    /// Notices from other threads reach the progress, in order, while `f` runs; afterwards the
    /// storage has its observer back and notices go nowhere.
    #[test]
    fn waits_reach_the_progress_while_the_operation_runs() {
        let observed = Arc::new(Observed::default());
        let before: Arc<dyn WaitObserver> = Arc::new(Seen::default());
        observed.set_wait_observer(Some(before.clone()));
        let storage: Arc<dyn Storage> = observed.clone();
        let progress = Seen::default();
        let o = reported_to(&storage, &progress, || {
            let o = observed.observer.read().unwrap().clone().unwrap();
            std::thread::scope(|s| {
                s.spawn(|| {
                    o.waiting(&notice("503 SlowDown"));
                    o.waiting(&notice("reset"));
                    o.recovered("write", "pack 1a2b3c4d");
                });
            });
            o
        });
        assert_eq!(
            *progress.0.lock().unwrap(),
            ["503 SlowDown", "reset", "recovered"]
        );
        let now = observed.observer.read().unwrap().clone().unwrap();
        assert!(Arc::ptr_eq(&now, &before));
        // A notice after the operation (a request still in flight) is dropped, not blocked on.
        o.waiting(&notice("late"));
        assert_eq!(progress.0.lock().unwrap().len(), 3);
    }
}
