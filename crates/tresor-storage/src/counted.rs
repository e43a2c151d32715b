//! Request counting: a [`Forward`](crate::Forward) layer over any storage that counts the
//! requests a command makes and the bytes it moves, as an S3 bill would count them.
//!
//! One call of the wrapped storage is one request: `write`/`write_vec`/`write_parts` a PUT,
//! `read` and `read_range` a GET (a ranged GET is a GET), `size` and `locked_until` a HEAD,
//! `delete` a DELETE, and `list`/`list_stamped`/`list_classes` as many LIST pages as S3 returns for that many
//! objects ([`list_pages`]: 1 000 keys a page, at least one). Retries below this layer (the S3
//! and server clients retry passing failures themselves) are not counted: these are the
//! requests tresor asked for, the bill can be slightly higher. Bytes are payload bytes (object
//! bodies), not headers. Counts saturate instead of overflowing.

use crate::{Classed, Kind, Result, Stamped, Storage};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Keys per page of an S3 `ListObjectsV2` answer (`max-keys`' default and maximum).
pub const KEYS_PER_PAGE: u64 = 1000;

/// The LIST pages an S3 listing of `objects` keys takes: one per [`KEYS_PER_PAGE`], at least one.
pub fn list_pages(objects: usize) -> u64 {
    (objects as u64).div_ceil(KEYS_PER_PAGE).max(1)
}

/// Request counts and bytes moved. Serialized as the `requests` object of the commands' JSON
/// summaries and in the request log of the CLI (field names as here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// Object writes (PUT).
    pub put: u64,
    /// Object reads, whole or ranged (GET).
    pub get: u64,
    /// Size and lock queries (HEAD).
    pub head: u64,
    /// Listing pages (LIST).
    pub list: u64,
    /// Deletions (DELETE).
    pub delete: u64,
    /// Bytes written (object bodies).
    pub bytes_up: u64,
    /// Bytes read (object bodies).
    pub bytes_down: u64,
}

impl Counts {
    /// The field-by-field sum, saturating.
    pub fn plus(&self, o: &Counts) -> Counts {
        Counts {
            put: self.put.saturating_add(o.put),
            get: self.get.saturating_add(o.get),
            head: self.head.saturating_add(o.head),
            list: self.list.saturating_add(o.list),
            delete: self.delete.saturating_add(o.delete),
            bytes_up: self.bytes_up.saturating_add(o.bytes_up),
            bytes_down: self.bytes_down.saturating_add(o.bytes_down),
        }
    }
}

/// Shared, thread-safe counters (one per command run; cheap to clone through an `Arc`).
#[derive(Debug, Default)]
pub struct Counter {
    put: AtomicU64,
    get: AtomicU64,
    head: AtomicU64,
    list: AtomicU64,
    delete: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// Add `n` to `a`, saturating at `u64::MAX`.
fn add(a: &AtomicU64, n: u64) {
    let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_add(n))
    });
}

impl Counter {
    /// The counts so far.
    pub fn counts(&self) -> Counts {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            put: g(&self.put),
            get: g(&self.get),
            head: g(&self.head),
            list: g(&self.list),
            delete: g(&self.delete),
            bytes_up: g(&self.bytes_up),
            bytes_down: g(&self.bytes_down),
        }
    }

    fn put(&self, bytes: usize) {
        add(&self.put, 1);
        add(&self.bytes_up, bytes as u64);
    }

    fn got<T: AsRef<[u8]>>(&self, r: Result<T>) -> Result<T> {
        add(&self.get, 1);
        if let Ok(d) = &r {
            add(&self.bytes_down, d.as_ref().len() as u64);
        }
        r
    }
}

/// A storage whose requests are counted in a shared [`Counter`]; everything passes through.
#[derive(Debug)]
pub struct Counted {
    inner: Arc<dyn Storage>,
    counter: Arc<Counter>,
}

impl Counted {
    /// `inner`, counting into `counter`.
    pub fn new(inner: Arc<dyn Storage>, counter: Arc<Counter>) -> Self {
        Counted { inner, counter }
    }
}

impl crate::Forward for Counted {
    fn inner(&self) -> &dyn Storage {
        self.inner.as_ref()
    }

    fn list(&self, kind: Kind) -> Result<Vec<(String, u64)>> {
        let r = self.inner.list(kind);
        add(
            &self.counter.list,
            list_pages(r.as_ref().map_or(0, Vec::len)),
        );
        r
    }

    fn list_stamped(&self, kind: Kind) -> Result<Option<Stamped>> {
        let r = self.inner.list_stamped(kind);
        if let Ok(Some(s)) = &r {
            add(&self.counter.list, list_pages(s.objects.len()));
        }
        r
    }

    fn list_classes(&self, kind: Kind) -> Result<Option<Vec<Classed>>> {
        let r = self.inner.list_classes(kind);
        if let Ok(Some(l)) = &r {
            add(&self.counter.list, list_pages(l.len()));
        }
        r
    }

    fn read(&self, kind: Kind, name: &str) -> Result<Vec<u8>> {
        self.counter.got(self.inner.read(kind, name))
    }

    fn read_range(&self, kind: Kind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.counter
            .got(self.inner.read_range(kind, name, offset, length))
    }

    fn write(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()> {
        self.counter.put(data.len());
        self.inner.write(kind, name, data)
    }

    fn write_vec(&self, kind: Kind, name: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
        self.counter.put(data.len());
        self.inner.write_vec(kind, name, data)
    }

    fn write_parts(&self, kind: Kind, name: &str, parts: &[&[u8]]) -> Result<()> {
        self.counter.put(parts.iter().map(|p| p.len()).sum());
        self.inner.write_parts(kind, name, parts)
    }

    fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        add(&self.counter.delete, 1);
        self.inner.delete(kind, name)
    }

