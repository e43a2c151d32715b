use crate::cli::CheckArgs;
use crate::context::Context;
use crate::exit;
use anyhow::{Context as _, Result, bail};
use tresor_core::check::{ReadData, check};

fn parse_subset(s: &str) -> Result<ReadData> {
    if let Some(p) = s.strip_suffix('%') {
        let p: f64 = p
            .trim()
            .parse()
            .with_context(|| format!("--read-data-subset {s:?}"))?;
        if !(0.0..=100.0).contains(&p) {
            bail!("--read-data-subset {s:?}: percentage must be 0–100");
        }
        return Ok(ReadData::Percent(p));
    }
    let (n, m) = s
        .split_once('/')
        .with_context(|| format!("--read-data-subset {s:?}: use N/M or P%"))?;
    let (n, m): (u32, u32) = (n.trim().parse()?, m.trim().parse()?);
    if m == 0 || n == 0 || n > m {
        bail!("--read-data-subset {s:?}: need 1 ≤ N ≤ M");
    }
    Ok(ReadData::Subset(n, m))
}

/// The share of the packs `--read-data(-subset)` read, e.g.
/// `read 3 of 40 packs (7.5%): 5% at random`.
fn share(r: &tresor_core::check::CheckReport) -> String {
    let percent = if r.packs == 0 {
        0.0
    } else {
        r.packs_selected as f64 * 100.0 / r.packs as f64
    };
    format!(
        "read {} of {} packs ({percent:.1}%): {}",
        r.packs_selected, r.packs, r.selection
    )
}

pub fn run(ctx: &Context, a: &CheckArgs) -> Result<i32> {
    let which = match (&a.read_data_subset, a.read_data) {
        (Some(s), _) => parse_subset(s)?,
        (None, true) => ReadData::All,
        (None, false) => ReadData::None,
    };
    let repo = ctx.open()?;
    let r = check(&repo, which)?;
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"message_type": "summary", "snapshots": r.snapshots, "packs": r.packs, "blobs": r.blobs,
                "packs_read": r.packs_read, "packs_selected": r.packs_selected, "selection": r.selection,
                "bytes_read": r.bytes_read, "errors": r.errors, "warnings": r.warnings})
        );
    } else {
        for w in &r.warnings {
            eprintln!("warning: {w}");
        }
        for e in &r.errors {
            eprintln!("error: {e}");
        }
        if !ctx.quiet {
            println!(
                "checked {} snapshots, {} packs, {} blobs; read {} packs",
                r.snapshots, r.packs, r.blobs, r.packs_read
            );
            if which != ReadData::None {
                println!("{}", share(&r));
            }
            println!(
                "{}",
                if r.errors.is_empty() {
                    "no errors were found".to_string()
                } else {
                    format!("{} errors found", r.errors.len())
                }
            );
        }
    }
    Ok(if r.errors.is_empty() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}
