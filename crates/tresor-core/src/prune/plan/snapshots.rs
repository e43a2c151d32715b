//! Step 1: the snapshots, whatever their signer, and the markers that do not open.

use super::Found;
use super::orphans::SeenMarker;
use crate::error::{CoreError, Result};
use crate::prune::read::{open_snapshot_any, resolve_markers, triage};
use crate::prune::tables::{Resolved, Signers, SnapInfo};
use crate::repo::snapshots::{future_after, is_future};
use crate::repo::{Defect, Repository};
use tresor_format::ObjectId;
use tresor_format::marker::Marker;
use tresor_storage::{ErrorKind, Kind};

/// The snapshots a plan read.
pub(super) struct Snapshots {
    /// Every snapshot that opens, by id.
    pub list: Vec<SnapInfo>,
    /// The signers of those that speak for their host, numbered for the user sets of blobs.
    pub signers: Signers,
    /// The backup start markers they list (their backups ended).
    pub resolved: Resolved,
}

/// Every snapshot, whatever its signer (listed first: every snapshot seen has its index objects
/// and packs seen later), numbering the signers of those that speak for their host. Garbage
/// snapshots are found out; damaged ones are skipped with a warning.
///
/// # Errors
/// Storage errors (also of reading a snapshot).
pub(super) fn read(repo: &Repository, found: &mut Found) -> Result<Snapshots> {
    let mut names = repo.storage().list(Kind::Snapshot)?;
    names.sort();
    let mut out = Snapshots {
        list: Vec::with_capacity(names.len()),
        signers: Signers::default(),
        resolved: Resolved::default(),
    };
    let future = future_after();
    for (name, size) in names {
        let id: ObjectId = name.parse()?;
        match open_snapshot_any(repo, &id, Some(size)) {
            Ok((signer, s)) => {
                resolve_markers(repo, &id, &signer, &s, &mut out.resolved);
                let speaks = repo.trust().speaks_for(&signer, &id, &s.hostname);
                out.list.push(SnapInfo {
                    id,
                    // A snapshot that records an `original` was written by tag, rewrite,
                    // repair or copy, not by the end of its host's backup (§16 step 4).
                    counts: speaks && !is_future(&s, future) && s.original.is_none(),
                    user: speaks.then(|| out.signers.bit(signer)),
                    host: s.hostname,
                    time: s.time,
                    tree: s.tree,
                    signer,
                });
            }
            Err(e) => triage(
                Kind::Snapshot,
                id,
                e,
                "no data is kept for it; `tresor forget` removes it",
                &mut found.garbage,
                &mut found.warnings,
            )?,
        }
    }
    Ok(out)
}

/// A backup that started and that no snapshot of its host lists (format §16.1): maybe still
/// running. Shown in the plan (what a generation waits for); arming lists markers again.
#[derive(Debug, Clone)]
pub(super) struct Unfinished {
    /// Its host.
    pub host: String,
    /// Its marker's `started` (RFC 3339, informational).
    pub started: String,
}

/// What the markers step found: the backups that may be running, and every marker seen.
#[derive(Default)]
pub(super) struct Markers {
    /// Backups of markers that open, whose signer may write for their host and that no
    /// snapshot read resolves.
    pub unfinished: Vec<Unfinished>,
    /// Every marker listed, for the rule on unindexed packs ([`super::orphans`]).
    pub seen: Vec<SeenMarker>,
}

/// Backup start markers that do not open: garbage (a marker that opens, whatever its state,
/// is for arming to judge). Returns the backups of the markers that open, whose signer may
/// write for their host and that no snapshot read resolves ([`Unfinished`]), and every
/// marker seen.
///
/// # Errors
/// Storage errors.
pub(super) fn garbage_markers(
    repo: &Repository,
    resolved: &Resolved,
    found: &mut Found,
) -> Result<Markers> {
    let mut out = Markers::default();
    let names = match repo.storage().list(Kind::Marker) {
        Ok(l) => l,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    for (name, size) in names {
        let Ok(id) = name.parse::<ObjectId>() else {
            continue;
        };
        let opened = repo.fetch(Kind::Marker, &id, Some(size)).and_then(|b| {
            Marker::open(repo.key(), &b).map_err(|e| {
                (
                    Defect::of_format(&e),
                    CoreError::Damaged(format!("backup start marker {id}: {e}")),
                )
            })
        });
        let mut seen = SeenMarker {
            name,
            listed: false,
            refresh_secs: None,
        };
        match opened {
            Ok((signer, m)) => {
                let open = resolved.get(&id) != Some(&m.hostname);
                (seen.listed, seen.refresh_secs) = (!open, m.refresh_secs);
                if open && repo.trust().speaks_for(&signer, &id, &m.hostname) {
                    out.unfinished.push(Unfinished {
                        host: m.hostname,
                        started: m.started,
                    });
                }
            }
            Err(e) => {
                let (garbage, warnings) = (&mut found.garbage, &mut found.warnings);
                triage(Kind::Marker, id, e, "left in place", garbage, warnings)?;
            }
        }
        out.seen.push(seen);
    }
    Ok(out)
}
