//! Progress while a command works: the counters core reports into ([`tresor_core::Progress`]),
//! shown as a bar on standard error when it is a terminal, or as JSON status lines on standard
//! output (`--json -v`), or not at all (a pipe, `--quiet`). The callbacks only count; a ticker
//! thread draws `TRESOR_PROGRESS_FPS` times a second (default: 10 on a terminal, 1 for status
//! lines).

use crate::output::{WaitLines, bytes, clock};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tresor_core::ItemOutcome;
use tresor_storage::retry::WaitNotice;

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// Nowhere.
    Nothing,
    /// A bar on standard error (a terminal).
    Bar,
    /// JSON status lines on standard output (`--json -v`).
    Json,
}

impl Show {
    /// A bar when `on`, else nothing.
    pub fn bar_if(on: bool) -> Show {
        if on { Show::Bar } else { Show::Nothing }
    }
}

/// One status line (`--json -v`), restic's shape: counts so far of the (estimated) total.
/// `total_*` are at least the `*_done` counts. `seconds_remaining` is left out until a rate is
/// known.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Status {
    /// Always `"status"`.
    pub message_type: &'static str,
    /// Done of total, 0.0–1.0: by bytes when there are bytes to do, else by files.
    pub percent_done: f64,
    /// Entries to do (non-directory entries for backup and restore; steps of a phase).
    pub total_files: u64,
    /// Entries done.
    pub files_done: u64,
    /// Content bytes to do.
    pub total_bytes: u64,
    /// Content bytes done (read, or skipped as unchanged).
    pub bytes_done: u64,
    /// Seconds since the work started.
    pub seconds_elapsed: u64,
    /// Seconds still to go at the rate so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_remaining: Option<u64>,
    /// The entry being worked on (none, or one path shown by the display rule).
    pub current_files: Vec<String>,
    /// Entries that could not be processed so far.
    pub error_count: u64,
    /// Bytes done per second so far (shown on the bar; not a field of the status lines).
    #[serde(skip)]
    pub rate: Option<u64>,
    /// What the entries are, for the bar: `files`, or the unit of a phase (`snapshots`,
    /// `packs`). Not a field of the status lines.
    #[serde(skip)]
    pub unit: String,
    /// Whether `total_bytes` was given (else it only mirrors `bytes_done`, and the bar shows the
    /// bytes done alone). Not a field of the status lines.
    #[serde(skip)]
    pub bytes_have_total: bool,
}

/// The counters the callbacks update.
struct Counters {
    started: Mutex<Instant>,
    files: AtomicU64,
    bytes: AtomicU64,
    total_files: AtomicU64,
    total_bytes: AtomicU64,
    errors: AtomicU64,
    current: Mutex<Option<PathBuf>>,
    waiting: Mutex<Option<String>>,
    verb: Mutex<String>,
    unit: Mutex<String>,
}

impl Counters {
    fn new(verb: &str) -> Counters {
        Counters {
            started: Mutex::new(Instant::now()),
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            total_files: AtomicU64::new(0),
            total_bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            current: Mutex::new(None),
            waiting: Mutex::new(None),
            verb: Mutex::new(verb.to_string()),
            unit: Mutex::new("files".to_string()),
        }
    }

    fn status(&self) -> Status {
        let files_done = self.files.load(Ordering::Relaxed);
        let bytes_done = self.bytes.load(Ordering::Relaxed);
        let total_files = self.total_files.load(Ordering::Relaxed).max(files_done);
        let given_bytes = self.total_bytes.load(Ordering::Relaxed);
        let total_bytes = given_bytes.max(bytes_done);
        let elapsed = self
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        // By bytes when there is a total of bytes (a phase counts steps, its bytes are extra).
        let (done, total) = if given_bytes > 0 {
            (bytes_done, total_bytes)
        } else {
            (files_done, total_files)
        };
        let percent_done = if total == 0 {
            0.0
        } else {
            done as f64 / total as f64
        };
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        Status {
            message_type: "status",
            percent_done,
            total_files,
            files_done,
            total_bytes,
            bytes_done,
            seconds_elapsed: elapsed.as_secs(),
            seconds_remaining: remaining(elapsed, done, total),
            current_files: current.iter().map(|p| shown(p)).collect(),
            error_count: self.errors.load(Ordering::Relaxed),
            rate: (elapsed >= Duration::from_millis(500))
                .then(|| (bytes_done as f64 / elapsed.as_secs_f64()) as u64),
            unit: self.unit.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            bytes_have_total: given_bytes > 0,
        }
    }
}

