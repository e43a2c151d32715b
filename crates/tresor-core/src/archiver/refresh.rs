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
use tresor_storage::{Kind, Storage};

/// How often a running backup writes a fresh marker: 5 minutes (as restic refreshes its locks).
pub const REFRESH: Duration = Duration::from_secs(300);

/// Marker age from which prune treats a marker as stale: 30 minutes, restic's stale-lock age
/// (`StaleLockTimeout` in restic's `internal/restic/lock.go`).
pub const STALE_AGE: Duration = Duration::from_secs(30 * 60);

/// Longest time a backup goes on without a successful marker write before it stops itself:
/// half of [`STALE_AGE`].
pub const MAX_GAP: Duration = Duration::from_secs(15 * 60);

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

/// The one-line error of a backup that stopped itself ([`too_late`]).
pub fn stopped_message(last: Stamp, now: Stamp) -> String {
    format!(
        "stopped: no backup marker could be written for {} s (more than {} s), so a prune may \
         take this backup for dead; nothing was indexed, back up again",
        gap(last, now).as_secs(),
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
    last: Arc<Mutex<Stamp>>,
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
        let last = Arc::new(Mutex::new(first));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let seen = last.clone();
        let thread = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                let at = Stamp::now();
                if let Some(id) = source.write(refresh_secs(every)) {
                    markers.lock().expect("markers").remember(id);
                    *seen.lock().expect("stamp") = at;
                }
            }
        });
        Refresher {
            stop: Some(tx),
            thread: Some(thread),
            last,
        }
    }

    /// When the last successful marker write started.
    pub fn last(&self) -> Stamp {
        *self.last.lock().expect("stamp")
    }

    /// The shared stamp of the last successful write, for guards on other threads.
    pub fn last_shared(&self) -> Arc<Mutex<Stamp>> {
        self.last.clone()
    }

    /// Stop the thread (waiting for a write in progress) and return [`Refresher::last`].
    pub fn stop(mut self) -> Stamp {
        self.halt();
        self.last()
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
        self.storage.write(Kind::Marker, &id.to_hex(), &bytes).ok()?;
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
        let msg = stopped_message(base, at(base, 0, 1000));
        assert!(msg.starts_with("stopped: no backup marker could be written for 1000 s (more than 900 s)"));
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn declared_seconds_round_up_to_at_least_one() {
        assert_eq!(refresh_secs(REFRESH), 300);
        assert_eq!(refresh_secs(Duration::from_millis(50)), 1);
        assert_eq!(refresh_secs(Duration::from_millis(1500)), 2);
        assert_eq!(refresh_secs(Duration::ZERO), 1);
    }
}
