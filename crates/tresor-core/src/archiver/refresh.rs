//! Marker refresh (format §16.1): while a backup runs, a background thread writes a fresh start
//! marker every `refresh_secs`, so that prune can tell a running backup (a marker younger than
//! the stale age) from a dead one. A backup whose marker writes have all failed for more than
//! [`MAX_GAP`] stops before it indexes anything ([`too_late`]), so that no dead-looking backup
//! ever indexes packs.

use crate::repo::markers::PendingMarkers;
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};
use tresor_format::crypto::MasterKey;
use tresor_format::marker::Marker;
use tresor_format::sign::Signer;
use tresor_storage::{ErrorKind, Forward, Kind, Storage, StorageError};

pub use crate::repo::markers::{MAX_GAP, REFRESH, STALE_AGE};

/// When a marker write started, by both clocks: the monotonic one (which stops while the
/// machine is suspended) and the wall clock (which does not).
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    /// Monotonic time.
    pub instant: Instant,
    /// Wall-clock time.
    pub system: SystemTime,
}

impl Stamp {
    /// Both clocks now.
    pub fn now() -> Self {
        Stamp {
            instant: Instant::now(),
            system: SystemTime::now(),
        }
    }
}

/// What the refresh thread knows about the backup's markers: when the last successful write
/// started, and the longest gap seen between two successful writes (a gap heals nothing: a
/// backup that once went [`MAX_GAP`] without a marker may have been judged dead meanwhile).
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    /// Start of the last successful marker write.
    pub last: Stamp,
    /// The longest gap between the starts of two successful writes.
    pub worst: Duration,
}

impl Liveness {
    /// A backup whose first marker write started at `first` and succeeded.
    pub fn new(first: Stamp) -> Self {
        Liveness {
            last: first,
            worst: Duration::ZERO,
        }
    }

    /// A marker write that started at `at` succeeded.
    pub fn written(&mut self, at: Stamp) {
        self.worst = self.worst.max(gap(self.last, at));
        self.last = at;
    }

    /// `Err` with the one-line reason when the backup must stop instead of writing an index
    /// object or its snapshot at `now` ([`too_late`], or an earlier gap that was too long).
    ///
    /// # Errors
    /// The message of [`stopped_message`].
    pub fn check(&self, now: Stamp) -> Result<(), String> {
        let longest = self.worst.max(gap(self.last, now));
        if longest > MAX_GAP {
            Err(stopped_message(longest))
        } else {
            Ok(())
        }
    }
}

/// The time since `last` by whichever clock says more: a suspended laptop shows it on the
/// wall clock, a wall clock set back on the monotonic one.
pub fn gap(last: Stamp, now: Stamp) -> Duration {
    let mono = now.instant.saturating_duration_since(last.instant);
    let wall = now.system.duration_since(last.system).unwrap_or_default();
    mono.max(wall)
}

/// Whether a backup whose last successful marker write started at `last` must stop instead of
/// writing an index object or its snapshot at `now`: more than [`MAX_GAP`] went by.
pub fn too_late(last: Stamp, now: Stamp) -> bool {
    gap(last, now) > MAX_GAP
}

/// The one-line error of a backup that stopped itself after going `longest` without a marker.
pub fn stopped_message(longest: Duration) -> String {
    format!(
        "backup stopped: no start marker could be written for {} s (more than {} s), so a prune \
         may take this backup for dead (format §16.1); nothing more is indexed, back up again",
        longest.as_secs(),
        MAX_GAP.as_secs()
    )
}

/// What a refresh writes: a marker like the backup's first one, sealed and signed.
pub struct MarkerSource {
    /// Where markers go.
    pub storage: Arc<dyn Storage>,
    /// The repository key the marker is sealed to.
    pub key: MasterKey,
    /// The backup's signer.
    pub signer: Signer,
    /// The backup's host name.
    pub host: String,
    /// The backup's start time (RFC 3339).
    pub started: String,
}

/// The refresh thread of one backup; stopped by [`Refresher::stop`] or when dropped.
pub struct Refresher {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    live: Arc<Mutex<Liveness>>,
}

