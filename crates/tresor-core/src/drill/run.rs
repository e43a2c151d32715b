//! Restoring the sampled files into the sandbox and checking each one.

use super::sample::{Candidate, file_bytes};
use super::verify;
use super::{Mismatch, MismatchKind, SourceCompare};
use crate::Progress;
use crate::repo::Repository;
use crate::repo::index::Index;
use crate::repo::trust::Verdict;
use crate::restorer::{RestoreOptions, restore};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tresor_format::snapshot::Snapshot;
use tresor_format::tree::{NodeKind, display_bytes};

/// What restoring the sample gave.
#[derive(Debug, Default)]
pub struct Ran {
    /// Files (and symlinks) restored and checked.
    pub files: u64,
    /// Their content bytes.
    pub bytes: u64,
    /// Wall time of the restores.
    pub elapsed: Duration,
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
    /// Directory the files are restored into (one numbered folder per file).
    pub dir: &'a Path,
    /// Compare with the live source when the snapshot's host is `this_host`.
    pub compare_source: Option<&'a str>,
    /// Progress.
    pub progress: &'a dyn Progress,
}

impl Sandbox<'_> {
    /// Restore and check every sampled candidate.
    pub fn run(&self, picked: &[&Candidate], snaps: &[(tresor_format::ObjectId, Snapshot)]) -> Ran {
        let mut ran = Ran::default();
        let mut bad_packs: BTreeSet<u32> = BTreeSet::new();
        for (i, c) in picked.iter().enumerate() {
            let Some((_, snap)) = snaps.iter().find(|(id, _)| *id == c.snapshot) else {
                continue;
            };
            let dir = self.dir.join(i.to_string());
            let started = Instant::now();
            let bad = self.one(c, snap, &dir);
            ran.elapsed += started.elapsed();
            ran.files += 1;
            ran.bytes += file_bytes(c);
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
            self.progress.file_done(file_bytes(c));
        }
        ran.packs.retain(|p| !bad_packs.contains(p));
        ran
    }

    /// Restore `c` into `dir` and check it; the mismatches found.
    fn one(&self, c: &Candidate, snap: &Snapshot, dir: &Path) -> Vec<Mismatch> {
        let m = |kind, detail: String| Mismatch {
            snapshot: c.snapshot,
            path: display_bytes(&c.path),
            kind,
            detail,
        };
        let trusted = self.repo.snapshot_verdict(&c.snapshot).ok() == Some(Verdict::Full);
        let mut opts = RestoreOptions::new(dir.to_path_buf());
        opts.subpath = c.path.clone();
        opts.verify = true;
        opts.workers = 1;
        opts.privileged = trusted;
        opts.signer = self.repo.snapshot_signer(&c.snapshot).ok();
        let res = match restore(self.repo, self.index, snap, &opts, &crate::NoProgress) {
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
