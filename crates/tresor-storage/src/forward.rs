//! The forwarding layer: a storage that wraps another one implements [`Forward`] instead of
//! [`Storage`], overrides only the methods it changes, and every other method — the optional
//! ones with defaults included (`write_vec`, `write_parts`, `write_file`, `spool_dir`,
//! `write_concurrency`, `list_stamped`, `list_classes`, `locked_until`, `set_wait_observer`) —
//! goes to the wrapped storage unchanged. A wrapper written against
//! [`Storage`] directly would silently fall back to the trait defaults for those and lose what
//! the wrapped storage does there (S3's Object Lock dates, the local storage's unjoined writes,
//! a network storage's write concurrency, the wait observer of a retrying client).

use crate::cold::{ColdState, ThawTier};
use crate::retry::WaitObserver;
use crate::{Classed, Kind, Result, Stamped, Storage};
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// A layer over another storage. Every type implementing it is a [`Storage`] (blanket
/// implementation) that calls the methods of `Forward`; each of them defaults to the same
/// method of [`Forward::inner`].
///
/// Implement it in the module that defines the wrapper and call the wrapped storage through
/// `self.inner()`. Where both traits are in scope, method calls on the wrapper are ambiguous:
/// callers import [`Storage`] only.
pub trait Forward: Send + Sync + fmt::Debug {
    /// The wrapped storage.
    fn inner(&self) -> &dyn Storage;

    /// [`Storage::location`].
    fn location(&self) -> String {
        self.inner().location()
    }

    /// [`Storage::write_concurrency`].
    fn write_concurrency(&self) -> usize {
        self.inner().write_concurrency()
    }

    /// [`Storage::create`].
    ///
    /// # Errors
    /// As [`Storage::create`].
    fn create(&self) -> Result<()> {
        self.inner().create()
    }

    /// [`Storage::list`].
    ///
    /// # Errors
    /// As [`Storage::list`].
    fn list(&self, kind: Kind) -> Result<Vec<(String, u64)>> {
        self.inner().list(kind)
    }

    /// [`Storage::list_stamped`].
    ///
    /// # Errors
    /// As [`Storage::list`].
    fn list_stamped(&self, kind: Kind) -> Result<Option<Stamped>> {
        self.inner().list_stamped(kind)
    }

    /// [`Storage::list_classes`].
    ///
    /// # Errors
    /// As [`Storage::list`].
    fn list_classes(&self, kind: Kind) -> Result<Option<Vec<Classed>>> {
        self.inner().list_classes(kind)
    }

    /// [`Storage::read`].
    ///
    /// # Errors
    /// As [`Storage::read`].
    fn read(&self, kind: Kind, name: &str) -> Result<Vec<u8>> {
        self.inner().read(kind, name)
    }

    /// [`Storage::read_range`].
    ///
    /// # Errors
    /// As [`Storage::read_range`].
    fn read_range(&self, kind: Kind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.inner().read_range(kind, name, offset, length)
    }

    /// [`Storage::write`].
    ///
    /// # Errors
    /// As [`Storage::write`].
    fn write(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()> {
        self.inner().write(kind, name, data)
    }

    /// [`Storage::write_vec`].
    ///
    /// # Errors
    /// As [`Storage::write`].
    fn write_vec(&self, kind: Kind, name: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
        self.inner().write_vec(kind, name, data)
    }

    /// [`Storage::write_vec_hot`].
    ///
    /// # Errors
    /// As [`Storage::write`].
    fn write_vec_hot(&self, kind: Kind, name: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
        self.inner().write_vec_hot(kind, name, data)
    }

    /// [`Storage::write_parts`].
    ///
    /// # Errors
    /// As [`Storage::write`].
    fn write_parts(&self, kind: Kind, name: &str, parts: &[&[u8]]) -> Result<()> {
        self.inner().write_parts(kind, name, parts)
    }

    /// [`Storage::spool_dir`].
    fn spool_dir(&self) -> Option<std::path::PathBuf> {
        self.inner().spool_dir()
    }

    /// [`Storage::write_file`]. A layer that overrides the other writes (to count, throttle,
    /// guard or fail them) must override this one too, or spooled packs bypass it.
    ///
    /// # Errors
    /// As [`Storage::write_file`].
    fn write_file(
        &self,
        kind: Kind,
        name: &str,
        path: &std::path::Path,
        len: u64,
        hot: bool,
    ) -> Result<()> {
        self.inner().write_file(kind, name, path, len, hot)
    }

    /// [`Storage::delete`].
    ///
    /// # Errors
    /// As [`Storage::delete`].
    fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        self.inner().delete(kind, name)
    }