/// Seconds to go when `done` of `total` took `elapsed`: `None` until something is done.
pub fn remaining(elapsed: Duration, done: u64, total: u64) -> Option<u64> {
    if done == 0 || total == 0 {
        return None;
    }
    let left = total.saturating_sub(done) as f64;
    Some((elapsed.as_secs_f64() * left / done as f64).ceil() as u64)
}

/// A path by the display rule (docs/cli.md, "Names in output").
fn shown(p: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    tresor_format::tree::display_bytes(p.as_os_str().as_bytes())
}

/// The bar's three lines: verb, time, bar, percentage and ETA; counts, rate and errors; the
/// current file or a wait for the store.
pub fn lines(verb: &str, s: &Status, waiting: Option<&str>) -> String {
    const WIDTH: usize = 24;
    let filled = ((s.percent_done.min(1.0) * WIDTH as f64) as usize).min(WIDTH);
    let eta = s
        .seconds_remaining
        .map_or_else(|| "ETA -".to_string(), |r| format!("ETA {}", clock(r)));
    let rate = s
        .rate
        .map_or_else(String::new, |r| format!(", {}/s", bytes(r)));
    let amount = if s.bytes_have_total {
        format!(", {} / {}{rate}", bytes(s.bytes_done), bytes(s.total_bytes))
    } else if s.bytes_done > 0 {
        format!(", {}{rate}", bytes(s.bytes_done))
    } else {
        String::new()
    };
    let third = waiting
        .map(str::to_string)
        .or_else(|| s.current_files.first().cloned())
        .unwrap_or_default();
    format!(
        "{verb} [{}] [{}{}] {:6.2}%  {eta}\n{} / {} {}{amount}, {} errors\n{third}",
        clock(s.seconds_elapsed),
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        s.percent_done * 100.0,
        s.files_done,
        s.total_files,
        s.unit,
        s.error_count,
    )
}

/// Draws per second: `TRESOR_PROGRESS_FPS` (0.01–100), else `default`.
fn interval(default: f64) -> Duration {
    let fps = std::env::var("TRESOR_PROGRESS_FPS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|f| (0.01..=100.0).contains(f))
        .unwrap_or(default);
    Duration::from_secs_f64(1.0 / fps)
}

/// Shared by the callbacks and the ticker thread.
struct Shared {
    counters: Counters,
    show: Show,
    bar: Option<ProgressBar>,
}

impl Shared {
    fn draw(&self) {
        let status = self.counters.status();
        match (self.show, &self.bar) {
            (Show::Bar, Some(b)) => {
                let verb = self.counters.verb.lock().unwrap_or_else(|e| e.into_inner());
                let waiting = self
                    .counters
                    .waiting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                b.set_message(lines(&verb, &status, waiting.as_deref()));
            }
            (Show::Json, _) => {
                let mut t = crate::render::Text::new(false);
                if t.json_line(&status).is_ok() {
                    t.print();
                }
            }
            _ => {}
        }
    }
}

/// The progress of one command: a [`tresor_core::Progress`] that counts, and a ticker thread
/// that shows the counts ([`Show`]). Waits for the store show on the bar, or as [`WaitLines`]
/// when there is no bar but notices are on.
pub struct Bar {
    shared: Arc<Shared>,
    ticker: Option<(Sender<()>, JoinHandle<()>)>,
    /// Print waits for the store on stderr when there is no bar.
    lines: Option<WaitLines>,
    /// Backup's listing of saved entries on standard output ([`Bar::with_listing`]).
    listing: u8,
}

impl Bar {
    /// Progress of `verb` (e.g. `"backup"`) shown as `show` says.
    pub fn new(show: Show, verb: &str) -> Self {
        let bar = (show == Show::Bar).then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(ProgressStyle::with_template("{msg}").expect("template"));
            b
        });
        let shared = Arc::new(Shared {
            counters: Counters::new(verb),
            show,
            bar,
        });
        let ticker = (show != Show::Nothing).then(|| {
            let every = interval(if show == Show::Bar { 10.0 } else { 1.0 });
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let s = shared.clone();
            let h = std::thread::spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    s.draw();
                }
            });
            (tx, h)
        });
        Bar {
            shared,
            ticker,
            lines: None,
            listing: 0,
        }
    }

    /// List the entries a backup saves on standard output, as restic's `backup -vv` does
    /// ([`listing_line`]): at `level` 1 new and modified files, at 2 and above also unchanged
    /// files and every directory; 0 lists nothing.
    pub fn with_listing(mut self, level: u8) -> Self {
        self.listing = level;
        self
    }

    /// Without a bar, print waits for the store on stderr ([`WaitLines`]) when `on`.
    pub fn with_wait_lines(mut self, on: bool) -> Self {
        self.lines = on.then(WaitLines::default);
        self
    }

    /// What would be shown now.
    #[cfg(test)]
    pub fn status(&self) -> Status {
        self.shared.counters.status()
    }

    /// Stop the ticker; remove the bar, or print the last status line.
    pub fn finish(mut self) {
        if let Some((tx, h)) = self.ticker.take() {
            drop(tx);
            let _ = h.join();
        }
        match (&self.shared.bar, self.shared.show) {
            (Some(b), _) => b.finish_and_clear(),
            (None, Show::Json) => self.shared.draw(),
            _ => {}
        }
    }
}

