//! `tresor serve`: the repository server (`docs/protocol.md`), its stdio mode for SSH forced
//! commands, and `tresor serve hash-token`.

use crate::args::{Global, HashTokenArgs, ServeAction, ServeArgs};
use crate::location::{self, Location, Lock, OpenOptions};
use crate::render::serve::HashedToken;
use anyhow::{Context as _, Result, bail};
use std::sync::Arc;
use tresor_server::auth::{Role, generate_token, hash_token};
use tresor_server::config::{Limits, RepositoryConfig};
use tresor_server::{AccessLog, Server, ServerConfig};
use tresor_storage::Storage;

/// Run `tresor serve …`: serve until killed (or, with `--stdio`, until the client closes the
/// pipe), or print a new token and its hash. Returns the exit code.
///
/// # Errors
/// Bad flags, an unreadable or invalid config, TLS files, the address in use, storage that
/// cannot be opened.
pub fn run(g: &Global, a: &ServeArgs) -> Result<i32> {
    if let Some(ServeAction::HashToken(h)) = &a.action {
        return hash_token_cmd(g, h);
    }
    let log = match &a.log {
        Some(p) => AccessLog::File(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("access log {}", p.display()))?,
        ),
        None if a.stdio => AccessLog::StderrErrors,
        None => AccessLog::Stderr,
    };
    if a.stdio {
        serve_stdio(g, a, log)?;
    } else {
        serve_config(g, a, log)?;
    }
    Ok(crate::exit::OK)
}

/// `--stdio`: the repository of `--repo` on standard input and output, for one client.
fn serve_stdio(g: &Global, a: &ServeArgs, log: AccessLog) -> Result<()> {
    let Some(repo) = &g.repo else {
        bail!("--stdio needs the repository: --repo PATH");
    };
    let role = Role::parse(a.role.as_deref().unwrap_or("")).context("--role")?;
    let mut limits = Limits::default();
    if let Some(m) = a.max_object_size {
        limits.max_object_size = m.max(1);
    }
    if let Some(m) = a.max_in_flight_bytes {
        limits.max_in_flight_bytes = m;
    }
    limits.spool_dir = a.spool_dir.clone();
    let location = Location::parse(repo)?;
    // Large uploads are spooled on the repository's own file system.
    if let Some(path) = location.local_path() {
        limits.spool_dir.get_or_insert_with(|| path.to_path_buf());
    }
    let storage = location::open(&location, &OpenOptions::from_global(g)?, Lock::Off)?;
    limits.check().map_err(anyhow::Error::msg)?;
    storage.create()?;
    let server = Server::single(storage, &a.client_name, role, limits);
    server.set_access_log(log);
    server.serve_stdio()?;
    Ok(())
}

/// `--listen ADDR --config FILE`: the config's repositories over HTTP(S) until killed.
fn serve_config(g: &Global, a: &ServeArgs, log: AccessLog) -> Result<()> {
    let (Some(listen), Some(config)) = (&a.listen, &a.config) else {
        bail!("tresor serve needs --listen ADDR --config FILE (or --stdio)");
    };
    let config = ServerConfig::load(config).map_err(anyhow::Error::msg)?;
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(c), Some(k)) => {
            Some(tresor_server::server::tls_config(c, k).map_err(anyhow::Error::msg)?)
        }
        _ => None,
    };
    let opts = OpenOptions::from_global(g)?;
    let server = Server::from_config_with(&config, &|name, r| open_served(name, r, &opts))
        .map_err(anyhow::Error::msg)?;
    server.set_access_log(log);
    let listener =
        std::net::TcpListener::bind(listen).with_context(|| format!("listen {listen}"))?;
    let addr = listener.local_addr()?;
    if tls.is_none() && !addr.ip().is_loopback() {
        crate::render::say(format!(
            "tresor serve: warning: plain HTTP on {addr}: tokens and traffic are readable on the \
             network; use --tls-cert/--tls-key or a TLS proxy"
        ));
    }
    if !g.quiet {
        crate::render::say(format!(
            "tresor serve: listening on {}://{addr} ({} repositories, {} clients)",
            if tls.is_some() { "https" } else { "http" },
            config.repositories.len(),
            config.clients.len()
        ));
    }
    server.run(listener, tls)?;
    Ok(())
}

/// The storage of a repository of the server config, opened like every repository location
/// (S3 with the global S3 options; no Object Lock of its own: the server stores what clients
/// send).
fn open_served(
    name: &str,
    r: &RepositoryConfig,
    opts: &OpenOptions,
) -> std::result::Result<Arc<dyn Storage>, String> {
    let location = match (&r.path, &r.s3) {
        (Some(p), _) => std::path::absolute(p)
            .map(Location::Local)
            .map_err(anyhow::Error::from),
        (None, Some(url)) => Location::parse(url),
        (None, None) => Err(anyhow::anyhow!("no path or s3")),
    };
    location
        .and_then(|l| location::open(&l, opts, Lock::Off))
        .map_err(|e| format!("repository {name}: {}", crate::exit::message(&e)))
}

fn hash_token_cmd(g: &Global, h: &HashTokenArgs) -> Result<i32> {
    if !tresor_server::protocol::valid_name(&h.client) {
        bail!("client name {:?}: use 1-64 of A-Z a-z 0-9 . _ -", h.client);
    }
    let token = if h.stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        let t = line.trim().to_string();
        if tresor_server::auth::token_client(&t) != Some(h.client.as_str()) {
            bail!("the token must start with \"{}.\"", h.client);
        }
        t
    } else {
        generate_token(&h.client)?
    };
    let hash = hash_token(&token).map_err(anyhow::Error::msg)?;
    let o = HashedToken {
        client: &h.client,
        repository: &h.repository,
        role: &h.role,
        token: (!h.stdin).then_some(token.as_str()),
        token_hash: &hash,
    };
    let mode = crate::render::Mode {
        json: g.json,
        quiet: g.quiet,
    };
    crate::render::emit(&o, mode)?;
    Ok(crate::exit::OK)
}
