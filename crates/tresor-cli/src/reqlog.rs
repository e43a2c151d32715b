//! The request log: each command run that opened a repository appends one line (time, command,
//! request counts, bytes) to a per-repository file in the local cache directory,
//! `CACHE/requests/REPO_ID.jsonl`; readers see the last [`MAX_RUNS`] runs. It is this machine's
//! log, never written to the repository: a put-only host's counts are its own. `tresor cost`
//! reads it.
//!
//! A run appends its line without reading the log; once the file passes [`MAX_BYTES`] (about
//! 8,000 runs) it is cut back to the last [`MAX_RUNS`]. (Reading and parsing the whole log at
//! every run, and rewriting and syncing it at every run once it held [`MAX_RUNS`], cost 1.4 ms of
//! every command after a thousand runs.)

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use tresor_storage::counted::Counts;

/// Runs kept per repository.
pub const MAX_RUNS: usize = 1000;
/// Longest log file read (a larger one is read from its end); a longer one is cut back to its
/// last [`MAX_RUNS`] runs when a run is appended.
const MAX_BYTES: u64 = 1 << 20;

/// One run in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// When the run ended (RFC 3339, UTC).
    pub time: String,
    /// The command (`backup`, `prune`, …).
    pub command: String,
    /// What it asked of the storage.
    #[serde(flatten)]
    pub counts: Counts,
}

impl Run {
    /// A run of `command` that ended now with `c`.
    pub fn now(command: &str, c: &Counts) -> Run {
        Run {
            time: jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string()),
            command: command.to_string(),
            counts: *c,
        }
    }
}

/// The log file of repository `repo_id` under cache directory `dir` (`None` for an id that is
/// not 64 hex digits: no file name is made from it).
pub fn path(dir: &Path, repo_id: &str) -> Option<PathBuf> {
    tresor_format::config::is_repository_id(repo_id)
        .then(|| dir.join("requests").join(format!("{repo_id}.jsonl")))
}

/// The runs in the log at `path`, oldest first (lines that do not parse are skipped; none when
/// there is no file).
pub fn read(path: &Path) -> Vec<Run> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(MAX_BYTES)));
    let mut buf = Vec::new();
    let _ = f.take(MAX_BYTES).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let mut runs: Vec<Run> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let extra = runs.len().saturating_sub(MAX_RUNS);
    runs.drain(..extra);
    runs
}

/// Append `run` to the log at `path`; when the file is then longer than [`MAX_BYTES`], cut it
/// back to its last [`MAX_RUNS`] runs (rewritten through a synced temporary file).
///
/// # Errors
/// I/O errors.
pub fn append(path: &Path, run: &Run) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut line = serde_json::to_string(run).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    // One write: runs ending at once append whole lines.
    f.write_all(line.as_bytes())?;
    if f.metadata()?.len() <= MAX_BYTES {
        return Ok(());
    }
    // Two runs cutting at once each write their own file; the last rename wins (a run appended
    // meanwhile may be left out: once in thousands of runs, and only when runs overlap).
    let runs = read(path);
    let tmp = path.with_extension(format!("jsonl.{}.tmp", std::process::id()));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    for r in &runs {
        writeln!(
            f,
            "{}",
            serde_json::to_string(r).map_err(std::io::Error::other)?
        )?;
    }
    f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_last_runs() {
        let dir = tempfile::tempdir().unwrap();
        let id = "ab".repeat(32);
        let p = path(dir.path(), &id).unwrap();
        for i in 0..(MAX_RUNS as u64 + 5) {
            let c = Counts {
                put: i,
                ..Counts::default()
            };
            append(&p, &Run::now("backup", &c)).unwrap();
        }
        let runs = read(&p);
        assert_eq!(runs.len(), MAX_RUNS);
        assert_eq!(runs[0].counts.put, 5);
        assert_eq!(runs[MAX_RUNS - 1].counts.put, MAX_RUNS as u64 + 4);
        // Appended, not rewritten: every run is still in the file.
        let lines = std::fs::read_to_string(&p).unwrap().lines().count();
        assert_eq!(lines, MAX_RUNS + 5);
    }

    /// A log that passes [`MAX_BYTES`] is cut back to its last [`MAX_RUNS`] runs, the newest
    /// last; later runs are appended again.
    #[test]
    fn a_log_past_its_size_is_cut_to_the_last_runs() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), &"ef".repeat(32)).unwrap();
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let run = |i: u64| Run {
            time: "2026-12-07T20:00:00Z".into(),
            command: "backup".into(),
            counts: Counts {
                put: i,
                ..Counts::default()
            },
        };
        // Just under the limit, written at once.
        let mut text = String::new();
        let mut i = 0;
        while (text.len() as u64) < MAX_BYTES - 200 {
            text.push_str(&serde_json::to_string(&run(i)).unwrap());
            text.push('\n');
            i += 1;
        }
        std::fs::write(&p, &text).unwrap();
        let mut appended = 0;
        while std::fs::metadata(&p).unwrap().len() > MAX_BYTES / 2 {
            append(&p, &run(i)).unwrap();
            (i, appended) = (i + 1, appended + 1);
            assert!(appended < 10, "never cut");
        }
        let kept: Vec<u64> = std::fs::read_to_string(&p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Run>(l).unwrap().counts.put)
            .collect();
        assert_eq!(kept, ((i - MAX_RUNS as u64)..i).collect::<Vec<_>>());
        append(&p, &run(i)).unwrap();
        assert_eq!(read(&p).last().unwrap().counts.put, i);
        assert_eq!(read(&p).len(), MAX_RUNS);
    }

    #[test]
    fn hostile_ids_and_lines() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(path(dir.path(), "../../etc/passwd"), None);
        let p = path(dir.path(), &"cd".repeat(32)).unwrap();
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "garbage\n{\"put\":1}\n").unwrap();
        append(&p, &Run::now("check", &Counts::default())).unwrap();
        let runs = read(&p);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].command, "check");
    }
}
