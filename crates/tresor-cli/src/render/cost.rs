//! `cost`: stored bytes and their monthly price per object kind and class, the request log's
//! runs with their cost, pending early-deletion charges and a full restore's price per thaw
//! tier (JSON: `docs/cli.md`, "cost").

use super::{Outcome, Text};
use crate::output::bytes;
use crate::prices::{ClassPrice, PRICES_DATE, PRICES_SOURCE, Prices, Tier};
use crate::reqlog::Run;
use anyhow::Result;
use serde::Serialize;

/// One object kind in one storage class.
#[derive(Debug, Clone, Serialize)]
pub struct KindRow {
    /// `data packs`, `tree packs`, `index`, `snapshots`, `keys` or `other`.
    pub kind: &'static str,
    /// The storage class priced.
    pub class: String,
    /// Objects listed.
    pub objects: u64,
    /// Their bytes (the listing's sizes).
    pub bytes: u64,
    /// Dollars a month.
    pub monthly: f64,
}

impl KindRow {
    /// A row priced at `price`.
    pub fn new(kind: &'static str, class: &str, objects: u64, bytes: u64, p: &ClassPrice) -> Self {
        KindRow {
            kind,
            class: class.to_string(),
            objects,
            bytes,
            monthly: p.monthly(objects, bytes),
        }
    }
}

/// A run of the request log with its cost.
#[derive(Debug, Clone, Serialize)]
pub struct RunCost {
    /// The run.
    #[serde(flatten)]
    pub run: Run,
    /// Dollars.
    pub cost: f64,
}

/// A full restore at one thaw tier.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreTier {
    /// The tier.
    pub tier: Tier,
    /// Pack bytes read back.
    pub bytes: u64,
    /// Dollars, `null` when a class does not offer the tier.
    pub cost: Option<f64>,
}

/// A restore of the latest snapshot of each host: the packs their trees and files need.
#[derive(Debug, Clone, Serialize)]
pub struct LatestRestore {
    /// Snapshots (one per host).
    pub snapshots: u64,
    /// Packs needed (the union over those snapshots, as listed).
    pub packs: u64,
    /// Their listed bytes.
    pub bytes: u64,
    /// The price per thaw tier.
    pub tiers: Vec<RestoreTier>,
}

/// Stored bytes per class, summed.
#[derive(Debug, Clone, Serialize)]
pub struct ClassTotal {
    /// The storage class.
    pub class: String,
    /// Objects.
    pub objects: u64,
    /// Bytes.
    pub bytes: u64,
    /// Dollars a month.
    pub monthly: f64,
}

/// What `tresor cost` shows.
#[derive(Debug, Serialize)]
pub struct CostReport {
    /// Always `"cost"`.
    pub message_type: &'static str,
    /// `"listing"`: every object's class as the storage listed it (S3); `"configured"`: the
    /// classes given (`--class-*`, `--s3-storage-class-*`, default STANDARD: data packs at the
    /// data class, everything else at the metadata class).
    pub class_source: &'static str,
    /// The built-in table's date and source, and the override files applied.
    pub prices: PricesUsed,
    /// Per kind and class.
    pub kinds: Vec<KindRow>,
    /// Per class.
    pub classes: Vec<ClassTotal>,
    /// Dollars a month in all.
    pub monthly_total: f64,
    /// Dollars due if objects younger than their class's minimum duration were deleted now.
    pub early_deletion_pending: f64,
    /// The request log's runs, oldest first.
    pub runs: Vec<RunCost>,
    /// Their cost in all.
    pub runs_cost: f64,
    /// A full restore (every pack) per tier.
    pub restore: Vec<RestoreTier>,
    /// A restore of the latest snapshot of each host; `None` when they cannot be read.
    pub restore_latest: Option<LatestRestore>,
    #[serde(skip)]
    shown: usize,
}

/// The prices' provenance.
#[derive(Debug, Serialize)]
pub struct PricesUsed {
    /// When the built-in prices were read.
    pub date: &'static str,
    /// Their source.
    pub source: &'static str,
    /// Override files applied, in order.
    pub overrides: Vec<String>,
}

