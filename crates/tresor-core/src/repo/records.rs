//! Prune records (format §16) as the repository holds them: reading them (only a full key's
//! count), writing them, forget records, and what readers take from them — the fossils of the
//! live prune state for the index, the forgotten snapshots for the high-water marks. Their
//! encoding is [`tresor_format::record`].

use super::handle::{Defect, Judged, Repository, Skipped};
use super::highwater::Hidden;
use super::index::{IdSet, Index, Lister};
use super::trust::Verdict;
use crate::error::{CoreError, Result};
use tresor_format::ObjectId;
use tresor_format::record::{ForgetRecord, FossilSet, PruneState, Record};
use tresor_storage::{ErrorKind, Kind};

/// Verify, open and decode a stored record; returns its signer. Failures are garbage (no key
/// wrote it), except a record of another version (damaged).
fn open_record(repo: &Repository, id: &ObjectId, stored: &[u8]) -> Judged<([u8; 32], Record)> {
    Record::open(repo.key(), stored).map_err(|e| {
        (
            Defect::of_format(&e),
            CoreError::Damaged(format!("prune record {id}: {e}")),
        )
    })
}

/// Read (bounded), open and judge one prune record: only a full key's records count.
fn load_record(repo: &Repository, id: &ObjectId, listed: Option<u64>) -> Judged<Record> {
    let bytes = repo.fetch(Kind::PruneRecord, id, listed)?;
    let (signer, rec) = open_record(repo, id, &bytes)?;
    if repo.trust().verdict(&signer, id) != Verdict::Full {
        return Err((
            Defect::Ignored,
            CoreError::Untrusted(format!(
                "prune record {id} is not signed by a full key: ignored"
            )),
        ));
    }
    Ok(rec)
}

/// Seal and sign a prune record with this key and write it (creating `prune/` in repositories
/// made before it existed); returns its id and size.
///
/// # Errors
/// Sealing and storage errors.
pub fn write_record(repo: &Repository, record: &Record) -> Result<(ObjectId, u64)> {
    let bytes = record.seal(repo.key(), repo.signer())?;
    match repo.write_object(Kind::PruneRecord, &bytes) {
        // Repositories made before prune existed have no `prune/` folder yet.
        Err(CoreError::Storage(e)) if e.kind == ErrorKind::NotFound => {
            repo.storage().create()?;
            Ok((
                repo.write_object(Kind::PruneRecord, &bytes)?,
                bytes.len() as u64,
            ))
        }
        r => r.map(|id| (id, bytes.len() as u64)),
    }
}

/// Names of the objects in `prune/`, sorted (empty when there is no such folder).
///
/// # Errors
/// Storage errors on listing.
pub fn record_names(repo: &Repository) -> Result<Vec<ObjectId>> {
    let mut v = list_records(repo)?;
    v.sort();
    Ok(v)
}

fn list_records(repo: &Repository) -> Result<Vec<ObjectId>> {
    Ok(list_records_sized(repo)?
        .into_iter()
        .map(|(id, _)| id)
        .collect())
}

