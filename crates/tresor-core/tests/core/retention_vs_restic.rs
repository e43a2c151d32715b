//! Differential test: `tresor_core::retention` against the real `restic forget`.
//!
//! For a fixed set of seeded pseudo-random timelines (irregular gaps, bursts of snapshots in the
//! same second, DST transitions in Europe/Berlin and America/New_York, leap days, year ends, ISO
//! week 53, several hosts, tags and path sets, a snapshot in the future, an empty repository),
//! each timeline is written into its own restic repository with `restic backup --time`, then
//! several policies are evaluated with `restic forget --dry-run --json` and with
//! [`retention::apply_with`]; kept/removed sets and reasons must agree group by group.
//!
//! restic runs with `TZ` set to the timeline's zone and the same zone is passed to `apply_with`.
//! The snapshot list fed to `apply_with` is read back from `restic snapshots --json`, so times
//! are exactly what restic stored. Snapshots with identical times are compared as a multiset
//! (restic's order among equal times depends on its directory listing); the generator only
//! produces identical times for snapshots that are identical in every attribute.
//!
//! Runtime: a repository made by `restic init` protects its key with scrypt parameters calibrated
//! to take about half a second, and every restic command pays that again, which would make the
//! ~600 restic runs of this test take minutes of CPU. The test therefore starts each repository
//! from [`TEMPLATE_KEY`]/[`TEMPLATE_CONFIG`]: an empty repository made by `restic init` (format
//! version 2) whose key file was re-encrypted with minimal scrypt parameters (N=16, r=1, p=1) for
//! the password [`PASSWORD`]. If the installed restic cannot open it, the test falls back to a
//! template made by `restic init` (slow but equivalent).
//!
//! Needs the `restic` binary (Debian: `apt-get install restic`). Without it the test prints a
//! notice and passes, unless the environment variable `CI` is set, in which case it fails.
//! restic 0.14/0.15 is compared with [`Semantics::Restic014`], restic ≥ 0.18 with
//! [`Semantics::Current`]; other versions are not comparable and are treated like a missing
//! binary. `RETENTION_VS_RESTIC_JOBS` sets the number of parallel timelines (default 6; restic
//! spends most of each run waiting, not computing).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use jiff::Timestamp;
use jiff::civil::{self, DateTime};
use jiff::tz::TimeZone;
use serde_json::Value;
use tresor_core::retention::{
    ApplyOptions, GroupBy, GroupKey, KeepCount, RetentionDuration, RetentionPolicy, Semantics,
    SnapshotInfo, apply_with, parse_duration,
};

const PASSWORD: &str = "tresor-retention-test";

/// Name (SHA-256 of the content) and content of the template repository's key file.
const TEMPLATE_KEY: (&str, &str) = (
    "82c809ef22e4470536a7014e3c1054a7faf979b58031d1ef4526f176f7cb1f58",
    r#"{"created":"2024-01-01T00:00:00Z","username":"tresor","hostname":"tresor-test","kdf":"scrypt","N":16,"r":1,"p":1,"salt":"xPIJ7iGtL8zonmn12ixQdDpoBrIZjSxLEKs1nLx1MgMGLseUiUrulaNMwKZcoV1VlUElpm7Ezle7zYgU9XvF5Q==","data":"JAm1SiC4Kxdf1O4HHwt+A/XsScaBrX04xT4ja0hdNhy9CR/1eDFVTs6Cu8/5212Mq3A1leZy63Q2TdaB6RDFzidSi4lTaOgO3TlEswXMWuPqWGD7vw84dmFIJKIqUoyvBsKvXz4EHvIzEYZ0mL88Aw5Hn0zA99JLaWtVbTC6Z4wO6BqyRSOp2LnfTrnQvQZ7ro/CHun/YswjByExdk74KQ=="}"#,
);

