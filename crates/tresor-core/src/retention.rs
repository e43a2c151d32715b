//! Retention policy ("forget"): which snapshots to keep and which to remove.
//!
//! This module is pure: it reads no clock, touches no repository and prints nothing. Given a list
//! of [`SnapshotInfo`], a [`RetentionPolicy`], a [`GroupBy`] and the time zone that calendar
//! buckets are computed in, [`apply`] returns one [`Group`] per snapshot group, each with one
//! [`Decision`] per snapshot.
//!
//! The decisions follow restic's documented `forget` semantics (restic's `doc/060_forget.rst` and
//! its policy implementation), rule for rule:
//!
//! * Snapshots are first split into groups ([`GroupBy`], default host + paths); the policy is
//!   applied to each group on its own.
//! * Within a group the snapshots are ordered newest first (a stable sort: snapshots with equal
//!   times keep their input order) and visited in that order.
//! * `--keep-last n` keeps the `n` newest snapshots. `--keep-{hourly,daily,weekly,monthly,yearly}
//!   n` keep the newest snapshot of each of the last `n` calendar hours/days/ISO weeks/months/years
//!   *that contain a snapshot* (natural boundaries in the given time zone, not relative to now).
//!   [`KeepCount::Unlimited`] keeps one snapshot per bucket without limit.
//! * If a count-based rule still has budget left when the oldest snapshot of the group is
//!   reached, that oldest snapshot is kept as well, even though its bucket was already used
//!   (reason `"oldest daily snapshot"` etc.). The same applies to the `--keep-within-*` bucket
//!   rules while the oldest snapshot lies inside their window.
//! * `--keep-within d` keeps every snapshot strictly newer than `latest - d`, where `latest` is
//!   the newest snapshot of the group that is not in the future. `d` is subtracted like restic
//!   does: years, months and days on the wall clock of `latest` in the given time zone (with
//!   overflowing days rolling over, e.g. 31 March minus one month is 2 or 3 March), then hours as
//!   an absolute duration. `--keep-within-{hourly,...} d` keep the newest snapshot of each bucket
//!   among the snapshots inside that window.
//! * `--keep-tag a,b` keeps every snapshot that carries all of `a` and `b`; several lists are
//!   ORed; the list `""` matches untagged snapshots only. Tag matches consume no budget.
//! * A snapshot is kept if any rule keeps it; the reasons are reported in restic's order: tag
//!   lists, `within`, count rules (last, hourly, daily, weekly, monthly, yearly), then the
//!   `within-*` bucket rules.
//!
//! Differences from restic that callers should know about:
//!
//! * restic buckets each snapshot by the wall clock of the UTC offset recorded in that snapshot;
//!   here every snapshot is bucketed in the one time zone passed in. The two agree when the
//!   snapshots were taken in that zone (the normal case: snapshots and `forget` on one machine).
//! * restic does not run the policy at all when it is empty (nothing is removed); [`apply`]
//!   reports every snapshot as kept with the reason `"policy is empty"`.
//! * restic (since 0.17) refuses to remove *every* snapshot of a group (which can only happen with
//!   a tags-only policy); [`Group::keeps_none`] lets the caller implement the same check.
//! * The order of groups in restic's output is unspecified; here groups are sorted by key.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::civil::{self, DateTime};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Span, Timestamp};
use serde::{Deserialize, Serialize};

/// Errors from parsing retention options (durations, counts, grouping criteria).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    /// A duration such as `"1y2m3d4h"` could not be parsed; `reason` says why.
    #[error("invalid duration {input:?}: {reason}")]
    InvalidDuration {
        /// The text that was parsed.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A keep count was neither a non-negative integer nor `unlimited`/`-1`.
    #[error("invalid keep count {input:?}: expected a non-negative integer or \"unlimited\"")]
    InvalidCount {
        /// The text that was parsed.
        input: String,
    },
    /// A grouping criterion was not one of `host`, `paths`, `tags` (or their singular/plural
    /// spellings).
    #[error("unknown grouping option {option:?}: expected host, paths or tags")]
    InvalidGroupBy {
        /// The offending comma-separated element.
        option: String,
    },
}

/// One snapshot as seen by the retention logic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Snapshot identifier; copied unchanged into [`Decision::id`].
    pub id: String,
    /// The snapshot time (the time the backup was taken, as recorded in the snapshot).
    pub time: Timestamp,
    /// Host name recorded in the snapshot.
    pub hostname: String,
    /// Backed-up paths recorded in the snapshot (any order; sorted for grouping).
    pub paths: Vec<String>,
    /// Tags of the snapshot (any order; sorted for grouping).
    pub tags: Vec<String>,
}

/// How many calendar buckets (or last snapshots) a count rule keeps.
///
/// restic's internal representation is an integer where `-1` means unlimited; restic ≥ 0.16
/// spells that `unlimited` on the command line (0.16.0 also accepted `-1`). Both spellings parse
/// to [`KeepCount::Unlimited`]. `Count(0)` disables the rule, like an absent option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeepCount {
    /// Keep at most this many.
    Count(u32),
    /// Keep one per bucket without limit ("keep all hourly/daily/... snapshots").
    Unlimited,
}

impl KeepCount {
    /// True if this count keeps nothing (`Count(0)`).
    pub fn is_zero(self) -> bool {
        self == KeepCount::Count(0)
    }
}

impl FromStr for KeepCount {
    type Err = RetentionError;

    /// Parses `"unlimited"` or `"-1"` as [`KeepCount::Unlimited`], a non-negative decimal integer
    /// as [`KeepCount::Count`]; anything else is [`RetentionError::InvalidCount`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "unlimited" | "-1" => Ok(KeepCount::Unlimited),
            _ => s
                .parse::<u32>()
                .map(KeepCount::Count)
                .map_err(|_| RetentionError::InvalidCount {
                    input: s.to_owned(),
                }),
        }
    }
}

impl fmt::Display for KeepCount {
    /// `"unlimited"` or the decimal count.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepCount::Count(n) => write!(f, "{n}"),
            KeepCount::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// A calendar duration in restic's `--keep-within` syntax: years, months, days and hours.
///
/// It is not a fixed length of time: years, months and days are subtracted on the calendar (wall
/// clock) of the newest snapshot, hours as absolute hours. See [`parse_duration`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RetentionDuration {
    /// Calendar years.
    pub years: u32,
    /// Calendar months.
    pub months: u32,
    /// Calendar days.
    pub days: u32,
    /// Hours (absolute, 3600 s each).
    pub hours: u32,
}

impl RetentionDuration {
    /// True if all components are zero; a zero duration disables the rule it is given to.
    pub fn is_zero(&self) -> bool {
        self.years == 0 && self.months == 0 && self.days == 0 && self.hours == 0
    }
}

impl fmt::Display for RetentionDuration {
    /// restic's rendering, used in reasons such as `"within 1y2m"`: the non-zero components in
    /// the order years, months, days, hours (`"1y2m3d4h"`); empty for a zero duration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (value, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if value != 0 {
                write!(f, "{value}{unit}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for RetentionDuration {
    type Err = RetentionError;

    /// Same as [`parse_duration`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s)
    }
}

