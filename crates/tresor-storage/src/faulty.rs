//! Fault injection for tests: a [`Forward`](crate::Forward) layer over any storage that fails chosen calls
//! ([`Fault`]), holds objects of chosen kinds under a simulated Object Lock
//! ([`FaultyStorage::lock_kind`]), and records every call it sees ([`FaultyStorage::calls`]).
//! With no fault and no lock it passes everything through unchanged (the conformance suite
//! checks that).

use crate::{ErrorKind, Kind, Result, Storage, StorageError};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

/// A family of storage calls, as [`Fault`]s and [`Call`]s name them. `write`, `write_vec` and
/// `write_parts` are all [`Method::Write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// [`Storage::create`].
    Create,
    /// [`Storage::list`].
    List,
    /// [`Storage::read`].
    Read,
    /// [`Storage::read_range`].
    ReadRange,
    /// [`Storage::write`], [`Storage::write_vec`], [`Storage::write_parts`].
    Write,
    /// [`Storage::delete`].
    Delete,
    /// [`Storage::size`].
    Size,
    /// [`Storage::locked_until`].
    LockedUntil,
}

/// Which calls fail, and with what: calls of one [`Method`], optionally only of one kind and one
/// object name; the first [`Fault::after`] matching calls pass, then [`Fault::times`] of them
/// fail (all of them by default). A failed call does not reach the wrapped storage; its error
/// says `injected <kind> fault` (`injected transient fault`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    method: Method,
    kind: Option<Kind>,
    name: Option<String>,
    after: u64,
    times: Option<u64>,
    error: ErrorKind,
}

impl Fault {
    /// Every call of `method` fails with `error`.
    pub fn on(method: Method, error: ErrorKind) -> Fault {
        Fault {
            method,
            kind: None,
            name: None,
            after: 0,
            times: None,
            error,
        }
    }

    /// Only calls on objects of `kind`.
    #[must_use]
    pub fn kind(mut self, kind: Kind) -> Fault {
        self.kind = Some(kind);
        self
    }

    /// Only calls on the object named `name`.
    #[must_use]
    pub fn name(mut self, name: &str) -> Fault {
        self.name = Some(name.to_string());
        self
    }

    /// The first `n` matching calls pass.
    #[must_use]
    pub fn after(mut self, n: u64) -> Fault {
        self.after = n;
        self
    }

    /// Only `n` calls fail (after [`Fault::after`]); later ones pass again.
    #[must_use]
    pub fn times(mut self, n: u64) -> Fault {
        self.times = Some(n);
        self
    }

    fn matches(&self, method: Method, kind: Option<Kind>, name: &str) -> bool {
        self.method == method
            && (self.kind.is_none() || self.kind == kind)
            && self.name.as_deref().is_none_or(|n| n == name)
    }

    /// Whether the `seen`-th matching call (0-based) fails.
    fn fails(&self, seen: u64) -> bool {
        seen >= self.after && self.times.is_none_or(|t| seen - self.after < t)
    }
}

/// One call as the layer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Which method.
    pub method: Method,
    /// The kind, `None` for [`Method::Create`].
    pub kind: Option<Kind>,
    /// The object name, empty for [`Method::Create`] and [`Method::List`].
    pub name: String,
    /// Bytes asked for or moved: the length asked of a range read, the bytes of a write, the
    /// bytes a whole read returned (0 when it failed); 0 for the other methods.
    pub len: u64,
    /// How it failed, injected or from the wrapped storage; `None`: it succeeded.
    pub error: Option<ErrorKind>,
}

