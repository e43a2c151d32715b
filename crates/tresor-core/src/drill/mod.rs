//! Restore drills (`tresor drill`, format §18): restore a sample of files from the chosen
//! snapshots into a sandbox, check every byte and metadata field against the snapshot, time
//! it, and leave a signed drill record so that the next drill — on any admin machine —
//! continues the rotation over the packs no drill has reached yet.
//!
//! | module | what it does |
//! |---|---|
//! | [`sample`] | the candidates (files and symlinks with their packs) and the weighted random choice |
//! | [`run`] | restoring each sampled file with the restorer (`verify` on) and checking it; `--compare-source` |
//! | [`verify`] | the independent check of a restored file against its node |
//! | [`record`] | drill records: writing, reading the trusted ones (full keys only), coverage |
//! | [`estimate`] | throughput and the recovery-time estimate (formula there) |

pub mod estimate;
pub mod record;
pub mod run;
pub mod sample;
pub mod verify;

use crate::Progress;
use crate::error::Result;
use crate::repo::blobs::BlobReader;
use crate::repo::index::Index;
use crate::repo::snapshots::{future_after, is_future};
use crate::repo::{Repository, SnapshotList};
use crate::snapshots::{SnapshotFilter, clean_path};
use estimate::{Estimate, Throughput};
use record::Coverage;
use sample::{Budget, Rng};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tresor_format::ObjectId;
use tresor_format::drill::{DrillRecord, DrillResult};
use tresor_format::snapshot::Snapshot;

/// What a drill does.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// How much to sample.
    pub budget: Budget,
    /// Directory to restore into (must exist; the caller creates and removes it).
    pub sandbox: PathBuf,
    /// `--compare-source`: this machine's host name (live files are compared only for
    /// snapshots of this host).
    pub compare_source: Option<String>,
    /// Seed of the sampling (tests); `None`: random.
    pub seed: Option<u64>,
    /// Host name written into the record.
    pub hostname: String,
    /// Files restored at once: as many as `tresor restore` writes at once, so that the
    /// measured throughput is a restore's.
    pub workers: usize,
}

/// What kind of mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchKind {
    /// Repository data missing, unreadable or corrupt (a blob, a pack).
    Data,
    /// The restored content or a metadata field differs from the snapshot (independent check).
    Content,
    /// The restorer's read-back found a metadata field it could not reproduce.
    Metadata,
    /// The restore itself failed locally.
    Restore,
    /// `--compare-source`: the live file differs though its size and mtime are the snapshot's.
    SourceChanged,
}

/// One mismatch, naming the file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Mismatch {
    /// The snapshot.
    pub snapshot: ObjectId,
    /// The file's path in the snapshot (escaped for display).
    pub path: String,
    /// What kind.
    pub kind: MismatchKind,
    /// What differs.
    pub detail: String,
}

/// `--compare-source` counts.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SourceCompare {
    /// Files compared with their live source (same size and mtime).
    pub compared: u64,
    /// Files skipped because their size or mtime changed since the snapshot.
    pub skipped: u64,
    /// Files whose live source is missing, not a regular file, or unreadable.
    pub missing: u64,
}

/// The outcome of a drill.
#[derive(Debug, Clone)]
pub struct DrillOutcome {
    /// Snapshots sampled from.
    pub snapshots: Vec<ObjectId>,
    /// Files in the chosen snapshots (candidates).
    pub candidates: u64,
    /// Throughput measured.
    pub throughput: Throughput,
    /// Packs this drill covered.
    pub packs: Vec<ObjectId>,
    /// Every mismatch.
    pub mismatches: Vec<Mismatch>,
    /// `--compare-source` counts (all zero without it).
    pub source: SourceCompare,
    /// Passed or failed.
    pub result: DrillResult,
    /// Coverage after this drill (its own record included when it was written).
    pub coverage: Coverage,
    /// The record written, or why it could not be.
    pub record: std::result::Result<ObjectId, String>,
    /// Drill records ignored (not signed by a full key, or garbage).
    pub ignored_records: u64,
    /// Estimates per chosen snapshot.
    pub estimates: Vec<Estimate>,
    /// Estimates per host of the chosen snapshots.
    pub hosts: Vec<Estimate>,
}

/// The latest snapshot (not dated in the future) of every host and path set among those
/// `filter` passes, oldest first.
pub fn latest_per_group(list: &SnapshotList, filter: &SnapshotFilter) -> SnapshotList {
    let future = future_after();
    let mut groups: BTreeMap<(String, Vec<String>), &(ObjectId, Snapshot)> = BTreeMap::new();
    for e in list
        .iter()
        .filter(|(_, s)| filter.matches(s) && !is_future(s, future))
    {
        let mut paths: Vec<String> = e.1.paths.iter().map(|p| clean_path(p)).collect();
        paths.sort();
        groups.insert((e.1.hostname.clone(), paths), e);
    }
    let mut out: SnapshotList = groups.into_values().cloned().collect();
    out.sort_by(|a, b| {
        crate::repo::snapshots::time_of(&a.1).cmp(&crate::repo::snapshots::time_of(&b.1))
    });
    out
}

/// Run a drill over `chosen` (snapshots of `all`, the repository's snapshots): [`plan`], then
/// [`run_plan`].
///
/// # Errors
/// [`crate::CoreError::PutOnly`]; a tree of a chosen snapshot that does not load; storage
/// errors listing drill records. Damaged file data is a mismatch, not an error.
pub fn drill(
    repo: &Repository,
    index: &Index,
    chosen: &SnapshotList,
    all: &SnapshotList,
    opts: &DrillOptions,
    progress: &dyn Progress,
) -> Result<DrillOutcome> {
    let p = plan(repo, index, chosen, opts)?;
    run_plan(repo, index, p, chosen, all, opts, progress)
}