    /// [`Storage::size`].
    ///
    /// # Errors
    /// As [`Storage::size`].
    fn size(&self, kind: Kind, name: &str) -> Result<u64> {
        self.inner().size(kind, name)
    }

    /// [`Storage::locked_until`].
    ///
    /// # Errors
    /// As [`Storage::locked_until`].
    fn locked_until(&self, kind: Kind, name: &str) -> Result<Option<SystemTime>> {
        self.inner().locked_until(kind, name)
    }

    /// [`Storage::cold_state`].
    ///
    /// # Errors
    /// As [`Storage::cold_state`].
    fn cold_state(&self, kind: Kind, name: &str) -> Result<Option<ColdState>> {
        self.inner().cold_state(kind, name)
    }

    /// [`Storage::request_thaw`].
    ///
    /// # Errors
    /// As [`Storage::request_thaw`].
    fn request_thaw(&self, kind: Kind, name: &str, tier: ThawTier, days: u32) -> Result<()> {
        self.inner().request_thaw(kind, name, tier, days)
    }

    /// [`Storage::set_wait_observer`].
    fn set_wait_observer(
        &self,
        observer: Option<Arc<dyn WaitObserver>>,
    ) -> Option<Arc<dyn WaitObserver>> {
        self.inner().set_wait_observer(observer)
    }
}

impl<T: Forward> Storage for T {
    fn location(&self) -> String {
        Forward::location(self)
    }
    fn write_concurrency(&self) -> usize {
        Forward::write_concurrency(self)
    }
    fn create(&self) -> Result<()> {
        Forward::create(self)
    }
    fn list(&self, kind: Kind) -> Result<Vec<(String, u64)>> {
        Forward::list(self, kind)
    }
    fn list_stamped(&self, kind: Kind) -> Result<Option<Stamped>> {
        Forward::list_stamped(self, kind)
    }
    fn list_classes(&self, kind: Kind) -> Result<Option<Vec<Classed>>> {
        Forward::list_classes(self, kind)
    }
    fn read(&self, kind: Kind, name: &str) -> Result<Vec<u8>> {
        Forward::read(self, kind, name)
    }
    fn read_range(&self, kind: Kind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        Forward::read_range(self, kind, name, offset, length)
    }
    fn write(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()> {
        Forward::write(self, kind, name, data)
    }
    fn write_vec(&self, kind: Kind, name: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
        Forward::write_vec(self, kind, name, data)
    }
    fn write_parts(&self, kind: Kind, name: &str, parts: &[&[u8]]) -> Result<()> {
        Forward::write_parts(self, kind, name, parts)
    }
    fn write_vec_hot(&self, kind: Kind, name: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
        Forward::write_vec_hot(self, kind, name, data)
    }
    fn spool_dir(&self) -> Option<std::path::PathBuf> {
        Forward::spool_dir(self)
    }
    fn write_file(
        &self,
        kind: Kind,
        name: &str,
        path: &std::path::Path,
        len: u64,
        hot: bool,
    ) -> Result<()> {
        Forward::write_file(self, kind, name, path, len, hot)
    }
    fn cold_state(&self, kind: Kind, name: &str) -> Result<Option<ColdState>> {
        Forward::cold_state(self, kind, name)
    }
    fn request_thaw(&self, kind: Kind, name: &str, tier: ThawTier, days: u32) -> Result<()> {
        Forward::request_thaw(self, kind, name, tier, days)
    }
    fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        Forward::delete(self, kind, name)
    }
    fn size(&self, kind: Kind, name: &str) -> Result<u64> {
        Forward::size(self, kind, name)
    }
    fn locked_until(&self, kind: Kind, name: &str) -> Result<Option<SystemTime>> {
        Forward::locked_until(self, kind, name)
    }
    fn set_wait_observer(
        &self,
        observer: Option<Arc<dyn WaitObserver>>,
    ) -> Option<Arc<dyn WaitObserver>> {
        Forward::set_wait_observer(self, observer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, StorageError, name_of};
    use std::sync::Mutex;
    use std::time::Duration;

    /// A storage whose every method answers something no default would: it records which of
    /// its methods were called.
    #[derive(Default)]
    struct Distinct {
        calls: Mutex<Vec<&'static str>>,
        observer: Mutex<Option<Arc<dyn WaitObserver>>>,
    }

    impl fmt::Debug for Distinct {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Distinct")
        }
    }

