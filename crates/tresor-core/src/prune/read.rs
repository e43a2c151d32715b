//! Reading objects the way prune needs them: whatever their signer (prune keeps the data of
//! ignored snapshots too), and judging the ones it cannot use.

use super::report::GarbageObject;
use super::tables::Resolved;
use crate::error::{CoreError, Result};
use crate::repo::{Defect, Judged, Repository};
use tresor_format::index::IndexFile;
use tresor_format::marker::Marker;
use tresor_format::snapshot::Snapshot;
use tresor_format::{FormatError, ObjectId};
use tresor_storage::{ErrorKind, Kind};

/// Record the markers that snapshot `s` (signed by `signer`) lists, if it speaks for its host:
/// a put-only key's snapshot naming another host, or listing other hosts' markers, resolves
/// nothing.
pub(super) fn resolve_markers(
    repo: &Repository,
    id: &ObjectId,
    signer: &[u8; 32],
    s: &Snapshot,
    r: &mut Resolved,
) {
    if repo.trust().speaks_for(signer, id, &s.hostname) {
        for m in &s.markers {
            r.insert(*m, s.hostname.clone());
        }
    }
}

/// Open a marker: its signer and host.
pub(super) fn open_marker(repo: &Repository, id: &ObjectId) -> Result<([u8; 32], String)> {
    let b = repo.read_object(Kind::Marker, id)?;
    let (signer, m) = Marker::open(repo.key(), &b)?;
    Ok((signer, m.hostname))
}

/// Backup start markers (format §16.1) no snapshot of their host lists, by host: each may be a
/// backup that is still running. Markers that cannot be opened, and markers whose signer may
/// not write for their host, are reported in `warnings` and skipped.
pub(super) fn open_markers(
    repo: &Repository,
    resolved: &Resolved,
    warnings: &mut Vec<String>,
) -> Result<Vec<(ObjectId, String)>> {
    let names = match repo.storage().list(Kind::Marker) {
        Ok(l) => l,
        // Repositories made before markers existed have no `markers/` folder.
        Err(e) if e.kind == ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for (name, _) in names {
        let Ok(id) = name.parse::<ObjectId>() else {
            continue;
        };
        match open_marker(repo, &id) {
            Ok((_, host)) if resolved.get(&id) == Some(&host) => {}
            Ok((signer, host)) if repo.trust().speaks_for(&signer, &id, &host) => {
                out.push((id, host))
            }
            Ok((_, host)) => warnings.push(format!(
                "backup start marker {id} for host {host:?}: its signer may not write for that host; ignored"
            )),
            Err(CoreError::Storage(e)) if e.kind == ErrorKind::NotFound => {}
            Err(e) => warnings.push(format!("backup start marker {id}: {e}; ignored")),
        }
    }
    Ok(out)
}

/// Open a snapshot whatever its signer (prune keeps the data of ignored snapshots too: they
/// may become trusted again, e.g. after a paper key import); returns its signer too.
/// `listed`: its size from a listing.
pub(super) fn open_snapshot_any(
    repo: &Repository,
    id: &ObjectId,
    listed: Option<u64>,
) -> Judged<([u8; 32], Snapshot)> {
    let bytes = repo.fetch(Kind::Snapshot, id, listed)?;
    Snapshot::open(repo.key(), &bytes).map_err(|e| {
        (
            Defect::of_format(&e),
            CoreError::Damaged(format!("snapshot {id}: {e}")),
        )
    })
}

/// What a run makes of an object it could not use: garbage is deleted, an object that is only
/// damaged (too large, unknown version) is skipped with a warning, a storage error stops the
/// run (nothing may be concluded from a transient failure). `Ok(())` means: go on without it.
pub(super) fn triage(
    kind: Kind,
    id: ObjectId,
    (defect, error): (Defect, CoreError),
    what: &str,
    garbage: &mut Vec<GarbageObject>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    match defect {
        Defect::Unreadable => match error {
            // Deleted meanwhile (forget, or a concurrent prune's replacement).
            CoreError::Storage(e) if e.kind == ErrorKind::NotFound => Ok(()),
            e => Err(e),
        },
        Defect::Garbage => {
            let reason = match error {
                CoreError::Damaged(m) => m,
                e => e.to_string(),
            };
            garbage.push(GarbageObject { kind, id, reason });
            Ok(())
        }
        Defect::Damaged | Defect::Ignored => {
            warnings.push(format!("{error}: skipped ({what})"));
            Ok(())
        }
    }
}

/// Open an index object (whatever its signer) with as few copies of it in memory at once as
/// possible. `listed`: its size from a listing.
pub(super) fn open_index_any(
    repo: &Repository,
    id: &ObjectId,
    listed: Option<u64>,
) -> Judged<([u8; 32], IndexFile)> {
    let bad = |e: FormatError| {
        (
            Defect::of_format(&e),
            CoreError::Damaged(format!("index {id}: {e}")),
        )
    };
    let stored = repo.fetch(Kind::Index, id, listed)?;
    let (signer, env) = IndexFile::envelope(&stored).map_err(bad)?;
    drop(stored);
    let sealed = env.sealed;
    drop(env.dedup);
    let file = IndexFile::open_sealed(repo.key(), &sealed, &signer).map_err(bad)?;
    Ok((signer, file))
}

pub(super) fn open_index(repo: &Repository, id: &ObjectId) -> Result<([u8; 32], IndexFile)> {
    open_index_any(repo, id, None).map_err(|(_, e)| e)
}
