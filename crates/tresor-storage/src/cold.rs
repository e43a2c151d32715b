//! Cold storage classes: objects that must be thawed (restored) before they can be read, such as
//! S3 `GLACIER` (Flexible Retrieval) and `DEEP_ARCHIVE`. See [`crate::Storage::cold_state`] and
//! [`crate::Storage::request_thaw`]; storages without such classes report every object as hot.

use std::fmt;
use std::time::{Duration, SystemTime};

/// A storage class whose objects cannot be read without a thaw request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColdClass {
    /// S3 Glacier Flexible Retrieval (`GLACIER`).
    Glacier,
    /// S3 Glacier Deep Archive (`DEEP_ARCHIVE`).
    DeepArchive,
}

impl ColdClass {
    /// The class named by an `x-amz-storage-class` value, `None` for every other (hot) class.
    pub fn from_s3(name: &str) -> Option<ColdClass> {
        match name {
            "GLACIER" => Some(ColdClass::Glacier),
            "DEEP_ARCHIVE" => Some(ColdClass::DeepArchive),
            _ => None,
        }
    }

    /// The S3 name of the class.
    pub fn as_s3(self) -> &'static str {
        match self {
            ColdClass::Glacier => "GLACIER",
            ColdClass::DeepArchive => "DEEP_ARCHIVE",
        }
    }

    /// The minimum storage duration AWS bills: an object deleted earlier is charged for the rest
    /// (90 days for `GLACIER`, 180 for `DEEP_ARCHIVE`).
    pub fn minimum_storage(self) -> Duration {
        let days = match self {
            ColdClass::Glacier => 90,
            ColdClass::DeepArchive => 180,
        };
        Duration::from_secs(days * 86_400)
    }

    /// AWS's documented typical time until a thaw of `tier` completes, as (low, high) bounds
    /// ("Archive retrieval options", Amazon S3 User Guide,
    /// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/restoring-objects-retrieval-options.html>,
    /// read 2026-12-06): Glacier Flexible Retrieval expedited 1–5 minutes, standard 3–5 hours,
    /// bulk 5–12 hours; Deep Archive has no expedited tier, standard within 12 hours, bulk within
    /// 48 hours. `None`: the tier does not exist for the class.
    pub fn typical_wait(self, tier: ThawTier) -> Option<(Duration, Duration)> {
        let (m, h) = (
            |n: u64| Duration::from_secs(n * 60),
            |n: u64| Duration::from_secs(n * 3600),
        );
        match (self, tier) {
            (ColdClass::Glacier, ThawTier::Expedited) => Some((m(1), m(5))),
            (ColdClass::Glacier, ThawTier::Standard) => Some((h(3), h(5))),
            (ColdClass::Glacier, ThawTier::Bulk) => Some((h(5), h(12))),
            (ColdClass::DeepArchive, ThawTier::Expedited) => None,
            (ColdClass::DeepArchive, ThawTier::Standard) => Some((h(0), h(12))),
            (ColdClass::DeepArchive, ThawTier::Bulk) => Some((h(0), h(48))),
        }
    }
}

impl fmt::Display for ColdClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_s3())
    }
}

/// How fast (and at what price) a thaw is done: S3's `GlacierJobParameters/Tier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThawTier {
    /// Minutes (Glacier Flexible Retrieval only).
    Expedited,
    /// Hours.
    Standard,
    /// The cheapest and slowest.
    Bulk,
}

impl ThawTier {
    /// All tiers, fastest first.
    pub const ALL: [ThawTier; 3] = [ThawTier::Expedited, ThawTier::Standard, ThawTier::Bulk];

    /// The S3 name (`Expedited`, `Standard`, `Bulk`).
    pub fn as_s3(self) -> &'static str {
        match self {
            ThawTier::Expedited => "Expedited",
            ThawTier::Standard => "Standard",
            ThawTier::Bulk => "Bulk",
        }
    }

    /// Parse `expedited`, `standard` or `bulk` (any case).
    ///
    /// # Errors
    /// A message naming the accepted values.
    pub fn parse(s: &str) -> Result<ThawTier, String> {
        ThawTier::ALL
            .into_iter()
            .find(|t| t.as_s3().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("thaw tier {s:?}: expected expedited, standard or bulk"))
    }
}

impl fmt::Display for ThawTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_s3().to_ascii_lowercase())
    }
}

/// Where a thaw of a cold object stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    /// No thaw asked for (or the last one expired): the object cannot be read.
    None,
    /// A thaw is under way: the object cannot be read yet.
    Ongoing,
    /// A thawed copy can be read (until it expires).
    Done,
}

/// What [`crate::Storage::cold_state`] tells about an object in a cold class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColdState {
    /// The object's class.
    pub class: ColdClass,
    /// Its thaw.
    pub restore: Restore,
    /// When it was stored (`Last-Modified`), if the storage said.
    pub stored_at: Option<SystemTime>,
}

impl ColdState {
    /// Whether the object can be read now.
    pub fn readable(&self) -> bool {
        self.restore == Restore::Done
    }
}
