//! `rewrite`: new snapshots without the paths exclude patterns match (restic's `rewrite`).
//!
//! Each selected snapshot's trees are rewritten bottom-up by the machinery `repair snapshots`
//! uses ([`crate::repo::tree_rewrite`]): a pattern is matched against an entry's absolute path as in
//! `backup` ([`crate::exclude`]); a matching directory goes with everything below it; only
//! trees that lose an entry (or hold such a tree) are written again, every other subtree keeps
//! its id. A snapshot that loses nothing is left alone. The new snapshot keeps every field but
//! the tree, `original` (format §11) and `program_version`; it gets the tag `rewrite` unless the
//! old one is deleted (`forget`), as restic does, and its `summary` is dropped (restic adjusts
//! two of its counts; the other counts describe the backup run, which the rewritten snapshot
//! no longer is). Order: new tree packs and their index objects, then the snapshots, then (with
//! `forget`) the deletions ([`super::tag::replace`]). The excluded data is freed by prune.

use super::tag::{Replaced, replace, successor};
use crate::error::Result;
use crate::exclude::PatternSet;
use crate::repo::Repository;
use crate::repo::tree_rewrite::{Drop, Fix, Fixer, new_packer};
use serde::Serialize;
use std::time::SystemTime;
use tresor_format::ObjectId;
use tresor_format::snapshot::Snapshot;

/// Options of `rewrite`.
#[derive(Debug, Clone)]
pub struct RewriteOptions {
    /// What to leave out.
    pub excludes: PatternSet,
    /// Delete each rewritten snapshot once its replacement is written (no `rewrite` tag then).
    pub forget: bool,
    /// Write and delete nothing; report what would be done.
    pub dry_run: bool,
    /// Compression and encryption threads for the new trees.
    pub workers: usize,
}

/// One snapshot that loses entries.
#[derive(Debug, Clone, Serialize)]
pub struct Rewritten {
    /// The old snapshot, its replacement (`None` in a dry run) and whether the old one is gone.
    #[serde(flatten)]
    pub replaced: Replaced,
    /// Entries left out, absolute paths; a directory ends with `/`.
    pub removed: Vec<String>,
}

/// What `rewrite` did.
#[derive(Debug, Clone, Default)]
pub struct RewriteReport {
    /// Snapshots looked at.
    pub snapshots: usize,
    /// Snapshots that lose entries.
    pub rewritten: Vec<Rewritten>,
    /// Old snapshots the storage keeps under an Object Lock until the given time (with
    /// `forget`): not replaced, since they could not be deleted.
    pub locked: Vec<(ObjectId, SystemTime)>,
}

/// Rewrite `snaps` without the excluded paths (see the module documentation).
///
/// # Errors
/// [`crate::CoreError::PutOnly`] before anything is written; a tree that does not load; storage
/// errors.
pub fn rewrite(
    repo: &Repository,
    snaps: &[(ObjectId, Snapshot)],
    opts: &RewriteOptions,
) -> Result<RewriteReport> {
    repo.require_read("rewrite")?;
    let index = repo.load_index()?;
    let packer = (!opts.dry_run).then(|| new_packer(repo, opts.workers));
    let excluded = |p: &std::path::Path| opts.excludes.matches(p);
    let mut fixer = Fixer::new(repo, &index, Drop::Excluded(&excluded), packer);
    let mut staged = Vec::new();
    let mut removed = std::collections::HashMap::new();
    for (id, snap) in snaps {
        fixer.signer = repo.snapshot_signer(id).ok();
        if let Fix::Replaced(tree, gone) = fixer.fix_tree(snap.tree)? {
            let mut s = successor(id, snap);
            s.tree = tree;
            s.summary = None;
            if !opts.forget && !s.tags.iter().any(|t| t == "rewrite") {
                s.tags.push("rewrite".into());
            }
            staged.push((*id, s));
            removed.insert(*id, gone.into_iter().map(|p| format!("/{p}")).collect());
        }
    }
    // Trees first (packs, then their index objects), then the snapshots.
    if let Some(p) = fixer.packer.take() {
        p.finish()?;
    }
    let mut report = RewriteReport {
        snapshots: snaps.len(),
        ..RewriteReport::default()
    };
    let replaced = if opts.dry_run {
        let r = staged.iter().map(|(old, _)| Replaced {
            old: *old,
            new: None,
            forgotten: false,
        });
        r.collect()
    } else {
        let (replaced, gone) = replace(repo, staged, opts.forget)?;
        report.locked = gone.locked;
        replaced
    };
    report.rewritten = (replaced.into_iter())
        .map(|replaced| Rewritten {
            removed: removed.remove(&replaced.old).unwrap_or_default(),
            replaced,
        })
        .collect();
    Ok(report)
}
