use crate::cli::{KeyAddArgs, KeyCommand, NewPasswordArgs};
use crate::context::{Context, hostname, username};
use crate::exit;
use anyhow::{Context as _, Result};
use std::io::Read;
use tresor_core::keys;
use tresor_core::repository::KeyOwner;
use tresor_format::keyfile::{KdfParams, KeyKind};

fn new_password(ctx: &Context, a: &NewPasswordArgs) -> Result<String> {
    let pw = match &a.new_password_file {
        Some(f) => crate::password::read_file(f, ctx.password.insecure_file)?,
        None => crate::password::PasswordSource::default().get_new("enter the new password: ")?,
    };
    if pw.is_empty() {
        anyhow::bail!("empty passwords are refused");
    }
    Ok(pw)
}

/// KDF parameters from the flags.
pub fn kdf(a: &NewPasswordArgs) -> KdfParams {
    KdfParams {
        m_kib: a.kdf_memory_kib.max(8),
        t: a.kdf_iterations.max(1),
        p: 1,
    }
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
                    .map(|k| serde_json::json!({"id": k.info.id.to_hex(), "current": k.current, "kind": kind_name(k.info.kind),
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
                    println!(
                        "{cur} {:<10} {:<9} {:<16} {:<12} {}",
                        k.info.id.short(),
                        kind_name(k.info.kind),
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
            let repo = ctx.open()?;
            let pw = new_password(ctx, new)?;
            let kind = if *put_only {
                KeyKind::PutOnly
            } else {
                KeyKind::Full
            };
            let id = keys::add(&repo, &pw, kind, kdf(new), &owner(host.as_ref()))?;
            print_id(ctx, "added", &id);
        }
        KeyCommand::Remove { id } => {
            let repo = ctx.open()?;
            let removed = keys::remove(&repo, id, &jiff::Timestamp::now().to_string())?;
            print_id(ctx, "removed", &removed);
        }
        KeyCommand::Passwd(new) => {
            let repo = ctx.open()?;
            let pw = new_password(ctx, new)?;
            let id = keys::change_password(&repo, &pw, kdf(new))?;
            print_id(ctx, "changed password of", &id);
        }
        KeyCommand::Export { paper: _ } => {
            let repo = ctx.open()?;
            print!("{}", keys::export_paper(&repo)?);
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
            let pw = new_password(ctx, new)?;
            let id = keys::import_paper(ctx.storage()?, &text, &pw, kdf(new), &owner(None))?;
            print_id(ctx, "imported", &id);
        }
    }
    Ok(exit::OK)
}
