//! The price table: what a storage class costs per GB-month, per request and per GB retrieved,
//! its minimum storage duration and minimum billed object size (docs/cli.md, "cost").
//!
//! The built-in table ([`builtin`]) is AWS S3 in us-east-1 (N. Virginia), first 50 TB tier, as of
//! [`PRICES_DATE`] from [`PRICES_SOURCE`] (numbers cross-checked against the third-party copies
//! of that page listed in docs/cli.md). Other providers (Wasabi, B2, Scaleway, MinIO at zero)
//! override it with `[prices.CLASS]` tables, in the configuration file or a `--prices FILE` of
//! the same shape ([`Prices::with_overrides`]). Amounts are US dollars; "GB" is 2^30 bytes.
//!
//! Public API for other commands (e.g. `restore --dry-run` on a cold tier):
//! [`Prices::builtin`], [`Prices::class`], [`retrieval_cost`], [`ClassPrice::monthly`].

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// When the built-in prices were read.
pub const PRICES_DATE: &str = "2026-12-06";
/// Where the built-in prices come from.
pub const PRICES_SOURCE: &str = "https://aws.amazon.com/s3/pricing/ (us-east-1)";
/// Bytes in a GB as S3 bills it (GiB).
pub const GB: f64 = (1u64 << 30) as f64;
/// The largest amount a price file may give (US dollars per unit): anything above is a typo.
pub const MAX_PRICE: f64 = 1_000_000.0;

/// A thaw (restore from archive) tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Minutes (GLACIER only).
    Expedited,
    /// Hours.
    Standard,
    /// Many hours, cheapest.
    Bulk,
}

impl Tier {
    /// All tiers, fastest first.
    pub const ALL: [Tier; 3] = [Tier::Expedited, Tier::Standard, Tier::Bulk];
}

/// What one thaw tier costs.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TierPrice {
    /// Dollars per GB thawed.
    #[serde(default)]
    pub per_gb: f64,
    /// Dollars per 1 000 restore requests.
    #[serde(default)]
    pub per_1000: f64,
}

/// The prices of one storage class.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ClassPrice {
    /// Dollars per GB-month stored.
    pub storage_gb_month: f64,
    /// Dollars per 1 000 PUT, COPY, POST or LIST requests.
    pub put_per_1000: f64,
    /// Dollars per 1 000 GET, SELECT (and HEAD) requests.
    pub get_per_1000: f64,
    /// Dollars per GB read back (classes readable without a thaw; 0 for STANDARD).
    pub retrieval_gb: f64,
    /// Thaw prices per tier (archive classes only; a missing tier is not offered).
    pub thaw: BTreeMap<Tier, TierPrice>,
    /// Minimum storage duration: an object deleted younger is billed as if kept this long.
    pub min_days: u32,
    /// Minimum billed object size in bytes (smaller objects are billed as this size).
    pub min_object_bytes: u64,
    /// Bytes billed per object on top of its size (archive classes' index, 40 KiB on AWS).
    pub overhead_bytes: u64,
}

/// Price entry, as a builder shorthand: storage, put, get, retrieval, min days, min size.
fn class(s: f64, put: f64, get: f64, ret: f64, days: u32, min: u64) -> ClassPrice {
    ClassPrice {
        storage_gb_month: s,
        put_per_1000: put,
        get_per_1000: get,
        retrieval_gb: ret,
        min_days: days,
        min_object_bytes: min,
        ..ClassPrice::default()
    }
}

fn tiers(t: &[(Tier, f64, f64)]) -> BTreeMap<Tier, TierPrice> {
    t.iter()
        .map(|&(k, per_gb, per_1000)| (k, TierPrice { per_gb, per_1000 }))
        .collect()
}

