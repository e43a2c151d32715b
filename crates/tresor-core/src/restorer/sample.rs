//! Restoring a set of single entries through one pool of workers: the drill's sample
//! ([`restore_entries`]). Each entry goes into a folder of its own choosing; the walk down to
//! it was done by the caller (on verified trees), so no tree is loaded here.

use super::dirs::DirState;
use super::{RestoreOptions, RestoreResult, Shared, result, shared, with_workers};
use crate::Progress;
use crate::error::{CoreError, Result};
use crate::repo::Repository;
use crate::repo::index::Index;
use rustix::fs::Mode;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tresor_format::tree::Node;

/// One entry of [`restore_entries`].
#[derive(Debug, Clone)]
pub struct Entry {
    /// The folder it is restored into (created with its parents when missing).
    pub dir: PathBuf,
    /// The folder's name in the problems and differences of this entry, which read
    /// `LABEL/NAME`: unique per entry, so that the caller can tell whose they are.
    pub label: String,
    /// The entry: a file or symlink of the snapshot.
    pub node: Node,
}

/// Restore `entries` with `opts.workers` workers, as a restore of their snapshot would
/// (`opts.target`, `subpath`, patterns and `delete` are not used): the result, and per entry
/// (in order) the seconds its worker spent on it, `None` for one not restored by a worker.
///
/// # Errors
/// Only when the workers stop; a folder that cannot be made is a problem of its entry.
pub fn restore_entries(
    repo: &Repository,
    index: &Index,
    entries: &[Entry],
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<(RestoreResult, Vec<Option<f64>>)> {
    repo.require_read("restore")?;
    let started = Instant::now();
    crate::fsmeta::raise_fd_limit();
    let mut sh = shared(repo, index, opts, progress);
    sh.timings = Some(std::sync::Mutex::new(Vec::new()));
    // Files are created with their final permission bits; the umask must not mask them.
    let old_umask = rustix::process::umask(Mode::empty());
    let ran = run(&sh, opts, entries);
    rustix::process::umask(old_umask);
    ran?;
    let mut took: HashMap<String, f64> = HashMap::new();
    let timings = sh
        .timings
        .take()
        .map(|t| t.into_inner().unwrap_or_default());
    for (label, secs) in timings.unwrap_or_default() {
        *took.entry(label).or_default() += secs;
    }
    let times = entries
        .iter()
        .map(|e| took.get(&e.label).copied())
        .collect();
    Ok((result(sh, 0, started), times))
}

/// Hand every entry to the workers (a folder that cannot be made is its entry's problem).
fn run(sh: &Shared<'_>, opts: &RestoreOptions, entries: &[Entry]) -> Result<()> {
    with_workers(sh, opts, b"/", opts.workers.max(1), |w| {
        for e in entries {
            let opened = std::fs::create_dir_all(&e.dir).and_then(|()| std::fs::File::open(&e.dir));
            match opened {
                Ok(f) => w.single(
                    &Arc::new(DirState::root(f.into(), e.label.clone())),
                    e.node.clone(),
                )?,
                Err(err) => {
                    let path = format!("{}/{}", e.label, super::dirs::shown(&e.node.name));
                    sh.problem(&path, CoreError::io(&e.dir, err).to_string(), false);
                }
            }
        }
        Ok(())
    })
    .map(|_| ())
}