fn list_records_sized(repo: &Repository) -> Result<Vec<(ObjectId, u64)>> {
    match repo.storage().list(Kind::PruneRecord) {
        Ok(l) => l
            .into_iter()
            .map(|(n, size)| Ok((n.parse()?, size)))
            .collect(),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// The prune records found in storage.
#[derive(Debug, Default)]
pub struct Records {
    /// Live states (not superseded by another), with their ids.
    pub states: Vec<(ObjectId, PruneState)>,
    /// States superseded by a live one (left by an interrupted prune).
    pub superseded: Vec<ObjectId>,
    /// Fossil objects present, referenced or not.
    pub fossils: Vec<ObjectId>,
    /// Forget records, with the snapshots each lists.
    pub forgotten: Vec<(ObjectId, Vec<ObjectId>)>,
    /// Records that are damaged, or not written by a full key (ignored).
    pub skipped: Vec<Skipped>,
}

impl Records {
    /// Fossil objects referenced by the live states.
    pub fn live_fossils(&self) -> Vec<ObjectId> {
        let mut v: Vec<ObjectId> = self
            .states
            .iter()
            .flat_map(|(_, s)| s.generations.iter().flat_map(|g| g.fossils.iter().copied()))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Read every prune record. Records signed by anything but a certified full key are ignored
/// (reported in [`Records::skipped`] as untrusted). A record deleted while this runs (by a
/// concurrent prune replacing it) makes it list again, up to three times.
///
/// # Errors
/// Storage errors on listing.
pub fn load_records(repo: &Repository) -> Result<Records> {
    let mut attempt = 0;
    'again: loop {
        attempt += 1;
        let mut recs = Records::default();
        let mut ids = list_records_sized(repo)?;
        ids.sort();
        for (id, size) in ids {
            match load_record(repo, &id, Some(size)) {
                Ok(Record::State(s)) => recs.states.push((id, s)),
                Ok(Record::Fossils(_)) => recs.fossils.push(id),
                Ok(Record::Forgotten(f)) => recs.forgotten.push((id, f.ids)),
                Err((_, CoreError::Storage(e))) if e.kind == ErrorKind::NotFound && attempt < 3 => {
                    continue 'again;
                }
                Err((defect, error)) => recs.skipped.push(Skipped { id, error, defect }),
            }
        }
        let superseded: IdSet<ObjectId> = recs
            .states
            .iter()
            .flat_map(|(_, s)| s.supersedes.iter().copied())
            .collect();
        let (dead, live): (Vec<_>, Vec<_>) = std::mem::take(&mut recs.states)
            .into_iter()
            .partition(|(id, _)| superseded.contains(id));
        recs.states = live;
        recs.states.sort_by_key(|(id, s)| (s.run, *id));
        recs.superseded = dead.into_iter().map(|(id, _)| id).collect();
        return Ok(recs);
    }
}

/// Read one fossil object.
///
/// # Errors
/// Storage errors, damage, a record that is not a fossil object.
pub fn read_fossils(repo: &Repository, id: &ObjectId) -> Result<FossilSet> {
    read_fossils_judged(repo, id).map_err(|(_, e)| e)
}

fn read_fossils_judged(repo: &Repository, id: &ObjectId) -> Judged<FossilSet> {
    match load_record(repo, id, None)? {
        Record::Fossils(f) => Ok(f),
        Record::State(_) | Record::Forgotten(_) => Err((
            Defect::Damaged,
            CoreError::Damaged(format!(
                "prune record {id}: not a fossil record where fossils were expected"
            )),
        )),
    }
}

/// Add the condemned packs of the live prune state to a reader's index (after every index
/// object, so indexed copies are preferred). Problems go to `skipped`.
///
/// # Errors
/// Storage errors on listing.
pub fn merge_fossils(
    repo: &Repository,
    index: &mut Index,
    skipped: &mut Vec<Skipped>,
) -> Result<()> {
    let recs = load_records(repo)?;
    let live = recs.live_fossils();
    skipped.extend(recs.skipped);
    for f in live {
        match read_fossils_judged(repo, &f) {
            Ok(set) => {
                for p in &set.packs {
                    let lister = match p.verified {
                        true => Lister::Full,
                        false => Lister::Unverified,
                    };
                    index.add_pack(f, lister, &p.pack);
                }
            }
            Err((defect, error)) => skipped.push(Skipped {
                id: f,
                error,
                defect,
            }),
        }
    }
    Ok(())
}

/// Write a forget record (format §16) listing `ids`, the snapshots about to be deleted, so that
/// clients that saw them do not report them as hidden by the storage. Nothing is written for no
/// ids.
///
/// # Errors
/// Sealing and storage errors: then nothing may be deleted.
pub fn record_forgotten(repo: &Repository, ids: &[ObjectId]) -> Result<Option<ObjectId>> {
    if ids.is_empty() {
        return Ok(None);
    }
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    let rec = Record::Forgotten(ForgetRecord {
        version: tresor_format::FORMAT_VERSION,
        ids,
    });
    Ok(Some(write_record(repo, &rec)?.0))
}

impl Repository {
    /// The snapshots this machine saw before that are missing now and that no forget record
    /// lists (format §16): hidden by the storage? Empty without a cache directory.
    ///
    /// # Errors
    /// [`CoreError::PutOnly`]; storage errors on listing; cache I/O errors.
    pub fn hidden_snapshots(&self) -> Result<Vec<Hidden>> {
        self.require_read("comparing snapshots with those seen before")?;
        let Some(marks) = &self.marks else {
            return Ok(Vec::new());
        };
        let present = self.snapshot_ids()?.into_iter().collect();
        marks.hidden(&present, || {
            let recs = load_records(self)?;
            Ok(recs
                .forgotten
                .into_iter()
                .flat_map(|(_, ids)| ids)
                .collect())
        })
    }
}