/// A layer over `S` that fails calls by [`Fault`]s, simulates Object Lock, and records
/// [`Call`]s. Safe to use from many threads; faults and locks can change while it is in use.
#[derive(Debug)]
pub struct FaultyStorage<S> {
    inner: S,
    /// Faults and how many matching calls each has seen.
    faults: Mutex<Vec<(Fault, u64)>>,
    locks: Mutex<HashMap<Kind, SystemTime>>,
    calls: Mutex<Vec<Call>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S: Storage> FaultyStorage<S> {
    /// Wrap `inner`, passing everything through until faults or locks are set.
    pub fn new(inner: S) -> Self {
        FaultyStorage {
            inner,
            faults: Mutex::new(Vec::new()),
            locks: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// The wrapped storage itself, to reach it without faults (and unrecorded).
    pub fn wrapped(&self) -> &S {
        &self.inner
    }

    /// Add a fault (faults are checked in the order they were added; the first that fails a
    /// call decides its error).
    pub fn inject(&self, fault: Fault) {
        lock(&self.faults).push((fault, 0));
    }

    /// Remove every fault equal to `fault` (its counts with it).
    pub fn remove(&self, fault: &Fault) {
        lock(&self.faults).retain(|(f, _)| f != fault);
    }

    /// Remove every fault.
    pub fn clear(&self) {
        lock(&self.faults).clear();
    }

    /// Hold every object of `kind` until `until` (`None`: release), like S3 Object Lock:
    /// [`Storage::locked_until`] reports the date while it is in the future (after checking
    /// that the object exists) and deletes are refused with [`ErrorKind::PermissionDenied`].
    pub fn lock_kind(&self, kind: Kind, until: Option<SystemTime>) {
        let mut locks = lock(&self.locks);
        match until {
            Some(t) => locks.insert(kind, t),
            None => locks.remove(&kind),
        };
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    /// The calls of `method` on the object `name`.
    pub fn calls_on(&self, method: Method, name: &str) -> Vec<Call> {
        lock(&self.calls)
            .iter()
            .filter(|c| c.method == method && c.name == name)
            .cloned()
            .collect()
    }

    /// Forget the recorded calls.
    pub fn clear_calls(&self) {
        lock(&self.calls).clear();
    }

    fn held(&self, kind: Kind) -> Option<SystemTime> {
        let until = *lock(&self.locks).get(&kind)?;
        (until > SystemTime::now()).then_some(until)
    }

    /// The injected error for this call, if a fault fails it. Every matching fault counts it.
    fn injected(&self, method: Method, kind: Option<Kind>, name: &str) -> Option<ErrorKind> {
        let mut hit = None;
        for (fault, seen) in lock(&self.faults).iter_mut() {
            if fault.matches(method, kind, name) {
                if hit.is_none() && fault.fails(*seen) {
                    hit = Some(fault.error);
                }
                *seen += 1;
            }
        }
        hit
    }

    /// Record the call, fail it when a fault says so, else run it.
    fn call<T>(
        &self,
        (method, kind, name): (Method, Option<Kind>, &str),
        len: impl Fn(&Result<T>) -> u64,
        run: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let result = match self.injected(method, kind, name) {
            Some(error) => Err(StorageError::new(
                error,
                op_name(method),
                kind.unwrap_or(Kind::Config),
                name,
                format!("injected {} fault", error_word(error)),
            )),
            None => run(),
        };
        lock(&self.calls).push(Call {
            method,
            kind,
            name: name.to_string(),
            len: len(&result),
            error: result.as_ref().err().map(|e| e.kind),
        });
        result
    }
}

/// The error kind in the message of an injected fault: `injected transient fault`.
fn error_word(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "not-found",
        ErrorKind::AlreadyExists => "already-exists",
        ErrorKind::PermissionDenied => "permission",
        ErrorKind::InvalidName => "invalid-name",
        ErrorKind::ShortRead => "short-read",
        ErrorKind::NoSpace => "no-space",
        ErrorKind::Transient => "transient",
        ErrorKind::Other => "other",
    }
}

fn op_name(method: Method) -> &'static str {
    match method {
        Method::Create => "create",
        Method::List => "list",
        Method::Read | Method::ReadRange => "read",
        Method::Write => "write",
        Method::Delete => "delete",
        Method::Size => "stat",
        Method::LockedUntil => "lock",
    }
}

impl<S: Storage> crate::Forward for FaultyStorage<S> {
    fn inner(&self) -> &dyn Storage {
        &self.inner
    }

    fn location(&self) -> String {
        format!("faulty:{}", self.inner.location())
    }

    fn create(&self) -> Result<()> {
        self.call((Method::Create, None, ""), |_| 0, || self.inner.create())
    }

    fn list(&self, kind: Kind) -> Result<Vec<(String, u64)>> {
        let m = (Method::List, Some(kind), "");
        self.call(m, |_| 0, || self.inner.list(kind))
    }

    /// Fails as [`Storage::list`] does (the same rules apply).
    fn list_stamped(&self, kind: Kind) -> Result<Option<crate::Stamped>> {
        let m = (Method::List, Some(kind), "");
        self.call(m, |_| 0, || self.inner.list_stamped(kind))
    }

    fn read(&self, kind: Kind, name: &str) -> Result<Vec<u8>> {
        let m = (Method::Read, Some(kind), name);
        let len = |r: &Result<Vec<u8>>| r.as_ref().map_or(0, |b| b.len() as u64);
        self.call(m, len, || self.inner.read(kind, name))
    }

    fn read_range(&self, kind: Kind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        let m = (Method::ReadRange, Some(kind), name);
        let run = || self.inner.read_range(kind, name, offset, length);
        self.call(m, |_| length, run)
    }

    fn write(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()> {
        let m = (Method::Write, Some(kind), name);
        let len = data.len() as u64;
        self.call(m, |_| len, || self.inner.write(kind, name, data))
    }

    fn write_vec(&self, kind: Kind, name: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
        let m = (Method::Write, Some(kind), name);
        let len = data.len() as u64;
        self.call(m, |_| len, || self.inner.write_vec(kind, name, data))
    }

    fn write_vec_hot(&self, kind: Kind, name: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
        let m = (Method::Write, Some(kind), name);
        let len = data.len() as u64;
        self.call(m, |_| len, || self.inner.write_vec_hot(kind, name, data))
    }

    fn write_file(
        &self,
        kind: Kind,
        name: &str,
        path: &std::path::Path,
        len: u64,
        hot: bool,
    ) -> Result<()> {
        let m = (Method::Write, Some(kind), name);
        let run = || self.inner.write_file(kind, name, path, len, hot);
        self.call(m, |_| len, run)
    }

    fn write_parts(&self, kind: Kind, name: &str, parts: &[&[u8]]) -> Result<()> {
        let m = (Method::Write, Some(kind), name);
        let len = parts.iter().map(|p| p.len() as u64).sum();
        self.call(m, |_| len, || self.inner.write_parts(kind, name, parts))
    }

    fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        let m = (Method::Delete, Some(kind), name);
        self.call(
            m,
            |_| 0,
            || match self.held(kind) {
                Some(_) => Err(StorageError::new(
                    ErrorKind::PermissionDenied,
                    "delete",
                    kind,
                    name,
                    "object lock",
                )),
                None => self.inner.delete(kind, name),
            },
        )
    }

    fn size(&self, kind: Kind, name: &str) -> Result<u64> {
        let m = (Method::Size, Some(kind), name);
        self.call(m, |_| 0, || self.inner.size(kind, name))
    }

    fn locked_until(&self, kind: Kind, name: &str) -> Result<Option<SystemTime>> {
        let m = (Method::LockedUntil, Some(kind), name);
        self.call(
            m,
            |_| 0,
            || match self.held(kind) {
                Some(until) => self.inner.size(kind, name).map(|_| Some(until)),
                None => self.inner.locked_until(kind, name),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStorage;
    use crate::name_of;
    use std::time::Duration;

    fn store() -> (FaultyStorage<MemoryStorage>, String) {
        let s = FaultyStorage::new(MemoryStorage::new());
        let name = name_of(b"one");
        s.write(Kind::Pack, &name, b"one").unwrap();
        (s, name)
    }

    #[test]
    fn faults_pass_the_first_calls_then_fail_a_number_of_them() {
        let (s, name) = store();
        s.inject(
            Fault::on(Method::Read, ErrorKind::Transient)
                .kind(Kind::Pack)
                .after(1)
                .times(2),
        );
        let kinds: Vec<Option<ErrorKind>> = (0..4)
            .map(|_| s.read(Kind::Pack, &name).err().map(|e| e.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                None,
                Some(ErrorKind::Transient),
                Some(ErrorKind::Transient),
                None
            ]
        );
        // Other kinds, other methods: untouched.
        assert_eq!(s.size(Kind::Pack, &name).unwrap(), 3);
        let e = s.read(Kind::Index, &name).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "reaches the wrapped storage");
        // Every way of writing is a write; the fault names one object.
        s.inject(Fault::on(Method::Write, ErrorKind::NoSpace).name(&name));
        let e = s.write_vec(Kind::Pack, &name, b"one".to_vec()).unwrap_err();
        assert_eq!((e.kind, e.op), (ErrorKind::NoSpace, "write"));
        assert_eq!(e.message, "injected no-space fault");
        let e = s
            .write_parts(Kind::Pack, &name, &[b"o", b"ne"])
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NoSpace);
        let other = name_of(b"two");
        s.write_parts(Kind::Pack, &other, &[b"t", b"wo"]).unwrap();
        assert_eq!(s.wrapped().read(Kind::Pack, &other).unwrap(), b"two");
    }

    #[test]
    fn calls_are_recorded_with_their_lengths_and_outcomes() {
        let (s, name) = store();
        s.inject(Fault::on(Method::ReadRange, ErrorKind::Transient).name(&name));
        s.read(Kind::Pack, &name).unwrap();
        s.read_range(Kind::Pack, &name, 1, 2).unwrap_err();
        s.delete(Kind::Pack, &name).unwrap();
        let calls = s.calls();
        let seen: Vec<_> = calls
            .iter()
            .map(|c| (c.method, c.kind, c.len, c.error))
            .collect();
        assert_eq!(
            seen,
            [
                (Method::Write, Some(Kind::Pack), 3, None),
                (Method::Read, Some(Kind::Pack), 3, None),
                (
                    Method::ReadRange,
                    Some(Kind::Pack),
                    2,
                    Some(ErrorKind::Transient)
                ),
                (Method::Delete, Some(Kind::Pack), 0, None),
            ]
        );
        assert!(calls.iter().all(|c| c.name == name));
        assert_eq!(s.calls_on(Method::Read, &name).len(), 1);
        s.clear_calls();
        assert!(s.calls().is_empty());
    }

    #[test]
    fn a_locked_kind_reports_its_date_and_refuses_deletes_until_released() {
        let (s, name) = store();
        let until = SystemTime::now() + Duration::from_secs(3600);
        s.lock_kind(Kind::Pack, Some(until));
        assert_eq!(s.locked_until(Kind::Pack, &name).unwrap(), Some(until));
        let missing = name_of(b"missing");
        let e = s.locked_until(Kind::Pack, &missing).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        let e = s.delete(Kind::Pack, &name).unwrap_err();
        assert_eq!((e.kind, e.op), (ErrorKind::PermissionDenied, "delete"));
        // A lock in the past holds nothing.
        s.lock_kind(Kind::Pack, Some(SystemTime::now() - Duration::from_secs(1)));
        assert_eq!(s.locked_until(Kind::Pack, &name).unwrap(), None);
        s.lock_kind(Kind::Pack, Some(until));
        s.lock_kind(Kind::Pack, None);
        s.delete(Kind::Pack, &name).unwrap();
        assert_eq!(
            s.wrapped().size(Kind::Pack, &name).unwrap_err().kind,
            ErrorKind::NotFound
        );
    }

    #[test]
    fn removed_faults_stop_failing() {
        let (s, name) = store();
        let f = Fault::on(Method::Delete, ErrorKind::PermissionDenied).kind(Kind::Pack);
        s.inject(f.clone());
        assert_eq!(
            s.delete(Kind::Pack, &name).unwrap_err().kind,
            ErrorKind::PermissionDenied
        );
        s.remove(&f);
        s.delete(Kind::Pack, &name).unwrap();
        s.inject(Fault::on(Method::List, ErrorKind::Other));
        assert!(s.list(Kind::Index).is_err());
        s.clear();
        assert_eq!(s.list(Kind::Index).unwrap(), []);
        assert_eq!(s.location(), "faulty:memory:");
    }
}
