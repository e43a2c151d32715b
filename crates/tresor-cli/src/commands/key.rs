use crate::cli::{KeyAddArgs, KeyCommand, NewPasswordArgs};
use crate::context::{Context, hostname, username};
use crate::exit;
use anyhow::{Context as _, Result};
use std::io::Read;
use tresor_core::keys;
use tresor_core::repository::KeyOwner;
use tresor_format::keyfile::{KdfParams, KeyKind};

fn new_password(ctx: &Context, a: &NewPasswordArgs) -> Result<String> {
    crate::password::new_password(
        a,
        ctx.password.insecure_file,
        None,
        "enter the new password: ",
    )
}

fn signer_json(u: &keys::UnknownSigner) -> serde_json::Value {
    serde_json::json!({
        "signer": hex::encode(u.signer),
        "index_objects": u.index_objects,
        "snapshots": u.snapshots.iter().map(|(id, s)| serde_json::json!({
            "id": id.to_hex(),
            "time": s.as_ref().map(|s| s.time.clone()),
            "hostname": s.as_ref().map(|s| s.hostname.clone()),
            "paths": s.as_ref().map(|s| s.paths.clone()),
        })).collect::<Vec<_>>(),
    })
}

fn print_unknown(unknown: &[keys::UnknownSigner]) {
    for u in unknown {
        println!(
            "signer {}: {} snapshot(s), {} index object(s) — ignored by readers",
            &hex::encode(u.signer)[..16],
            u.snapshots.len(),
            u.index_objects
        );
        for (id, s) in &u.snapshots {
            match s {
                Some(s) => println!(
                    "  {} {} {} {}",
                    id.short(),
                    s.time,
                    s.hostname,
                    s.paths.join(" ")
                ),
                None => println!("  {} (does not decrypt)", id.short()),
            }
        }
    }
}

/// KDF parameters from the flags, within the bounds every reader holds key files to.
pub fn kdf(a: &NewPasswordArgs) -> Result<KdfParams> {
    let params = KdfParams {
        m_kib: a.kdf_memory_kib,
        t: a.kdf_iterations,
        p: 1,
    };
    if params.cost() > KdfParams::MAX_COST {
        anyhow::bail!(
            "--kdf-memory-kib × --kdf-iterations = {} KiB: readers refuse key files that cost more than {} KiB (format §4)",
            params.cost(),
            KdfParams::MAX_COST
        );
    }
    Ok(params)
}

fn owner(host: Option<&String>) -> KeyOwner {
    KeyOwner {
        host: host.cloned().unwrap_or_else(hostname),
        username: username(),
        created: jiff::Timestamp::now().to_string(),
    }
}

fn kind_name(k: KeyKind) -> &'static str {
    match k {
        KeyKind::Full => "full",
        KeyKind::PutOnly => "put-only",
    }
}

fn print_id(ctx: &Context, what: &str, id: &tresor_format::ObjectId) {
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"message_type": what, "id": id.to_hex()})
        );
    } else if !ctx.quiet {
        println!("{what} key {}", id.short());
    }
}

pub fn run(ctx: &Context, c: &KeyCommand) -> Result<i32> {
    match c {
        KeyCommand::List => {
            let repo = ctx.open()?;
            let list = keys::list(&repo);
            if ctx.json {
                let v: Vec<_> = list
                    .iter()
                    .map(|k| serde_json::json!({"id": k.info.id.to_hex(), "current": k.current, "revoked": k.revoked, "kind": kind_name(k.info.kind),
                        "host": k.info.host, "username": k.info.username, "created": k.info.created}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "  {:<10} {:<9} {:<16} {:<12} Created",
                    "ID", "Kind", "Host", "User"
                );
                for k in &list {
                    let cur = if k.current { "*" } else { " " };
                    let kind = if k.revoked {
                        "revoked"
                    } else {
                        kind_name(k.info.kind)
                    };
                    println!(
                        "{cur} {:<10} {:<9} {:<16} {:<12} {}",
                        k.info.id.short(),
                        kind,
                        k.info.host,
                        k.info.username,
                        k.info.created
                    );
                }
            }
        }
        KeyCommand::Add(KeyAddArgs {
            put_only,
            host,
            new,
        }) => {
            let params = kdf(new)?;
            let repo = ctx.open()?;
            let pw = new_password(ctx, new)?;
            let kind = if *put_only {
                KeyKind::PutOnly
            } else {
                KeyKind::Full
            };
            let id = keys::add(&repo, &pw, kind, params, &owner(host.as_ref()))?;
            print_id(ctx, "added", &id);
        }
        KeyCommand::Remove { id } => {
            let repo = ctx.open()?;
            let removed = keys::remove(&repo, id, &jiff::Timestamp::now().to_string())?;
            print_id(ctx, "removed", &removed);
        }
        KeyCommand::Passwd(new) => {
            let params = kdf(new)?;
            let repo = ctx.open()?;
            let pw = new_password(ctx, new)?;
            let id = keys::change_password(&repo, &pw, params)?;
            print_id(ctx, "changed password of", &id);
        }
        KeyCommand::Export { paper: _ } => {
            let repo = ctx.open()?;
            let paper = keys::export_paper(&repo)?;
            if ctx.json {
                #[derive(serde::Serialize)]
                struct Paper<'a> {
                    paper: &'a str,
                }
                let json = zeroize::Zeroizing::new(serde_json::to_string(&Paper {
                    paper: paper.as_str(),
                })?);
                println!("{}", json.as_str());
            } else {
                print!("{}", paper.as_str());
            }
        }
        KeyCommand::Signers { accept } => {
            let repo = ctx.open()?;
            repo.require_read("listing signers")?;
            let storage = repo.storage().as_ref();
            let unknown = keys::unknown_signers(storage, repo.key(), repo.trust())?;
            let accepted = if accept.is_empty() {
                Vec::new()
            } else {
                keys::accept_signers(
                    storage,
                    repo.key(),
                    repo.trust(),
                    accept,
                    &jiff::Timestamp::now().to_string(),
                )?
            };
            if ctx.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "unknown": unknown.iter().map(signer_json).collect::<Vec<_>>(),
                        "accepted": accepted.iter().map(hex::encode).collect::<Vec<_>>(),
                    })
                );
            } else {
                if unknown.is_empty() {
                    println!("every signer is vouched for by a key file or a revocation");
                }
                print_unknown(&unknown);
                for a in &accepted {
                    println!("accepted signer {}", &hex::encode(a)[..16]);
                }
            }
        }
        KeyCommand::Import { file, new } => {
            let text = match file {
                Some(f) => {
                    std::fs::read_to_string(f).with_context(|| format!("{}", f.display()))?
                }
                None => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .context("reading the paper key from standard input")?;
                    s
                }
            };
            let params = kdf(new)?;
            let pw = new_password(ctx, new)?;
            let imported = keys::import_paper(ctx.storage()?, &text, &pw, params, &owner(None))?;
            if ctx.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "message_type": "imported",
                        "id": imported.id.to_hex(),
                        "unknown_signers": imported.unknown.iter().map(signer_json).collect::<Vec<_>>(),
                    })
                );
            } else {
                print_id(ctx, "imported", &imported.id);
                if !imported.unknown.is_empty() {
                    println!(
                        "these signers have no key file (lost keys, or a forger); their objects stay \
                         ignored until you accept them with `tresor key signers --accept PREFIX`:"
                    );
                    print_unknown(&imported.unknown);
                }
            }
        }
    }
    Ok(exit::OK)
}