/// The template repository's `config` file (encrypted with the key above), hex-encoded.
const TEMPLATE_CONFIG: &str = concat!(
    "fbfdf8072c80171e1b6f375ba381822eba00cc86c80565fb223cf20e9957ca831e0fe8099878693a",
    "4a0abad780ff918cfc628e74fa48d67e38c1ace1200b454a4cd98fe9b75e9da079f68deb2cdec663",
    "b7529484fea3538308fc1ea17db6b848c01d46944278f58b6954029b9f9f29c82aacb959ced55431",
    "94be45e9d522a830d2630b51a0c8bf2aa6286de3351cb963334063811f41b5c0552be1",
);

const TIMELINES: usize = 32;
const POLICIES_PER_TIMELINE: usize = 4;
const SEED: u64 = 0x7e50_4e7e_2024_0229;

/// SplitMix64: small, seedable, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Planned {
    wall: DateTime,
    host: String,
    tags: Vec<String>,
    dir: usize,
}

struct Timeline {
    name: String,
    tz_name: &'static str,
    snapshots: Vec<Planned>,
    policies: Vec<(RetentionPolicy, GroupBy)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    DstSpring,
    DstFall,
    YearEnd,
    LeapDay,
    Bursts,
    HostsAndTags,
    SparseYears,
    Future,
}

const SCENARIOS: [Scenario; 8] = [
    Scenario::DstSpring,
    Scenario::DstFall,
    Scenario::YearEnd,
    Scenario::LeapDay,
    Scenario::Bursts,
    Scenario::HostsAndTags,
    Scenario::SparseYears,
    Scenario::Future,
];

fn scenario_name(s: Scenario) -> &'static str {
    match s {
        Scenario::DstSpring => "dst-spring",
        Scenario::DstFall => "dst-fall",
        Scenario::YearEnd => "year-end",
        Scenario::LeapDay => "leap-day",
        Scenario::Bursts => "bursts",
        Scenario::HostsAndTags => "hosts-tags",
        Scenario::SparseYears => "sparse-years",
        Scenario::Future => "future",
    }
}

/// The `n`-th (1-based) Sunday of `month`, or the last one for `n == 0`.
fn sunday(year: i16, month: i8, n: i8) -> civil::Date {
    let weekday = jiff::civil::Weekday::Sunday;
    civil::date(year, month, 1)
        .nth_weekday_of_month(if n == 0 { -1 } else { n }, weekday)
        .expect("valid date")
}

/// The Sunday on which DST starts (spring) or ends (fall) in Berlin or New York.
fn transition_day(scenario: Scenario, new_york: bool, year: i16) -> civil::Date {
    match (scenario, new_york) {
        (Scenario::DstSpring, false) => sunday(year, 3, 0),
        (Scenario::DstSpring, true) => sunday(year, 3, 2),
        (_, false) => sunday(year, 10, 0),
        (_, true) => sunday(year, 11, 1),
    }
}

/// Go's `AddDate(-years, -months, -days)` on a wall clock: overflowing months carry into years,
/// then overflowing days into months.
fn go_sub_date(wall: DateTime, years: i32, months: i32, days: i64) -> DateTime {
    let total = i32::from(wall.year()) * 12 + i32::from(wall.month()) - 1 - years * 12 - months;
    let first = civil::date(
        total.div_euclid(12) as i16,
        (total.rem_euclid(12) + 1) as i8,
        1,
    );
    let date = first
        .checked_add(jiff::Span::new().days(i64::from(wall.day()) - 1 - days))
        .expect("in range");
    date.to_datetime(wall.time())
}

fn add_minutes(dt: DateTime, minutes: i64) -> DateTime {
    dt.checked_add(jiff::Span::new().minutes(minutes))
        .expect("in range")
}

