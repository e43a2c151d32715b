//! Step 5: which pending generations are approved (format §16, "One prune run", step 4).

use super::fossils::Generations;
use super::snapshots::Unfinished;
use crate::prune::options::PruneOptions;
use crate::prune::report::{GenerationStatus, PackAction, WaitingHost};
use crate::prune::tables::{PackRec, SnapInfo};
use crate::repo::records::Records;
use tresor_format::record::Arming;

/// What a run saw that approval depends on.
pub(super) struct Seen<'a> {
    /// Every snapshot that opens.
    pub snaps: &'a [SnapInfo],
    /// Backups that started and that no snapshot lists.
    pub unfinished: &'a [Unfinished],
    /// Packs no index lists that no earlier run saw (a backup may be uploading).
    pub new_unindexed: usize,
}

/// The status of every pending generation (oldest first), its packs not counted yet
/// ([`count`]). An armed generation is approved when every host it waits for — but the inactive
/// ones — has a snapshot that counts and is not in its arming's snapshot set, and no pack
/// appeared that no index lists (`new_unindexed`, a backup may be uploading).
pub(super) fn approve(
    recs: &Records,
    gens: &Generations,
    seen: &Seen<'_>,
    opts: &PruneOptions,
) -> Vec<GenerationStatus> {
    (0..gens.list.len())
        .map(|g| {
            let generation = gens.get(recs, g);
            let mut status = GenerationStatus {
                run: generation.run,
                packs: 0,
                bytes: 0,
                armed: generation.armed.is_some(),
                approved: false,
                armed_run: generation.armed.as_ref().map(|a| a.run),
                waiting_for: Vec::new(),
                waiting: Vec::new(),
                resurrected: 0,
                reason: String::new(),
            };
            match &generation.armed {
                None => {
                    status.reason =
                        "not armed yet: index objects naming its packs were still present".into();
                }
                Some(a) => judge(&mut status, a, seen, opts),
            }
            status
        })
        .collect()
}

