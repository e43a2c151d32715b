//! What prune shows: the plan's report, what happens to each pack, and what a run did. Plain
//! data, serialisable; the CLI renders it.

use serde::Serialize;
use tresor_format::ObjectId;
use tresor_storage::Kind;

/// What happens to a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PackAction {
    /// Stays indexed.
    Keep,
    /// Taken out of the index into a new generation (unused, or unindexed).
    Condemn,
    /// Used blobs copied to new packs, then condemned.
    Repack,
    /// A condemned or unindexed pack with needed blobs: indexed again.
    Resurrect,
    /// Deleted in this run (its generation is approved).
    Delete,
    /// Listed by the index but missing from storage, and not needed: dropped from the index.
    Drop,
    /// Condemned earlier, still waiting.
    Wait,
    /// Unindexed, seen for the first time: left alone until the next run.
    Unindexed,
}

/// The rule for the unindexed packs of dead backups (format §16, step 3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OrphanRule {
    /// No backup can be running: unindexed packs an earlier run saw are deleted at once.
    pub applies: bool,
    /// Why, or what holds it back, in one line.
    pub reason: String,
}

/// One pack in the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedPack {
    /// Pack id.
    pub id: ObjectId,
    /// Stored size, bytes.
    pub size: u64,
    /// Blobs in it.
    pub blobs: u32,
    /// Blobs in use.
    pub used_blobs: u32,
    /// Stored bytes of blobs in use.
    pub used_bytes: u64,
}

/// A pending generation as this run sees it.
#[derive(Debug, Clone, Serialize)]
pub struct GenerationStatus {
    /// Prune run that condemned it.
    pub run: u64,
    /// Condemned packs still held by it.
    pub packs: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Whether it is armed (no index object names its packs any more).
    pub armed: bool,
    /// Whether its packs are deleted in this run.
    pub approved: bool,
    /// The run that armed it, if armed.
    pub armed_run: Option<u64>,
    /// Hosts that have not written a snapshot since it was armed.
    pub waiting_for: Vec<String>,
    /// The same hosts, each with since when the generation waits for it and how to release it.
    pub waiting: Vec<WaitingHost>,
    /// Packs of it indexed again in this run.
    pub resurrected: usize,
    /// Why it waits, or that it is approved.
    pub reason: String,
}

/// A host a pending generation waits for (format §16, step 4 (a)): since when, and how to
/// stop waiting for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitingHost {
    /// The host name.
    pub host: String,
    /// The `time` (RFC 3339, as the host wrote it) of its newest snapshot that counts, all of
    /// which the arming run saw: the generation waits for a snapshot after that one. `None`
    /// when it has no such snapshot (a backup start marker put it in the arming).
    pub last_snapshot: Option<String>,
    /// The start times (RFC 3339, as the host wrote them) of its backups that started and that
    /// no snapshot lists yet (format §16.1): maybe still running, maybe killed.
    pub unfinished: Vec<String>,
    /// The command that stops waiting for the host: safe only when no backup of it that started
    /// before the arming run is still running (the machine is gone, its backups are disabled).
    pub release: String,
}

/// What a prune run will do, as plain data: everything the CLI shows of a plan (it renders
/// it as text, and serialises it for `--json`). [`super::PrunePlan`] holds one, with the tables
/// it executes from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanReport {
    /// Number of this prune run (repository time: one more than the last recorded run).
    pub run: u64,
    /// Snapshots whose data is kept.
    pub snapshots: usize,
    /// Index objects read.
    pub index_objects: usize,
    /// Packs known (indexed, condemned or unindexed).
    pub packs: usize,
    /// Blob entries known.
    pub blobs: u64,
    /// Distinct blobs in use.
    pub used_blobs: u64,
    /// Stored bytes of the blobs in use (one copy each).
    pub used_bytes: u64,
    /// Stored bytes of indexed blobs not in use (or extra copies).
    pub unused_bytes: u64,
    /// Unused bytes tolerated in partly used packs after this run.
    pub max_unused_bytes: u64,
    /// Unused bytes left in kept packs after this run.
    pub unused_bytes_after: u64,
    /// Packs condemned because nothing uses them.
    pub condemn_unused: Vec<PlannedPack>,
    /// Packs condemned because no index lists them and an earlier run saw them unindexed too
    /// (left by interrupted backups).
    pub condemn_unindexed: Vec<PlannedPack>,
    /// Packs an earlier run saw unindexed that no index object lists, deleted by this run
    /// without a grace period because no backup can be running ([`PlanReport::orphan_rule`];
    /// also in `delete`, or `locked`).
    pub delete_unindexed: Vec<PlannedPack>,
    /// Whether unindexed packs go straight to `deleting`, and why (or why not), format §16
    /// step 3.
    pub orphan_rule: OrphanRule,
    /// Packs no index lists, seen for the first time (maybe a running backup's): remembered,
    /// condemned by the next run if still unindexed.
    pub unindexed_seen: Vec<PlannedPack>,
    /// Packs to repack (then condemned).
    pub repack: Vec<PlannedPack>,
    /// Blobs copied by the repack.
    pub repack_blobs: u64,
    /// Bytes copied by the repack.
    pub repack_bytes: u64,
    /// Indexed packs missing from storage, not needed: dropped from the index.
    pub drop_missing: Vec<ObjectId>,
    /// Condemned or unindexed packs indexed again.
    pub resurrect: Vec<ObjectId>,
    /// Packs deleted in this run.
    pub delete: Vec<PlannedPack>,
    /// Packs due for deletion that the storage still holds under a lock (S3 Object Lock
    /// retention or legal hold), with the time it ends (UTC, RFC 3339): not attempted, kept in
    /// the `deleting` list, and deleted by the first run after that time.
    pub locked: Vec<(PlannedPack, String)>,
    /// Cold packs left as they are (format §16.2): partly used ones (never repacked) and
    /// wholly unused ones within their class's minimum storage duration.
    pub cold_kept: Vec<ColdPackReport>,
    /// Wholly unused cold packs condemned before their class's minimum storage duration
    /// (`--cold-early-delete`): the storage charges the remaining days.
    pub cold_early: Vec<ColdPackReport>,
    /// Bytes freed in this run.
    pub bytes_freed: u64,
    /// Bytes condemned in this run (freed by a later run).
    pub bytes_condemned: u64,
    /// Pending generations from earlier runs.
    pub generations: Vec<GenerationStatus>,
    /// Packs no index lists that appeared since the last run (they hold back approval).
    pub new_unindexed: usize,
    /// Index objects to be replaced by the consolidated index object.
    pub index_superseded: usize,
    /// Index objects already superseded, to be deleted.
    pub index_leftovers: usize,
    /// Objects no key wrote (bytes that do not match the name, a bad envelope, signature,
    /// sealing or encoding): deleted by this run. Objects of unknown or revoked signers are
    /// never garbage (they may be a lost key's), nor are objects a storage error kept from
    /// being read.
    pub garbage: Vec<GarbageObject>,
    /// Things worth knowing that are not errors.
    pub warnings: Vec<String>,
    /// Executing would change nothing (not serialised: `--json` readers see the lists).
    #[serde(skip)]
    pub nothing_to_do: bool,
}