/// The built-in AWS S3 us-east-1 table (see the module documentation for date and source).
pub fn builtin() -> BTreeMap<String, ClassPrice> {
    const KB128: u64 = 128 * 1024;
    const KB40: u64 = 40 * 1024;
    let mut m = BTreeMap::new();
    m.insert("STANDARD".into(), class(0.023, 0.005, 0.0004, 0.0, 0, 0));
    // The frequent-access tier; objects ≥ 128 KiB also pay $0.0025 per 1 000 objects a month
    // for monitoring (not modelled).
    m.insert(
        "INTELLIGENT_TIERING".into(),
        class(0.023, 0.005, 0.0004, 0.0, 0, 0),
    );
    m.insert(
        "STANDARD_IA".into(),
        class(0.0125, 0.01, 0.001, 0.01, 30, KB128),
    );
    m.insert(
        "ONEZONE_IA".into(),
        class(0.01, 0.01, 0.001, 0.01, 30, KB128),
    );
    m.insert(
        "GLACIER_IR".into(),
        class(0.004, 0.02, 0.01, 0.03, 90, KB128),
    );
    let mut glacier = class(0.0036, 0.03, 0.0004, 0.0, 90, 0);
    glacier.overhead_bytes = KB40;
    glacier.thaw = tiers(&[
        (Tier::Expedited, 0.03, 10.0),
        (Tier::Standard, 0.01, 0.05),
        (Tier::Bulk, 0.0, 0.0),
    ]);
    m.insert("GLACIER".into(), glacier);
    let mut deep = class(0.00099, 0.05, 0.0004, 0.0, 180, 0);
    deep.overhead_bytes = KB40;
    deep.thaw = tiers(&[(Tier::Standard, 0.02, 0.10), (Tier::Bulk, 0.0025, 0.025)]);
    m.insert("DEEP_ARCHIVE".into(), deep);
    m
}

/// One `[prices.CLASS]` table of an override: every key optional, the rest kept from the
/// built-in class of that name (or zero for a class the table lacks).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Override {
    storage_gb_month: Option<f64>,
    put_per_1000: Option<f64>,
    get_per_1000: Option<f64>,
    retrieval_gb: Option<f64>,
    thaw: Option<BTreeMap<String, TierPrice>>,
    min_days: Option<u32>,
    min_object_bytes: Option<u64>,
    overhead_bytes: Option<u64>,
}

/// A price file: `[prices.CLASS]` tables (other top-level keys, such as `profiles`, ignored).
#[derive(Debug, Default, Deserialize)]
struct PriceFile {
    #[serde(default)]
    prices: BTreeMap<String, Override>,
}

/// A price table: the built-in one with any overrides applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    classes: BTreeMap<String, ClassPrice>,
    /// Where the overrides came from (none: the built-in table).
    pub sources: Vec<String>,
}

impl Prices {
    /// The built-in AWS table.
    pub fn builtin() -> Prices {
        Prices {
            classes: builtin(),
            sources: Vec::new(),
        }
    }

