use crate::cli::{KeyAddArgs, KeyCommand, NewPasswordArgs};
use crate::context::{Context, hostname, username};
use crate::exit;
use anyhow::{Context as _, Result};
use std::io::Read;
use tresor_core::keys;
use tresor_core::repository::KeyOwner;
use tresor_core::trust::Standing;
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
        "objects": u.objects.len(),
        "snapshots": u.snapshots.iter().map(|(id, s)| serde_json::json!({
            "id": id.to_hex(),
            "time": s.as_ref().map(|s| s.time.clone()),
            "hostname": s.as_ref().map(|s| s.hostname.clone()),
            "paths": s.as_ref().map(|s| s.paths.clone()),
        })).collect::<Vec<_>>(),
    })
}

/// Text a signer chose (host names, paths, times): quoted, control and non-ASCII bytes escaped,
/// so it cannot move the cursor or fake another line.
fn esc(s: &str) -> String {
    tresor_format::tree::escape_name(s.as_bytes())
}

fn print_unknown<'a>(unknown: impl IntoIterator<Item = &'a keys::UnknownSigner>) {
    for u in unknown {
        println!(
            "signer {}: {} object(s): {} snapshot(s), {} index object(s) — ignored by readers",
            hex::encode(u.signer),
            u.objects.len(),
            u.snapshots.len(),
            u.index_objects
        );
        for (id, s) in &u.snapshots {
            match s {
                Some(s) => {
                    let paths: Vec<String> = s.paths.iter().map(|p| esc(p)).collect();
                    println!(
                        "  {} time {} host {} paths {}",
                        id.short(),
                        esc(&s.time),
                        esc(&s.hostname),
                        paths.join(" ")
                    );
                }
                None => println!("  {} (does not decrypt)", id.short()),
            }
        }
    }
}

/// Ask before accepting: `--yes`, or "y" typed on a terminal.
fn confirm(yes: bool, n: usize) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        anyhow::bail!(
            "standard input is not a terminal: add --yes to accept the {n} signer(s) listed above"
        );
    }
    eprint!("accept these {n} signer(s) and every object listed? [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("reading the answer")?;
    match answer.trim() {
        "y" | "Y" | "yes" => Ok(()),
        _ => anyhow::bail!("nothing accepted"),
    }
}

fn signers(ctx: &Context, accept: &[String], yes: bool) -> Result<()> {
    let repo = ctx.open()?;
    repo.require_read("listing signers")?;
    let storage = repo.storage().as_ref();
    let unknown = keys::unknown_signers(storage, repo.key(), repo.trust())?;
    let chosen = keys::choose_signers(&unknown, accept)?;
    if !accept.is_empty() && !chosen.is_empty() {
        // Exactly what will be accepted, before anything is written.
        let out = if ctx.json {
            eprintln_unknown
        } else {
            println_unknown
        };
        out(&chosen);
        confirm(yes, chosen.len())?;
    }
    let accepted = keys::accept_signers(&repo, &chosen, &jiff::Timestamp::now().to_string())?;
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({
                "unknown": unknown.iter().map(signer_json).collect::<Vec<_>>(),
                "accepted": accepted.iter().map(hex::encode).collect::<Vec<_>>(),
            })
        );
    } else if accept.is_empty() {
        if unknown.is_empty() {
            println!("every signer is vouched for by a trusted key or a revocation");
        }
        print_unknown(&unknown);
    } else if accepted.is_empty() {
        println!("nothing to accept: every signer is vouched for by a trusted key or a revocation");
    } else {
        for a in &accepted {
            println!("accepted signer {}", hex::encode(a));
        }
    }
    Ok(())
}

fn println_unknown(chosen: &[&keys::UnknownSigner]) {
    println!("to accept:");
    print_unknown(chosen.iter().copied());
}

/// The same listing on standard error (JSON output keeps standard output for the result).
fn eprintln_unknown(chosen: &[&keys::UnknownSigner]) {
    for u in chosen {
        eprintln!(
            "to accept: signer {}: {} object(s), {} snapshot(s)",
            hex::encode(u.signer),
            u.objects.len(),
            u.snapshots.len()
        );
        for (id, s) in &u.snapshots {
            if let Some(s) = s {
                let paths: Vec<String> = s.paths.iter().map(|p| esc(p)).collect();
                eprintln!(
                    "  {} time {} host {} paths {}",
                    id.short(),
                    esc(&s.time),
                    esc(&s.hostname),
                    paths.join(" ")
                );
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

#[allow(clippy::too_many_lines, reason = "split by r12-core/r12-cli")]
pub fn run(ctx: &Context, c: &KeyCommand) -> Result<i32> {
    match c {
        KeyCommand::List => {
            let repo = ctx.open()?;
            let list = keys::list(&repo);
            if ctx.json {
                let v: Vec<_> = list
                    .iter()
                    .map(|k| serde_json::json!({"id": k.info.id.to_hex(), "current": k.current, "revoked": k.standing == Standing::Revoked,
                        "trusted": k.standing == Standing::Trusted, "kind": kind_name(k.info.kind),
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
                    let kind = match k.standing {
                        Standing::Trusted => kind_name(k.info.kind),
                        Standing::Revoked => "revoked",
                        Standing::NotListed => "untrusted",
                    };
                    println!(
                        "{cur} {:<10} {:<9} {:<16} {:<12} {}",
                        k.info.id.short(),
                        kind,
                        esc(&k.info.host),
                        esc(&k.info.username),
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
        KeyCommand::Signers { accept, yes } => signers(ctx, accept, *yes)?,
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
            let storage = ctx.storage()?;
            let config = tresor_core::Repository::read_config(storage.as_ref())?;
            let marks = ctx.high_water(&config.id);
            let imported =
                keys::import_paper(storage, &text, &pw, params, &owner(None), marks.as_ref())?;
            if imported.trust_rebuilt {
                eprintln!(
                    "warning: the repository had no trust record: a new one trusts the config \
                     as it is now ({}) and only the imported key; check the config is yours",
                    config_summary(&config)
                );
            }
            if ctx.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "message_type": "imported",
                        "id": imported.id.to_hex(),
                        "trust_rebuilt": imported.trust_rebuilt,
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

/// The config's parameters, for the admin to check after a trust record was rebuilt.
fn config_summary(c: &tresor_format::config::Config) -> String {
    format!(
        "chunks {}/{}/{} bytes, packs of {} bytes, compression level {}, object lock {}",
        c.chunker.min_size,
        c.chunker.avg_size,
        c.chunker.max_size,
        c.pack_size,
        c.compression_level,
        match c.object_lock {
            Some(l) => format!("{:?} {} days", l.mode, l.days),
            None => "none".into(),
        }
    )
}