impl PlanReport {
    /// Whether executing would change nothing.
    pub fn is_empty(&self) -> bool {
        self.nothing_to_do
    }
}

/// A pack in a cold storage class that prune leaves or deletes early (format §16.2).
#[derive(Debug, Clone, Serialize)]
pub struct ColdPackReport {
    /// The pack.
    #[serde(flatten)]
    pub pack: PlannedPack,
    /// Its class (`GLACIER`, `DEEP_ARCHIVE`).
    pub class: String,
    /// When its class's minimum storage duration ends (UTC, RFC 3339); `None` when the storage
    /// did not say when it was stored.
    pub minimum_storage_until: Option<String>,
}

/// An object that no key wrote (format §16, "Garbage"): deleted by the run that finds it.
#[derive(Debug, Clone, Serialize)]
pub struct GarbageObject {
    /// Its kind: `snapshot`, `index` or `marker`.
    #[serde(serialize_with = "kind_name")]
    pub kind: Kind,
    /// Its id.
    pub id: ObjectId,
    /// Why it is garbage.
    pub reason: String,
}

fn kind_name<S: serde::Serializer>(k: &Kind, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&k.to_string())
}

/// What a prune run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneStats {
    /// The run number.
    pub run: u64,
    /// Packs repacked (their used blobs copied).
    pub packs_repacked: usize,
    /// Blobs copied.
    pub blobs_repacked: u64,
    /// New packs written by the repack.
    pub packs_written: u64,
    /// Bytes written: packs, index objects and prune records.
    pub bytes_written: u64,
    /// Index objects written.
    pub index_written: usize,
    /// Index objects deleted.
    pub index_deleted: usize,
    /// Packs condemned (freed by a later run).
    pub packs_condemned: usize,
    /// Their bytes.
    pub bytes_condemned: u64,
    /// Packs indexed again.
    pub packs_resurrected: usize,
    /// Packs deleted.
    pub packs_deleted: usize,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Prune records written.
    pub records_written: usize,
    /// Prune records deleted.
    pub records_deleted: usize,
    /// Backup start markers deleted (their snapshots exist).
    pub markers_deleted: usize,
    /// Garbage objects deleted ([`PlanReport::garbage`]).
    pub garbage_deleted: usize,
    /// Whether the pending generations are armed after this run.
    pub armed: bool,
    /// Objects the storage refused to delete (append-only storage, object lock): `kind id: error`.
    pub undeletable: Vec<String>,
    /// Objects due for deletion but still locked by the storage (S3 Object Lock), not
    /// attempted: `kind id: locked until TIME`. A later run deletes them.
    pub locked: Vec<String>,
    /// Other problems met on the way that did not stop the run.
    pub warnings: Vec<String>,
    /// What later runs will free (packs this run leaves condemned, locked or unindexed), by
    /// condition.
    pub freed_later: Vec<FreedLater>,
}

/// What a later prune run frees once a condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Later {
    /// After every host in [`FreedLater::hosts`] has written a snapshot (format §16, step 4
    /// (a)), the next prune run then.
    HostsBackUp,
    /// The next prune run (armed, no host to wait for; unless a pack no index lists appears).
    NextRun,
    /// Not armed yet (superseded index objects could not be deleted): once a prune run arms
    /// them, then after every host has backed up again.
    Arming,
    /// Due for deletion, but under the storage's object lock: a run after the lock ends.
    LockEnds,
    /// No index lists them yet, seen for the first time: condemned by the next prune run if
    /// still unindexed — deleted by it when no backup can be running (format §16, step 3) —
    /// (a running backup may index them).
    Unindexed,
    /// Unused bytes in partly used cold packs: cold packs are not repacked (that needs a
    /// thaw); freed when the pack becomes wholly unused (format §16.2).
    Cold,
    /// Wholly unused cold packs within their class's minimum storage duration: condemned by
    /// the first run after it ends, or by one with `--cold-early-delete`.
    ColdMinimum,
}

/// Packs a later run frees, and on which condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FreedLater {
    /// How many packs.
    pub packs: usize,
    /// Their stored bytes.
    pub bytes: u64,
    /// The condition.
    pub when: Later,
    /// With [`Later::HostsBackUp`]: the hosts that must write a snapshot first; else empty.
    pub hosts: Vec<String>,
}
