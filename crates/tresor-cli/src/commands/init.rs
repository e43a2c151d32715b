use crate::args::InitArgs;
use crate::context::{Context, hostname, username};
use crate::exit;
use crate::render::{self, init::Initialized};
use anyhow::Result;
use tresor_core::Repository;
use tresor_core::repo::KeyOwner;
use tresor_format::config::{Config, ObjectLockConfig, ObjectLockMode};

pub fn run(ctx: &Context, a: &InitArgs) -> Result<i32> {
    // A repository in a directory that holds other files would mix with them (and a backup
    // source given as the repository by mistake would fill up with objects).
    if let Some(why) = ctx
        .local_path()
        .and_then(|d| crate::diagnose::init_refusal(&d))
    {
        anyhow::bail!(why);
    }
    let lock = object_lock(a)?;
    let storage = match lock {
        Some(l) => ctx.storage_with_object_lock(l)?,
        None => ctx.storage()?,
    };
    if !ctx.probe_conditional_writes()? {
        anyhow::bail!(
            "{}: the store ignores conditional writes (If-None-Match: *), so objects could be overwritten; refusing to create a repository there",
            ctx.location
        );
    }
    let kdf = super::key::kdf(&a.new)?;
    let pw = crate::password::new_password(
        &a.new,
        ctx.password.insecure_file,
        Some(&ctx.password),
        "enter a password for the new repository: ",
    )?;
    let mut config = Config::new()?;
    config.pack_size = a.pack_size_mib.clamp(1, 1024) << 20;
    config.compression_level = a.compression_level.clamp(0, 19);
    config.object_lock = lock;
    config.version = a.format_version;
    let owner = KeyOwner {
        host: hostname(),
        username: username(),
        created: tresor_core::time::now_recorded(),
    };
    let repo = Repository::init(storage, &pw, kdf, &owner, config)?;
    render::emit(
        &Initialized::new(&repo.config().id, &ctx.location, lock),
        ctx.mode(),
    )?;
    Ok(exit::OK)
}

/// The Object Lock retention `--s3-object-lock-days` and `--s3-object-lock-mode` ask for.
fn object_lock(a: &InitArgs) -> Result<Option<ObjectLockConfig>> {
    Ok(match a.s3_object_lock_days {
        None => None,
        Some(days) => Some(ObjectLockConfig {
            mode: match a.s3_object_lock_mode.as_deref().unwrap_or("governance") {
                m if m.eq_ignore_ascii_case("governance") => ObjectLockMode::Governance,
                m if m.eq_ignore_ascii_case("compliance") => ObjectLockMode::Compliance,
                m => {
                    anyhow::bail!("--s3-object-lock-mode {m:?}: expected governance or compliance")
                }
            },
            days,
        }),
    })
}