/// Approve an armed generation, or say what it waits for.
fn judge(status: &mut GenerationStatus, a: &Arming, seen: &Seen<'_>, opts: &PruneOptions) {
    status.waiting_for = a
        .hosts
        .iter()
        .filter(|h| !opts.inactive_hosts.contains(h))
        .filter(|h| {
            !seen
                .snaps
                .iter()
                .any(|s| s.counts && &s.host == *h && a.snapshots.binary_search(&s.id).is_err())
        })
        .cloned()
        .collect();
    status.waiting = status
        .waiting_for
        .iter()
        .map(|h| waiting_host(h, seen))
        .collect();
    if !status.waiting_for.is_empty() {
        status.reason = format!(
            "waiting for a new snapshot of {} (armed by prune run {})",
            status
                .waiting_for
                .iter()
                .map(|h| format!("{h:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            a.run
        );
    } else if seen.new_unindexed > 0 {
        status.reason = format!(
            "{} packs no index lists appeared (a backup may be running): the next prune run decides",
            seen.new_unindexed
        );
    } else {
        status.approved = true;
        status.reason = "approved: every host has written a snapshot since it was armed".into();
    }
}

/// Since when a generation waits for host `h`: its newest snapshot that counts (all of them
/// are in the arming's set, or it would not wait), its unfinished backups.
fn waiting_host(h: &str, seen: &Seen<'_>) -> WaitingHost {
    let last_snapshot = seen
        .snaps
        .iter()
        .filter(|s| s.counts && s.host == h)
        .max_by_key(|s| s.time.parse::<jiff::Timestamp>().ok())
        .map(|s| s.time.clone());
    let mut unfinished: Vec<(Option<jiff::Timestamp>, String)> = seen
        .unfinished
        .iter()
        .filter(|u| u.host == h)
        .map(|u| (u.started.parse().ok(), u.started.clone()))
        .collect();
    unfinished.sort();
    WaitingHost {
        host: h.to_string(),
        last_snapshot,
        unfinished: unfinished.into_iter().map(|(_, s)| s).collect(),
        release: format!("tresor prune --inactive-host {}", shell_word(h)),
    }
}

/// `s` as one word of a POSIX shell command line: as it is when it is made of safe characters,
/// else in single quotes (a `'` inside as `'\''`).
fn shell_word(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_.,:@%+=/".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Count the packs each generation still holds (not indexed again), their bytes, and those
/// resurrected by this run.
pub(super) fn count(status: &mut [GenerationStatus], gens: &Generations, packs: &[PackRec]) {
    for (g, s) in status.iter_mut().enumerate() {
        for &pos in &gens.packs[g] {
            let p = &packs[pos as usize];
            if p.generation == Some(g as u32) && !p.live {
                s.packs += 1;
                s.bytes += p.size.unwrap_or(0);
                if p.action == PackAction::Resurrect {
                    s.resurrected += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tresor_format::{BlobId, ObjectId};

    fn snap(n: u8, host: &str, time: &str, counts: bool) -> SnapInfo {
        SnapInfo {
            id: ObjectId([n; 32]),
            host: host.into(),
            time: time.into(),
            tree: BlobId([0; 32]),
            signer: [0; 32],
            user: None,
            counts,
        }
    }

    fn arming(snaps: &[&SnapInfo], hosts: &[&str]) -> Arming {
        let mut snapshots: Vec<ObjectId> = snaps.iter().map(|s| s.id).collect();
        snapshots.sort();
        Arming {
            run: 4,
            snapshots,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        }
    }

    fn status() -> GenerationStatus {
        GenerationStatus {
            run: 3,
            packs: 0,
            bytes: 0,
            armed: true,
            approved: false,
            armed_run: Some(4),
            waiting_for: vec![],
            waiting: vec![],
            resurrected: 0,
            reason: String::new(),
        }
    }

    /// Each waiting host is named with its newest counting snapshot (by time, not by the
    /// order of the text: offsets differ), its unfinished backups, and the command that
    /// releases it; hosts that backed up since, and inactive ones, are not waited for.
    #[test]
    fn waiting_hosts_say_since_when_and_how_to_release_them() {
        let a1 = snap(1, "a", "2026-12-01T10:00:00+02:00", true);
        let a2 = snap(2, "a", "2026-12-01T09:30:00Z", true);
        let a_forged = snap(3, "a", "2026-12-05T00:00:00Z", false);
        let b1 = snap(4, "b", "2026-11-01T00:00:00Z", true);
        let b2 = snap(5, "b", "2026-11-02T00:00:00Z", true);
        let arm = arming(&[&a1, &a2, &a_forged, &b1], &["a", "b", "new host", "gone"]);
        let snaps = [a1, a2, a_forged, b1, b2];
        let unfinished = [
            Unfinished {
                host: "new host".into(),
                started: "2026-12-06T15:00:00+01:00".into(),
            },
            Unfinished {
                host: "new host".into(),
                started: "2026-12-06T13:30:00Z".into(),
            },
        ];
        let seen = Seen {
            snaps: &snaps,
            unfinished: &unfinished,
            new_unindexed: 0,
        };
        let opts = PruneOptions {
            inactive_hosts: vec!["gone".into()],
            ..PruneOptions::default()
        };
        let mut s = status();
        judge(&mut s, &arm, &seen, &opts);
        assert!(!s.approved);
        assert_eq!(s.waiting_for, ["a", "new host"]);
        assert_eq!(
            s.waiting,
            [
                WaitingHost {
                    host: "a".into(),
                    last_snapshot: Some("2026-12-01T09:30:00Z".into()),
                    unfinished: vec![],
                    release: "tresor prune --inactive-host a".into(),
                },
                WaitingHost {
                    host: "new host".into(),
                    last_snapshot: None,
                    unfinished: vec![
                        "2026-12-06T13:30:00Z".into(),
                        "2026-12-06T15:00:00+01:00".into()
                    ],
                    release: "tresor prune --inactive-host 'new host'".into(),
                },
            ]
        );
        assert_eq!(
            s.reason,
            "waiting for a new snapshot of \"a\", \"new host\" (armed by prune run 4)"
        );
    }

    #[test]
    fn host_names_are_quoted_for_the_shell_when_needed() {
        assert_eq!(shell_word("web-1.example.org"), "web-1.example.org");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word("$(rm -rf)"), "'$(rm -rf)'");
        assert_eq!(shell_word(""), "''");
    }
}