    /// The prices of `class` (S3's name, e.g. `STANDARD`, case-insensitive).
    ///
    /// # Errors
    /// A class neither the table nor an override names.
    pub fn class(&self, class: &str) -> Result<&ClassPrice> {
        let up = class.to_ascii_uppercase();
        match self.classes.get(&up) {
            Some(p) => Ok(p),
            None => bail!(
                "no prices for storage class {up:?}: give them in a [prices.{up}] table (known: {})",
                self.classes.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// This table with the `[prices.CLASS]` tables of the TOML `text` (from `source`) applied.
    ///
    /// # Errors
    /// Not TOML, an unknown key, an unknown thaw tier, or a price that is negative, not a
    /// number or above [`MAX_PRICE`]: one line naming `source`, the class and the key.
    pub fn with_overrides(mut self, text: &str, source: &str) -> Result<Prices> {
        let file: PriceFile = toml::from_str(text).map_err(|e| {
            let msg = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
            anyhow::anyhow!("price file {source}: {msg}")
        })?;
        let empty = file.prices.is_empty();
        for (name, o) in file.prices {
            let up = name.to_ascii_uppercase();
            let base = self.classes.get(&up).cloned().unwrap_or_default();
            let merged =
                apply(base, o).map_err(|e| anyhow::anyhow!("{source}: [prices.{name}] {e}"))?;
            self.classes.insert(up, merged);
        }
        // Only a file that overrides something is named as a source (review: a configuration
        // file without `[prices]` was claimed).
        if !empty {
            self.sources.push(source.to_string());
        }
        Ok(self)
    }
}

/// The prices in effect: the built-in table, then the `[prices]` tables of the configuration
/// file (`config`, else the one [`crate::profile::load::find_default`] finds, if any), then those of
/// `file` (`--prices`).
///
/// # Errors
/// An unreadable `--prices` file or given configuration file, and the errors of
/// [`Prices::with_overrides`].
pub fn load(config: Option<&std::path::Path>, file: Option<&std::path::Path>) -> Result<Prices> {
    let mut p = Prices::builtin();
    let found = match config {
        Some(c) => Some(c.to_path_buf()),
        None => crate::profile::load::find_default(),
    };
    for (path, must) in [(found, config.is_some()), (file.map(Into::into), true)] {
        let Some(path) = path else { continue };
        match std::fs::read_to_string(&path) {
            Ok(text) => p = p.with_overrides(&text, &path.display().to_string())?,
            Err(e) if must => bail!("price file {}: {e}", path.display()),
            Err(_) => {}
        }
    }
    Ok(p)
}

/// The monthly price of `bytes` more bytes in `class` (one object's minimum size and overhead
/// not counted), for summaries: `None` when the table has no such class.
pub fn monthly_of(prices: &Prices, class: &str, bytes: u64) -> Option<f64> {
    let c = prices.class(class).ok()?;
    Some(bytes as f64 / GB * c.storage_gb_month)
}

/// A dollar amount from a price file: finite, not negative, at most [`MAX_PRICE`].
fn checked(key: &str, v: f64) -> Result<f64> {
    if !v.is_finite() || !(0.0..=MAX_PRICE).contains(&v) {
        bail!("{key} = {v}: a price is a number from 0 to {MAX_PRICE}");
    }
    Ok(v)
}

fn apply(mut c: ClassPrice, o: Override) -> Result<ClassPrice> {
    let set = |slot: &mut f64, key: &str, v: Option<f64>| -> Result<()> {
        if let Some(v) = v {
            *slot = checked(key, v)?;
        }
        Ok(())
    };
    set(
        &mut c.storage_gb_month,
        "storage_gb_month",
        o.storage_gb_month,
    )?;
    set(&mut c.put_per_1000, "put_per_1000", o.put_per_1000)?;
    set(&mut c.get_per_1000, "get_per_1000", o.get_per_1000)?;
    set(&mut c.retrieval_gb, "retrieval_gb", o.retrieval_gb)?;
    c.min_days = o.min_days.unwrap_or(c.min_days);
    c.min_object_bytes = o.min_object_bytes.unwrap_or(c.min_object_bytes);
    c.overhead_bytes = o.overhead_bytes.unwrap_or(c.overhead_bytes);
    for (name, t) in o.thaw.unwrap_or_default() {
        let tier = match name.as_str() {
            "expedited" => Tier::Expedited,
            "standard" => Tier::Standard,
            "bulk" => Tier::Bulk,
            _ => bail!("thaw.{name}: the tiers are expedited, standard and bulk"),
        };
        let per_gb = checked(&format!("thaw.{name}.per_gb"), t.per_gb)?;
        let per_1000 = checked(&format!("thaw.{name}.per_1000"), t.per_1000)?;
        c.thaw.insert(tier, TierPrice { per_gb, per_1000 });
    }
    Ok(c)
}

impl ClassPrice {
    /// Bytes billed for `objects` objects of `bytes` in all: each at least the minimum object
    /// size (approximated with the mean size), plus the per-object overhead. Saturating.
    pub fn billed_bytes(&self, objects: u64, bytes: u64) -> u64 {
        let floor = objects.saturating_mul(self.min_object_bytes);
        bytes
            .max(floor)
            .saturating_add(objects.saturating_mul(self.overhead_bytes))
    }

    /// Dollars a month for storing `objects` objects of `bytes` bytes in all.
    pub fn monthly(&self, objects: u64, bytes: u64) -> f64 {
        self.billed_bytes(objects, bytes) as f64 / GB * self.storage_gb_month
    }

    /// Dollars for `n` PUT-priced and `g` GET-priced requests.
    pub fn requests(&self, n: u64, g: u64) -> f64 {
        n as f64 / 1000.0 * self.put_per_1000 + g as f64 / 1000.0 * self.get_per_1000
    }
}

/// Dollars to read back `objects` objects of `bytes` bytes of `class` at thaw `tier`: the
/// thaw's per-GB and per-request prices for archive classes (`None` if the class does not offer
/// the tier), else the class's per-GB retrieval price (the tier does not matter). GET requests
/// and transfer out of the region are not included.
///
/// # Errors
/// A class the table does not know.
pub fn retrieval_cost(
    prices: &Prices,
    class: &str,
    tier: Tier,
    objects: u64,
    bytes: u64,
) -> Result<Option<f64>> {
    let c = prices.class(class)?;
    let gb = bytes as f64 / GB;
    if c.thaw.is_empty() {
        return Ok(Some(gb * c.retrieval_gb));
    }
    Ok(c.thaw
        .get(&tier)
        .map(|t| gb * t.per_gb + objects as f64 / 1000.0 * t.per_1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_numbers() {
        let p = Prices::builtin();
        let s = p.class("standard").unwrap();
        assert_eq!(
            (s.storage_gb_month, s.put_per_1000, s.get_per_1000),
            (0.023, 0.005, 0.0004)
        );
        let d = p.class("DEEP_ARCHIVE").unwrap();
        assert_eq!((d.storage_gb_month, d.min_days), (0.00099, 180));
        assert!(!d.thaw.contains_key(&Tier::Expedited));
        // 2 GiB at standard thaw, 1 000 objects: 2 × 0.02 + 0.10.
        let c = retrieval_cost(&p, "DEEP_ARCHIVE", Tier::Standard, 1000, 2 << 30).unwrap();
        assert!((c.unwrap() - 0.14).abs() < 1e-12);
        assert_eq!(
            retrieval_cost(&p, "DEEP_ARCHIVE", Tier::Expedited, 1, 1).unwrap(),
            None
        );
        let ia = retrieval_cost(&p, "STANDARD_IA", Tier::Bulk, 1, 1 << 30).unwrap();
        assert_eq!(ia, Some(0.01));
    }

    #[test]
    fn overrides_replace_given_keys_only() {
        let text = "[prices.STANDARD]\nstorage_gb_month = 0.0059\n[prices.minio]\n";
        let p = Prices::builtin().with_overrides(text, "f.toml").unwrap();
        let s = p.class("STANDARD").unwrap();
        assert_eq!((s.storage_gb_month, s.put_per_1000), (0.0059, 0.005));
        assert_eq!(p.class("MINIO").unwrap(), &ClassPrice::default());
    }

    #[test]
    fn hostile_price_files_are_one_clear_error() {
        for (text, want) in [
            (
                "[prices.STANDARD]\nstorage_gb_month = -1.0\n",
                "storage_gb_month = -1",
            ),
            (
                "[prices.STANDARD]\nput_per_1000 = nan\n",
                "put_per_1000 = NaN",
            ),
            (
                "[prices.STANDARD]\nget_per_1000 = 1e300\n",
                "get_per_1000 = 1",
            ),
            (
                "[prices.STANDARD]\nstorage_gb_month = inf\n",
                "storage_gb_month = inf",
            ),
            ("[prices.GLACIER.thaw.fast]\nper_gb = 1\n", "thaw.fast"),
            ("[prices.STANDARD]\ncolour = 1\n", "unknown field"),
        ] {
            let e = Prices::builtin()
                .with_overrides(text, "f.toml")
                .unwrap_err();
            let msg = format!("{e:#}");
            assert!(msg.contains(want) && msg.contains("f.toml"), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
    }

    #[test]
    fn absurd_sizes_saturate() {
        let p = Prices::builtin();
        let ia = p.class("STANDARD_IA").unwrap();
        assert_eq!(ia.billed_bytes(u64::MAX, u64::MAX), u64::MAX);
        assert!(ia.monthly(u64::MAX, u64::MAX).is_finite());
        // Small objects are billed at 128 KiB each.
        assert_eq!(ia.billed_bytes(10, 1000), 10 * 128 * 1024);
    }
}