#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn generate(index: usize, rng: &mut Rng) -> Timeline {
    let scenario = SCENARIOS[index % SCENARIOS.len()];
    let tz_name = match (scenario, index % 3) {
        (Scenario::DstSpring | Scenario::DstFall, 1) => "America/New_York",
        (Scenario::YearEnd | Scenario::HostsAndTags, 2) => "UTC",
        _ => "Europe/Berlin",
    };
    let new_york = tz_name == "America/New_York";
    // The repository of timeline 15 stays empty.
    let len = if index == 15 {
        0
    } else {
        rng.range(9, 20) as usize
    };
    let multi = scenario == Scenario::HostsAndTags || rng.chance(30);
    let hosts: &[&str] = if multi {
        &["alpha", "beta", "gamma"]
    } else {
        &["alpha"]
    };
    let tag_pool: &[&str] = &["foo", "bar", "baz"];

    let mut wall: DateTime;
    let mut snapshots: Vec<Planned> = Vec::new();
    let year = rng.range(2016, 2024) as i16;
    wall = match scenario {
        Scenario::DstSpring | Scenario::DstFall => {
            let day = transition_day(scenario, new_york, year);
            day.yesterday().unwrap().at(20, 0, 0, 0)
        }
        Scenario::YearEnd => {
            let y = *rng.pick(&[2015i16, 2020, 2021, 2022, 2023]); // 2015/2020: ISO week 53
            civil::date(y, 12, 20).at(12, 0, 0, 0)
        }
        Scenario::LeapDay => {
            let y = *rng.pick(&[2016i16, 2020, 2024]);
            civil::date(y - 1, 2, 27).at(9, 0, 0, 0)
        }
        Scenario::Bursts | Scenario::HostsAndTags | Scenario::Future => {
            civil::date(year, rng.range(1, 12) as i8, rng.range(1, 28) as i8).at(
                rng.range(0, 23) as i8,
                rng.range(0, 59) as i8,
                rng.range(0, 59) as i8,
                0,
            )
        }
        Scenario::SparseYears => civil::date(2010 + rng.range(0, 4) as i16, 1, 1).at(3, 0, 0, 0),
    };

    let mut i = 0;
    while i < len {
        let host = rng.pick(hosts).to_string();
        let mut tags: Vec<String> = tag_pool
            .iter()
            .filter(|_| rng.chance(if multi { 35 } else { 15 }))
            .map(|t| t.to_string())
            .collect();
        tags.dedup();
        let dir = if multi && rng.chance(30) { 1 } else { 0 };
        let planned = Planned {
            wall,
            host,
            tags,
            dir,
        };
        // Bursts: the same snapshot several times in the same second, and a few within a minute.
        let copies = if scenario == Scenario::Bursts && rng.chance(40) {
            rng.range(2, 3) as usize
        } else {
            1
        };
        for _ in 0..copies.min(len - i) {
            snapshots.push(planned.clone());
            i += 1;
        }
        let step_minutes = match scenario {
            Scenario::DstSpring | Scenario::DstFall => {
                // Steps of 10 min .. 3 h, now and then landing exactly on xx:00:00 or 02:30.
                rng.range(10, 180)
            }
            Scenario::YearEnd => {
                if rng.chance(25) {
                    // Jump close to or onto the year boundary.
                    let target = civil::date(wall.year(), 12, 31).at(23, 59, 59, 0);
                    let diff = wall.duration_until(target).as_secs() / 60;
                    if diff > 1 { diff } else { rng.range(1, 600) }
                } else {
                    rng.range(60, 3 * 24 * 60)
                }
            }
            Scenario::LeapDay => {
                let odd = rng.range(1, 5000);
                *rng.pick(&[
                    12 * 60,
                    24 * 60,
                    30 * 24 * 60,
                    365 * 24 * 60,
                    366 * 24 * 60,
                    odd,
                ])
            }
            Scenario::Bursts => {
                if rng.chance(40) {
                    rng.range(0, 1)
                } else {
                    rng.range(30, 2 * 24 * 60)
                }
            }
            Scenario::HostsAndTags => rng.range(60, 10 * 24 * 60),
            Scenario::SparseYears => rng.range(10 * 24 * 60, 400 * 24 * 60),
            Scenario::Future => rng.range(60, 5 * 24 * 60),
        };
        wall = add_minutes(wall, step_minutes.max(0));
        if scenario != Scenario::Bursts || rng.chance(50) {
            // Seconds vary so that most times differ, but keep some on full minutes.
            if rng.chance(70) {
                wall = wall.with().second(rng.range(0, 59) as i8).build().unwrap();
            }
        } else {
            wall = wall.with().second(rng.range(0, 59) as i8).build().unwrap();
        }
    }
    if scenario == Scenario::Future && !snapshots.is_empty() {
        snapshots.push(Planned {
            wall: civil::date(2099, 6, 1).at(12, 0, 0, 0),
            host: hosts[0].to_string(),
            tags: vec![],
            dir: 0,
        });
    }
    // DST scenarios: often make the newest snapshot fall one day after the transition at the
    // wall clock that is skipped (spring) or repeated (fall) on the transition day, and put a
    // snapshot exactly on "newest minus 1d", which then lies in the gap or fold.
    if matches!(scenario, Scenario::DstSpring | Scenario::DstFall)
        && !snapshots.is_empty()
        && rng.chance(75)
    {
        let day = transition_day(scenario, new_york, year);
        let hour = if new_york && scenario == Scenario::DstFall {
            1
        } else {
            2
        };
        let newest = day.tomorrow().unwrap().at(hour, 30, 0, 0);
        if snapshots.iter().all(|p| p.wall < newest) {
            let like = snapshots.last().unwrap().clone();
            snapshots.push(Planned {
                wall: newest,
                ..like.clone()
            });
            snapshots.push(Planned {
                wall: day.at(hour, 30, 0, 0),
                ..like
            });
        }
    }
    // Snapshots exactly on `--keep-within` boundaries: the newest snapshot's wall clock minus
    // 1, 2 or 7 days, 1 month or 1 year (month/day overflow normalised like restic/Go, so e.g.
    // 31 March minus one month is 3 March). The bound is exclusive, so these must be removed.
    if scenario != Scenario::Future && !snapshots.is_empty() && rng.chance(60) {
        let newest = snapshots.iter().max_by_key(|p| p.wall).unwrap().clone();
        for _ in 0..rng.range(1, 3) {
            let (years, months, days) =
                *rng.pick(&[(0, 0, 1), (0, 0, 2), (0, 0, 7), (0, 1, 0), (1, 0, 0)]);
            let mut p = newest.clone();
            p.wall = go_sub_date(newest.wall, years, months, days);
            if !snapshots.contains(&p) {
                snapshots.push(p);
            }
        }
    }
    // Equal wall clocks must mean identical snapshots (see module docs): nudge others apart.
    for k in 1..snapshots.len() {
        while snapshots[..k]
            .iter()
            .any(|p| p.wall == snapshots[k].wall && *p != snapshots[k])
        {
            snapshots[k].wall = snapshots[k]
                .wall
                .checked_add(jiff::Span::new().seconds(1))
                .unwrap();
        }
    }

    let policies = (0..POLICIES_PER_TIMELINE)
        .map(|p| random_policy(rng, scenario, index, p))
        .collect();
    Timeline {
        name: format!("t{index:02}-{}", scenario_name(scenario)),
        tz_name,
        snapshots,
        policies,
    }
}

