//! Restoring the sampled files into the sandbox and checking each one.

use super::sample::{Candidate, file_bytes};
use super::verify;
use super::{Mismatch, MismatchKind, SourceCompare};
use crate::Progress;
use crate::error::Result;
use crate::repo::Repository;
use crate::repo::index::Index;
use crate::repo::trust::Verdict;
use crate::restorer::{Entry, RestoreOptions, RestoreResult, restore_entries};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
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
    /// Wall time of the restores (not of the drill's own checks afterwards).
    pub elapsed: Duration,
    /// Each restored file's bytes and the seconds its restore worker spent on it.
    pub timings: Vec<(u64, f64)>,
    /// Everything that did not match.
    pub mismatches: Vec<Mismatch>,
    /// Index positions of the packs of files that restored and matched, less those of files
    /// whose data was missing, corrupt or differed (a pack with a bad blob is not covered).
    pub packs: BTreeSet<u32>,
    /// The live source comparison (`--compare-source`).
    pub source: SourceCompare,
}

/// The shared inputs of one drill run.
pub struct Sandbox<'a> {
    /// The repository.
    pub repo: &'a Repository,
    /// Its index.
    pub index: &'a Index,
    /// Directory the files are restored into.
    pub dir: &'a Path,
    /// Compare with the live source when the snapshot's host is `this_host`.
    pub compare_source: Option<&'a str>,
    /// Progress.
    pub progress: &'a dyn Progress,
    /// Files restored at once.
    pub workers: usize,
}

impl Sandbox<'_> {
    /// Restore every sampled candidate, one restore per snapshot through `workers` workers as
    /// `tresor restore` would, then check each restored file.
    pub fn run(&self, picked: &[&Candidate], snaps: &[(tresor_format::ObjectId, Snapshot)]) -> Ran {
        let mut ran = Ran::default();
        let mut found: Vec<Vec<Mismatch>> = vec![Vec::new(); picked.len()];
        let mut times: Vec<Option<f64>> = vec![None; picked.len()];
        for (id, _) in snaps {
            let mine: Vec<usize> = (0..picked.len())
                .filter(|&i| picked[i].snapshot == *id)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let entries: Vec<Entry> = (mine.iter())
                .map(|&i| Entry {
                    dir: self.folder(i, picked[i], snaps),
                    label: label(i),
                    node: picked[i].node.clone(),
                })
                .collect();
            // The folders first, untimed: a sample spread over the tree makes a folder for
            // nearly every file, a restore one per directory (a few percent of its time).
            for e in &entries {
                let _ = std::fs::create_dir_all(&e.dir);
            }
            let began = Instant::now();
            let res = self.restore(id, &entries);
            ran.elapsed += began.elapsed();
            self.attribute(res, &mine, picked, &mut found, &mut times);
        }
        let mut bad_packs: BTreeSet<u32> = BTreeSet::new();
        for (i, mut bad) in found.into_iter().enumerate() {
            let c = picked[i];
            let Some((_, snap)) = snaps.iter().find(|(id, _)| *id == c.snapshot) else {
                continue;
            };
            let dir = self.folder(i, c, snaps);
            if bad.is_empty() {
                bad = self.check(c, &dir);
            }
            ran.files += 1;
            ran.bytes += file_bytes(c);
            if let Some(t) = times[i] {
                ran.timings.push((file_bytes(c), t));
            }
            if bad.is_empty() {
                ran.packs.extend(&c.packs);
                self.compare(c, snap, &dir, &mut ran);
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

    /// Restore `entries` of snapshot `id` in one restore. The drill's own check reads every
    /// file back afterwards, so the restorer's read-back of the content (`verify`) is off, as
    /// in a plain `tresor restore`; its metadata read-back stays.
    fn restore(
        &self,
        id: &tresor_format::ObjectId,
        entries: &[Entry],
    ) -> Result<(RestoreResult, Vec<Option<f64>>)> {
        let mut opts = RestoreOptions::new(self.dir.to_path_buf());
        opts.verify = false;
        opts.workers = self.workers;
        opts.privileged = self.repo.snapshot_verdict(id).ok() == Some(Verdict::Full);
        opts.signer = self.repo.snapshot_signer(id).ok();
        restore_entries(self.repo, self.index, entries, &opts, self.progress)
    }

    /// Give each problem and difference of `res` to its candidate (by its label), and each
    /// candidate its restore time.
    fn attribute(
        &self,
        res: Result<(RestoreResult, Vec<Option<f64>>)>,
        mine: &[usize],
        picked: &[&Candidate],
        found: &mut [Vec<Mismatch>],
        times: &mut [Option<f64>],
    ) {
        let m = |i: usize, kind, detail: String| Mismatch {
            snapshot: picked[i].snapshot,
            path: display_bytes(&picked[i].path),
            kind,
            detail,
        };
        let (res, took) = match res {
            Ok(r) => r,
            Err(e) => {
                for &i in mine {
                    found[i].push(m(i, MismatchKind::Data, e.to_string()));
                }
                return;
            }
        };
        for (k, &i) in mine.iter().enumerate() {
            times[i] = took[k];
        }
        let whose = |path: &str| {
            owner_of(path)
                .filter(|i| mine.contains(i))
                .unwrap_or(mine[0])
        };
        for p in &res.problems {
            let kind = if p.damage {
                MismatchKind::Data
            } else {
                MismatchKind::Restore
            };
            let i = whose(&p.path);
            found[i].push(m(i, kind, p.message.clone()));
        }
        for d in &res.differences {
            let text = format!(
                "{}: restored {}, snapshot {}",
                d.what.name(),
                d.got,
                d.wanted
            );
            let i = whose(&d.path);
            found[i].push(m(i, MismatchKind::Metadata, text));
        }
        let unlisted = res.difference_counts.total() - res.differences.len() as u64;
        if unlisted > 0 {
            let text = format!(
                "{unlisted} further metadata differences in this snapshot's sample, not listed"
            );
            found[mine[0]].push(m(mine[0], MismatchKind::Metadata, text));
        }
    }

    /// The drill's own check of restored `c` in `dir` (content, size, mode, mtime, owner).
    fn check(&self, c: &Candidate, dir: &Path) -> Vec<Mismatch> {
        let trusted = self.repo.snapshot_verdict(&c.snapshot).ok() == Some(Verdict::Full);
        let root = crate::fsmeta::is_root();
        let path = dir.join(OsStr::from_bytes(&c.node.name));
        let bad = verify::check(
            self.repo.key(),
            self.index,
            &c.node,
            &path,
            trusted && root,
            root,
        );
        (bad.into_iter())
            .map(|detail| Mismatch {
                snapshot: c.snapshot,
                path: display_bytes(&c.path),
                kind: MismatchKind::Content,
                detail,
            })
            .collect()
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

/// The label of candidate `i`'s folder in the restorer's messages.
fn label(i: usize) -> String {
    format!("#{i}")
}

/// The candidate a restorer message's path (`#7/NAME`) is about.
fn owner_of(path: &str) -> Option<usize> {
    path.strip_prefix('#')?.split('/').next()?.parse().ok()
}