/// Parses restic's duration syntax, e.g. `"1y2m3d4h"`, `"7d"`, `"36h"`.
///
/// The input (surrounding whitespace ignored) is a sequence of `<number><unit>` pairs with unit
/// `y` (years), `m` (months), `d` (days) or `h` (hours), in any order; a unit given twice keeps
/// the last value (`"1d2d"` is 2 days), as in restic. The empty string is the zero duration.
///
/// # Errors
///
/// [`RetentionError::InvalidDuration`] if a number is missing, a number has no unit, the unit is
/// unknown (units are case-sensitive; there is no `w` for weeks), a number is negative (restic's
/// `forget` rejects negative durations) or a number does not fit in `u32`.
pub fn parse_duration(s: &str) -> Result<RetentionDuration, RetentionError> {
    let err = |reason: String| RetentionError::InvalidDuration {
        input: s.to_owned(),
        reason,
    };
    let mut d = RetentionDuration::default();
    let mut rest = s.trim();
    while !rest.is_empty() {
        if rest.starts_with('-') {
            return Err(err("negative values are not allowed".to_owned()));
        }
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(err("no number found".to_owned()));
        }
        let num: u32 = rest[..digits]
            .parse()
            .map_err(|_| err(format!("number {} is too large", &rest[..digits])))?;
        rest = &rest[digits..];
        let mut chars = rest.chars();
        let unit = chars
            .next()
            .ok_or_else(|| err(format!("no unit found after number {num}")))?;
        match unit {
            'y' => d.years = num,
            'm' => d.months = num,
            'd' => d.days = num,
            'h' => d.hours = num,
            other => {
                return Err(err(format!(
                    "invalid unit {other:?} found after number {num}"
                )));
            }
        }
        rest = chars.as_str();
    }
    Ok(d)
}

/// Splits a `--keep-tag` argument into its tags: separated by commas, whitespace around each tag
/// removed. `"a, b"` gives `["a", "b"]`; `""` gives `[""]`, which matches untagged snapshots.
pub fn parse_tag_list(s: &str) -> Vec<String> {
    s.split(',').map(|t| t.trim().to_owned()).collect()
}

/// Which snapshots to keep; every field mirrors one `restic forget --keep-*` option.
///
/// `None`, `Some(KeepCount::Count(0))` and `Some(zero duration)` all mean "option not given".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `--keep-last n`: the `n` newest snapshots.
    pub keep_last: Option<KeepCount>,
    /// `--keep-hourly n`: the newest snapshot of each of the last `n` hours with snapshots.
    pub keep_hourly: Option<KeepCount>,
    /// `--keep-daily n`: the newest snapshot of each of the last `n` days with snapshots.
    pub keep_daily: Option<KeepCount>,
    /// `--keep-weekly n`: the newest snapshot of each of the last `n` ISO weeks (Monday to
    /// Sunday) with snapshots.
    pub keep_weekly: Option<KeepCount>,
    /// `--keep-monthly n`: the newest snapshot of each of the last `n` months with snapshots.
    pub keep_monthly: Option<KeepCount>,
    /// `--keep-yearly n`: the newest snapshot of each of the last `n` years with snapshots.
    pub keep_yearly: Option<KeepCount>,
    /// `--keep-within d`: every snapshot newer than `d` before the newest snapshot.
    pub keep_within: Option<RetentionDuration>,
    /// `--keep-within-hourly d`: the newest snapshot of each hour within `d` of the newest.
    pub keep_within_hourly: Option<RetentionDuration>,
    /// `--keep-within-daily d`: the newest snapshot of each day within `d` of the newest.
    pub keep_within_daily: Option<RetentionDuration>,
    /// `--keep-within-weekly d`: the newest snapshot of each ISO week within `d` of the newest.
    pub keep_within_weekly: Option<RetentionDuration>,
    /// `--keep-within-monthly d`: the newest snapshot of each month within `d` of the newest.
    pub keep_within_monthly: Option<RetentionDuration>,
    /// `--keep-within-yearly d`: the newest snapshot of each year within `d` of the newest.
    pub keep_within_yearly: Option<RetentionDuration>,
    /// `--keep-tag`: one entry per option, each the list of tags a snapshot must all carry (see
    /// [`parse_tag_list`]). A snapshot matching any entry is kept.
    pub keep_tags: Vec<Vec<String>>,
}

impl RetentionPolicy {
    /// True if no option is set, i.e. the policy would keep nothing. restic refuses to apply an
    /// empty policy; so does [`apply`] (it keeps everything).
    pub fn is_empty(&self) -> bool {
        let count_unset = |c: &Option<KeepCount>| c.is_none_or(|c| c.is_zero());
        let dur_unset = |d: &Option<RetentionDuration>| d.is_none_or(|d| d.is_zero());
        self.keep_tags.is_empty()
            && [
                &self.keep_last,
                &self.keep_hourly,
                &self.keep_daily,
                &self.keep_weekly,
                &self.keep_monthly,
                &self.keep_yearly,
            ]
            .into_iter()
            .all(count_unset)
            && [
                &self.keep_within,
                &self.keep_within_hourly,
                &self.keep_within_daily,
                &self.keep_within_weekly,
                &self.keep_within_monthly,
                &self.keep_within_yearly,
            ]
            .into_iter()
            .all(dur_unset)
    }

    fn within_buckets(&self) -> [(Option<RetentionDuration>, Calendar); 5] {
        [
            (self.keep_within_hourly, Calendar::Hour),
            (self.keep_within_daily, Calendar::Day),
            (self.keep_within_weekly, Calendar::Week),
            (self.keep_within_monthly, Calendar::Month),
            (self.keep_within_yearly, Calendar::Year),
        ]
    }

    fn count_buckets(&self) -> [(Option<KeepCount>, Calendar); 6] {
        [
            (self.keep_last, Calendar::Last),
            (self.keep_hourly, Calendar::Hour),
            (self.keep_daily, Calendar::Day),
            (self.keep_weekly, Calendar::Week),
            (self.keep_monthly, Calendar::Month),
            (self.keep_yearly, Calendar::Year),
        ]
    }
}

impl fmt::Display for RetentionPolicy {
    /// A one-line description in restic's wording, e.g. `"keep 7 daily, 4 weekly snapshots"`,
    /// `"keep all snapshots within 2d of the newest"`; `"remove"` for an empty policy.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        let counts: Vec<String> = self
            .count_buckets()
            .into_iter()
            .filter_map(|(count, cal)| match count? {
                KeepCount::Count(0) => None,
                KeepCount::Count(n) => Some(format!("{n} {}", cal.adjective())),
                KeepCount::Unlimited => Some(format!("all {}", cal.adjective())),
            })
            .collect();
        if !counts.is_empty() {
            s = format!("{} snapshots", counts.join(", "));
        }
        let withins: Vec<String> = self
            .within_buckets()
            .into_iter()
            .filter_map(|(d, cal)| {
                let d = d.filter(|d| !d.is_zero())?;
                Some(format!("{} snapshots within {d}", cal.adjective()))
            })
            .collect();
        if !withins.is_empty() {
            if !s.is_empty() {
                s.push_str(", ");
            }
            s.push_str(&withins.join(", "));
        }
        if !self.keep_tags.is_empty() {
            if !s.is_empty() {
                s.push_str(" and ");
            }
            let lists: Vec<String> = self.keep_tags.iter().map(|l| tag_list_display(l)).collect();
            s.push_str(&format!("all snapshots with tags [{}]", lists.join(" ")));
        }
        if let Some(d) = self.keep_within.filter(|d| !d.is_zero()) {
            if !s.is_empty() {
                s.push_str(" and ");
            }
            s.push_str(&format!("all snapshots within {d} of the newest"));
        }
        if s.is_empty() {
            f.write_str("remove")
        } else {
            write!(f, "keep {s}")
        }
    }
}