    fn size(&self, kind: Kind, name: &str) -> Result<u64> {
        add(&self.counter.head, 1);
        self.inner.size(kind, name)
    }

    fn locked_until(&self, kind: Kind, name: &str) -> Result<Option<std::time::SystemTime>> {
        add(&self.counter.head, 1);
        self.inner.locked_until(kind, name)
    }

    fn write_vec_hot(&self, kind: Kind, name: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
        self.counter.put(data.len());
        self.inner.write_vec_hot(kind, name, data)
    }

    fn write_file(
        &self,
        kind: Kind,
        name: &str,
        path: &std::path::Path,
        len: u64,
        hot: bool,
    ) -> Result<()> {
        self.counter.put(len as usize);
        self.inner.write_file(kind, name, path, len, hot)
    }

    fn cold_state(&self, kind: Kind, name: &str) -> Result<Option<crate::cold::ColdState>> {
        add(&self.counter.head, 1);
        self.inner.cold_state(kind, name)
    }

    /// A `RestoreObject` request is a `POST`, priced like a `PUT`: counted with them (no bytes).
    fn request_thaw(
        &self,
        kind: Kind,
        name: &str,
        tier: crate::cold::ThawTier,
        days: u32,
    ) -> Result<()> {
        self.counter.put(0);
        self.inner.request_thaw(kind, name, tier, days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStorage;
    use crate::name_of;

    fn counted() -> (Counted, Arc<Counter>) {
        let c = Arc::new(Counter::default());
        let s = Counted::new(Arc::new(MemoryStorage::new()), c.clone());
        s.create().unwrap();
        (s, c)
    }

    /// The calls the cold tier added are requests too: a tree pack written hot is a `PUT`
    /// with its bytes, a cold-state probe a `HEAD`.
    #[test]
    fn hot_writes_and_cold_probes_are_counted() {
        let (s, c) = counted();
        let a = b"tree pack".to_vec();
        let na = name_of(&a);
        s.write_vec_hot(Kind::Pack, &na, a.clone()).unwrap();
        assert_eq!(s.read(Kind::Pack, &na).unwrap(), a, "written through");
        let _ = s.cold_state(Kind::Pack, &na);
        let n = c.counts();
        assert_eq!((n.put, n.bytes_up, n.head, n.get), (1, 9, 1, 1));
    }

    /// A pack stored from a spool file is one `PUT` of its bytes, as when sent from memory.
    #[test]
    fn spooled_writes_are_counted() {
        let (s, c) = counted();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spooled");
        std::fs::write(&path, b"spooled pack").unwrap();
        let name = name_of(b"spooled pack");
        s.write_file(Kind::Pack, &name, &path, 12, false).unwrap();
        assert_eq!(s.read(Kind::Pack, &name).unwrap(), b"spooled pack");
        let n = c.counts();
        assert_eq!((n.put, n.bytes_up, n.get), (1, 12, 1));
    }

    #[test]
    fn every_request_is_counted_exactly() {
        let (s, c) = counted();
        let (a, b) = (b"hello".to_vec(), b"world!".to_vec());
        let (na, nb) = (name_of(&a), name_of(&b));
        s.write(Kind::Pack, &na, &a).unwrap();
        s.write_vec(Kind::Index, &nb, b.clone()).unwrap();
        s.write_parts(Kind::Key, &name_of(b"ab"), &[b"a", b"b"])
            .unwrap();
        assert_eq!(s.read(Kind::Pack, &na).unwrap(), a);
        assert_eq!(s.read_range(Kind::Index, &nb, 1, 3).unwrap(), b"orl");
        assert!(s.read(Kind::Pack, &nb).is_err(), "missing: still a GET");
        assert_eq!(s.size(Kind::Pack, &na).unwrap(), 5);
        s.locked_until(Kind::Pack, &na).unwrap();
        assert_eq!(s.list(Kind::Pack).unwrap().len(), 1);
        s.list(Kind::Snapshot).unwrap();
        s.delete(Kind::Pack, &na).unwrap();
        let expect = Counts {
            put: 3,
            get: 3,
            head: 2,
            list: 2,
            delete: 1,
            bytes_up: 5 + 6 + 2,
            bytes_down: 5 + 3,
        };
        assert_eq!(c.counts(), expect);
    }

    #[test]
    fn listing_pages_are_a_thousand_keys_each() {
        assert_eq!(
            [0, 1, 999, 1000, 1001, 2500].map(list_pages),
            [1, 1, 1, 1, 2, 3]
        );
        let (s, c) = counted();
        for i in 0..1001u32 {
            let d = i.to_le_bytes();
            s.write(Kind::Pack, &name_of(&d), &d).unwrap();
        }
        s.list(Kind::Pack).unwrap();
        assert_eq!(c.counts().list, 2);
        assert_eq!(c.counts().put, 1001);
    }

    #[test]
    fn counts_saturate() {
        let c = Counter::default();
        add(&c.bytes_up, u64::MAX - 1);
        c.put(5);
        assert_eq!(c.counts().bytes_up, u64::MAX);
        let big = Counts {
            put: u64::MAX,
            ..Counts::default()
        };
        assert_eq!(big.plus(&big).put, u64::MAX);
    }

    #[test]
    fn a_counted_storage_keeps_the_contract() {
        let (s, _) = counted();
        crate::conformance::run_all(&s);
    }
}
