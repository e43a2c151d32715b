//! Human-readable sizes and durations, and waits for the store as lines (progress: `progress`).

use std::sync::Mutex;
use std::time::{Duration, Instant};
use tresor_storage::retry::{WaitNotice, WaitObserver};

/// Format bytes with binary units, e.g. `1.50 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// Format a duration as `m:ss.t` (tenths of a second) or, from an hour on, [`clock`]'s `h:mm:ss`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        clock(s)
    } else {
        format!("{}:{:02}.{:01}", s / 60, s % 60, d.subsec_millis() / 100)
    }
}

/// `s` seconds as `m:ss`, or `h:mm:ss` from an hour on.
pub fn clock(s: u64) -> String {
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Waits for the store as lines on stderr, `tresor: waiting for the store: …`: the first one,
/// then at most one every 10 s (a throttled store makes every upload wait at once).
#[derive(Default)]
pub struct WaitLines {
    last: Mutex<Option<Instant>>,
}

impl WaitLines {
    /// Print `notice`, unless one was printed less than 10 s ago.
    pub fn print(&self, notice: &WaitNotice) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            *last = Some(Instant::now());
            crate::render::say(format!("tresor: {notice}"));
        }
    }
}

impl WaitObserver for WaitLines {
    fn waiting(&self, notice: &WaitNotice) {
        self.print(notice);
    }
}