/// restic's rendering of a tag list: `[a, b]`.
fn tag_list_display(list: &[String]) -> String {
    format!("[{}]", list.join(", "))
}

/// Grouping criteria (`restic forget --group-by`): snapshots that agree on every selected
/// attribute form one group. The default is host + paths, like restic; [`GroupBy::NONE`] puts
/// all snapshots into a single group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupBy {
    /// Group by host name.
    pub host: bool,
    /// Group by the (sorted) set of backed-up paths.
    pub paths: bool,
    /// Group by the (sorted) set of tags.
    pub tags: bool,
}

impl GroupBy {
    /// No grouping: the policy is applied to all snapshots together (`--group-by ''`).
    pub const NONE: GroupBy = GroupBy {
        host: false,
        paths: false,
        tags: false,
    };
}

impl Default for GroupBy {
    /// Host and paths, restic's default.
    fn default() -> Self {
        GroupBy {
            host: true,
            paths: true,
            tags: false,
        }
    }
}

impl FromStr for GroupBy {
    type Err = RetentionError;

    /// Parses a comma-separated list of `host`/`hosts`, `path`/`paths`, `tag`/`tags`; empty
    /// elements are ignored, so `""` is [`GroupBy::NONE`].
    ///
    /// # Errors
    ///
    /// [`RetentionError::InvalidGroupBy`] for any other element.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut g = GroupBy::NONE;
        for option in s.split(',') {
            match option {
                "host" | "hosts" => g.host = true,
                "path" | "paths" => g.paths = true,
                "tag" | "tags" => g.tags = true,
                "" => {}
                other => {
                    return Err(RetentionError::InvalidGroupBy {
                        option: other.to_owned(),
                    });
                }
            }
        }
        Ok(g)
    }
}

impl fmt::Display for GroupBy {
    /// The canonical form accepted by [`GroupBy::from_str`], e.g. `"host,paths"`; empty for
    /// [`GroupBy::NONE`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<&str> = [
            (self.host, "host"),
            (self.paths, "paths"),
            (self.tags, "tags"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        f.write_str(&parts.join(","))
    }
}

/// The attributes shared by all snapshots of a group; a field is `None` when [`GroupBy`] does
/// not group by it. Paths and tags are sorted (duplicates kept). Ordered host, paths, tags.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupKey {
    /// Host name, if grouping by host.
    pub host: Option<String>,
    /// Sorted paths, if grouping by paths.
    pub paths: Option<Vec<String>>,
    /// Sorted tags, if grouping by tags.
    pub tags: Option<Vec<String>>,
}

/// The verdict for one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The snapshot's [`SnapshotInfo::id`].
    pub id: String,
    /// True to keep the snapshot, false to remove it.
    pub keep: bool,
    /// Why it is kept, in restic's words and order (e.g. `["last snapshot", "daily
    /// snapshot"]`, `"within 1d"`, `"oldest monthly snapshot"`, `"daily within 7d"`, `"has
    /// tags [a, b]"`); empty for removed snapshots.
    pub reasons: Vec<String>,
}

/// The decisions for one group of snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// What the group's snapshots have in common.
    pub key: GroupKey,
    /// One decision per snapshot of the group, newest snapshot first (snapshots with equal times
    /// in input order), the order in which restic evaluates and reports them.
    pub decisions: Vec<Decision>,
}

impl Group {
    /// Ids of the kept snapshots, newest first.
    pub fn kept(&self) -> impl Iterator<Item = &str> {
        self.decisions
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.id.as_str())
    }

    /// Ids of the removed snapshots, newest first.
    pub fn removed(&self) -> impl Iterator<Item = &str> {
        self.decisions
            .iter()
            .filter(|d| !d.keep)
            .map(|d| d.id.as_str())
    }

    /// True if the group is non-empty and every snapshot would be removed. restic ≥ 0.17 refuses
    /// to run in that case (it can only happen when the policy consists of `--keep-tag` options
    /// alone); callers should do the same.
    pub fn keeps_none(&self) -> bool {
        !self.decisions.is_empty() && self.decisions.iter().all(|d| !d.keep)
    }
}

/// Which restic release's rules [`apply_with`] reproduces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Semantics {
    /// Current restic (0.18 and later): the oldest snapshot of a group is kept when a count or
    /// `within-*` bucket rule still has budget left, with reasons prefixed `"oldest "`.
    #[default]
    Current,
    /// restic 0.14 (and 0.15), e.g. Debian 12's package: no "oldest" rule, and a count of `-1`
    /// ([`KeepCount::Unlimited`]) keeps nothing, because those releases did not support it.
    /// Exists so that decisions can be compared with that restic binary.
    Restic014,
}

/// Options for [`apply_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// The current time. restic measures `--keep-within*` from the newest snapshot that is not
    /// in the future (strictly before now); snapshots after `now` are thus always within the
    /// window. `None` (the default) treats every snapshot as past: the window ends at the newest
    /// snapshot.
    pub now: Option<Timestamp>,
    /// Which restic release's rules to follow.
    pub semantics: Semantics,
}

/// Applies `policy` to `snapshots` grouped by `group_by`, bucketing calendar rules in `tz`, with
/// current restic semantics and no notion of "now" (see [`apply_with`]).
///
/// Returns one [`Group`] per distinct group key, sorted by key, each listing every snapshot of
/// that group exactly once, newest first. An empty input gives an empty result.
pub fn apply(
    snapshots: &[SnapshotInfo],
    policy: &RetentionPolicy,
    group_by: GroupBy,
    tz: &TimeZone,
) -> Vec<Group> {
    apply_with(snapshots, policy, group_by, tz, &ApplyOptions::default())
}

/// [`apply`] with explicit [`ApplyOptions`]: the current time (for restic's rule that snapshots
/// in the future do not move the `--keep-within*` window) and the restic release to emulate.
pub fn apply_with(
    snapshots: &[SnapshotInfo],
    policy: &RetentionPolicy,
    group_by: GroupBy,
    tz: &TimeZone,
    options: &ApplyOptions,
) -> Vec<Group> {
    let mut groups: BTreeMap<GroupKey, Vec<&SnapshotInfo>> = BTreeMap::new();
    for sn in snapshots {
        groups.entry(group_key(sn, group_by)).or_default().push(sn);
    }
    groups
        .into_iter()
        .map(|(key, list)| Group {
            key,
            decisions: decide_group(list, policy, tz, options),
        })
        .collect()
}

fn group_key(sn: &SnapshotInfo, group_by: GroupBy) -> GroupKey {
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    GroupKey {
        host: group_by.host.then(|| sn.hostname.clone()),
        paths: group_by.paths.then(|| sorted(&sn.paths)),
        tags: group_by.tags.then(|| sorted(&sn.tags)),
    }
}

