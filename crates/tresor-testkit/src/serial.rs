//! Tests that must not overlap. Each crate's integration tests are one test binary, so tests of
//! different files now run side by side in one process. Tests that send signals, mount file
//! systems, start daemons on ports picked in advance, or measure time against a deadline take
//! [`exclusive`] for their whole run: no two of them overlap.

use std::sync::{Mutex, MutexGuard};

static EXCLUSIVE: Mutex<()> = Mutex::new(());

/// Hold this for the whole test. A test that failed while holding it does not block the
/// others (the lock is not poisoned for them).
pub fn exclusive() -> MutexGuard<'static, ()> {
    EXCLUSIVE.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn holders_never_overlap_and_a_panic_does_not_block() {
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        let _g = exclusive();
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 1);
        let r = std::thread::spawn(|| {
            let _g = exclusive();
            panic!("a failing test");
        })
        .join();
        assert!(r.is_err());
        drop(exclusive());
    }
}
