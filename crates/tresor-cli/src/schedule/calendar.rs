//! `--at` and `--randomized-delay` of `schedule install`: the shorthands (`hourly`, `daily`,
//! `weekly`, `daily HH:MM`, `weekly DAY HH:MM`) translated to systemd's `OnCalendar=` and to a
//! crontab's five fields; any other text is taken as a systemd calendar expression (checked by
//! `systemd-analyze calendar` when it is installed), which `--cron` refuses.

use anyhow::{Result, bail};

/// A schedule as `--at` gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum At {
    /// A shorthand: minute, hour (`None`: every hour) and weekday (0 = Sunday; `None`: every
    /// day).
    Short {
        /// 0–59.
        minute: u8,
        /// 0–23; `None` for `hourly`.
        hour: Option<u8>,
        /// 0–6, 0 = Sunday; `None` for every day.
        weekday: Option<u8>,
    },
    /// A systemd calendar expression, as given.
    Systemd(String),
}

/// Weekday names as systemd writes them, Sunday first (cron's numbering).
const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Parse `--at`.
///
/// # Errors
/// A malformed shorthand (`daily 25:00`, `weekly Funday 02:00`), or text with characters no
/// calendar expression has (control characters, quotes, `;`, …).
pub fn parse(at: &str) -> Result<At> {
    let words: Vec<&str> = at.split_whitespace().collect();
    let bad = || anyhow::anyhow!("--at {at:?}: {}", USAGE);
    match words.as_slice() {
        ["hourly"] => return Ok(short(0, None, None)),
        ["daily"] => return Ok(short(0, Some(0), None)),
        ["weekly"] => return Ok(short(0, Some(0), Some(1))),
        ["daily", hm] => {
            let (h, m) = clock(hm).ok_or_else(bad)?;
            return Ok(short(m, Some(h), None));
        }
        ["weekly", day, hm] => {
            let d = weekday(day).ok_or_else(bad)?;
            let (h, m) = clock(hm).ok_or_else(bad)?;
            return Ok(short(m, Some(h), Some(d)));
        }
        [first, ..] if matches!(*first, "hourly" | "daily" | "weekly") => return Err(bad()),
        _ => {}
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || " *-:,./~+".contains(c);
    if at.trim().is_empty() || !at.chars().all(allowed) {
        return Err(bad());
    }
    Ok(At::Systemd(at.trim().to_string()))
}

const USAGE: &str = "not a schedule: use hourly, daily, weekly, \"daily HH:MM\", \
                     \"weekly DAY HH:MM\" or a systemd calendar expression \
                     (see `systemd-analyze calendar`)";

fn short(minute: u8, hour: Option<u8>, weekday: Option<u8>) -> At {
    At::Short {
        minute,
        hour,
        weekday,
    }
}

/// `HH:MM` (one or two digits each) as (hour, minute).
fn clock(s: &str) -> Option<(u8, u8)> {
    let (h, m) = s.split_once(':')?;
    let digits = |t: &str| !t.is_empty() && t.len() <= 2 && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return None;
    }
    let (h, m) = (h.parse::<u8>().ok()?, m.parse::<u8>().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

/// A weekday by its English name or its first three letters, any case; 0 = Sunday.
fn weekday(s: &str) -> Option<u8> {
    let lower = s.to_ascii_lowercase();
    FULL.iter()
        .position(|f| *f == lower || (lower.len() == 3 && f.starts_with(&lower)))
        .and_then(|i| u8::try_from(i).ok())
}

const FULL: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

impl At {
    /// The `OnCalendar=` value.
    pub fn on_calendar(&self) -> String {
        match self {
            At::Short {
                minute, hour: None, ..
            } => format!("*-*-* *:{minute:02}:00"),
            At::Short {
                minute,
                hour: Some(h),
                weekday,
            } => {
                let day = weekday.map_or(String::new(), |d| format!("{} ", DAYS[usize::from(d)]));
                format!("{day}*-*-* {h:02}:{minute:02}:00")
            }
            At::Systemd(s) => s.clone(),
        }
    }

    /// The five time fields of a crontab line (`30 2 * * *`).
    ///
    /// # Errors
    /// A systemd calendar expression: cron has no way to say it.
    pub fn cron(&self) -> Result<String> {
        match self {
            At::Short {
                minute,
                hour,
                weekday,
            } => {
                let field = |v: Option<u8>| v.map_or("*".to_string(), |v| v.to_string());
                Ok(format!("{minute} {} * * {}", field(*hour), field(*weekday)))
            }
            At::Systemd(s) => bail!(
                "--at {s:?}: --cron takes only hourly, daily, weekly, \"daily HH:MM\" or \
                 \"weekly DAY HH:MM\" (a systemd calendar expression needs --systemd)"
            ),
        }
    }
}

/// Check `--randomized-delay`: a systemd time span such as `30min`, `1h 30min`, `0`.
///
/// # Errors
/// Anything else.
pub fn delay(s: &str) -> Result<String> {
    const UNITS: [&str; 17] = [
        "", "us", "ms", "s", "sec", "second", "seconds", "m", "min", "minute", "minutes", "h",
        "hr", "hour", "hours", "d", "days",
    ];
    let ok = !s.trim().is_empty()
        && s.split_whitespace().all(|w| {
            let digits = w.bytes().take_while(u8::is_ascii_digit).count();
            digits > 0 && UNITS.contains(&&w[digits..])
        });
    if !ok {
        bail!("--randomized-delay {s:?}: not a time span (e.g. 30min, 1h, 90s, 0)");
    }
    Ok(s.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthands_translate() {
        for (at, cal, cron) in [
            ("hourly", "*-*-* *:00:00", "0 * * * *"),
            ("daily", "*-*-* 00:00:00", "0 0 * * *"),
            ("weekly", "Mon *-*-* 00:00:00", "0 0 * * 1"),
            ("daily 02:30", "*-*-* 02:30:00", "30 2 * * *"),
            ("daily 2:05", "*-*-* 02:05:00", "5 2 * * *"),
            ("weekly sun 23:59", "Sun *-*-* 23:59:00", "59 23 * * 0"),
            ("weekly Saturday 04:00", "Sat *-*-* 04:00:00", "0 4 * * 6"),
        ] {
            let a = parse(at).unwrap();
            assert_eq!(a.on_calendar(), cal, "{at}");
            assert_eq!(a.cron().unwrap(), cron, "{at}");
        }
    }

    #[test]
    fn bad_forms_are_one_error() {
        for at in [
            "daily 25:00",
            "daily 02:60",
            "daily 2",
            "weekly Funday 02:00",
            "weekly 02:00",
            "hourly 5",
            "",
            "daily\nExecStartPre=/bin/sh",
            "Mon \"x\"",
            "*-*-* 02:00; rm",
        ] {
            let e = parse(at).unwrap_err().to_string();
            assert!(e.starts_with("--at "), "{at:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn systemd_expressions_pass_unchanged_and_cron_refuses_them() {
        let a = parse("Mon..Fri *-*-* 22:00").unwrap();
        assert_eq!(a.on_calendar(), "Mon..Fri *-*-* 22:00");
        assert!(a.cron().unwrap_err().to_string().contains("--systemd"));
    }

    #[test]
    fn delays() {
        assert_eq!(delay("30min").unwrap(), "30min");
        assert_eq!(delay("1h  30min").unwrap(), "1h 30min");
        assert_eq!(delay("0").unwrap(), "0");
        for bad in ["", "soon", "30 minutes later", "5x", "1h\nUser=root"] {
            assert!(delay(bad).is_err(), "{bad:?}");
        }
    }
}
