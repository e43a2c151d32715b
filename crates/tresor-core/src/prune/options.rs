//! The options of a prune run, and how their values are written.

use crate::error::{CoreError, Result};
use serde::Serialize;

/// How much unused space partly used packs may keep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxUnused {
    /// A percentage of the used bytes (restic's `--max-unused 5%`).
    Percent(f64),
    /// An absolute number of bytes.
    Bytes(u64),
    /// Never repack for unused space.
    Unlimited,
}

impl MaxUnused {
    /// The tolerated unused bytes when `used` bytes are in use.
    pub fn limit(&self, used: u64) -> u64 {
        match *self {
            MaxUnused::Percent(p) => (used as f64 * p / 100.0) as u64,
            MaxUnused::Bytes(b) => b,
            MaxUnused::Unlimited => u64::MAX,
        }
    }
}

impl std::str::FromStr for MaxUnused {
    type Err = CoreError;
    /// `unlimited`, `N%` or `N` (percent), or a size with a unit (`500M`, `2G`: bytes).
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("unlimited") {
            return Ok(MaxUnused::Unlimited);
        }
        let bad = || CoreError::Invalid(format!("--max-unused {s:?}: use N%, a size or unlimited"));
        let num = t.strip_suffix('%').unwrap_or(t).trim();
        if let Ok(p) = num.parse::<f64>() {
            if !(0.0..=100.0).contains(&p) && t.ends_with('%') {
                return Err(bad());
            }
            if p.is_finite() && p >= 0.0 {
                return Ok(MaxUnused::Percent(p));
            }
            return Err(bad());
        }
        parse_size(t).map(MaxUnused::Bytes).map_err(|_| bad())
    }
}

/// Parse a size: a number of bytes with an optional binary unit `K`, `M`, `G`, `T` (also `KiB`,
/// `MB`… — all binary, as restic does).
///
/// # Errors
/// [`CoreError::Invalid`].
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    let stripped = upper
        .strip_suffix("IB")
        .or_else(|| upper.strip_suffix('B'))
        .unwrap_or(&upper);
    let (num, mul) = match stripped.chars().last() {
        Some('K') => (&stripped[..stripped.len() - 1], 1u64 << 10),
        Some('M') => (&stripped[..stripped.len() - 1], 1 << 20),
        Some('G') => (&stripped[..stripped.len() - 1], 1 << 30),
        Some('T') => (&stripped[..stripped.len() - 1], 1 << 40),
        _ => (stripped, 1),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| CoreError::Invalid(format!("size {s:?}: use a number with K, M, G or T")))?;
    if !v.is_finite() || v < 0.0 {
        return Err(CoreError::Invalid(format!("size {s:?} is negative")));
    }
    Ok((v * mul as f64) as u64)
}

/// Options of a prune run.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Unused space tolerated in partly used packs.
    pub max_unused: MaxUnused,
    /// At most this many bytes of packs are repacked in one run.
    pub max_repack_size: Option<u64>,
    /// Hosts the operator declares inactive: no backup of theirs started before the last
    /// arming run is still running. They no longer hold back deletion.
    pub inactive_hosts: Vec<String>,
    /// Compression and encryption threads for repacking.
    pub workers: usize,
    /// Ask the storage which packs lie in a cold class ([`tresor_storage::Storage::cold_state`],
    /// one `HEAD` per pack that is not wholly used): set it only when the storage can be cold
    /// (S3 with a cold data class). Cold packs are never repacked; a wholly unused one is
    /// condemned only once its class's minimum storage duration has passed (format §16.2).
    pub cold_probe: bool,
    /// Condemn wholly unused cold packs even before their class's minimum storage duration
    /// (the storage then charges the remaining days).
    pub cold_early_delete: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            max_unused: MaxUnused::Percent(5.0),
            max_repack_size: None,
            inactive_hosts: Vec::new(),
            workers: 2,
            cold_probe: false,
            cold_early_delete: false,
        }
    }
}
