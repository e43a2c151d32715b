//! Progress bars and human-readable sizes.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Format a duration as `m:ss` or `h:mm:ss`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}.{:01}", s / 60, s % 60, d.subsec_millis() / 100)
    }
}

/// Waits for the store as lines on stderr, `tresor: waiting for the store: …`: the first one,
/// then at most one every 10 s (a throttled store makes every upload wait at once).
#[derive(Default)]
pub struct WaitLines {
    last: Mutex<Option<Instant>>,
}

impl WaitLines {
    fn print(&self, notice: &WaitNotice) {
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

/// A terminal progress display: files, bytes, rate (and ETA when a total is known). Waits for
/// the store show in its message, or as [`WaitLines`] when there is no bar but notices are on.
pub struct Bar {
    bar: Option<ProgressBar>,
    files: AtomicU64,
    bytes: AtomicU64,
    /// Print waits for the store on stderr when there is no bar.
    lines: Option<WaitLines>,
}

impl Bar {
    /// A bar when `enabled`, else a silent counter.
    pub fn new(enabled: bool, verb: &str) -> Self {
        let bar = enabled.then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template(&format!("{{spinner}} [{{elapsed_precise}}] {verb} {{msg}} {{bytes}} ({{bytes_per_sec}}) {{wide_bar}} {{eta}}"))
                    .expect("template"),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Bar {
            bar,
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            lines: None,
        }
    }

    /// Without a bar, print waits for the store on stderr ([`WaitLines`]) when `on`.
    pub fn with_wait_lines(mut self, on: bool) -> Self {
        self.lines = on.then(WaitLines::default);
        self
    }

    /// Remove the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl tresor_core::Progress for Bar {
    fn file_done(&self, _bytes: u64) {
        let n = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(b) = &self.bar {
            b.set_message(format!("{n} files"));
        }
    }
    fn bytes_read(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }
    fn set_total(&self, _files: u64, bytes: u64) {
        if let Some(b) = &self.bar {
            b.set_length(bytes);
        }
    }
    fn store_waiting(&self, notice: &WaitNotice) {
        match (&self.bar, &self.lines) {
            (Some(b), _) => b.set_message(notice.to_string()),
            (None, Some(l)) => l.print(notice),
            (None, None) => {}
        }
    }
    fn store_recovered(&self) {
        if let Some(b) = &self.bar {
            let n = self.files.load(Ordering::Relaxed);
            b.set_message(format!("{n} files"));
        }
    }
}
