use crate::args::SnapshotsArgs;
use crate::context::Context;
use crate::exit;
use anyhow::Result;
use tresor_core::CoreError;
use tresor_core::repository::{Defect, Skipped};
use tresor_core::snapshots::{SnapshotFilter, future_after, is_future, signer_info, time_of};

pub fn run(ctx: &Context, a: &SnapshotsArgs) -> Result<i32> {
    let repo = ctx.open()?;
    if !repo.key().can_read() {
        let f = &a.filter;
        if !(f.hosts.is_empty() && f.paths.is_empty() && f.tags.is_empty()) {
            return Err(tresor_core::CoreError::PutOnly(
                "filtering snapshots by host, path or tag (they are encrypted)",
            )
            .into());
        }
        return put_only(ctx, &repo);
    }
    let (list, bad) = repo.load_snapshots()?;
    for s in &bad {
        eprintln!("warning: {}", skipped_line(s));
    }
    let filter = SnapshotFilter::from(&a.filter);
    let list: Vec<_> = list.iter().filter(|(_, s)| filter.matches(s)).collect();
    let after = future_after();
    if ctx.json {
        let v: Vec<_> = list
            .iter()
            .map(|(id, s)| {
                serde_json::json!({
                    "id": id.to_hex(), "short_id": id.short(), "time": s.time, "host": s.hostname, "hostname": s.hostname,
                    "username": s.username, "paths": s.paths, "tags": s.tags, "parent": s.parent.map(|p| p.to_hex()),
                    "tree": s.tree.to_hex(), "program_version": s.program_version, "summary": s.summary,
                    "signer": signer_info(&repo, id), "future": is_future(s, after),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_table(&repo, &list, after, ctx.quiet);
    }
    // Snapshots this machine saw before that are gone without a forget record: the storage
    // hides them (or they were deleted by hand); the listing is incomplete.
    let hidden = repo.hidden_snapshots()?;
    for h in &hidden {
        eprintln!("warning: {h}");
    }
    let hidden_code = if hidden.is_empty() {
        exit::OK
    } else {
        exit::DAMAGED
    };
    // Snapshot objects that do not load are left out with a warning (`check` judges them):
    // garbage anyone could upload must not fail the listing. Only a snapshot the storage could
    // not read makes the list incomplete for real (one deleted meanwhile was forgotten).
    Ok(bad
        .iter()
        .filter(|s| s.defect == Defect::Unreadable)
        .map(|s| match &s.error {
            CoreError::Storage(e) if e.kind == tresor_storage::ErrorKind::NotFound => exit::OK,
            e if e.is_damage() => exit::DAMAGED,
            _ => exit::ERROR,
        })
        .max()
        .unwrap_or(exit::OK)
        .max(hidden_code))
}

/// The table of snapshots: id, time (`!` when dated in the future), host, signer (short key
/// id and kind), tags, paths. Host names, tags and paths are escaped (anyone with a key
/// chooses them).
fn print_table(
    repo: &tresor_core::Repository,
    list: &[&(tresor_format::ObjectId, tresor_format::snapshot::Snapshot)],
    after: jiff::Timestamp,
    quiet: bool,
) {
    println!(
        "{:<10} {:<21} {:<16} {:<19} {:<16} Paths",
        "ID", "Time", "Host", "Signer", "Tags"
    );
    let mut future = 0;
    for (id, s) in list {
        let mut t = time_of(s)
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string();
        if is_future(s, after) {
            t.push_str(" !");
            future += 1;
        }
        let signer = signer_info(repo, id).map_or_else(
            || "?".to_string(),
            |k| format!("{} {}", k.id.as_deref().unwrap_or("removed"), k.kind),
        );
        println!(
            "{:<10} {:<21} {:<16} {:<19} {:<16} {}",
            id.short(),
            t,
            escape(&s.hostname),
            signer,
            escape(&s.tags.join(",")),
            escape(&s.paths.join(" "))
        );
    }
    if !quiet {
        println!("{} snapshots", list.len());
        if future > 0 {
            println!(
                "! dated more than a day ahead of this clock: never `latest`, not counted by `forget` policies or by prune's approval"
            );
        }
    }
}

/// Control characters (a terminal would act on them) as escapes; the rest as it is.
fn escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c.is_control() {
            true => c.escape_default().collect::<Vec<_>>(),
            false => vec![c],
        })
        .collect()
}

/// The warning for a snapshot object that was left out.
fn skipped_line(s: &Skipped) -> String {
    let what = match s.defect {
        Defect::Garbage => {
            " (garbage: no key wrote it; left out, and an admin's `tresor prune` deletes it)"
        }
        Defect::Damaged => " (damaged: left out; `tresor forget` removes it)",
        Defect::Ignored | Defect::Unreadable => "",
    };
    let m = match &s.error {
        CoreError::Damaged(m) | CoreError::Untrusted(m) => m.clone(),
        e => e.to_string(),
    };
    format!("{m}{what}")
}

/// What a put-only key may see: snapshot ids, sizes and which key signed them — never contents.
fn put_only(ctx: &Context, repo: &tresor_core::Repository) -> Result<i32> {
    let me = repo.signer().public();
    let mut rows = Vec::new();
    let kind = tresor_storage::Kind::Snapshot;
    for (name, size) in repo.storage().list(kind)? {
        let limit = tresor_core::limits::SNAPSHOT;
        let signer =
            tresor_core::limits::read_bounded(&**repo.storage(), kind, &name, Some(size), limit)
                .ok()
                .and_then(|b| tresor_format::snapshot::Snapshot::signer_of(&b).ok());
        let key = signer.and_then(|s| repo.trust().key(&s).map(|k| k.id.short()));
        // Whether readers accept it (an unknown or revoked signer's snapshot is ignored).
        let accepted = match (signer, name.parse()) {
            (Some(s), Ok(id)) => repo.trust().accepts(&s, &id),
            _ => false,
        };
        rows.push((name, size, signer == Some(me), key, accepted));
    }
    rows.sort();
    if ctx.json {
        let v: Vec<_> = rows.iter().map(|(n, size, mine, key, accepted)| serde_json::json!({"id": n, "size": size, "own": mine, "key": key, "ignored": !accepted})).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("this key is put-only: it cannot read snapshots, only list them");
        println!("{:<10} {:>8} {:<10} Written by", "ID", "Size", "Key");
        for (n, size, mine, key, accepted) in &rows {
            println!(
                "{:<10} {:>8} {:<10} {}{}",
                &n[..8],
                size,
                key.clone().unwrap_or_else(|| "?".into()),
                if *mine { "this key" } else { "another key" },
                if *accepted {
                    ""
                } else {
                    " (ignored by readers: unknown or revoked signer)"
                }
            );
        }
    }
    Ok(exit::OK)
}
