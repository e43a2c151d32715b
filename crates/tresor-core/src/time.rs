//! The one time rule of tresor's output (`docs/cli.md`, "Times"): people read local time to the
//! second, `YYYY-MM-DD HH:MM:SS`; JSON and what tresor records carry RFC 3339 with the offset;
//! names (mount folders) are local time to the second with the offset, so they stay unique
//! across a change of daylight saving time. Every command prints its times through here.

use jiff::Timestamp;
use jiff::tz::TimeZone;

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
        Ok(t) => human(t, &TimeZone::system()),
        Err(_) => format!(
            "{} s after the epoch",
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
