//! `tresor serve`: the repository server (`docs/protocol.md`), its stdio mode for SSH forced
//! commands, and `tresor serve hash-token`; plus the client-side flags for remote locations.

use crate::cli::Global;
use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use tresor_server::auth::{Role, generate_token, hash_token};
use tresor_server::config::Limits;
use tresor_server::{AccessLog, RemoteOptions, Server, ServerConfig};
use tresor_storage::Storage;

/// Options of remote locations (`tresor+https://`, `tresor+http://`, `ssh://`), taken by every
/// command. The token itself comes from `TRESOR_SERVER_TOKEN` or the token file, never from a
/// flag (it would show in `ps`) nor from the URL.
#[derive(Debug, Clone, Args)]
pub struct ServerFlags {
    /// tresor+https://: trust only the CA certificates in this PEM file (default: system roots).
    #[arg(long, env = "TRESOR_TLS_CA", global = true, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// tresor+http(s)://: read the client token from the first line of FILE (default: the
    /// TRESOR_SERVER_TOKEN environment variable).
    #[arg(
        long,
        env = "TRESOR_SERVER_TOKEN_FILE",
        global = true,
        value_name = "FILE"
    )]
    pub server_token_file: Option<PathBuf>,
    /// ssh://: run CMD (with sh -c) to reach the server instead of
    /// `ssh [-p PORT] USER@HOST tresor serve --stdio --repo PATH --role admin`.
    #[arg(long, env = "TRESOR_SERVER_COMMAND", global = true, value_name = "CMD")]
    pub server_command: Option<String>,
}

impl ServerFlags {
    /// Client options for [`tresor_server::RemoteStorage::open`].
    pub fn remote_options(&self) -> Result<RemoteOptions> {
        let mut o = RemoteOptions::default();
        o.token = tresor_server::client::token_from_env(self.server_token_file.as_deref())?;
        o.tls_ca = self.tls_ca.clone();
        o.server_command = self.server_command.clone();
        Ok(o)
    }
}

/// Flags of `tresor serve`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    /// `hash-token`, or none to serve.
    #[command(subcommand)]
    pub action: Option<ServeAction>,
    /// Address to listen on, e.g. 127.0.0.1:8080 or [::]:8443.
    #[arg(long, value_name = "ADDR", required_unless_present = "stdio")]
    pub listen: Option<String>,
    /// Server config (TOML): repositories, clients with token hashes and roles, limits.
    #[arg(long, value_name = "FILE", required_unless_present = "stdio")]
    pub config: Option<PathBuf>,
    /// TLS certificate chain (PEM, leaf first); with --tls-key, serve HTTPS (HTTP/1.1 and h2).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve the repository given with -r/--repo on standard input and output (HTTP/2), for
    /// `command="tresor serve --stdio --repo PATH --role append"` in authorized_keys.
    #[arg(long, conflicts_with_all = ["listen", "config", "tls_cert"], requires = "role")]
    pub stdio: bool,
    /// --stdio: what the other end may do: append, read or admin.
    #[arg(long, value_parser = ["append", "read", "admin"])]
    pub role: Option<String>,
    /// --stdio: the client's name in the access log.
    #[arg(long, default_value = "ssh", value_name = "NAME")]
    pub client_name: String,
    /// --stdio: largest object accepted, in bytes (default 256 MiB).
    #[arg(long, value_name = "BYTES")]
    pub max_object_size: Option<u64>,
    /// --stdio: bytes of uploads received at once; more are answered 503 and retried by the
    /// client (default 1 GiB, at least --max-object-size).
    #[arg(long, value_name = "BYTES")]
    pub max_in_flight_bytes: Option<u64>,
    /// --stdio: folder for the temporary files of uploads larger than 1 MiB (default: the
    /// repository's own directory; for S3, the system temporary folder).
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Append the access log to FILE (default: standard error; with --stdio only refused
    /// requests go there).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
}

/// Subcommands of `tresor serve`.
#[derive(Debug, Subcommand)]
pub enum ServeAction {
    /// Make a new client token and print it with the Argon2id hash for the server config.
    HashToken(HashTokenArgs),
}

/// Flags of `tresor serve hash-token`.
#[derive(Debug, Args)]
pub struct HashTokenArgs {
    /// The client's name in the config ([clients.NAME]); the token starts with it.
    pub client: String,
    /// Repository for the printed config lines.
    #[arg(long, default_value = "main")]
    pub repository: String,
    /// Role for the printed config lines: append, read or admin.
    #[arg(long, default_value = "append", value_parser = ["append", "read", "admin"])]
    pub role: String,
    /// Hash the token read from standard input instead of making a new one.
    #[arg(long)]
    pub stdin: bool,
}

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
        let storage: Arc<dyn Storage> = if tresor_s3::is_s3_url(repo) {
            Arc::new(tresor_s3::S3Storage::open(
                repo,
                &crate::context::s3_options(g)?,
            )?)
        } else {
            let path = std::path::absolute(repo.strip_prefix("local:").unwrap_or(repo))?;
            // Large uploads are spooled on the repository's own file system.
            limits.spool_dir.get_or_insert_with(|| path.clone());
            Arc::new(tresor_storage::local::LocalStorage::new(path))
        };
        limits.check().map_err(anyhow::Error::msg)?;
        storage.create()?;
        let server = Server::single(storage, &a.client_name, role, limits);
        server.set_access_log(log);
        server.serve_stdio()?;
        return Ok(crate::exit::OK);
    }
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
    let server = Server::from_config(&config).map_err(anyhow::Error::msg)?;
    server.set_access_log(log);
    let listener =
        std::net::TcpListener::bind(listen).with_context(|| format!("listen {listen}"))?;
    let addr = listener.local_addr()?;
    if tls.is_none() && !addr.ip().is_loopback() {
        eprintln!(
            "tresor serve: warning: plain HTTP on {addr}: tokens and traffic are readable on the \
             network; use --tls-cert/--tls-key or a TLS proxy"
        );
    }
    if !g.quiet {
        eprintln!(
            "tresor serve: listening on {}://{addr} ({} repositories, {} clients)",
            if tls.is_some() { "https" } else { "http" },
            config.repositories.len(),
            config.clients.len()
        );
    }
    server.run(listener, tls)?;
    Ok(crate::exit::OK)
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
    if g.json {
        println!(
            "{}",
            serde_json::json!({
                "client": h.client,
                "repository": h.repository,
                "role": h.role,
                "token": if h.stdin { None } else { Some(&token) },
                "token_hash": hash,
            })
        );
        return Ok(crate::exit::OK);
    }
    if !h.stdin {
        println!("# token for the client (TRESOR_SERVER_TOKEN); it is not stored anywhere:");
        println!("# {token}");
    }
    println!("[clients.{}]", h.client);
    println!("repository = \"{}\"", h.repository);
    println!("role = \"{}\"", h.role);
    println!("token_hash = \"{hash}\"");
    Ok(crate::exit::OK)
}
