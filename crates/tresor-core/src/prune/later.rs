//! What later runs will free, and on which condition: the packs a run leaves condemned or
//! unindexed, grouped by what their deletion waits for (format §16, step 4). Plain data for
//! [`super::PruneStats::freed_later`]; a pure function of the plan and of the run's arming.

use super::report::{FreedLater, Later, PlanReport};

/// What a run knows after it executed: the hosts its arming recorded (`None` when it armed
/// nothing), and how much it condemned.
pub(super) struct AfterRun<'a> {
    /// Hosts of this run's arming, or `None` when it armed nothing.
    pub armed_hosts: Option<&'a [String]>,
    /// Packs and bytes condemned by this run (a new generation).
    pub condemned: (usize, u64),
    /// Hosts the operator declared inactive for this run.
    pub inactive: &'a [String],
}

/// The packs later runs free, by condition (merged when the condition is the same), in the
/// order: after hosts back up, on the next run, after arming, after object locks, unindexed.
pub(super) fn freed_later(plan: &PlanReport, after: &AfterRun<'_>) -> Vec<FreedLater> {
    let mut out = Groups::default();
    for g in plan.generations.iter().filter(|g| !g.approved) {
        let (when, hosts) = if g.armed {
            (wait_for(&g.waiting_for), g.waiting_for.clone())
        } else {
            // This run armed it, or it still waits for arming.
            armed_now(after)
        };
        out.add(g.packs, g.bytes, when, hosts);
    }
    let (when, hosts) = armed_now(after);
    out.add(after.condemned.0, after.condemned.1, when, hosts);
    let locked = plan.locked.iter().map(|(p, _)| p.size).sum();
    out.add(plan.locked.len(), locked, Later::LockEnds, Vec::new());
    let unindexed = plan.unindexed_seen.iter().map(|p| p.size).sum();
    out.add(
        plan.unindexed_seen.len(),
        unindexed,
        Later::Unindexed,
        Vec::new(),
    );
    for c in &plan.cold_kept {
        let (when, bytes) = match c.pack.used_blobs {
            0 => (Later::ColdMinimum, c.pack.size),
            _ => (Later::Cold, c.pack.size.saturating_sub(c.pack.used_bytes)),
        };
        out.add(1, bytes, when, Vec::new());
    }
    out.0.sort_by_key(|f| f.when);
    out.0
}

/// Pending packs, one entry per condition.
#[derive(Default)]
struct Groups(Vec<FreedLater>);

impl Groups {
    fn add(&mut self, packs: usize, bytes: u64, when: Later, hosts: Vec<String>) {
        if packs == 0 {
            return;
        }
        match self
            .0
            .iter_mut()
            .find(|f| f.when == when && f.hosts == hosts)
        {
            Some(f) => {
                f.packs += packs;
                f.bytes += bytes;
            }
            None => self.0.push(FreedLater {
                packs,
                bytes,
                when,
                hosts,
            }),
        }
    }
}

/// The condition of packs whose generation this run armed (or left unarmed).
fn armed_now(after: &AfterRun<'_>) -> (Later, Vec<String>) {
    match after.armed_hosts {
        Some(h) => {
            let hosts = active(h, after.inactive);
            (wait_for(&hosts), hosts)
        }
        None => (Later::Arming, Vec::new()),
    }
}

/// The condition of an armed generation waiting for `hosts`.
fn wait_for(hosts: &[String]) -> Later {
    if hosts.is_empty() {
        Later::NextRun
    } else {
        Later::HostsBackUp
    }
}

/// `hosts` but the inactive ones.
fn active(hosts: &[String], inactive: &[String]) -> Vec<String> {
    hosts
        .iter()
        .filter(|h| !inactive.contains(h))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prune::report::{GenerationStatus, PlannedPack};
    use tresor_format::ObjectId;

    fn generation(run: u64, packs: usize, armed: bool, waiting: &[&str]) -> GenerationStatus {
        GenerationStatus {
            run,
            packs,
            bytes: packs as u64 * 100,
            armed,
            approved: false,
            armed_run: armed.then_some(run + 1),
            waiting_for: waiting.iter().map(|h| h.to_string()).collect(),
            waiting: vec![],
            resurrected: 0,
            reason: String::new(),
        }
    }

    fn pack(size: u64) -> PlannedPack {
        PlannedPack {
            id: ObjectId([1; 32]),
            size,
            blobs: 1,
            used_blobs: 0,
            used_bytes: 0,
        }
    }

    fn later(packs: usize, bytes: u64, when: Later, hosts: &[&str]) -> FreedLater {
        FreedLater {
            packs,
            bytes,
            when,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        }
    }

    /// Every kind of pending pack lands under its condition; the same condition is summed;
    /// approved generations are not pending; inactive hosts are not waited for.
    #[test]
    fn pending_packs_are_grouped_by_their_condition() {
        let mut approved = generation(1, 9, true, &[]);
        approved.approved = true;
        let plan = PlanReport {
            generations: vec![
                approved,
                generation(2, 2, true, &["a", "b"]),
                generation(3, 1, true, &[]),
                generation(4, 3, false, &[]),
                generation(5, 4, true, &["a", "b"]),
            ],
            locked: vec![(pack(7), "2030-01-01T00:00:00Z".into())],
            unindexed_seen: vec![pack(5), pack(6)],
            ..PlanReport::default()
        };
        let hosts = ["a".to_string(), "b".into(), "gone".into()];
        let after = AfterRun {
            armed_hosts: Some(&hosts),
            condemned: (5, 5000),
            inactive: &["gone".to_string()],
        };
        assert_eq!(
            freed_later(&plan, &after),
            [
                // 2 + 4 packs waiting for a, b; 3 armed now and 5 condemned now, likewise.
                later(
                    2 + 3 + 4 + 5,
                    200 + 300 + 400 + 5000,
                    Later::HostsBackUp,
                    &["a", "b"]
                ),
                later(1, 100, Later::NextRun, &[]),
                later(1, 7, Later::LockEnds, &[]),
                later(2, 11, Later::Unindexed, &[]),
            ]
        );
        // Nothing armed by the run: the unarmed generation and the new one wait for arming.
        let after = AfterRun {
            armed_hosts: None,
            ..after
        };
        let got = freed_later(&plan, &after);
        assert_eq!(got[2], later(3 + 5, 300 + 5000, Later::Arming, &[]));
        // Armed with no host at all (every snapshot forgotten): the next run frees them.
        let after = AfterRun {
            armed_hosts: Some(&hosts[2..]),
            ..after
        };
        let got = freed_later(&plan, &after);
        assert_eq!(
            got[1],
            later(1 + 3 + 5, 100 + 300 + 5000, Later::NextRun, &[])
        );
        let nothing = AfterRun {
            condemned: (0, 0),
            ..after
        };
        assert_eq!(freed_later(&PlanReport::default(), &nothing), []);
    }
}
