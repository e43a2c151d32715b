//! `snapshots --check-overdue`: per host and set of paths (the groups of `forget --group-by
//! host,paths`), the newest snapshot's time against the longest gap allowed.
//!
//! Snapshot times are written by whoever holds a key — put-only backup hosts included — so a
//! time is not trusted to be in the past: one more than [`FUTURE_SLACK`] ahead of the clock is
//! [`State::Future`] and counts as overdue (a host cannot hide by claiming the year 2100). A
//! time that does not parse sorts as the oldest possible and is overdue too.

use crate::repo::snapshots::time_of;
use crate::retention::RetentionDuration;
use jiff::{SignedDuration, Span, Timestamp, ZonedDateTime};
use std::collections::BTreeMap;
use tresor_format::ObjectId;
use tresor_format::snapshot::Snapshot;

/// How far ahead of this clock a snapshot's time may be before it is [`State::Future`]: one
/// hour, for clocks that are a little off.
pub const FUTURE_SLACK: SignedDuration = SignedDuration::from_hours(1);

/// The default `--max-age`: 26 hours (a daily job, with two hours of slack).
pub const DEFAULT_MAX_AGE: RetentionDuration = RetentionDuration {
    years: 0,
    months: 0,
    days: 0,
    hours: 26,
};

/// How a group stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The newest snapshot is younger than the maximum age.
    Fresh,
    /// The newest snapshot is older than the maximum age (or its time does not parse).
    Overdue,
    /// The newest snapshot claims a time more than [`FUTURE_SLACK`] ahead: overdue as well.
    Future,
}

impl State {
    /// Whether the group needs attention (overdue or future).
    pub fn is_overdue(self) -> bool {
        self != State::Fresh
    }
}

/// One group: a host and its set of paths, and its newest snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupAge {
    /// The host name the snapshots carry (anyone with a key chose it).
    pub host: String,
    /// The sorted backed-up paths of the group.
    pub paths: Vec<String>,
    /// The newest snapshot of the group.
    pub snapshot: ObjectId,
    /// Its time as written in the snapshot (RFC 3339).
    pub time: String,
    /// Its time, parsed ([`Timestamp::MIN`] when it does not parse).
    pub timestamp: Timestamp,
    /// `now` minus the time, whole seconds (negative for a time ahead of the clock; saturating).
    pub age_seconds: i64,
    /// How the group stands.
    pub state: State,
}

/// The moment before which a newest snapshot is overdue: `now` minus `max_age` on the
/// calendar of `now`'s time zone (years, months and days on the calendar, hours absolute),
/// [`Timestamp::MIN`] when that lies before the representable range.
pub fn cutoff(now: &ZonedDateTime, max_age: &RetentionDuration) -> Timestamp {
    let calendar = Span::new()
        .try_years(i64::from(max_age.years))
        .and_then(|s| s.try_months(i64::from(max_age.months)))
        .and_then(|s| s.try_days(i64::from(max_age.days)));
    let hours = SignedDuration::from_hours(i64::from(max_age.hours));
    calendar
        .and_then(|s| now.checked_sub(s))
        .and_then(|z| z.timestamp().checked_sub(hours))
        .unwrap_or(Timestamp::MIN)
}

/// Group `snapshots` by host and sorted paths, take the newest of each group (by time, then
/// id) and judge it: before `cutoff` overdue, after `now` + [`FUTURE_SLACK`] future. Groups
/// come sorted by host, then paths.
pub fn check<'a>(
    snapshots: impl IntoIterator<Item = (&'a ObjectId, &'a Snapshot)>,
    now: Timestamp,
    cutoff: Timestamp,
) -> Vec<GroupAge> {
    let mut newest: BTreeMap<(String, Vec<String>), (Timestamp, &ObjectId, &Snapshot)> =
        BTreeMap::new();
    for (id, s) in snapshots {
        let mut paths = s.paths.clone();
        paths.sort();
        let t = time_of(s);
        let slot = newest
            .entry((s.hostname.clone(), paths))
            .or_insert((t, id, s));
        if (t, id) > (slot.0, slot.1) {
            *slot = (t, id, s);
        }
    }
    let future_after = now.checked_add(FUTURE_SLACK).unwrap_or(Timestamp::MAX);
    newest
        .into_iter()
        .map(|((host, paths), (t, id, s))| GroupAge {
            host,
            paths,
            snapshot: *id,
            time: s.time.clone(),
            timestamp: t,
            age_seconds: now.duration_since(t).as_secs(),
            state: if t > future_after {
                State::Future
            } else if t < cutoff {
                State::Overdue
            } else {
                State::Fresh
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tresor_format::BlobId;

    fn snap(host: &str, paths: &[&str], time: &str) -> Snapshot {
        Snapshot {
            version: 2,
            time: time.into(),
            tree: BlobId([7; 32]),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            hostname: host.into(),
            username: "me".into(),
            uid: 0,
            gid: 0,
            tags: vec![],
            excludes: vec![],
            parent: None,
            summary: None,
            program_version: "tresor 0.1.0".into(),
            markers: vec![],
            original: None,
        }
    }

    #[test]
    fn newest_of_each_group_is_judged() {
        let now: Timestamp = "2026-01-10T12:00:00Z".parse().unwrap();
        let zoned = now.to_zoned_datetime(jiff::tz::TimeZone::UTC);
        let cut = cutoff(&zoned, &DEFAULT_MAX_AGE);
        assert_eq!(cut, "2026-01-09T10:00:00Z".parse::<Timestamp>().unwrap());
        let list = [
            snap("a", &["/x", "/b"], "2026-01-01T00:00:00Z"),
            snap("a", &["/b", "/x"], "2026-01-10T11:00:00Z"),
            snap("b", &["/x"], "2026-01-09T09:59:59Z"),
            snap("c", &["/x"], "2026-01-10T13:00:01Z"),
            snap("d", &["/x"], "not a time"),
        ];
        let ids: Vec<ObjectId> = (0u8..5).map(|i| ObjectId([i; 32])).collect();
        let got = check(ids.iter().zip(list.iter()), now, cut);
        let states: Vec<(&str, State, i64)> = got
            .iter()
            .map(|g| (g.host.as_str(), g.state, g.age_seconds))
            .collect();
        assert_eq!(
            states,
            [
                ("a", State::Fresh, 3600),
                ("b", State::Overdue, 93601),
                ("c", State::Future, -3601),
                (
                    "d",
                    State::Overdue,
                    now.duration_since(Timestamp::MIN).as_secs()
                ),
            ]
        );
        assert_eq!(got[0].paths, ["/b", "/x"]);
        assert_eq!(got[0].snapshot, ids[1]);
    }

    #[test]
    fn cutoff_counts_calendar_days_and_absolute_hours() {
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
        let zoned = now.to_zoned_datetime(jiff::tz::TimeZone::UTC);
        let d = crate::retention::parse_duration("1m1d12h").unwrap();
        assert_eq!(
            cutoff(&zoned, &d),
            "2026-01-31T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        let huge = crate::retention::parse_duration("4000000000y").unwrap();
        assert_eq!(cutoff(&zoned, &huge), Timestamp::MIN);
    }
}