/// A drawn sample, before anything is restored (a cold tier thaws its packs in between).
pub struct DrillPlan {
    records: Vec<record::Trusted>,
    ignored_records: u64,
    cands: Vec<sample::Candidate>,
    picked: Vec<usize>,
    tree_packs: std::collections::BTreeSet<u32>,
}

impl DrillPlan {
    /// The data packs the sampled files need, by id.
    pub fn data_packs(&self, index: &Index) -> Vec<ObjectId> {
        let mut at: Vec<u32> = (self.picked.iter())
            .flat_map(|&i| self.cands[i].packs.iter().copied())
            .collect();
        at.sort_unstable();
        at.dedup();
        at.into_iter().map(|p| index.pack(p).id).collect()
    }
}

/// Draw the sample of a drill over `chosen`: the trusted drill records, every file of the
/// chosen snapshots (their trees loaded and verified), the pick.
///
/// # Errors
/// As [`drill`].
pub fn plan(
    repo: &Repository,
    index: &Index,
    chosen: &SnapshotList,
    opts: &DrillOptions,
) -> Result<DrillPlan> {
    repo.require_read("drilling")?;
    let (records, ignored_records) = record::load_trusted(repo)?;
    let covered = record::covered_packs(index, &records);
    let uncovered = record::all_packs(index)
        .difference(&covered)
        .copied()
        .collect();
    let reader = BlobReader::new(repo, index);
    let (cands, tree_packs) = sample::candidates(&reader, index, chosen)?;
    let picked = sample::choose(&cands, &uncovered, opts.budget, &mut Rng::new(opts.seed));
    Ok(DrillPlan {
        records,
        ignored_records,
        cands,
        picked,
        tree_packs,
    })
}

/// Restore and check the sample of `plan`, write the drill record, and report.
///
/// # Errors
/// Creating the record's nonce; damaged data is a mismatch, not an error.
pub fn run_plan(
    repo: &Repository,
    index: &Index,
    plan: DrillPlan,
    chosen: &SnapshotList,
    all: &SnapshotList,
    opts: &DrillOptions,
    progress: &dyn Progress,
) -> Result<DrillOutcome> {
    let DrillPlan {
        mut records,
        ignored_records,
        cands,
        picked,
        tree_packs,
    } = plan;
    let picked: Vec<&sample::Candidate> = picked.iter().map(|&i| &cands[i]).collect();
    let total: u64 = picked.iter().map(|c| sample::file_bytes(c)).sum();
    progress.set_total(picked.len() as u64, total);
    let sandbox = run::Sandbox {
        repo,
        index,
        dir: &opts.sandbox,
        compare_source: opts.compare_source.as_deref(),
        progress,
        workers: opts.workers,
    };
    let mut ran = sandbox.run(&picked, chosen);
    ran.packs.extend(tree_packs);
    let throughput = Throughput {
        files: ran.files,
        bytes: ran.bytes,
        seconds: ran.elapsed.as_secs_f64(),
        model: estimate::CostModel::fit(&ran.timings, ran.elapsed.as_secs_f64()),
    };
    let packs: Vec<ObjectId> = ran.packs.iter().map(|&p| index.pack(p).id).collect();
    let result = if ran.mismatches.is_empty() {
        DrillResult::Passed
    } else {
        DrillResult::Failed
    };
    let mut snapshots: Vec<ObjectId> = chosen.iter().map(|(id, _)| *id).collect();
    snapshots.sort();
    let rec = DrillRecord {
        version: tresor_format::FORMAT_VERSION,
        time: crate::time::now_recorded(),
        hostname: opts.hostname.clone(),
        key: repo.key_id(),
        snapshots: snapshots.clone(),
        packs: packs.clone(),
        files: throughput.files,
        bytes: throughput.bytes,
        result,
        mismatches: ran.mismatches.len() as u64,
        seconds: throughput.seconds,
        bytes_per_sec: throughput.bytes_per_sec(),
        files_per_sec: throughput.files_per_sec(),
        nonce: DrillRecord::new_nonce()?,
    };
    let written = record::write(repo, &rec).map_err(|e| e.to_string());
    if let Ok(id) = written {
        records.push((id, rec));
    }
    let present: Vec<ObjectId> = all.iter().map(|(id, _)| *id).collect();
    Ok(DrillOutcome {
        snapshots,
        candidates: cands.len() as u64,
        throughput,
        packs,
        mismatches: ran.mismatches,
        source: ran.source,
        result,
        coverage: record::coverage(index, &records, &present),
        record: written,
        ignored_records,
        estimates: chosen
            .iter()
            .map(|(id, s)| estimate::for_snapshot(&throughput, *id, s))
            .collect(),
        hosts: host_estimates(&throughput, chosen, all),
    })
}

/// One estimate per host of `chosen`: the latest snapshot of each of the host's path sets.
fn host_estimates(t: &Throughput, chosen: &SnapshotList, all: &SnapshotList) -> Vec<Estimate> {
    let mut hosts: Vec<&str> = chosen.iter().map(|(_, s)| s.hostname.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    hosts
        .into_iter()
        .map(|h| {
            let filter = SnapshotFilter {
                hosts: vec![h.to_string()],
                ..SnapshotFilter::default()
            };
            estimate::for_host(t, h, &latest_per_group(all, &filter))
        })
        .collect()
}
