//! A deterministic pause of the walker, for tests of what runs beside a backup (debug builds
//! only; release builds compile it to nothing).
//!
//! With `TRESOR_TEST_PAUSE_AFTER_FILES=N` and `TRESOR_TEST_PAUSE_DIR=DIR` in the environment, the
//! walker stops once it has processed `N` regular files (read, or taken over from the parent
//! snapshot): it creates `DIR/paused`, then waits until `DIR/continue` exists (looking every
//! 20 ms, for at most ten minutes) and goes on. Packs filled so far are being uploaded meanwhile,
//! and the backup's start marker is written: a test can run `prune` (or anything else) against a
//! backup held half-way, then let it finish. It pauses once per run.

#[cfg(debug_assertions)]
use std::path::PathBuf;
#[cfg(debug_assertions)]
use std::time::{Duration, Instant};

/// The pause settings from the environment, when both variables are set and valid (read once).
#[cfg(debug_assertions)]
fn settings() -> Option<&'static (u64, PathBuf)> {
    static SETTINGS: std::sync::OnceLock<Option<(u64, PathBuf)>> = std::sync::OnceLock::new();
    SETTINGS
        .get_or_init(|| {
            let n = std::env::var("TRESOR_TEST_PAUSE_AFTER_FILES").ok()?;
            let dir = std::env::var_os("TRESOR_TEST_PAUSE_DIR")?;
            Some((n.trim().parse().ok()?, PathBuf::from(dir)))
        })
        .as_ref()
}

/// Called after each regular file with the number of files processed so far: pauses when the
/// count reaches `TRESOR_TEST_PAUSE_AFTER_FILES` (see the module documentation).
#[cfg(debug_assertions)]
pub(super) fn after_file(files: u64) {
    let Some((n, dir)) = settings() else { return };
    if files != *n {
        return;
    }
    if let Err(e) = std::fs::write(dir.join("paused"), files.to_string()) {
        eprintln!("tresor: test pause: cannot create {}: {e}", dir.display());
        return;
    }
    let until = Instant::now() + Duration::from_secs(600);
    while !dir.join("continue").exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Release builds never pause.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub(super) fn after_file(_files: u64) {}