impl Refresher {
    /// Start writing a marker from `source` every `every` (declared in each marker as whole
    /// seconds, at least 1), each remembered in `markers`; `first` is when the backup's first
    /// marker write started.
    pub fn start(
        source: MarkerSource,
        markers: Arc<Mutex<PendingMarkers>>,
        every: Duration,
        first: Stamp,
    ) -> Self {
        let live = Arc::new(Mutex::new(Liveness::new(first)));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let seen = live.clone();
        let thread = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                let at = Stamp::now();
                if let Some(id) = source.write(refresh_secs(every)) {
                    markers.lock().expect("markers").remember(id);
                    seen.lock().expect("liveness").written(at);
                }
            }
        });
        Refresher {
            stop: Some(tx),
            thread: Some(thread),
            live,
        }
    }

    /// What the thread knows, shared (for the guard of index writes on other threads).
    pub fn liveness(&self) -> Arc<Mutex<Liveness>> {
        self.live.clone()
    }

    /// Stop the thread (waiting for a write in progress) and return what it knew last.
    pub fn stop(mut self) -> Liveness {
        self.halt();
        *self.live.lock().expect("liveness")
    }

    fn halt(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The storage a backup writes packs and index objects through while its markers refresh: an
/// index object is written only while [`Liveness::check`] passes (format §16.1), so a backup
/// that prune may take for dead never indexes anything.
#[derive(Debug)]
pub struct Guarded {
    inner: Arc<dyn Storage>,
    live: Arc<Mutex<Liveness>>,
}

impl Guarded {
    /// Guard `inner` with what [`Refresher::liveness`] gives.
    pub fn new(inner: Arc<dyn Storage>, live: Arc<Mutex<Liveness>>) -> Self {
        Guarded { inner, live }
    }

    fn check(&self, kind: Kind, name: &str) -> tresor_storage::Result<()> {
        if kind != Kind::Index && kind != Kind::Snapshot {
            return Ok(());
        }
        let live = *self.live.lock().expect("liveness");
        live.check(Stamp::now())
            .map_err(|m| StorageError::new(ErrorKind::Other, "write", kind, name, m))
    }
}

impl Forward for Guarded {
    fn inner(&self) -> &dyn Storage {
        &*self.inner
    }
    fn write(&self, kind: Kind, name: &str, data: &[u8]) -> tresor_storage::Result<()> {
        self.check(kind, name)?;
        self.inner.write(kind, name, data)
    }
    fn write_vec(
        &self,
        kind: Kind,
        name: &str,
        data: Vec<u8>,
    ) -> tresor_storage::Result<Option<Vec<u8>>> {
        self.check(kind, name)?;
        self.inner.write_vec(kind, name, data)
    }
    fn write_vec_hot(
        &self,
        kind: Kind,
        name: &str,
        data: Vec<u8>,
    ) -> tresor_storage::Result<Option<Vec<u8>>> {
        self.check(kind, name)?;
        self.inner.write_vec_hot(kind, name, data)
    }
    fn write_file(
        &self,
        kind: Kind,
        name: &str,
        path: &std::path::Path,
        len: u64,
        hot: bool,
    ) -> tresor_storage::Result<()> {
        self.check(kind, name)?;
        self.inner.write_file(kind, name, path, len, hot)
    }
    fn write_parts(&self, kind: Kind, name: &str, parts: &[&[u8]]) -> tresor_storage::Result<()> {
        self.check(kind, name)?;
        self.inner.write_parts(kind, name, parts)
    }
}

/// `every` in whole seconds as a marker declares it (at least 1).
pub fn refresh_secs(every: Duration) -> u64 {
    every.as_secs_f64().ceil().max(1.0) as u64
}

impl MarkerSource {
    /// Write one marker declaring `refresh_secs`; `None` when that fails (the gap check
    /// decides what a failure means).
    fn write(&self, refresh_secs: u64) -> Option<tresor_format::ObjectId> {
        let marker = Marker::new(&self.host, &self.started)
            .ok()?
            .with_refresh(refresh_secs);
        let bytes = marker.seal(&self.key, &self.signer).ok()?;
        let id = tresor_format::ObjectId::of(&bytes);
        self.storage
            .write(Kind::Marker, &id.to_hex(), &bytes)
            .ok()?;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Stamp, mono: u64, wall: i64) -> Stamp {
        let system = if wall >= 0 {
            base.system + Duration::from_secs(wall as u64)
        } else {
            base.system - Duration::from_secs(wall.unsigned_abs())
        };
        Stamp {
            instant: base.instant + Duration::from_secs(mono),
            system,
        }
    }

    /// The larger clock decides: a suspend (wall clock ahead of the monotonic one) counts, and
    /// so does a wall clock set back; exactly [`MAX_GAP`] is still in time.
    #[test]
    fn the_larger_of_both_clocks_decides() {
        let base = Stamp::now();
        assert_eq!(gap(base, at(base, 60, 60)), Duration::from_secs(60));
        assert!(!too_late(base, at(base, 60, 60)));
        // Suspended for an hour: the monotonic clock saw a minute.
        assert_eq!(gap(base, at(base, 60, 3660)), Duration::from_secs(3660));
        assert!(too_late(base, at(base, 60, 3660)));
        // The wall clock was set back a day: the monotonic clock still counts.
        assert_eq!(gap(base, at(base, 901, -86_400)), Duration::from_secs(901));
        assert!(too_late(base, at(base, 901, -86_400)));
        assert!(!too_late(base, at(base, 900, 900)));
        assert!(too_late(base, at(base, 900, 901)));
        assert!(too_late(base, at(base, 901, 0)));
    }

    /// A gap between two successful writes stays against the backup: a marker written after
    /// it does not make the backup fit to index again; short gaps are fine.
    #[test]
    fn a_long_gap_is_never_healed_by_a_later_marker() {
        let base = Stamp::now();
        let mut live = Liveness::new(base);
        live.written(at(base, 300, 300));
        live.written(at(base, 600, 600));
        assert_eq!(live.worst, Duration::from_secs(300));
        assert_eq!(live.check(at(base, 1400, 1400)), Ok(()));
        // Suspended for 40 minutes, then the refresh succeeds at once.
        live.written(at(base, 610, 3000));
        assert_eq!(live.worst, Duration::from_secs(2400));
        let err = live.check(at(base, 611, 3001)).unwrap_err();
        assert_eq!(
            err,
            "backup stopped: no start marker could be written for 2400 s (more than 900 s), so a \
             prune may take this backup for dead (format §16.1); nothing more is indexed, back up again"
        );
        // Never a successful refresh after the first marker: the time since it counts.
        let first = Liveness::new(base);
        assert!(first.check(at(base, 900, 900)).is_ok());
        assert!(first.check(at(base, 901, 10)).is_err());
    }

    /// The guard lets packs through always, index objects and snapshots only while the
    /// markers refresh; a stopped backup's index write fails with the one-line reason.
    #[test]
    fn the_guard_refuses_index_writes_after_a_gap() {
        use tresor_storage::memory::MemoryStorage;
        let inner: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let live = Arc::new(Mutex::new(Liveness::new(Stamp::now())));
        let guarded = Guarded::new(inner.clone(), live.clone());
        let g: &dyn Storage = &guarded;
        let name = tresor_storage::name_of(b"i");
        g.write(Kind::Index, &name, b"i").unwrap();
        // Twenty minutes without a marker, seen on the wall clock (a suspend).
        live.lock().unwrap().last.system -= Duration::from_secs(20 * 60);
        let other = tresor_storage::name_of(b"j");
        for kind in [Kind::Index, Kind::Snapshot] {
            let e = g.write(kind, &other, b"j").unwrap_err();
            assert!(
                e.message
                    .starts_with("backup stopped: no start marker could be written for 1200 s"),
                "{e}"
            );
            assert!(g.write_vec(kind, &other, b"j".to_vec()).is_err());
            assert!(g.write_parts(kind, &other, &[b"j"]).is_err());
        }
        g.write(Kind::Pack, &other, b"j").unwrap();
        assert_eq!(inner.list(Kind::Index).unwrap(), [(name, 1)]);
        assert!(inner.list(Kind::Snapshot).unwrap().is_empty());
    }

    #[test]
    fn declared_seconds_round_up_to_at_least_one() {
        assert_eq!(refresh_secs(REFRESH), 300);
        assert_eq!(refresh_secs(Duration::from_millis(50)), 1);
        assert_eq!(refresh_secs(Duration::from_millis(1500)), 2);
        assert_eq!(refresh_secs(Duration::ZERO), 1);
    }
}
