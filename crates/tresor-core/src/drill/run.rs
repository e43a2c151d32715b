//! Restoring the sampled files into the sandbox and checking each one.

use super::sample::{Candidate, file_bytes};
use super::verify;
use super::{Mismatch, MismatchKind, SourceCompare};
use crate::Progress;
use crate::repo::Repository;
use crate::repo::index::Index;
use crate::repo::trust::Verdict;
use crate::restorer::{RestoreOptions, restore_entry};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tresor_format::snapshot::Snapshot;
use tresor_format::tree::{NodeKind, display_bytes, valid_name};

/// What restoring the sample gave.
#[derive(Debug, Default)]
pub struct Ran {
    /// Files (and symlinks) restored and checked.
    pub files: u64,
    /// Their content bytes.
    pub bytes: u64,
    /// Wall time of the restores.
    pub elapsed: Duration,
    /// Each file's bytes and the seconds its restore took (in sample order), without the
    /// drill's own check of the restored file (a restore does not do that).
    pub timings: Vec<(u64, f64)>,
    /// The seconds the files' restores and checks took together (summed over the workers).
    pub checked: f64,
    /// Everything that did not match.
    pub mismatches: Vec<Mismatch>,
    /// Index positions of the packs of files that restored and matched, less those of files
    /// whose data was missing, corrupt or differed (a pack with a bad blob is not covered).
    pub packs: BTreeSet<u32>,
    /// The live source comparison (`--compare-source`).
    pub source: SourceCompare,
}

/// One sampled file done: its position in the sample, the seconds of its restore and of its
/// restore and check, and its mismatches.
type Done = (usize, (f64, f64), Vec<Mismatch>);

/// The shared inputs of one drill run.
pub struct Sandbox<'a> {
    /// The repository.
    pub repo: &'a Repository,
    /// Its index.
    pub index: &'a Index,
    /// Directory the files are restored into (one numbered folder per file).
    pub dir: &'a Path,
    /// Compare with the live source when the snapshot's host is `this_host`.
    pub compare_source: Option<&'a str>,
    /// Progress.
    pub progress: &'a dyn Progress,
    /// Files restored at once.
    pub workers: usize,
}

