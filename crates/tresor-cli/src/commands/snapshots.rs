use crate::cli::SnapshotsArgs;
use crate::context::Context;
use crate::exit;
use anyhow::Result;
use tresor_core::snapshots::{SnapshotFilter, time_of};

pub fn run(ctx: &Context, a: &SnapshotsArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let (list, bad) = repo.load_snapshots()?;
    for (id, e) in &bad {
        eprintln!("warning: snapshot {id}: {e}");
    }
    let filter = SnapshotFilter::from(&a.filter);
    let list: Vec<_> = list.iter().filter(|(_, s)| filter.matches(s)).collect();
    if ctx.json {
        let v: Vec<_> = list
            .iter()
            .map(|(id, s)| {
                serde_json::json!({
                    "id": id.to_hex(), "short_id": id.short(), "time": s.time, "host": s.hostname, "hostname": s.hostname,
                    "username": s.username, "paths": s.paths, "tags": s.tags, "parent": s.parent.map(|p| p.to_hex()),
                    "tree": s.tree.to_hex(), "program_version": s.program_version, "summary": s.summary,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{:<10} {:<19} {:<16} {:<16} Paths",
            "ID", "Time", "Host", "Tags"
        );
        for (id, s) in &list {
            let t = time_of(s)
                .to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string();
            println!(
                "{:<10} {:<19} {:<16} {:<16} {}",
                id.short(),
                t,
                s.hostname,
                s.tags.join(","),
                s.paths.join(" ")
            );
        }
        if !ctx.quiet {
            println!("{} snapshots", list.len());
        }
    }
    Ok(if bad.is_empty() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}
