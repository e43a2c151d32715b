use crate::args::{KeyAddArgs, KeyCommand, NewPasswordArgs};
use crate::context::{Context, hostname, username};
use crate::exit;
use crate::render;
use crate::render::key::{
    Imported, KeyChanged, KeyList, Paper, Signers, ToAccept, UnlockedWritten,
};
use anyhow::{Context as _, Result};
use std::io::Read;
use std::path::PathBuf;
use tresor_core::keys;
use tresor_core::repo::KeyOwner;
use tresor_format::keyfile::{KdfParams, KeyKind};

pub fn run(ctx: &Context, c: &KeyCommand) -> Result<i32> {
    match c {
        KeyCommand::List => {
            let repo = ctx.open()?;
            let list = keys::list(&repo);
            let rows = list.iter().map(Into::into).collect();
            let zone = tresor_core::time::local_zone();
            render::emit(&KeyList(rows, zone), ctx.mode())?;
        }
        KeyCommand::Add(a) => add(ctx, a)?,
        KeyCommand::Remove { id } => {
            let repo = ctx.open()?;
            let removed = keys::remove(&repo, id, &tresor_core::time::now_recorded())?;
            changed(ctx, "removed", removed)?;
        }
        KeyCommand::Passwd(new) => {
            let params = kdf(new)?;
            let repo = ctx.open()?;
            let pw = new_password(ctx, new)?;
            let id = keys::change_password(&repo, &pw, params)?;
            changed(ctx, "changed password of", id)?;
        }
        KeyCommand::Export {
            unlocked: Some(file),
            ..
        } => export_unlocked(ctx, file)?,
        KeyCommand::Export { .. } => {
            let repo = ctx.open()?;
            let paper = keys::export_paper(&repo)?;
            render::emit(&Paper { paper }, ctx.mode())?;
        }
        KeyCommand::Signers { accept, yes } => signers(ctx, accept, *yes)?,
        KeyCommand::Import { file, new } => import(ctx, file.as_ref(), new)?,
    }
    Ok(exit::OK)
}

/// `key export --unlocked FILE`: the key in use, in the clear (format §4.4), in a new file
/// only its owner can read.
fn export_unlocked(ctx: &Context, file: &std::path::Path) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let repo = ctx.open()?;
    let u = tresor_format::unlocked::UnlockedKey::new(&repo.config().id, repo.payload().clone());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("cannot create {}", file.display()))?;
    f.write_all(&u.to_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", file.display()))?;
    let o = UnlockedWritten {
        message_type: "unlocked key written",
        id: repo.key_id(),
        file: file.display().to_string(),
        put_only: repo.key_kind() == KeyKind::PutOnly,
    };
    render::emit(&o, ctx.mode())
}

fn new_password(ctx: &Context, a: &NewPasswordArgs) -> Result<String> {
    crate::password::new_password(
        a,
        ctx.password.insecure_file,
        None,
        "enter the new password: ",
    )
}

fn changed(ctx: &Context, what: &'static str, id: tresor_format::ObjectId) -> Result<()> {
    let o = KeyChanged {
        message_type: what,
        id,
    };
    render::emit(&o, ctx.mode())
}

fn add(ctx: &Context, a: &KeyAddArgs) -> Result<()> {
    let params = kdf(&a.new)?;
    let repo = ctx.open()?;
    let pw = new_password(ctx, &a.new)?;
    let kind = if a.put_only {
        KeyKind::PutOnly
    } else {
        KeyKind::Full
    };
    let id = keys::add(&repo, &pw, kind, params, &owner(a.host.as_ref()))?;
    changed(ctx, "added", id)
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
        render::emit(&ToAccept(&chosen), ctx.mode())?;
        confirm(yes, chosen.len())?;
    }
    let accepted = keys::accept_signers(&repo, &chosen, &tresor_core::time::now_recorded())?;
    let o = Signers {
        unknown: &unknown,
        accepted: &accepted,
        asked: !accept.is_empty(),
    };
    render::emit(&o, ctx.mode())
}

fn import(ctx: &Context, file: Option<&PathBuf>, new: &NewPasswordArgs) -> Result<()> {
    let text = match file {
        Some(f) => std::fs::read_to_string(f).with_context(|| format!("{}", f.display()))?,
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
    let config = ctx.read_config(storage.as_ref())?;
    let marks = ctx.high_water(&config.id);
    let imported = keys::import_paper(storage, &text, &pw, params, &owner(None), marks.as_ref())?;
    let o = Imported {
        id: imported.id,
        unknown: &imported.unknown,
        trust_rebuilt: imported.trust_rebuilt.then(|| config_summary(&config)),
    };
    render::emit(&o, ctx.mode())
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
        created: tresor_core::time::now_recorded(),
    }
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
            Some(l) => {
                let mode = match l.mode {
                    tresor_format::config::ObjectLockMode::Governance => "governance",
                    tresor_format::config::ObjectLockMode::Compliance => "compliance",
                };
                format!("{mode} {} days", l.days)
            }
            None => "none".into(),
        }
    )
}