impl Sandbox<'_> {
    /// Restore and check every sampled candidate, `workers` files at once (as `tresor
    /// restore` writes them); [`Ran::elapsed`] is the wall time of the restores.
    pub fn run(&self, picked: &[&Candidate], snaps: &[(tresor_format::ObjectId, Snapshot)]) -> Ran {
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Done>> = Mutex::new(Vec::new());
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..self.workers.clamp(1, picked.len().max(1)) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(c) = picked.get(i) else { break };
                        let Some((_, snap)) = snaps.iter().find(|(id, _)| *id == c.snapshot) else {
                            continue;
                        };
                        let began = Instant::now();
                        let (bad, restoring) = self.one(c, snap, &self.folder(i, c, snaps));
                        let took = (restoring, began.elapsed().as_secs_f64());
                        results
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((i, took, bad));
                        self.progress.file_done(file_bytes(c));
                    }
                });
            }
        });
        let mut ran = Ran {
            elapsed: started.elapsed(),
            ..Ran::default()
        };
        let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        results.sort_by_key(|r| r.0);
        let mut bad_packs: BTreeSet<u32> = BTreeSet::new();
        for (i, (restoring, took), bad) in results {
            let c = picked[i];
            ran.timings.push((file_bytes(c), restoring));
            ran.checked += took;
            ran.files += 1;
            ran.bytes += file_bytes(c);
            if bad.is_empty() {
                ran.packs.extend(&c.packs);
                if let Some((_, snap)) = snaps.iter().find(|(id, _)| *id == c.snapshot) {
                    self.compare(c, snap, &self.folder(i, c, snaps), &mut ran);
                }
            } else if bad
                .iter()
                .any(|m| matches!(m.kind, MismatchKind::Data | MismatchKind::Content))
            {
                bad_packs.extend(&c.packs);
            }
            ran.mismatches.extend(bad);
        }
        ran.packs.retain(|p| !bad_packs.contains(p));
        ran
    }

    /// The folder candidate `i` is restored into. A regular file goes where a restore puts it,
    /// below one folder per snapshot (`0/home/me/` for `/home/me/f`), so that files share their
    /// directories as in a restore; anything else (a symlink, which a later file's folder must
    /// never pass through), and a file whose path holds a name that is not one (`..`), into a
    /// folder of its own (`n7`).
    fn folder(
        &self,
        i: usize,
        c: &Candidate,
        snaps: &[(tresor_format::ObjectId, Snapshot)],
    ) -> PathBuf {
        let own = || self.dir.join(format!("n{i}"));
        let Some(j) = snaps.iter().position(|(id, _)| *id == c.snapshot) else {
            return own();
        };
        let parts: Vec<&[u8]> = c
            .path
            .split(|b| *b == b'/')
            .filter(|p| !p.is_empty())
            .collect();
        let Some((_, parents)) = parts.split_last() else {
            return own();
        };
        if c.node.kind != NodeKind::File || !parents.iter().all(|p| valid_name(p)) {
            return own();
        }
        let mut dir = self.dir.join(j.to_string());
        dir.extend(parents.iter().map(|p| OsStr::from_bytes(p)));
        dir
    }

    /// Restore `c` into `dir` and check it: the mismatches found and the seconds the restore
    /// took (without the check).
    fn one(&self, c: &Candidate, snap: &Snapshot, dir: &Path) -> (Vec<Mismatch>, f64) {
        let began = Instant::now();
        let res = self.restore(c, snap, dir);
        (self.check(c, dir, res), began.elapsed().as_secs_f64())
    }

    /// Restore `c` into `dir`.
    fn restore(
        &self,
        c: &Candidate,
        snap: &Snapshot,
        dir: &Path,
    ) -> crate::error::Result<crate::restorer::RestoreResult> {
        let trusted = self.repo.snapshot_verdict(&c.snapshot).ok() == Some(Verdict::Full);
        let mut opts = RestoreOptions::new(dir.to_path_buf());
        opts.subpath = c.path.clone();
        opts.verify = true;
        opts.workers = 1;
        opts.privileged = trusted;
        opts.signer = self.repo.snapshot_signer(&c.snapshot).ok();
        restore_entry(
            self.repo,
            self.index,
            snap,
            &c.node,
            &opts,
            &crate::NoProgress,
        )
    }

    /// The mismatches of restored `c` in `dir` (`res`: what its restore said).
    fn check(
        &self,
        c: &Candidate,
        dir: &Path,
        res: crate::error::Result<crate::restorer::RestoreResult>,
    ) -> Vec<Mismatch> {
        let m = |kind, detail: String| Mismatch {
            snapshot: c.snapshot,
            path: display_bytes(&c.path),
            kind,
            detail,
        };
        let trusted = self.repo.snapshot_verdict(&c.snapshot).ok() == Some(Verdict::Full);
        let res = match res {
            Ok(r) => r,
            Err(e) => return vec![m(MismatchKind::Data, e.to_string())],
        };
        let mut out: Vec<Mismatch> = res
            .problems
            .iter()
            .map(|p| {
                let kind = if p.damage {
                    MismatchKind::Data
                } else {
                    MismatchKind::Restore
                };
                m(kind, p.message.clone())
            })
            .collect();
        out.extend(res.differences.iter().map(|d| {
            let text = format!(
                "{}: restored {}, snapshot {}",
                d.what.name(),
                d.got,
                d.wanted
            );
            m(MismatchKind::Metadata, text)
        }));
        if out.is_empty() {
            let root = crate::fsmeta::is_root();
            let setid = trusted && root;
            let path = dir.join(OsStr::from_bytes(&c.node.name));
            let bad = verify::check(self.repo.key(), self.index, &c.node, &path, setid, root);
            out.extend(bad.into_iter().map(|d| m(MismatchKind::Content, d)));
        }
        out
    }

    /// `--compare-source`: the live file at the same path, when unchanged by size and mtime.
    fn compare(&self, c: &Candidate, snap: &Snapshot, dir: &Path, ran: &mut Ran) {
        let Some(host) = self.compare_source else {
            return;
        };
        if snap.hostname != host || c.node.kind != NodeKind::File {
            return;
        }
        let live = PathBuf::from(OsStr::from_bytes(&c.path));
        let meta = match std::fs::symlink_metadata(&live) {
            Ok(m) if m.is_file() => m,
            _ => {
                ran.source.missing += 1;
                return;
            }
        };
        let n = &c.node;
        if meta.size() != n.size
            || (meta.mtime(), meta.mtime_nsec()) != (n.mtime.secs, i64::from(n.mtime.nanos))
        {
            ran.source.skipped += 1;
            return;
        }
        let restored = dir.join(OsStr::from_bytes(&n.name));
        match verify::same_content(&restored, &live) {
            Ok(true) => ran.source.compared += 1,
            Ok(false) => {
                ran.source.compared += 1;
                let ctime =
                    (meta.ctime(), meta.ctime_nsec()) == (n.ctime.secs, i64::from(n.ctime.nanos));
                ran.mismatches.push(Mismatch {
                    snapshot: c.snapshot,
                    path: display_bytes(&c.path),
                    kind: MismatchKind::SourceChanged,
                    detail: if ctime {
                        "changed on disk without a new backup noticing (same size, mtime and ctime)".into()
                    } else {
                        "changed on disk without a new backup noticing (same size and mtime; ctime changed)".into()
                    },
                });
            }
            Err(_) => ran.source.missing += 1,
        }
    }
}