/// One line of backup's listing, or `None` when `level` leaves the entry out (see
/// [`Bar::with_listing`]): restic's words padded to ten columns (`new       `,
/// `modified  `, `unchanged `), then the path by the display rule; a directory's path ends in
/// `/`.
pub fn listing_line(level: u8, path: &Path, dir: bool, outcome: ItemOutcome) -> Option<String> {
    let quiet_kind = dir || outcome == ItemOutcome::Unchanged;
    if level == 0 || (level == 1 && quiet_kind) {
        return None;
    }
    let word = match outcome {
        ItemOutcome::New => "new",
        ItemOutcome::Modified => "modified",
        ItemOutcome::Unchanged => "unchanged",
    };
    let mut name = shown(path);
    if dir && !name.ends_with('/') {
        name.push('/');
    }
    Some(format!("{word:<9} {name}"))
}

impl tresor_core::Progress for Bar {
    fn item_done(&self, path: &Path, dir: bool, outcome: ItemOutcome) {
        let Some(line) = listing_line(self.listing, path, dir, outcome) else {
            return;
        };
        let print = || {
            use std::io::Write;
            // A reader gone is noticed by the summary's println (see `main`).
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        };
        match &self.shared.bar {
            Some(b) => b.suspend(print),
            None => print(),
        }
    }
    fn file_done(&self, _bytes: u64) {
        self.shared.counters.files.fetch_add(1, Ordering::Relaxed);
    }
    fn bytes_read(&self, bytes: u64) {
        self.shared
            .counters
            .bytes
            .fetch_add(bytes, Ordering::Relaxed);
    }
    /// Skipped bytes count as done, as read ones do.
    fn bytes_skipped(&self, bytes: u64) {
        self.bytes_read(bytes);
    }
    fn set_total(&self, files: u64, bytes: u64) {
        let c = &self.shared.counters;
        c.total_files.store(files, Ordering::Relaxed);
        c.total_bytes.store(bytes, Ordering::Relaxed);
    }
    fn shows_current_file(&self) -> bool {
        self.shared.show != Show::Nothing
    }
    fn current_file(&self, path: &Path) {
        if self.shows_current_file() {
            let mut cur = self
                .shared
                .counters
                .current
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            *cur = Some(path.to_path_buf());
        }
    }
    fn error(&self) {
        self.shared.counters.errors.fetch_add(1, Ordering::Relaxed);
    }
    fn phase(&self, name: &str, unit: &str, total: u64) {
        let c = &self.shared.counters;
        *c.verb.lock().unwrap_or_else(|e| e.into_inner()) = name.to_string();
        *c.unit.lock().unwrap_or_else(|e| e.into_inner()) = unit.to_string();
        for n in [&c.files, &c.bytes, &c.total_bytes] {
            n.store(0, Ordering::Relaxed);
        }
        c.total_files.store(total, Ordering::Relaxed);
        *c.started.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }
    fn store_waiting(&self, notice: &WaitNotice) {
        match (&self.shared.bar, &self.lines) {
            (Some(_), _) => {
                *self
                    .shared
                    .counters
                    .waiting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(notice.to_string());
            }
            (None, Some(l)) => l.print(notice),
            (None, None) => {}
        }
    }
    fn store_recovered(&self) {
        *self
            .shared
            .counters
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tresor_core::Progress as _;

    #[test]
    fn the_eta_is_the_rest_at_the_rate_so_far() {
        assert_eq!(remaining(Duration::from_secs(10), 0, 100), None);
        assert_eq!(remaining(Duration::from_secs(10), 25, 100), Some(30));
        assert_eq!(remaining(Duration::from_secs(10), 100, 100), Some(0));
        // A done count past the estimate: nothing left, not an underflow.
        assert_eq!(remaining(Duration::from_secs(10), 120, 100), Some(0));
    }

    #[test]
    fn counts_skipped_bytes_as_done_and_totals_never_below_done() {
        let bar = Bar::new(Show::Nothing, "backup");
        bar.set_total(3, 1000);
        bar.bytes_read(300);
        bar.bytes_skipped(200);
        bar.file_done(300);
        bar.error();
        let s = bar.status();
        assert_eq!((s.files_done, s.total_files), (1, 3));
        assert_eq!((s.bytes_done, s.total_bytes), (500, 1000));
        assert_eq!(s.percent_done, 0.5);
        assert_eq!(s.error_count, 1);
        // The sources grew past the estimate: the total follows the done count.
        bar.bytes_read(700);
        let s = bar.status();
        assert_eq!(
            (s.bytes_done, s.total_bytes, s.percent_done),
            (1200, 1200, 1.0)
        );
        bar.finish();
    }

    #[test]
    fn a_phase_counts_its_steps_from_zero() {
        let bar = Bar::new(Show::Nothing, "check");
        bar.phase("checking snapshots", "snapshots", 4);
        bar.file_done(0);
        bar.phase("reading packs", "packs", 10);
        bar.file_done(0);
        bar.file_done(0);
        bar.bytes_read(5000);
        let s = bar.status();
        // By steps: the bytes read have no total of their own.
        assert_eq!((s.files_done, s.total_files, s.percent_done), (2, 10, 0.2));
        assert_eq!(s.bytes_done, 5000);
        assert_eq!(*bar.shared.counters.verb.lock().unwrap(), "reading packs");
        assert_eq!(
            lines("check", &s, None).lines().nth(1),
            Some("2 / 10 packs, 4.88 KiB, 0 errors")
        );
        bar.finish();
    }

    #[test]
    fn listing_lines_by_level_with_restics_columns() {
        use ItemOutcome::*;
        let f = Path::new("/s/a\nb");
        let d = Path::new("/s/d");
        let line = |level, p, dir, o| listing_line(level, p, dir, o);
        assert_eq!(line(0, f, false, New), None);
        assert_eq!(line(1, f, false, New).unwrap(), "new       /s/a\\nb");
        assert_eq!(line(1, f, false, Modified).unwrap(), "modified  /s/a\\nb");
        assert_eq!(line(1, f, false, Unchanged), None);
        assert_eq!(line(1, d, true, New), None);
        assert_eq!(line(2, f, false, Unchanged).unwrap(), "unchanged /s/a\\nb");
        assert_eq!(line(2, d, true, Modified).unwrap(), "modified  /s/d/");
        assert_eq!(line(3, Path::new("/"), true, New).unwrap(), "new       /");
    }

    #[test]
    fn the_bar_shows_counts_rate_eta_and_the_current_file() {
        let s = Status {
            message_type: "status",
            percent_done: 0.25,
            total_files: 40,
            files_done: 10,
            total_bytes: 4096,
            bytes_done: 1024,
            seconds_elapsed: 2,
            seconds_remaining: Some(6),
            current_files: vec!["/src/a\\nb".into()],
            error_count: 1,
            rate: Some(512),
            unit: "files".into(),
            bytes_have_total: true,
        };
        assert_eq!(
            lines("backup", &s, None),
            "backup [0:02] [######------------------]  25.00%  ETA 0:06\n\
             10 / 40 files, 1.00 KiB / 4.00 KiB, 512 B/s, 1 errors\n/src/a\\nb"
        );
        let s = Status {
            seconds_remaining: None,
            seconds_elapsed: 0,
            rate: None,
            total_bytes: 0,
            bytes_done: 0,
            bytes_have_total: false,
            ..s
        };
        assert_eq!(
            lines("check", &s, Some("waiting for the store")),
            "check [0:00] [######------------------]  25.00%  ETA -\n\
             10 / 40 files, 1 errors\nwaiting for the store"
        );
    }
}