fn random_policy(
    rng: &mut Rng,
    scenario: Scenario,
    index: usize,
    nr: usize,
) -> (RetentionPolicy, GroupBy) {
    let group_by = match rng.range(0, 9) {
        0 => GroupBy::NONE,
        1 => "host".parse().unwrap(),
        2 => "tags".parse().unwrap(),
        3 => "host,paths,tags".parse().unwrap(),
        4 => "paths".parse().unwrap(),
        _ => GroupBy::default(),
    };
    // One timeline checks that an empty policy removes nothing.
    if index == 3 && nr == 0 {
        return (RetentionPolicy::default(), group_by);
    }
    let mut p = RetentionPolicy::default();
    let count = |rng: &mut Rng| -> Option<KeepCount> {
        if !rng.chance(35) {
            return None;
        }
        Some(match rng.range(0, 9) {
            0 => KeepCount::Unlimited,
            1 => KeepCount::Count(rng.range(10, 40) as u32),
            _ => KeepCount::Count(rng.range(1, 6) as u32),
        })
    };
    p.keep_last = count(rng);
    p.keep_hourly = count(rng);
    p.keep_daily = count(rng);
    p.keep_weekly = count(rng);
    p.keep_monthly = count(rng);
    p.keep_yearly = count(rng);
    let durations: &[&str] = match scenario {
        Scenario::SparseYears | Scenario::LeapDay => &[
            "1d", "1m", "1y", "2y", "1y1d", "1y1m1d1h", "6m", "3y2m", "1m14d", "13m",
        ],
        _ => &[
            "1h", "5h", "1d", "1d1h", "2d", "3d12h", "7d", "13d23h", "1m", "1m14d", "2m2h", "1y",
        ],
    };
    let within = |rng: &mut Rng, percent: u64| -> Option<RetentionDuration> {
        rng.chance(percent)
            .then(|| parse_duration(rng.pick::<&str>(durations)).unwrap())
    };
    p.keep_within = within(rng, 25);
    p.keep_within_hourly = within(rng, 20);
    p.keep_within_daily = within(rng, 20);
    p.keep_within_weekly = within(rng, 20);
    p.keep_within_monthly = within(rng, 20);
    p.keep_within_yearly = within(rng, 15);
    if rng.chance(25) {
        let lists: &[&str] = &["foo", "foo,bar", "", "baz", "bar"];
        for _ in 0..rng.range(1, 2) {
            p.keep_tags
                .push(rng.pick(lists).split(',').map(str::to_owned).collect());
        }
    }
    if nr == 1 && matches!(scenario, Scenario::DstSpring | Scenario::DstFall) {
        p.keep_within = Some(parse_duration("1d").unwrap());
    }
    if p.is_empty() {
        p.keep_last = Some(KeepCount::Count(rng.range(1, 4) as u32));
    }
    (p, group_by)
}