/// Calendar bucket kinds; `Last` gives every snapshot its own bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Calendar {
    Last,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Calendar {
    /// Bucket identity of a snapshot with local wall clock `dt` at position `nr` (newest = 0).
    fn key(self, dt: DateTime, nr: usize) -> i64 {
        let (y, m, d, h) = (
            i64::from(dt.year()),
            i64::from(dt.month()),
            i64::from(dt.day()),
            i64::from(dt.hour()),
        );
        match self {
            Calendar::Last => nr as i64,
            Calendar::Hour => ((y * 100 + m) * 100 + d) * 100 + h,
            Calendar::Day => (y * 100 + m) * 100 + d,
            Calendar::Week => {
                let w = dt.date().iso_week_date();
                i64::from(w.year()) * 100 + i64::from(w.week())
            }
            Calendar::Month => y * 100 + m,
            Calendar::Year => y,
        }
    }

    /// restic's word for the bucket kind, as used in reasons and descriptions.
    fn adjective(self) -> &'static str {
        match self {
            Calendar::Last => "latest",
            Calendar::Hour => "hourly",
            Calendar::Day => "daily",
            Calendar::Week => "weekly",
            Calendar::Month => "monthly",
            Calendar::Year => "yearly",
        }
    }

    fn count_reason(self) -> &'static str {
        match self {
            Calendar::Last => "last snapshot",
            Calendar::Hour => "hourly snapshot",
            Calendar::Day => "daily snapshot",
            Calendar::Week => "weekly snapshot",
            Calendar::Month => "monthly snapshot",
            Calendar::Year => "yearly snapshot",
        }
    }
}

/// Lower bound of a `--keep-within*` window: snapshots strictly after it are inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    After(Timestamp),
    /// The bound lies before the representable range: every snapshot is inside.
    Unbounded,
}

impl Window {
    fn contains(self, t: Timestamp) -> bool {
        match self {
            Window::After(bound) => t > bound,
            Window::Unbounded => true,
        }
    }
}

struct CountBucket {
    cal: Calendar,
    /// Remaining budget; `None` = unlimited.
    budget: Option<u32>,
    last: Option<i64>,
}

struct WithinBucket {
    cal: Calendar,
    duration: RetentionDuration,
    window: Window,
    last: Option<i64>,
}

#[allow(clippy::too_many_lines, reason = "split by r12-core/r12-cli")]
fn decide_group(
    mut list: Vec<&SnapshotInfo>,
    policy: &RetentionPolicy,
    tz: &TimeZone,
    options: &ApplyOptions,
) -> Vec<Decision> {
    // Newest first; `sort_by_key` is stable, so equal times keep their input order.
    list.sort_by_key(|sn| Reverse(sn.time));

    if policy.is_empty() {
        return list
            .iter()
            .map(|sn| Decision {
                id: sn.id.clone(),
                keep: true,
                reasons: vec!["policy is empty".to_owned()],
            })
            .collect();
    }

    let current = options.semantics == Semantics::Current;
    let latest = list
        .iter()
        .map(|sn| sn.time)
        .filter(|t| options.now.is_none_or(|now| *t < now))
        .max();
    let window = |d: RetentionDuration| window_start(latest, tz, d);

    let within_all = policy
        .keep_within
        .filter(|d| !d.is_zero())
        .map(|d| (d, window(d)));
    let mut counts: Vec<CountBucket> = policy
        .count_buckets()
        .into_iter()
        .filter_map(|(count, cal)| {
            let budget = match count? {
                KeepCount::Count(0) => return None,
                KeepCount::Count(n) => Some(n),
                KeepCount::Unlimited if current => None,
                KeepCount::Unlimited => return None,
            };
            Some(CountBucket {
                cal,
                budget,
                last: None,
            })
        })
        .collect();
    let mut withins: Vec<WithinBucket> = policy
        .within_buckets()
        .into_iter()
        .filter_map(|(d, cal)| {
            let duration = d.filter(|d| !d.is_zero())?;
            Some(WithinBucket {
                cal,
                duration,
                window: window(duration),
                last: None,
            })
        })
        .collect();

    let oldest_nr = list.len().saturating_sub(1);
    let mut decisions = Vec::with_capacity(list.len());
    for (nr, sn) in list.iter().enumerate() {
        let is_oldest = current && nr == oldest_nr;
        let dt = tz.to_datetime(sn.time);
        let mut reasons = Vec::new();

        for tags in &policy.keep_tags {
            if has_tags(sn, tags) {
                reasons.push(format!("has tags {}", tag_list_display(tags)));
            }
        }

        if let Some((d, w)) = within_all
            && w.contains(sn.time)
        {
            reasons.push(format!("within {d}"));
        }

        for b in &mut counts {
            if b.budget == Some(0) {
                continue;
            }
            let val = b.cal.key(dt, nr);
            let same_bucket = b.last == Some(val);
            if !same_bucket || is_oldest {
                let base = b.cal.count_reason();
                reasons.push(if same_bucket {
                    format!("oldest {base}")
                } else {
                    base.to_owned()
                });
                b.last = Some(val);
                if let Some(n) = &mut b.budget {
                    *n -= 1;
                }
            }
        }

        for b in &mut withins {
            if !b.window.contains(sn.time) {
                continue;
            }
            let val = b.cal.key(dt, nr);
            let same_bucket = b.last == Some(val);
            if !same_bucket || is_oldest {
                let base = format!("{} within {}", b.cal.adjective(), b.duration);
                reasons.push(if same_bucket {
                    format!("oldest {base}")
                } else {
                    base
                });
                b.last = Some(val);
            }
        }

        decisions.push(Decision {
            id: sn.id.clone(),
            keep: !reasons.is_empty(),
            reasons,
        });
    }
    decisions
}

/// restic's tag-list match: the snapshot carries every tag of the list; an empty tag matches a
/// snapshot without tags.
fn has_tags(sn: &SnapshotInfo, list: &[String]) -> bool {
    for tag in list {
        if tag.is_empty() && sn.tags.is_empty() {
            return true;
        }
        if !sn.tags.contains(tag) {
            return false;
        }
    }
    true
}

/// Start of the `--keep-within*` window for duration `d`: `latest` minus `d`, computed the way
/// restic does (Go's `AddDate(-y, -m, -d)` on the wall clock in `tz`, then minus `h` hours).
/// `latest == None` (no snapshot before "now") stands for Go's zero time, 0001-01-01 UTC.
fn window_start(latest: Option<Timestamp>, tz: &TimeZone, d: RetentionDuration) -> Window {
    let (zone, latest) = match latest {
        Some(t) => (tz.clone(), t),
        None => match civil::date(1, 1, 1)
            .at(0, 0, 0, 0)
            .to_zoned_datetime(TimeZone::UTC)
        {
            Ok(zero) => (TimeZone::UTC, zero.timestamp()),
            Err(_) => return Window::Unbounded,
        },
    };
    match go_sub_calendar(latest, &zone, d) {
        Some(t) => Window::After(t),
        None => Window::Unbounded,
    }
}