    /// An observer that ignores everything (only its identity matters).
    struct Quiet;

    impl WaitObserver for Quiet {
        fn waiting(&self, _: &crate::retry::WaitNotice) {}
    }

    impl Distinct {
        fn called(&self, m: &'static str) {
            self.calls.lock().unwrap().push(m);
        }
    }

    fn e(op: &'static str) -> StorageError {
        StorageError::new(ErrorKind::Other, op, Kind::Pack, "", "distinct")
    }

    impl Storage for Distinct {
        fn location(&self) -> String {
            "distinct:".into()
        }
        fn write_concurrency(&self) -> usize {
            7
        }
        fn create(&self) -> Result<()> {
            self.called("create");
            Ok(())
        }
        fn list(&self, _: Kind) -> Result<Vec<(String, u64)>> {
            Ok(vec![("listed".into(), 3)])
        }
        fn list_stamped(&self, _: Kind) -> Result<Option<Stamped>> {
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
            Ok(Some(Stamped {
                now: t,
                objects: vec![("stamped".into(), t)],
            }))
        }
        fn list_classes(&self, _: Kind) -> Result<Option<Vec<Classed>>> {
            Ok(Some(vec![Classed {
                name: "classed".into(),
                size: 4,
                class: "GLACIER".into(),
            }]))
        }
        fn read(&self, _: Kind, _: &str) -> Result<Vec<u8>> {
            Ok(b"read".to_vec())
        }
        fn read_range(&self, _: Kind, _: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
            Ok(vec![offset as u8, length as u8])
        }
        fn write(&self, _: Kind, _: &str, _: &[u8]) -> Result<()> {
            Err(e("write"))
        }
        fn write_vec(&self, _: Kind, _: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
            self.called("write_vec");
            Ok(Some(data.into_iter().rev().collect()))
        }
        fn write_parts(&self, _: Kind, _: &str, parts: &[&[u8]]) -> Result<()> {
            self.called("write_parts");
            assert_eq!(parts.len(), 2, "the parts arrive unjoined");
            Ok(())
        }
        fn delete(&self, _: Kind, _: &str) -> Result<()> {
            Err(e("delete"))
        }
        fn write_vec_hot(&self, _: Kind, _: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
            self.called("write_vec_hot");
            Ok(Some(data))
        }
        fn spool_dir(&self) -> Option<std::path::PathBuf> {
            Some("/spool".into())
        }
        fn write_file(
            &self,
            _: Kind,
            _: &str,
            path: &std::path::Path,
            len: u64,
            hot: bool,
        ) -> Result<()> {
            assert_eq!(
                (path, len, hot),
                (std::path::Path::new("/nowhere"), 3, true)
            );
            self.called("write_file");
            Ok(())
        }
        fn cold_state(&self, _: Kind, _: &str) -> Result<Option<ColdState>> {
            Ok(Some(ColdState {
                class: crate::cold::ColdClass::DeepArchive,
                restore: crate::cold::Restore::Ongoing,
                stored_at: None,
            }))
        }
        fn request_thaw(&self, _: Kind, _: &str, _: ThawTier, days: u32) -> Result<()> {
            assert_eq!(days, 3);
            Err(e("thaw"))
        }
        fn size(&self, _: Kind, _: &str) -> Result<u64> {
            Ok(99)
        }
        fn locked_until(&self, _: Kind, _: &str) -> Result<Option<SystemTime>> {
            Ok(Some(SystemTime::UNIX_EPOCH + Duration::from_secs(42)))
        }
        fn set_wait_observer(
            &self,
            observer: Option<Arc<dyn WaitObserver>>,
        ) -> Option<Arc<dyn WaitObserver>> {
            std::mem::replace(&mut *self.observer.lock().unwrap(), observer)
        }
    }

    /// A layer that overrides nothing.
    #[derive(Debug, Default)]
    struct Plain(Distinct);

    impl Forward for Plain {
        fn inner(&self) -> &dyn Storage {
            &self.0
        }
    }

