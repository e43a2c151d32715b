//! Whether no backup can be running (format §16, step 3): then the packs an earlier run saw
//! unindexed, that no present index object lists and no kept blob needs, go straight to
//! `deleting`. Decided from the backup start markers no snapshot lists (§16.1), aged by the
//! storage's clock ([`tresor_storage::Storage::list_stamped`]), never the client's.

use crate::error::Result;
use crate::prune::report::OrphanRule;
use crate::repo::Repository;
use crate::repo::markers::STALE_AGE;
use std::collections::BTreeMap;
use std::time::Duration;
use tresor_storage::{ErrorKind, Kind};

/// A marker as the markers step saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SeenMarker {
    /// Its name.
    pub name: String,
    /// A snapshot that speaks for the marker's host lists it: its backup ended.
    pub listed: bool,
    /// Its `refresh_secs`; `None` for an older tresor's marker and for one that does not open.
    pub refresh_secs: Option<u64>,
}

/// A marker no snapshot lists, with its age by the storage's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Aged {
    /// Its `refresh_secs` (see [`SeenMarker`]).
    pub refresh_secs: Option<u64>,
    /// Now minus its modification time, by the storage's clock (0 when it is in the future);
    /// `None` for a marker the markers step did not see (written meanwhile: young).
    pub age: Option<Duration>,
}

/// The stamped listing of the markers, matched with what the markers step saw: `None` when
/// the storage cannot tell times. Taken before the index objects are listed (the safety
/// argument of §16 needs that order).
///
/// # Errors
/// Storage errors.
pub(crate) fn age(repo: &Repository, seen: &[SeenMarker]) -> Result<Option<Vec<Aged>>> {
    let stamped = match repo.storage().list_stamped(Kind::Marker) {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(None),
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(Some(Vec::new())),
        Err(e) => return Err(e.into()),
    };
    let seen: BTreeMap<&str, &SeenMarker> = seen.iter().map(|m| (m.name.as_str(), m)).collect();
    let mut out = Vec::new();
    for (name, at) in &stamped.objects {
        let age = stamped.now.duration_since(*at).unwrap_or_default();
        match seen.get(name.as_str()) {
            Some(m) if m.listed => {}
            Some(m) => out.push(Aged {
                refresh_secs: m.refresh_secs,
                age: Some(age),
            }),
            None => out.push(Aged {
                refresh_secs: None,
                age: None,
            }),
        }
    }
    Ok(Some(out))
}

/// The rule: it applies when the storage's times are known (`aged`), no index object was
/// skipped (its packs are unknown, and writers may deduplicate against it), and every marker
/// no snapshot lists declares `refresh_secs` and is older than [`STALE_AGE`]. The reason names
/// what holds it back.
pub(crate) fn decide(aged: Option<&[Aged]>, skipped_index: usize) -> OrphanRule {
    let no = |reason: String| OrphanRule {
        applies: false,
        reason,
    };
    let Some(aged) = aged else {
        return no("the storage cannot tell the age of backup start markers".into());
    };
    if skipped_index > 0 {
        return no(format!(
            "{skipped_index} index objects were skipped (their packs are not known)"
        ));
    }
    let stale = STALE_AGE.as_secs() / 60;
    let young = aged.iter().filter(|a| a.age.is_none_or(|x| x <= STALE_AGE));
    if let Some(youngest) = young.clone().map(|a| a.age.unwrap_or_default()).min() {
        return no(format!(
            "a backup may be running: {} start markers no snapshot lists are {stale} min old or younger (the youngest {} s)",
            young.count(),
            youngest.as_secs()
        ));
    }
    let old = aged.iter().filter(|a| a.refresh_secs.is_none()).count();
    if old > 0 {
        return no(format!(
            "{old} backup start markers no snapshot lists do not refresh (an older tresor's, or unreadable): such a backup may still be running"
        ));
    }
    OrphanRule {
        applies: true,
        reason: format!(
            "no backup can be running: {} start markers no snapshot lists, each refreshing and older than {stale} min by the storage's clock",
            aged.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aged(refresh: Option<u64>, mins: Option<u64>) -> Aged {
        Aged {
            refresh_secs: refresh,
            age: mins.map(|m| Duration::from_secs(m * 60)),
        }
    }

    /// Each condition holds the rule back with its own reason; stale refreshing markers (or
    /// none at all) let it apply.
    #[test]
    fn every_condition_holds_the_rule_back() {
        let r = decide(None, 0);
        assert_eq!(
            (r.applies, r.reason.as_str()),
            (
                false,
                "the storage cannot tell the age of backup start markers"
            )
        );
        let stale = [aged(Some(300), Some(31)), aged(Some(300), Some(600))];
        let r = decide(Some(&stale), 0);
        assert!(r.applies, "{r:?}");
        assert_eq!(
            r.reason,
            "no backup can be running: 2 start markers no snapshot lists, each refreshing and older than 30 min by the storage's clock"
        );
        assert!(decide(Some(&[]), 0).applies);
        let r = decide(Some(&stale), 1);
        assert_eq!(
            (r.applies, r.reason.as_str()),
            (
                false,
                "1 index objects were skipped (their packs are not known)"
            )
        );
        let r = decide(Some(&[stale[0], aged(None, Some(900))]), 0);
        assert!(!r.applies);
        assert_eq!(
            r.reason,
            "1 backup start markers no snapshot lists do not refresh (an older tresor's, or unreadable): such a backup may still be running"
        );
        // Exactly 30 minutes is not older than 30 minutes.
        let r = decide(
            Some(&[
                stale[0],
                aged(Some(300), Some(30)),
                aged(Some(300), Some(2)),
            ]),
            0,
        );
        assert_eq!(
            r.reason,
            "a backup may be running: 2 start markers no snapshot lists are 30 min old or younger (the youngest 120 s)"
        );
        // A marker written after the markers step listed them counts as young.
        let r = decide(Some(&[stale[0], aged(None, None)]), 0);
        assert!(
            r.reason
                .starts_with("a backup may be running: 1 start markers"),
            "{r:?}"
        );
    }
}