fn go_sub_calendar(latest: Timestamp, tz: &TimeZone, d: RetentionDuration) -> Option<Timestamp> {
    let dt = tz.to_datetime(latest);
    // Go's time.Date normalisation: months overflow into years, then days overflow into months.
    let months = i64::from(dt.year()) * 12 + i64::from(dt.month())
        - 1
        - i64::from(d.years) * 12
        - i64::from(d.months);
    let year = i16::try_from(months.div_euclid(12)).ok()?;
    let month = i8::try_from(months.rem_euclid(12) + 1).ok()?;
    let first = civil::Date::new(year, month, 1).ok()?;
    let day_offset = i64::from(dt.day()) - 1 - i64::from(d.days);
    let date = first
        .checked_add(Span::new().try_days(day_offset).ok()?)
        .ok()?;
    let wall = DateTime::from_parts(date, dt.time());
    let t = go_resolve_wall_clock(wall, tz)?;
    t.checked_sub(SignedDuration::from_hours(i64::from(d.hours)))
        .ok()
}

/// Resolves a wall-clock time to an instant like Go's `time.Date`: guess the offset in effect at
/// the instant with the same digits in UTC, then use the offset in effect at the instant that
/// guess yields. Unambiguous times resolve exactly; for times in a gap or fold the outcome depends
/// on the sign of the offset, as in Go (Berlin's missing 02:30 becomes 03:30 CEST, New York's
/// becomes 01:30 EST; Berlin's repeated 02:30 is the CET one, New York's repeated 01:30 the EDT
/// one).
fn go_resolve_wall_clock(wall: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    let naive = Offset::UTC.to_timestamp(wall).ok()?;
    let first_guess = tz.to_offset(naive);
    let probe = naive
        .checked_sub(SignedDuration::from_secs(i64::from(first_guess.seconds())))
        .ok()?;
    tz.to_offset(probe).to_timestamp(wall).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").expect("tzdb has Europe/Berlin")
    }

    /// A snapshot at wall clock `s` ("YYYY-MM-DD HH:MM:SS") in `tz`; id = the string itself.
    fn snap_in(tz: &TimeZone, s: &str, host: &str, tags: &[&str]) -> SnapshotInfo {
        let dt: DateTime = s.parse().expect("valid civil datetime");
        SnapshotInfo {
            id: s.to_owned(),
            time: dt
                .to_zoned_datetime(tz.clone())
                .expect("in range")
                .timestamp(),
            hostname: host.to_owned(),
            paths: vec!["/data".to_owned()],
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    fn utc(s: &str) -> SnapshotInfo {
        snap_in(&TimeZone::UTC, s, "h", &[])
    }

    /// The fixed timeline used by most golden tests (UTC, one host, one path set), deliberately
    /// not in time order.
    fn timeline() -> Vec<SnapshotInfo> {
        [
            "2023-12-31 23:59:59", // Sun, ISO week 2023-52
            "2024-01-01 00:00:00", // Mon, ISO week 2024-01
            "2024-01-01 08:00:00",
            "2024-01-01 08:30:00",
            "2024-01-03 12:00:00", // Wed
            "2024-01-07 18:00:00", // Sun, week 2024-01
            "2024-01-08 09:00:00", // Mon, week 2024-02
            "2024-02-29 10:00:00", // leap day
            "2024-03-01 10:00:00",
            "2024-03-01 10:00:00.5",
            "2022-06-15 12:00:00",
            "2024-03-02 07:00:00",
        ]
        .into_iter()
        .map(utc)
        .collect()
    }

    /// (id, reasons) of every snapshot, newest first, for a single-group result.
    fn run(snaps: &[SnapshotInfo], policy: &RetentionPolicy) -> Vec<(String, Vec<String>)> {
        run_with(snaps, policy, &ApplyOptions::default(), &TimeZone::UTC)
    }

    fn run_with(
        snaps: &[SnapshotInfo],
        policy: &RetentionPolicy,
        options: &ApplyOptions,
        tz: &TimeZone,
    ) -> Vec<(String, Vec<String>)> {
        let groups = apply_with(snaps, policy, GroupBy::default(), tz, options);
        assert_eq!(groups.len(), 1, "expected a single group");
        groups[0]
            .decisions
            .iter()
            .map(|d| {
                assert_eq!(d.keep, !d.reasons.is_empty());
                (d.id.clone(), d.reasons.clone())
            })
            .collect()
    }

    fn kept(result: &[(String, Vec<String>)]) -> Vec<&str> {
        result
            .iter()
            .filter(|(_, r)| !r.is_empty())
            .map(|(id, _)| id.as_str())
            .collect()
    }

    fn reasons<'a>(result: &'a [(String, Vec<String>)], id: &str) -> Vec<&'a str> {
        result
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, r)| r.iter().map(String::as_str).collect())
            .unwrap_or_else(|| panic!("no snapshot {id}"))
    }

    fn count(n: u32) -> Option<KeepCount> {
        Some(KeepCount::Count(n))
    }

    fn dur(s: &str) -> Option<RetentionDuration> {
        Some(parse_duration(s).unwrap())
    }

    #[test]
    fn decisions_are_newest_first() {
        let r = run(
            &timeline(),
            &RetentionPolicy {
                keep_last: count(1),
                ..Default::default()
            },
        );
        let ids: Vec<&str> = r.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "2024-03-02 07:00:00",
                "2024-03-01 10:00:00.5",
                "2024-03-01 10:00:00",
                "2024-02-29 10:00:00",
                "2024-01-08 09:00:00",
                "2024-01-07 18:00:00",
                "2024-01-03 12:00:00",
                "2024-01-01 08:30:00",
                "2024-01-01 08:00:00",
                "2024-01-01 00:00:00",
                "2023-12-31 23:59:59",
                "2022-06-15 12:00:00",
            ]
        );
        assert_eq!(kept(&r), ["2024-03-02 07:00:00"]);
        assert_eq!(reasons(&r, "2024-03-02 07:00:00"), ["last snapshot"]);
    }

    #[test]
    fn keep_last_never_marks_oldest() {
        let snaps = &timeline()[..3]; // 3 snapshots, budget 5
        let r = run(
            snaps,
            &RetentionPolicy {
                keep_last: count(5),
                ..Default::default()
            },
        );
        assert!(r.iter().all(|(_, reasons)| reasons == &["last snapshot"]));
    }

    #[test]
    fn keep_daily_with_oldest_rule() {
        let r = run(
            &timeline(),
            &RetentionPolicy {
                keep_daily: count(4),
                ..Default::default()
            },
        );
        // Newest of 03-02, 03-01 (the .5 one), 02-29, 01-08; budget then exhausted.
        assert_eq!(
            kept(&r),
            [
                "2024-03-02 07:00:00",
                "2024-03-01 10:00:00.5",
                "2024-02-29 10:00:00",
                "2024-01-08 09:00:00",
            ]
        );

        // With budget left at the end, the oldest snapshot is kept too: here 2022-06-15 is in a
        // bucket of its own anyway, so it is a plain "daily snapshot".
        let r = run(
            &timeline(),
            &RetentionPolicy {
                keep_daily: count(100),
                ..Default::default()
            },
        );
        assert_eq!(kept(&r).len(), 9);
        assert_eq!(reasons(&r, "2022-06-15 12:00:00"), ["daily snapshot"]);
        assert!(reasons(&r, "2024-01-01 08:00:00").is_empty());
        assert_eq!(reasons(&r, "2024-01-01 08:30:00"), ["daily snapshot"]);

        // The oldest shares its day with the previous one: kept as "oldest daily snapshot".
        let snaps = &timeline()[1..4]; // 2024-01-01 00:00, 08:00, 08:30
        let r = run(
            snaps,
            &RetentionPolicy {
                keep_daily: count(3),
                ..Default::default()
            },
        );
        assert_eq!(
            r,
            [
                (
                    "2024-01-01 08:30:00".to_owned(),
                    vec!["daily snapshot".to_owned()]
                ),
                ("2024-01-01 08:00:00".to_owned(), vec![]),
                (
                    "2024-01-01 00:00:00".to_owned(),
                    vec!["oldest daily snapshot".to_owned()]
                ),
            ]
        );
        // ... but not when the budget is used up, and never in restic 0.14 mode.
        let r = run(
            snaps,
            &RetentionPolicy {
                keep_daily: count(1),
                ..Default::default()
            },
        );
        assert_eq!(kept(&r), ["2024-01-01 08:30:00"]);
        let r = run_with(
            snaps,
            &RetentionPolicy {
                keep_daily: count(3),
                ..Default::default()
            },
            &ApplyOptions {
                semantics: Semantics::Restic014,
                ..Default::default()
            },
            &TimeZone::UTC,
        );
        assert_eq!(kept(&r), ["2024-01-01 08:30:00"]);
    }

    #[test]
    fn keep_hourly() {
        let r = run(
            &timeline(),
            &RetentionPolicy {
                keep_hourly: count(6),
                ..Default::default()
            },
        );
        // 03-01 10:00:00 and 10:00:00.5 share an hour; 01-01 08:00 and 08:30 share an hour.
        assert_eq!(
            kept(&r),
            [
                "2024-03-02 07:00:00",
                "2024-03-01 10:00:00.5",
                "2024-02-29 10:00:00",
                "2024-01-08 09:00:00",
                "2024-01-07 18:00:00",
                "2024-01-03 12:00:00",
            ]
        );
    }

    #[test]
    fn keep_weekly_uses_iso_weeks() {
        let r = run(
            &timeline(),
            &RetentionPolicy {
                keep_weekly: count(10),
                ..Default::default()
            },
        );
        // ISO weeks: 2024-W09 (Thu 02-29 .. Sat 03-02), 2024-W02 (Mon 01-08), 2024-W01
        // (Mon 01-01 .. Sun 01-07), 2023-W52 (Sun 12-31), 2022-W24 (06-15).
        assert_eq!(
            kept(&r),
            [
                "2024-03-02 07:00:00",
                "2024-01-08 09:00:00",
                "2024-01-07 18:00:00",
                "2023-12-31 23:59:59",
                "2022-06-15 12:00:00",
            ]
        );
        assert_eq!(reasons(&r, "2024-01-07 18:00:00"), ["weekly snapshot"]);
    }

    #[test]
    fn keep_monthly_and_yearly() {
        let r = run(
            &timeline(),
            &RetentionPolicy {
                keep_monthly: count(3),
                keep_yearly: Some(KeepCount::Unlimited),
                ..Default::default()
            },
        );
        assert_eq!(r.iter().filter(|(_, v)| !v.is_empty()).count(), 5);
        assert_eq!(
            reasons(&r, "2024-03-02 07:00:00"),
            ["monthly snapshot", "yearly snapshot"]
        );
        assert_eq!(reasons(&r, "2024-02-29 10:00:00"), ["monthly snapshot"]);
        assert_eq!(reasons(&r, "2024-01-08 09:00:00"), ["monthly snapshot"]);
        assert_eq!(reasons(&r, "2023-12-31 23:59:59"), ["yearly snapshot"]);
        assert_eq!(reasons(&r, "2022-06-15 12:00:00"), ["yearly snapshot"]);
    }

    #[test]
    fn unlimited_last_keeps_everything_but_not_in_restic_014() {
        let policy = RetentionPolicy {
            keep_last: Some(KeepCount::Unlimited),
            ..Default::default()
        };
        let r = run(&timeline(), &policy);
        assert!(r.iter().all(|(_, v)| v == &["last snapshot"]));
        let r = run_with(
            &timeline(),
            &policy,
            &ApplyOptions {
                semantics: Semantics::Restic014,
                ..Default::default()
            },
            &TimeZone::UTC,
        );
        assert!(
            kept(&r).is_empty(),
            "restic 0.14 ignores -1 and removes everything"
        );
    }

    #[test]
    fn keep_within_measures_from_newest_snapshot() {
        let r = run(
            &timeline(),
            &RetentionPolicy {
                keep_within: dur("2d"),
                ..Default::default()
            },
        );
        // Newest 2024-03-02 07:00 minus 2 days = 2024-02-29 07:00 (leap year), strictly after.
        assert_eq!(
            kept(&r),
            [
                "2024-03-02 07:00:00",
                "2024-03-01 10:00:00.5",
                "2024-03-01 10:00:00",
                "2024-02-29 10:00:00",
            ]
        );
        assert_eq!(reasons(&r, "2024-02-29 10:00:00"), ["within 2d"]);

        // The bound is exclusive: exactly 1 day before the newest is outside.
        let snaps = [utc("2024-01-02 00:00:00"), utc("2024-01-01 00:00:00")];
        let r = run(
            &snaps,
            &RetentionPolicy {
                keep_within: dur("1d"),
                ..Default::default()
            },
        );
        assert_eq!(kept(&r), ["2024-01-02 00:00:00"]);
        let r = run(
            &snaps,
            &RetentionPolicy {
                keep_within: dur("24h1m"), // months are calendar months: this is 1 month + 24 h
                ..Default::default()
            },
        );
        assert_eq!(kept(&r).len(), 2);
    }

    #[test]
    fn keep_within_uses_go_date_normalisation() {
        // 2023-03-31 minus 1 month is "2023-02-31", which Go normalises to 2023-03-03.
        let snaps = [
            utc("2023-03-31 12:00:00"),
            utc("2023-03-03 12:00:01"),
            utc("2023-03-03 12:00:00"),
            utc("2023-02-28 13:00:00"),
        ];
        let r = run(
            &snaps,
            &RetentionPolicy {
                keep_within: dur("1m"),
                ..Default::default()
            },
        );
        assert_eq!(kept(&r), ["2023-03-31 12:00:00", "2023-03-03 12:00:01"]);
        // 2024-02-29 minus 1 year is "2023-02-29" = 2023-03-01.
        let snaps = [
            utc("2024-02-29 00:00:00"),
            utc("2023-03-01 00:00:01"),
            utc("2023-03-01 00:00:00"),
        ];
        let r = run(
            &snaps,
            &RetentionPolicy {
                keep_within: dur("1y"),
                ..Default::default()
            },
        );
        assert_eq!(kept(&r), ["2024-02-29 00:00:00", "2023-03-01 00:00:01"]);
    }

    #[test]
    fn keep_within_days_are_calendar_days_across_dst() {
        let tz = berlin();
        // Spring forward on 2024-03-31: the day has 23 hours. 1d before 2024-03-31 12:00 CEST
        // is 2024-03-30 12:00 CET, i.e. 23 real hours earlier.
        let snaps = [
            snap_in(&tz, "2024-03-31 12:00:00", "h", &[]),
            snap_in(&tz, "2024-03-30 12:00:01", "h", &[]),
            snap_in(&tz, "2024-03-30 12:00:00", "h", &[]),
        ];
        let policy = RetentionPolicy {
            keep_within: dur("1d"),
            ..Default::default()
        };
        let r = run_with(&snaps, &policy, &ApplyOptions::default(), &tz);
        assert_eq!(kept(&r), ["2024-03-31 12:00:00", "2024-03-30 12:00:01"]);
        // 24h is absolute: 2024-03-30 11:00 CET is the bound, so both are inside.
        let policy = RetentionPolicy {
            keep_within: dur("24h"),
            ..Default::default()
        };
        let r = run_with(&snaps, &policy, &ApplyOptions::default(), &tz);
        assert_eq!(kept(&r).len(), 3);
    }

    #[test]
    fn go_wall_clock_resolution_in_gaps_and_folds() {
        let resolve = |tz: &TimeZone, s: &str| {
            let wall: DateTime = s.parse().unwrap();
            go_resolve_wall_clock(wall, tz).unwrap().to_string()
        };
        let berlin = berlin();
        // Gap: 02:30 does not exist; Go uses the offset before the transition (+01:00).
        assert_eq!(resolve(&berlin, "2024-03-31T02:30"), "2024-03-31T01:30:00Z");
        // Fold: 02:30 happens twice; for Berlin Go picks the second one (+01:00).
        assert_eq!(resolve(&berlin, "2024-10-27T02:30"), "2024-10-27T01:30:00Z");
        let ny = TimeZone::get("America/New_York").unwrap();
        // Fold in New York: Go picks the first one (EDT, -04:00).
        assert_eq!(resolve(&ny, "2024-11-03T01:30"), "2024-11-03T05:30:00Z");
        // Gap in New York: Go lands on 01:30 EST, before the gap.
        assert_eq!(resolve(&ny, "2024-03-10T02:30"), "2024-03-10T06:30:00Z");
        // Unambiguous.
        assert_eq!(resolve(&berlin, "2024-07-01T12:00"), "2024-07-01T10:00:00Z");
    }

    #[test]
    fn calendar_buckets_follow_the_time_zone() {
        // 2024-01-01 00:30 Berlin is 2023-12-31 23:30 UTC: different day, week and year.
        let tz = berlin();
        let snaps = [
            snap_in(&tz, "2024-01-01 00:30:00", "h", &[]),
            snap_in(&tz, "2023-12-31 23:00:00", "h", &[]),
        ];
        let policy = RetentionPolicy {
            keep_yearly: count(5),
            ..Default::default()
        };
        let r = run_with(&snaps, &policy, &ApplyOptions::default(), &tz);
        assert_eq!(kept(&r).len(), 2);
        let r = run_with(&snaps, &policy, &ApplyOptions::default(), &TimeZone::UTC);
        assert_eq!(
            reasons(&r, "2023-12-31 23:00:00"),
            ["oldest yearly snapshot"]
        );
    }

    #[test]
    fn keep_within_buckets() {
        let r = run(
            &timeline(),
            &RetentionPolicy {
                keep_within_daily: dur("3d"),
                keep_within_monthly: dur("1y"),
                ..Default::default()
            },
        );
        // 3d window: after 2024-02-28 07:00. 1y window: after 2023-03-02 07:00.
        assert_eq!(
            reasons(&r, "2024-03-02 07:00:00"),
            ["daily within 3d", "monthly within 1y"]
        );
        assert_eq!(reasons(&r, "2024-03-01 10:00:00.5"), ["daily within 3d"]);
        assert!(reasons(&r, "2024-03-01 10:00:00").is_empty());
        assert_eq!(
            reasons(&r, "2024-02-29 10:00:00"),
            ["daily within 3d", "monthly within 1y"]
        );
        assert_eq!(reasons(&r, "2024-01-08 09:00:00"), ["monthly within 1y"]);
        assert_eq!(reasons(&r, "2023-12-31 23:59:59"), ["monthly within 1y"]);
        assert!(reasons(&r, "2022-06-15 12:00:00").is_empty());
        assert_eq!(kept(&r).len(), 5);

        // Oldest rule for within buckets: the oldest is inside the window and shares its day.
        let snaps = &timeline()[1..4];
        let r = run(
            snaps,
            &RetentionPolicy {
                keep_within_daily: dur("7d"),
                ..Default::default()
            },
        );
        assert_eq!(
            reasons(&r, "2024-01-01 00:00:00"),
            ["oldest daily within 7d"]
        );
        assert!(reasons(&r, "2024-01-01 08:00:00").is_empty());
    }

    #[test]
    fn keep_tags() {
        let tz = TimeZone::UTC;
        let snaps = [
            snap_in(&tz, "2024-01-05 00:00:00", "h", &[]),
            snap_in(&tz, "2024-01-04 00:00:00", "h", &["foo", "bar"]),
            snap_in(&tz, "2024-01-03 00:00:00", "h", &["bar"]),
            snap_in(&tz, "2024-01-02 00:00:00", "h", &["foo"]),
            snap_in(&tz, "2024-01-01 00:00:00", "h", &[]),
        ];
        let r = run(
            &snaps,
            &RetentionPolicy {
                keep_tags: vec![parse_tag_list("foo, bar"), parse_tag_list("foo")],
                ..Default::default()
            },
        );
        assert_eq!(
            reasons(&r, "2024-01-04 00:00:00"),
            ["has tags [foo, bar]", "has tags [foo]"]
        );
        assert_eq!(reasons(&r, "2024-01-02 00:00:00"), ["has tags [foo]"]);
        assert_eq!(kept(&r).len(), 2);

        // The empty tag list matches untagged snapshots only; tags use no budget and come first.
        let r = run(
            &snaps,
            &RetentionPolicy {
                keep_tags: vec![parse_tag_list("")],
                keep_last: count(1),
                ..Default::default()
            },
        );
        assert_eq!(
            reasons(&r, "2024-01-05 00:00:00"),
            ["has tags []", "last snapshot"]
        );
        assert_eq!(reasons(&r, "2024-01-01 00:00:00"), ["has tags []"]);
        assert_eq!(kept(&r).len(), 2);
        let groups = apply(
            &snaps,
            &RetentionPolicy {
                keep_tags: vec![vec!["nope".to_owned()]],
                ..Default::default()
            },
            GroupBy::default(),
            &tz,
        );
        assert!(groups[0].keeps_none());
    }

    #[test]
    fn combined_policy_reason_order() {
        let r = run(
            &timeline(),
            &RetentionPolicy {
                keep_last: count(2),
                keep_daily: count(2),
                keep_weekly: count(1),
                keep_within: dur("1d"),
                keep_within_hourly: dur("1d"),
                ..Default::default()
            },
        );
        assert_eq!(
            reasons(&r, "2024-03-02 07:00:00"),
            [
                "within 1d",
                "last snapshot",
                "daily snapshot",
                "weekly snapshot",
                "hourly within 1d",
            ]
        );
        assert_eq!(
            reasons(&r, "2024-03-01 10:00:00.5"),
            [
                "within 1d",
                "last snapshot",
                "daily snapshot",
                "hourly within 1d",
            ]
        );
        assert_eq!(reasons(&r, "2024-03-01 10:00:00"), ["within 1d"]);
        assert_eq!(kept(&r).len(), 3);
    }

    #[test]
    fn future_snapshots_do_not_move_the_window() {
        let snaps = [
            utc("2099-01-01 00:00:00"),
            utc("2024-01-10 00:00:00"),
            utc("2024-01-09 12:00:00"),
            utc("2024-01-01 00:00:00"),
        ];
        let policy = RetentionPolicy {
            keep_within: dur("1d"),
            ..Default::default()
        };
        let now = "2025-01-01T00:00:00Z".parse().unwrap();
        let r = run_with(
            &snaps,
            &policy,
            &ApplyOptions {
                now: Some(now),
                ..Default::default()
            },
            &TimeZone::UTC,
        );
        assert_eq!(
            kept(&r),
            [
                "2099-01-01 00:00:00",
                "2024-01-10 00:00:00",
                "2024-01-09 12:00:00"
            ]
        );
        // Without `now`, the 2099 snapshot is the newest and the others fall out.
        let r = run(&snaps, &policy);
        assert_eq!(kept(&r), ["2099-01-01 00:00:00"]);
        // Everything in the future: the window starts at Go's zero time, all are inside.
        let early = "2000-01-01T00:00:00Z".parse().unwrap();
        let r = run_with(
            &snaps,
            &policy,
            &ApplyOptions {
                now: Some(early),
                ..Default::default()
            },
            &TimeZone::UTC,
        );
        assert_eq!(kept(&r).len(), 4);
    }

    #[test]
    fn empty_policy_and_empty_input() {
        let r = run(&timeline(), &RetentionPolicy::default());
        assert!(r.iter().all(|(_, v)| v == &["policy is empty"]));
        assert!(
            apply(
                &[],
                &RetentionPolicy {
                    keep_last: count(1),
                    ..Default::default()
                },
                GroupBy::default(),
                &TimeZone::UTC
            )
            .is_empty()
        );
    }

    #[test]
    fn grouping() {
        let tz = TimeZone::UTC;
        let mut a = snap_in(&tz, "2024-01-02 00:00:00", "a", &["y", "x"]);
        a.paths = vec!["/z".to_owned(), "/b".to_owned()];
        let b = snap_in(&tz, "2024-01-01 00:00:00", "b", &["x", "y"]);
        let mut c = snap_in(&tz, "2024-01-03 00:00:00", "a", &["x", "y"]);
        c.paths = vec!["/b".to_owned(), "/z".to_owned()];
        let snaps = [a, b, c];
        let policy = RetentionPolicy {
            keep_last: count(1),
            ..Default::default()
        };
        let groups = apply(&snaps, &policy, GroupBy::default(), &tz);
        assert_eq!(groups.len(), 2);
        assert_eq!(
            groups[0].key,
            GroupKey {
                host: Some("a".to_owned()),
                paths: Some(vec!["/b".to_owned(), "/z".to_owned()]),
                tags: None,
            }
        );
        assert_eq!(
            groups[0].kept().collect::<Vec<_>>(),
            ["2024-01-03 00:00:00"]
        );
        assert_eq!(
            groups[0].removed().collect::<Vec<_>>(),
            ["2024-01-02 00:00:00"]
        );
        assert_eq!(groups[1].key.host.as_deref(), Some("b"));

        let groups = apply(&snaps, &policy, "tags".parse().unwrap(), &tz);
        assert_eq!(groups.len(), 1);
        assert_eq!(
            groups[0].key,
            GroupKey {
                host: None,
                paths: None,
                tags: Some(vec!["x".to_owned(), "y".to_owned()]),
            }
        );
        assert_eq!(groups[0].kept().count(), 1);
        let groups = apply(&snaps, &policy, GroupBy::NONE, &tz);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].decisions.len(), 3);
    }

    #[test]
    fn group_by_parsing() {
        assert_eq!("host,paths".parse::<GroupBy>().unwrap(), GroupBy::default());
        assert_eq!("hosts,path".parse::<GroupBy>().unwrap(), GroupBy::default());
        assert_eq!("".parse::<GroupBy>().unwrap(), GroupBy::NONE);
        let all: GroupBy = "tag,host,,paths".parse().unwrap();
        assert_eq!(all.to_string(), "host,paths,tags");
        assert!(matches!(
            "host,label".parse::<GroupBy>(),
            Err(RetentionError::InvalidGroupBy { option }) if option == "label"
        ));
    }

    #[test]
    fn duration_parsing() {
        let d = parse_duration(" 1y2m3d4h ").unwrap();
        assert_eq!(
            d,
            RetentionDuration {
                years: 1,
                months: 2,
                days: 3,
                hours: 4
            }
        );
        assert_eq!(d.to_string(), "1y2m3d4h");
        assert_eq!(parse_duration("4h1y").unwrap().to_string(), "1y4h");
        assert_eq!(parse_duration("1d2d").unwrap().days, 2);
        assert_eq!(parse_duration("0d").unwrap().to_string(), "");
        assert!(parse_duration("0d").unwrap().is_zero());
        assert!(parse_duration("").unwrap().is_zero());
        for bad in ["1", "d", "1w", "1D", "-1d", "1d 2h", "99999999999d", "1.5d"] {
            assert!(
                matches!(
                    parse_duration(bad),
                    Err(RetentionError::InvalidDuration { .. })
                ),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn keep_count_parsing() {
        assert_eq!("7".parse::<KeepCount>().unwrap(), KeepCount::Count(7));
        assert_eq!(
            "unlimited".parse::<KeepCount>().unwrap(),
            KeepCount::Unlimited
        );
        assert_eq!("-1".parse::<KeepCount>().unwrap(), KeepCount::Unlimited);
        assert!("-2".parse::<KeepCount>().is_err());
        assert!("x".parse::<KeepCount>().is_err());
        assert_eq!(KeepCount::Unlimited.to_string(), "unlimited");
    }

    #[test]
    fn policy_is_empty_and_display() {
        assert!(RetentionPolicy::default().is_empty());
        assert_eq!(RetentionPolicy::default().to_string(), "remove");
        let zero = RetentionPolicy {
            keep_last: count(0),
            keep_within: dur("0h"),
            ..Default::default()
        };
        assert!(zero.is_empty());
        let tags_only = RetentionPolicy {
            keep_tags: vec![vec![String::new()]],
            ..Default::default()
        };
        assert!(!tags_only.is_empty());
        let p = RetentionPolicy {
            keep_daily: count(7),
            keep_weekly: Some(KeepCount::Unlimited),
            keep_within_daily: dur("7d"),
            keep_tags: vec![vec!["a".to_owned(), "b".to_owned()], vec!["c".to_owned()]],
            keep_within: dur("1y2m"),
            ..Default::default()
        };
        assert!(!p.is_empty());
        assert_eq!(
            p.to_string(),
            "keep 7 daily, all weekly snapshots, daily snapshots within 7d and all snapshots \
             with tags [[a, b] [c]] and all snapshots within 1y2m of the newest"
        );
    }

    #[test]
    fn stable_order_for_equal_times() {
        let mut a = utc("2024-01-01 00:00:00");
        a.id = "first".to_owned();
        let mut b = utc("2024-01-01 00:00:00");
        b.id = "second".to_owned();
        let r = run(
            &[a, b],
            &RetentionPolicy {
                keep_last: count(1),
                ..Default::default()
            },
        );
        assert_eq!(r[0], ("first".to_owned(), vec!["last snapshot".to_owned()]));
        assert_eq!(r[1], ("second".to_owned(), vec![]));
    }
}