    /// Every method of a layer reaches the wrapped storage's own implementation, not the
    /// trait's default (which would join the parts, copy the vector, report concurrency 1 and
    /// no lock).
    #[test]
    fn every_method_reaches_the_wrapped_storage() {
        let plain = Plain::default();
        let s: &dyn Storage = &plain;
        let n = name_of(b"x");
        assert_eq!(s.location(), "distinct:");
        assert_eq!(s.write_concurrency(), 7);
        s.create().unwrap();
        assert_eq!(s.list(Kind::Pack).unwrap(), [("listed".to_string(), 3)]);
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
        let stamped = s.list_stamped(Kind::Marker).unwrap().expect("stamped");
        assert_eq!(
            (stamped.now, stamped.objects),
            (t, vec![("stamped".into(), t)])
        );
        let classed = s.list_classes(Kind::Pack).unwrap().expect("classes");
        assert_eq!(
            (
                classed[0].name.as_str(),
                classed[0].size,
                classed[0].class.as_str()
            ),
            ("classed", 4, "GLACIER")
        );
        assert_eq!(s.read(Kind::Pack, &n).unwrap(), b"read");
        assert_eq!(s.read_range(Kind::Pack, &n, 5, 6).unwrap(), [5, 6]);
        assert_eq!(s.write(Kind::Pack, &n, b"ab").unwrap_err().op, "write");
        let back = s.write_vec(Kind::Pack, &n, b"abc".to_vec()).unwrap();
        assert_eq!(back.as_deref(), Some(&b"cba"[..]));
        s.write_parts(Kind::Pack, &n, &[b"a", b"b"]).unwrap();
        assert_eq!(s.delete(Kind::Pack, &n).unwrap_err().op, "delete");
        let back = s.write_vec_hot(Kind::Pack, &n, b"hot".to_vec()).unwrap();
        assert_eq!(back.as_deref(), Some(&b"hot"[..]));
        // The default would read the file (there is none) and call `write_vec_hot`.
        assert_eq!(s.spool_dir(), Some("/spool".into()));
        let nowhere = std::path::Path::new("/nowhere");
        s.write_file(Kind::Pack, &n, nowhere, 3, true).unwrap();
        assert_eq!(plain.0.calls.lock().unwrap().last(), Some(&"write_file"));
        let cold = s.cold_state(Kind::Pack, &n).unwrap().expect("cold");
        assert_eq!(cold.restore, crate::cold::Restore::Ongoing);
        let thaw = s.request_thaw(Kind::Pack, &n, ThawTier::Bulk, 3);
        assert_eq!(thaw.unwrap_err().op, "thaw");
        assert_eq!(s.size(Kind::Pack, &n).unwrap(), 99);
        assert_eq!(
            s.locked_until(Kind::Pack, &n).unwrap(),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(42))
        );
        let quiet: Arc<dyn WaitObserver> = Arc::new(Quiet);
        assert!(s.set_wait_observer(Some(quiet.clone())).is_none());
        let back = s
            .set_wait_observer(None)
            .expect("the wrapped storage kept it");
        assert!(Arc::ptr_eq(&back, &quiet));
    }

    /// A layer that overrides one method keeps the others forwarded.
    #[derive(Debug, Default)]
    struct Counting {
        inner: Distinct,
        reads: Mutex<u32>,
    }

    impl Forward for Counting {
        fn inner(&self) -> &dyn Storage {
            &self.inner
        }
        fn read(&self, kind: Kind, name: &str) -> Result<Vec<u8>> {
            *self.reads.lock().unwrap() += 1;
            self.inner.read(kind, name)
        }
    }

    #[test]
    fn an_override_changes_only_its_method() {
        let c = Counting::default();
        let n = name_of(b"y");
        let s: &dyn Storage = &c;
        assert_eq!(s.read(Kind::Index, &n).unwrap(), b"read");
        assert_eq!(s.read(Kind::Index, &n).unwrap(), b"read");
        assert_eq!(*c.reads.lock().unwrap(), 2);
        s.write_parts(Kind::Pack, &n, &[b"a", b"b"]).unwrap();
        s.write_vec(Kind::Pack, &n, vec![1]).unwrap();
        s.create().unwrap();
        assert_eq!(
            *c.inner.calls.lock().unwrap(),
            ["write_parts", "write_vec", "create"]
        );
    }
}
