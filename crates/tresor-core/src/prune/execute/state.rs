//! Steps 4, 8 and 9: the prune state a run leaves — written after the fossils, armed once no
//! index object names a condemned pack, deleted when nothing is pending.

use super::delete::delete_object;
use crate::error::Result;
use crate::prune::read::{open_markers, open_snapshot_any, resolve_markers};
use crate::prune::report::PruneStats;
use crate::prune::tables::{Resolved, Work};
use crate::repo::Repository;
use crate::repo::index::{IdMap, IdSet};
use crate::repo::records::write_record;
use tresor_format::ObjectId;
use tresor_format::record::{Arming, Generation, PruneState, Record};
use tresor_storage::Kind;

/// The state being written, and the live state records (superseded by the next one written).
pub(super) struct State {
    state: PruneState,
    current: Vec<ObjectId>,
    /// The hosts this run's arming recorded, once it armed.
    armed_hosts: Option<Vec<String>>,
}

impl State {
    /// The state the plan made (without the new generation); the plan's live states are
    /// current.
    pub fn new(w: &Work) -> Self {
        State {
            state: w.next_state.clone(),
            current: w.states.iter().map(|(id, _)| *id).collect(),
            armed_hosts: None,
        }
    }

    /// Step 4: the new state, with the new generation: after the fossils and the resurrection
    /// index, before the index objects that stop listing the condemned packs are superseded.
    /// Written only when it differs from the live one and holds anything.
    ///
    /// # Errors
    /// Sealing and storage errors.
    pub fn write_new(
        &mut self,
        repo: &Repository,
        w: &Work,
        generation: Option<Generation>,
        stats: &mut PruneStats,
    ) -> Result<()> {
        self.state.generations.extend(generation);
        let changed = !(w.states.len() == 1 && w.states[0].1.same_content(&self.state));
        if !self.state.is_empty() && changed {
            self.replace(repo, stats)?;
        }
        Ok(())
    }

    /// Write the state, superseding the current ones, and delete those.
    fn replace(&mut self, repo: &Repository, stats: &mut PruneStats) -> Result<()> {
        self.state.supersedes = self.current.clone();
        let (id, n) = write_record(repo, &Record::State(self.state.clone()))?;
        stats.records_written += 1;
        stats.bytes_written += n;
        for old in &self.current {
            if delete_object(repo, Kind::PruneRecord, old, stats) {
                stats.records_deleted += 1;
            }
        }
        self.current = vec![id];
        Ok(())
    }

    /// Step 8: arm the unarmed generations — once every superseded index object is gone (no
    /// dedup list names a condemned pack any more), record the snapshots present and the hosts
    /// that must write a new one ([`arming`]) in a state superseding the current one.
    ///
    /// # Errors
    /// Storage errors on listing; sealing and storage errors of writing the state.
    pub fn arm(
        &mut self,
        repo: &Repository,
        run: u64,
        w: &Work,
        gone_index: bool,
        supersedes: &[ObjectId],
        stats: &mut PruneStats,
    ) -> Result<()> {
        if self.state.generations.iter().all(|g| g.armed.is_some()) {
            return Ok(());
        }
        let superseded_ids: IdSet<ObjectId> = supersedes
            .iter()
            .chain(w.leftovers.iter())
            .copied()
            .collect();
        let present = repo.storage().list(Kind::Index)?;
        let clean = gone_index
            && !present.iter().any(|(n, _)| {
                n.parse()
                    .is_ok_and(|id: ObjectId| superseded_ids.contains(&id))
            });
        if !clean {
            stats.warnings.push(
                "condemned packs are not armed yet: superseded index objects could not be deleted (the next prune retries)"
                    .into(),
            );
            return Ok(());
        }
        let arming = arming(
            repo,
            run,
            &w.hosts,
            &w.resolved_markers,
            &mut stats.warnings,
        )?;
        for g in &mut self.state.generations {
            if g.armed.is_none() {
                g.armed = Some(arming.clone());
            }
        }
        self.replace(repo, stats)?;
        self.armed_hosts = Some(arming.hosts);
        Ok(())
    }

    /// The hosts this run's arming recorded, `None` when it armed nothing.
    pub fn armed_hosts(&self) -> Option<&[String]> {
        self.armed_hosts.as_deref()
    }

    /// Step 9: delete the current state when nothing is pending any more (or only packs
    /// deleted now), and the fossil records no generation of it references.
    pub fn finish(&self, repo: &Repository, w: &Work, all_deleted: bool, stats: &mut PruneStats) {
        let s = &self.state;
        if s.is_empty() || (s.generations.is_empty() && s.unindexed.is_empty() && all_deleted) {
            for old in &self.current {
                if delete_object(repo, Kind::PruneRecord, old, stats) {
                    stats.records_deleted += 1;
                }
            }
        }
        let referenced: IdSet<ObjectId> = s
            .generations
            .iter()
            .flat_map(|g| g.fossils.iter().copied())
            .collect();
        for f in &w.fossil_ids {
            if !referenced.contains(f) && delete_object(repo, Kind::PruneRecord, f, stats) {
                stats.records_deleted += 1;
            }
        }
    }

    /// Whether every pending generation is armed.
    pub fn armed(&self) -> bool {
        self.state.generations.iter().all(|g| g.armed.is_some())
    }
}

/// Record the snapshots present and the hosts that must write a new one before the generation
/// may be deleted: the hosts of those snapshots (those that speak for their host: a put-only
/// key naming another host is ignored, as readers ignore it), and the hosts of backup start
/// markers no snapshot lists (a backup that may have started before the condemned packs left the index —
/// for a host without snapshots yet, its first backup). Markers are listed after the snapshots,
/// so a backup that ends in between counts as running: the safe side.
fn arming(
    repo: &Repository,
    run: u64,
    known: &IdMap<ObjectId, Option<String>>,
    resolved: &Resolved,
    warnings: &mut Vec<String>,
) -> Result<Arming> {
    let mut snapshots = repo.snapshot_ids()?;
    snapshots.sort();
    let mut hosts: Vec<String> = Vec::new();
    let mut resolved = resolved.clone();
    for id in &snapshots {
        match known.get(id) {
            Some(h) => hosts.extend(h.iter().cloned()),
            None => {
                if let Ok((signer, s)) = open_snapshot_any(repo, id, None) {
                    resolve_markers(repo, id, &signer, &s, &mut resolved);
                    if repo.trust().speaks_for(&signer, id, &s.hostname) {
                        hosts.push(s.hostname);
                    }
                }
            }
        }
    }
    for (_, host) in open_markers(repo, &resolved, warnings)? {
        hosts.push(host);
    }
    hosts.sort();
    hosts.dedup();
    Ok(Arming {
        run,
        snapshots,
        hosts,
    })
}
