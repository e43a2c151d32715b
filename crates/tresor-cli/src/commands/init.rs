use crate::cli::InitArgs;
use crate::context::{Context, hostname, username};
use crate::exit;
use anyhow::Result;
use tresor_core::Repository;
use tresor_core::repository::KeyOwner;
use tresor_format::config::Config;
use tresor_format::keyfile::KdfParams;

pub fn run(ctx: &Context, a: &InitArgs) -> Result<i32> {
    let storage = ctx.storage()?;
    if !ctx.probe_conditional_writes()? {
        anyhow::bail!(
            "{}: the store ignores conditional writes (If-None-Match: *), so objects could be overwritten; refusing to create a repository there",
            ctx.location
        );
    }
    let pw = match &a.new_password_file {
        Some(f) => crate::password::read_file(f, ctx.password.insecure_file)?,
        None => ctx
            .password
            .get_new("enter a password for the new repository: ")?,
    };
    if pw.is_empty() {
        anyhow::bail!("empty passwords are refused");
    }
    let mut config = Config::new()?;
    config.pack_size = a.pack_size_mib.clamp(1, 1024) << 20;
    config.compression_level = a.compression_level.clamp(0, 19);
    let owner = KeyOwner {
        host: hostname(),
        username: username(),
        created: jiff::Timestamp::now().to_string(),
    };
    let kdf = KdfParams {
        m_kib: a.kdf_memory_kib.max(8),
        t: a.kdf_iterations.max(1),
        p: 1,
    };
    let repo = Repository::init(storage, &pw, kdf, &owner, config)?;
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"message_type": "initialized", "id": repo.config().id, "repository": ctx.location})
        );
    } else if !ctx.quiet {
        println!(
            "created tresor repository {} at {}",
            &repo.config().id[..10],
            ctx.location
        );
        println!("Keep the password safe: without it the data cannot be read.");
    }
    Ok(exit::OK)
}