/// restic's command-line arguments for `policy`.
fn policy_args(policy: &RetentionPolicy, semantics: Semantics) -> Vec<String> {
    let mut args = Vec::new();
    let counts = [
        ("--keep-last", policy.keep_last),
        ("--keep-hourly", policy.keep_hourly),
        ("--keep-daily", policy.keep_daily),
        ("--keep-weekly", policy.keep_weekly),
        ("--keep-monthly", policy.keep_monthly),
        ("--keep-yearly", policy.keep_yearly),
    ];
    for (flag, count) in counts {
        match count {
            None | Some(KeepCount::Count(0)) => {}
            Some(KeepCount::Count(n)) => args.extend([flag.to_owned(), n.to_string()]),
            Some(KeepCount::Unlimited) => args.extend([
                flag.to_owned(),
                match semantics {
                    Semantics::Restic014 => "-1".to_owned(),
                    _ => "unlimited".to_owned(),
                },
            ]),
        }
    }
    let durations = [
        ("--keep-within", policy.keep_within),
        ("--keep-within-hourly", policy.keep_within_hourly),
        ("--keep-within-daily", policy.keep_within_daily),
        ("--keep-within-weekly", policy.keep_within_weekly),
        ("--keep-within-monthly", policy.keep_within_monthly),
        ("--keep-within-yearly", policy.keep_within_yearly),
    ];
    for (flag, d) in durations {
        if let Some(d) = d.filter(|d| !d.is_zero()) {
            args.extend([flag.to_owned(), d.to_string()]);
        }
    }
    for list in &policy.keep_tags {
        args.extend(["--keep-tag".to_owned(), list.join(",")]);
    }
    args
}

