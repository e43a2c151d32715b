//! The one time rule of tresor's output (`docs/cli.md`, "Times"): people read local time to the
//! second, `YYYY-MM-DD HH:MM:SS`; JSON and what tresor records carry RFC 3339 with the offset;
//! names (mount folders) are local time to the second with the offset, so they stay unique
//! across a change of daylight saving time. Every command prints its times through here.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::path::Path;

/// `t` for people: `"2026-01-02 15:04:05"` in `zone`, without fraction or offset.
pub fn human(t: Timestamp, zone: &TimeZone) -> String {
    t.to_zoned_datetime(zone.clone())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A recorded time (RFC 3339, as snapshots and key files hold it) for people ([`human`]), or
/// `None` when it does not parse (the caller shows the recorded text, escaped).
pub fn human_recorded(recorded: &str, zone: &TimeZone) -> Option<String> {
    recorded.parse::<Timestamp>().ok().map(|t| human(t, zone))
}

/// `t` for JSON and for the record: RFC 3339 with the offset of `zone` and the fraction of a
/// second when there is one, e.g. `"2026-01-02T15:04:05.5+05:30"`.
pub fn rfc3339(t: Timestamp, zone: &TimeZone) -> String {
    t.to_zoned_datetime(zone.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%.f%:z")
        .to_string()
}

/// `t` as a file name (mount folders): local time to the second with the offset,
/// `"2026-01-02T15:04:05+05:30"` (restic's form; no `/`, unique per second).
pub fn name(t: Timestamp, zone: &TimeZone) -> String {
    t.to_zoned_datetime(zone.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// The current time to record (key files, revocations, accepted signers): RFC 3339 in UTC
/// (`Z`), so that records of different machines sort as text (`key list` sorts by it).
pub fn now_recorded() -> String {
    Timestamp::now().to_string()
}

/// A `SystemTime` (e.g. the end of an object lock) for people, in this machine's zone
/// ([`human`]); one beyond jiff's range as its seconds since the epoch.
pub fn human_system(t: std::time::SystemTime) -> String {
    match Timestamp::try_from(t) {
        Ok(t) => human(t, &local_zone()),
        Err(_) => format!(
            "{} s after the epoch",
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        ),
    }
}

/// This machine's time zone, as jiff's [`TimeZone::system`] finds it (the `TZ` environment
/// variable, else `/etc/localtime`), without its cost when `TZ` is unset and `/etc/localtime`
/// is a link into a zoneinfo directory (Debian's and Fedora's way): jiff then looks the link's
/// zone name up in its zoneinfo database, which first lists every zone file under
/// `/usr/share/zoneinfo` — about 600 files in 22 directories, 0.4 ms of a 9 ms backup. The
/// file the link points at holds the same TZif data; it is read here (as the C library reads
/// it) and named as jiff names it (the link's path after `zoneinfo/`). Anything else — `TZ` or
/// `TZDIR` set (jiff then looks names up in `TZDIR`), no link, a file jiff's parser refuses —
/// is left to [`TimeZone::system`]. Offsets are the same either way; a zone name (never
/// shown: times carry their offset) may be given where jiff has none, for a link into
/// `posix/` or `right/`. Not cached: a long-running command sees a changed zone.
pub fn local_zone() -> TimeZone {
    if std::env::var_os("TZ").is_some() || std::env::var_os("TZDIR").is_some() {
        return TimeZone::system();
    }
    linked_zone(Path::new("/etc/localtime")).unwrap_or_else(TimeZone::system)
}

/// The current time in this machine's zone ([`local_zone`]).
pub fn now_local() -> jiff::ZonedDateTime {
    Timestamp::now().to_zoned_datetime(local_zone())
}

/// The zone of `link`, a symbolic link to a TZif file whose path has a `zoneinfo/`
/// component; `None` when it is not such a link or the file does not parse.
fn linked_zone(link: &Path) -> Option<TimeZone> {
    let target = std::fs::read_link(link).ok()?;
    let target = target.to_str()?;
    let name = &target[target.rfind("zoneinfo/")? + "zoneinfo/".len()..];
    let data = std::fs::read(link).ok()?;
    TimeZone::tzif(name, &data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link into the system's zoneinfo directory (Debian's tzdata, installed with the
    /// toolchain image) gives the zone jiff's database has under that name, offsets and rules.
    #[test]
    fn a_linked_zone_is_the_database_zone_of_its_name() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "Asia/Kolkata",
            "America/New_York",
            "Etc/UTC",
            "Australia/Lord_Howe",
        ] {
            let link = dir.path().join(name.replace('/', "-"));
            std::os::unix::fs::symlink(format!("/usr/share/zoneinfo/{name}"), &link).unwrap();
            let zone = linked_zone(&link).unwrap();
            let db = TimeZone::get(name).unwrap();
            assert_eq!(zone.iana_name(), Some(name));
            // Both sides of daylight saving time, and long past and future rules.
            for t in [
                "1950-06-01T00:00:00Z",
                "2026-01-15T12:00:00Z",
                "2026-07-15T12:00:00Z",
                "2080-03-01T00:00:00Z",
            ] {
                let t: Timestamp = t.parse().unwrap();
                assert_eq!(zone.to_offset(t), db.to_offset(t), "{name} at {t}");
            }
        }
    }

    /// Not a link, a link without `zoneinfo/`, a link to a file that is no TZif: no zone (then
    /// jiff decides).
    #[test]
    fn what_is_no_linked_zone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("localtime");
        std::fs::copy("/usr/share/zoneinfo/Asia/Kolkata", &file).unwrap();
        assert!(linked_zone(&file).is_none());
        let plain = dir.path().join("plain");
        std::os::unix::fs::symlink(&file, &plain).unwrap();
        assert!(linked_zone(&plain).is_none());
        let junk_dir = dir.path().join("zoneinfo");
        std::fs::create_dir(&junk_dir).unwrap();
        std::fs::write(junk_dir.join("Junk"), b"TZif but not really").unwrap();
        let junk = dir.path().join("junk");
        std::os::unix::fs::symlink(junk_dir.join("Junk"), &junk).unwrap();
        assert!(linked_zone(&junk).is_none());
    }

    /// This machine's zone as [`local_zone`] finds it has the offsets of the one jiff finds, and
    /// its name when jiff has one.
    #[test]
    fn the_local_zone_is_jiffs() {
        let (ours, jiffs) = (local_zone(), TimeZone::system());
        if jiffs.iana_name().is_some() {
            assert_eq!(ours.iana_name(), jiffs.iana_name());
        }
        for t in [
            "1990-01-15T12:00:00Z",
            "2026-01-15T12:00:00Z",
            "2026-07-15T12:00:00Z",
        ] {
            let t: Timestamp = t.parse().unwrap();
            assert_eq!(ours.to_offset(t), jiffs.to_offset(t), "at {t}");
        }
    }

    fn kolkata() -> TimeZone {
        TimeZone::posix("IST-5:30").unwrap()
    }

    #[test]
    fn forms() {
        let t: Timestamp = "2026-01-02T09:34:05.123456789Z".parse().unwrap();
        let z = kolkata();
        assert_eq!(human(t, &z), "2026-01-02 15:04:05");
        assert_eq!(rfc3339(t, &z), "2026-01-02T15:04:05.123456789+05:30");
        assert_eq!(name(t, &z), "2026-01-02T15:04:05+05:30");
        let whole: Timestamp = "2026-01-02T09:34:05Z".parse().unwrap();
        assert_eq!(rfc3339(whole, &z), "2026-01-02T15:04:05+05:30");
        assert_eq!(
            human_recorded("2026-01-02T05:04:05.9-04:30", &z).as_deref(),
            Some("2026-01-02 15:04:05")
        );
        assert_eq!(human_recorded("yesterday", &z), None);
    }
}