impl CostReport {
    /// The report; the text shows the last `shown` runs.
    pub fn new(
        kinds: Vec<KindRow>,
        prices: &Prices,
        runs: Vec<RunCost>,
        early: f64,
        restore: Vec<RestoreTier>,
        shown: usize,
    ) -> Self {
        let mut classes: Vec<ClassTotal> = Vec::new();
        for k in &kinds {
            match classes.iter_mut().find(|c| c.class == k.class) {
                Some(c) => {
                    c.objects = c.objects.saturating_add(k.objects);
                    c.bytes = c.bytes.saturating_add(k.bytes);
                    c.monthly += k.monthly;
                }
                None => classes.push(ClassTotal {
                    class: k.class.clone(),
                    objects: k.objects,
                    bytes: k.bytes,
                    monthly: k.monthly,
                }),
            }
        }
        CostReport {
            message_type: "cost",
            class_source: "configured",
            prices: PricesUsed {
                date: PRICES_DATE,
                source: PRICES_SOURCE,
                overrides: prices.sources.clone(),
            },
            // `+ 0.0`: an empty float sum is -0.0, shown as "$-0.00".
            monthly_total: kinds.iter().map(|k| k.monthly).sum::<f64>() + 0.0,
            runs_cost: runs.iter().map(|r| r.cost).sum::<f64>() + 0.0,
            kinds,
            classes,
            early_deletion_pending: early,
            runs,
            restore,
            restore_latest: None,
            shown,
        }
    }
}

/// Dollars with enough digits for small amounts.
pub fn dollars(v: f64) -> String {
    if v != 0.0 && v.abs() < 0.01 {
        format!("${v:.6}")
    } else {
        format!("${v:.2}")
    }
}

impl Outcome for CostReport {
    fn text(&self, t: &mut Text) {
        t.out(format!(
            "Storage (classes {}; prices {} of {}{}):",
            if self.class_source == "listing" {
                "as listed"
            } else {
                "as configured"
            },
            PRICES_DATE,
            PRICES_SOURCE,
            self.prices
                .overrides
                .iter()
                .map(|o| format!(", overridden by {}", super::escape_controls(o)))
                .collect::<String>()
        ));
        for k in &self.kinds {
            t.out(format!(
                "  {:<11} {:<20} {:>8} objects {:>12}  {}/month",
                k.kind,
                k.class,
                k.objects,
                bytes(k.bytes),
                dollars(k.monthly)
            ));
        }
        for c in &self.classes {
            t.out(format!(
                "  total {:<20} {:>12}  {}/month",
                c.class,
                bytes(c.bytes),
                dollars(c.monthly)
            ));
        }
        t.out(format!("Monthly total: {}", dollars(self.monthly_total)));
        t.out(format!(
            "Early deletion pending: {}",
            dollars(self.early_deletion_pending)
        ));
        self.runs_text(t);
        t.out("Full restore (every pack):".to_string());
        for r in &self.restore {
            let cost = r.cost.map_or("not offered".to_string(), dollars);
            t.out(format!(
                "  {:<10} {:>12}  {cost}",
                format!("{:?}", r.tier).to_lowercase(),
                bytes(r.bytes)
            ));
        }
        t.out(self.latest_text());
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}

impl CostReport {
    /// The line on restoring the latest snapshot of each host, cheapest tier first.
    fn latest_text(&self) -> String {
        let Some(l) = &self.restore_latest else {
            return "Restore of the latest snapshot of each host: unknown (snapshots or trees \
                    cannot be read)"
                .to_string();
        };
        let tiers: Vec<String> = (l.tiers.iter().rev())
            .map(|r| {
                let cost = r.cost.map_or("not offered".to_string(), dollars);
                format!("{} {cost}", format!("{:?}", r.tier).to_lowercase())
            })
            .collect();
        format!(
            "Restore of the latest snapshot of each host ({} snapshots, {} packs, {}): {}",
            l.snapshots,
            l.packs,
            bytes(l.bytes),
            tiers.join(", ")
        )
    }

    fn runs_text(&self, t: &mut Text) {
        t.out(format!(
            "Requests of the last {} runs (this machine's log): {}",
            self.runs.len(),
            dollars(self.runs_cost)
        ));
        let from = self.runs.len().saturating_sub(self.shown);
        for r in &self.runs[from..] {
            let (x, n) = (&r.run, &r.run.counts);
            t.out(format!(
                "  {} {:<9} {} PUT {} GET {} HEAD {} LIST {} DELETE, {} up {} down  {}",
                super::escape_controls(&x.time),
                super::escape_controls(&x.command),
                n.put,
                n.get,
                n.head,
                n.list,
                n.delete,
                bytes(n.bytes_up),
                bytes(n.bytes_down),
                dollars(r.cost)
            ));
        }
    }
}