struct Env {
    work: PathBuf,
    template: PathBuf,
    dirs: [PathBuf; 2],
    semantics: Semantics,
}

fn restic(env: &Env, repo: &Path, tz_name: &str, args: &[String]) -> Result<Vec<u8>, String> {
    let out = Command::new("restic")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &env.work)
        .env("XDG_CACHE_HOME", env.work.join("cache"))
        .env("TZ", tz_name)
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("RESTIC_REPOSITORY", repo)
        .output()
        .map_err(|e| format!("running restic {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "restic {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

/// Writes the low-KDF template repository (see the module docs) to `dir`.
fn write_template(dir: &Path) -> std::io::Result<()> {
    for sub in ["index", "keys", "locks", "snapshots"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    for i in 0..=255u8 {
        std::fs::create_dir_all(dir.join("data").join(format!("{i:02x}")))?;
    }
    std::fs::write(dir.join("keys").join(TEMPLATE_KEY.0), TEMPLATE_KEY.1)?;
    let config: Vec<u8> = (0..TEMPLATE_CONFIG.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&TEMPLATE_CONFIG[i..i + 2], 16).expect("hex"))
        .collect();
    std::fs::write(dir.join("config"), config)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn parse_time(v: &Value) -> Timestamp {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad snapshot time {v}"))
}

/// One comparable line per snapshot of a group: time, host, paths, tags, keep, reasons.
type Row = (
    Timestamp,
    String,
    Vec<String>,
    Vec<String>,
    bool,
    Vec<String>,
);

fn row(sn: &SnapshotInfo, keep: bool, reasons: Vec<String>) -> Row {
    let mut paths = sn.paths.clone();
    paths.sort();
    let mut tags = sn.tags.clone();
    tags.sort();
    (sn.time, sn.hostname.clone(), paths, tags, keep, reasons)
}

/// What one timeline compared: policy evaluations, snapshot decisions, of which kept.
#[derive(Default)]
struct Stats {
    policies: usize,
    decisions: usize,
    kept: usize,
}

/// Runs one timeline; returns what was compared, or the mismatch reports.
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn run_timeline(env: &Env, tl: &Timeline) -> Result<Stats, String> {
    let mut stats = Stats::default();
    let repo = env.work.join(&tl.name);
    copy_dir(&env.template, &repo).map_err(|e| format!("copying template repo: {e}"))?;
    for p in &tl.snapshots {
        let mut args: Vec<String> = [
            "backup",
            "-q",
            "--no-cache",
            "--time",
            &p.wall.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            "--host",
            &p.host,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if !p.tags.is_empty() {
            args.extend(["--tag".to_owned(), p.tags.join(",")]);
        }
        args.push(env.dirs[p.dir].display().to_string());
        restic(env, &repo, tl.tz_name, &args)?;
    }

    let listing = restic(
        env,
        &repo,
        tl.tz_name,
        &["snapshots", "--json", "--no-lock", "--no-cache"].map(String::from),
    )?;
    let listing: Value = serde_json::from_slice(&listing).map_err(|e| e.to_string())?;
    let snapshots: Vec<SnapshotInfo> = listing
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| SnapshotInfo {
            id: s["id"].as_str().expect("snapshot id").to_owned(),
            time: parse_time(&s["time"]),
            hostname: s["hostname"].as_str().unwrap_or_default().to_owned(),
            paths: strings(&s["paths"]),
            tags: strings(&s["tags"]),
        })
        .collect();
    if snapshots.len() != tl.snapshots.len() {
        return Err(format!(
            "{}: restic lists {} snapshots, {} were made",
            tl.name,
            snapshots.len(),
            tl.snapshots.len()
        ));
    }
    let by_id: BTreeMap<&str, &SnapshotInfo> =
        snapshots.iter().map(|s| (s.id.as_str(), s)).collect();
    let tz = TimeZone::get(tl.tz_name).map_err(|e| e.to_string())?;

    let mut failures = Vec::new();
    for (policy, group_by) in &tl.policies {
        let mut args: Vec<String> = ["forget", "--dry-run", "--json", "--no-lock", "--no-cache"]
            .map(String::from)
            .to_vec();
        args.extend(["--group-by".to_owned(), group_by.to_string()]);
        args.extend(policy_args(policy, env.semantics));
        let now = Timestamp::now();
        let out = restic(env, &repo, tl.tz_name, &args)?;
        let ours = apply_with(
            &snapshots,
            policy,
            *group_by,
            &tz,
            &ApplyOptions {
                now: Some(now),
                semantics: env.semantics,
            },
        );
        for g in &ours {
            let times: Vec<Timestamp> = g
                .decisions
                .iter()
                .map(|d| by_id[d.id.as_str()].time)
                .collect();
            if times.windows(2).any(|w| w[0] < w[1]) {
                failures.push(format!("{}: decisions not newest first", tl.name));
            }
        }

        let context = || {
            format!(
                "{} (TZ={}, policy \"{policy}\", group-by \"{group_by}\", restic args {:?})",
                tl.name,
                tl.tz_name,
                &args[5..]
            )
        };
        let text = String::from_utf8_lossy(&out);
        if policy.is_empty() {
            // restic applies no empty policy: nothing to compare but "keep everything".
            if ours.iter().any(|g| g.decisions.iter().any(|d| !d.keep)) {
                failures.push(format!("{}: empty policy removed snapshots", context()));
            }
            continue;
        }
        let theirs: Vec<Value> = if text.trim().is_empty() {
            Vec::new()
        } else {
            serde_json::from_str(&text).map_err(|e| format!("{}: bad JSON: {e}", context()))?
        };

        let mut their_groups: BTreeMap<GroupKey, Vec<Row>> = BTreeMap::new();
        for g in &theirs {
            let key = GroupKey {
                host: group_by
                    .host
                    .then(|| g["host"].as_str().unwrap_or_default().to_owned()),
                paths: group_by.paths.then(|| strings(&g["paths"])),
                tags: group_by.tags.then(|| strings(&g["tags"])),
            };
            let keep: Vec<&Value> = g["keep"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            let reasons: Vec<&Value> = g["reasons"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            if keep.len() != reasons.len() {
                return Err(format!("{}: restic keep/reasons lengths differ", context()));
            }
            let mut rows = Vec::new();
            for (k, r) in keep.iter().zip(&reasons) {
                let sn = by_id[k["id"].as_str().expect("id")];
                rows.push(row(sn, true, strings(&r["matches"])));
            }
            for k in g["remove"].as_array().into_iter().flatten() {
                let sn = by_id[k["id"].as_str().expect("id")];
                rows.push(row(sn, false, Vec::new()));
            }
            rows.sort();
            their_groups.insert(key, rows);
        }
        let our_groups: BTreeMap<GroupKey, Vec<Row>> = ours
            .iter()
            .map(|g| {
                let mut rows: Vec<Row> = g
                    .decisions
                    .iter()
                    .map(|d| row(by_id[d.id.as_str()], d.keep, d.reasons.clone()))
                    .collect();
                rows.sort();
                (g.key.clone(), rows)
            })
            .collect();

        if their_groups.keys().ne(our_groups.keys()) {
            failures.push(format!(
                "{}: group keys differ:\n  restic: {:?}\n  ours:   {:?}",
                context(),
                their_groups.keys().collect::<Vec<_>>(),
                our_groups.keys().collect::<Vec<_>>()
            ));
            continue;
        }
        stats.policies += 1;
        for (key, theirs) in &their_groups {
            let ours = &our_groups[key];
            stats.decisions += ours.len();
            stats.kept += ours.iter().filter(|r| r.4).count();
            if theirs != ours {
                let mut report = format!(
                    "{}: group {key:?} differs (time, keep: restic | ours):",
                    context()
                );
                for (t, o) in theirs.iter().zip(ours) {
                    let mark = if t == o { " " } else { "*" };
                    report.push_str(&format!(
                        "\n  {mark} {} {} {} {:?} | {} {:?}",
                        t.0.to_zoned_datetime(tz.clone())
                            .strftime("%Y-%m-%d %H:%M:%S %:z"),
                        t.1,
                        t.4,
                        t.5,
                        o.4,
                        o.5
                    ));
                }
                failures.push(report);
            }
        }
    }
    if failures.is_empty() {
        Ok(stats)
    } else {
        Err(failures.join("\n"))
    }
}

/// `(major, minor)` of the installed restic, or `None` if it cannot be run.
fn restic_version() -> Option<(u32, u32, String)> {
    let out = Command::new("restic").arg("version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor, text.trim().to_owned()))
}

/// Skipped on a developer machine, failing in CI (`tresor_testkit::require`).
fn skip_or_fail(message: &str) {
    tresor_testkit::require::absent(&format!(
        "restic 0.14 or later ({message}; `apt-get install -y restic`)"
    ));
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn retention_matches_restic_forget() {
    let Some((major, minor, banner)) = restic_version() else {
        skip_or_fail("`restic` is not installed or `restic version` failed");
        return;
    };
    let semantics = match (major, minor) {
        (0, m) if m <= 15 => Semantics::Restic014,
        (0, m) if m >= 18 => Semantics::Current,
        (m, _) if m >= 1 => Semantics::Current,
        _ => {
            skip_or_fail(&format!(
                "{banner}: restic 0.16/0.17 follow neither Semantics::Restic014 nor ::Current"
            ));
            return;
        }
    };
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("temp dir");
    let work = tmp.path().to_path_buf();
    let dirs = [work.join("data-one"), work.join("data-two")];
    for (i, d) in dirs.iter().enumerate() {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("file.txt"), format!("content {i}\n")).unwrap();
    }
    let env = Env {
        template: work.join("template"),
        work: work.clone(),
        dirs,
        semantics,
    };
    write_template(&env.template).expect("writing template repository");
    let check = ["cat", "config", "--no-cache", "--no-lock"].map(String::from);
    if let Err(e) = restic(&env, &env.template, "UTC", &check) {
        eprintln!(
            "notice: the low-KDF template repository does not open ({e}); using `restic init`"
        );
        std::fs::remove_dir_all(&env.template).expect("removing template");
        restic(&env, &env.template, "UTC", &["init".to_owned()]).expect("restic init");
    }

    let mut rng = Rng(SEED);
    let timelines: Vec<Timeline> = (0..TIMELINES).map(|i| generate(i, &mut rng)).collect();
    let jobs: usize = std::env::var("RETENTION_VS_RESTIC_JOBS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6)
        .max(1);
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let totals = Mutex::new(Stats::default());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(tl) = timelines.get(i) else { break };
                    match run_timeline(&env, tl) {
                        Ok(n) => {
                            let mut t = totals.lock().unwrap();
                            t.policies += n.policies;
                            t.decisions += n.decisions;
                            t.kept += n.kept;
                        }
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let totals = totals.into_inner().unwrap();
    let snapshot_count: usize = timelines.iter().map(|t| t.snapshots.len()).sum();
    eprintln!(
        "{banner}: {} timelines, {snapshot_count} snapshots, {} policy evaluations \
         ({} snapshot decisions, {} kept) compared \
         ({} failed timelines) in {:.1?} with {jobs} jobs",
        timelines.len(),
        totals.policies,
        totals.decisions,
        totals.kept,
        failures.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "retention decisions differ from restic:\n{}",
        failures.join("\n\n")
    );
}
