//! `snapshots --check-overdue`: every group with its newest snapshot, overdue ones marked.

use super::{Outcome, Text, escape_controls};
use anyhow::Result;
use serde::Serialize;
use tresor_core::overdue::{GroupAge, State};
use tresor_core::retention::RetentionDuration;

/// One group (JSON: `docs/cli.md`, "snapshots --check-overdue").
#[derive(Debug, Serialize)]
pub struct Group<'a> {
    /// The host name the snapshots carry.
    pub host: &'a str,
    /// The group's paths, sorted.
    pub paths: &'a [String],
    /// The newest snapshot's id (64 hex digits).
    pub snapshot_id: String,
    /// Its time as recorded (RFC 3339).
    pub time: &'a str,
    /// Seconds from that time to now (negative when it lies ahead).
    pub age_seconds: i64,
    /// `fresh`, `overdue` or `future`.
    pub state: State,
}

/// The whole answer.
#[derive(Debug, Serialize)]
pub struct Overdue<'a> {
    /// The maximum age, as `--max-age` takes it (`26h`).
    pub max_age: String,
    /// The time of the check (RFC 3339, UTC).
    pub now: String,
    /// How many groups are overdue or future.
    pub overdue: usize,
    /// Every group, by host, then paths.
    pub groups: Vec<Group<'a>>,
}

impl<'a> Overdue<'a> {
    /// The answer for `groups`, judged against `max_age` at `now`.
    pub fn new(groups: &'a [GroupAge], max_age: RetentionDuration, now: jiff::Timestamp) -> Self {
        Overdue {
            max_age: max_age.to_string(),
            now: now.to_string(),
            overdue: groups.iter().filter(|g| g.state.is_overdue()).count(),
            groups: groups
                .iter()
                .map(|g| Group {
                    host: &g.host,
                    paths: &g.paths,
                    snapshot_id: g.snapshot.to_hex(),
                    time: &g.time,
                    age_seconds: g.age_seconds,
                    state: g.state,
                })
                .collect(),
        }
    }
}

/// An age for people: `3d 4h`, `5h 12m`, `42s`; `ahead` for a negative one.
fn age(s: i64) -> String {
    match s {
        s if s < 0 => "ahead".into(),
        s if s >= 86400 => format!("{}d {}h", s / 86400, s % 86400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

impl Outcome for Overdue<'_> {
    fn text(&self, t: &mut Text) {
        let rows: Vec<Vec<String>> = (self.groups.iter())
            .map(|g| {
                vec![
                    escape_controls(g.host),
                    escape_controls(&g.paths.join(" ")),
                    escape_controls(g.time),
                    age(g.age_seconds),
                    match g.state {
                        State::Fresh => "ok",
                        State::Overdue => "OVERDUE",
                        State::Future => "FUTURE",
                    }
                    .to_string(),
                ]
            })
            .collect();
        let header = ["Host", "Paths", "Last snapshot", "Age", "State"];
        for line in super::table::lines(&header, &rows) {
            t.out(line);
        }
        t.info(format!(
            "{} of {} groups overdue (max age {})",
            self.overdue,
            self.groups.len(),
            self.max_age
        ));
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_pretty(self)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_for_people() {
        let got: Vec<String> = [-1, 0, 59, 60, 3599, 3600, 93600].map(super::age).into();
        assert_eq!(got, ["ahead", "0s", "59s", "1m", "59m", "1h 0m", "1d 2h"]);
    }
}
