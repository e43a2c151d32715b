//! The server config file (TOML).
//!
//! ```toml
//! [limits]                       # optional; these are the defaults
//! max_object_size = 268435456    # bytes; larger PUT bodies get 413
//! header_timeout_secs = 30       # a request's headers must arrive within this time
//! body_timeout_secs = 60         # longest pause between two pieces of a request body
//! max_connections = 256          # connections served at once; more wait in the kernel queue
//!
//! [repositories.main]
//! path = "/srv/tresor/main"      # a local directory (created with its folders at start)
//!
//! [repositories.offsite]
//! s3 = "s3:https://s3.example.net/bucket/prefix"   # credentials from the server's AWS chain
//!
//! [clients.vps1]
//! repository = "main"
//! role = "append"                # append | read | admin
//! token_hash = "$argon2id$v=19$m=19456,t=2,p=1$..."  # from `tresor serve hash-token vps1`
//! ```
//!
//! Unknown keys are errors, so a typo cannot silently widen or narrow access.

use crate::auth::{Role, check_phc};
use crate::protocol::valid_name;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Request limits and timeouts.
    #[serde(default)]
    pub limits: Limits,
    /// Repositories by name (the first path segment of every URL).
    pub repositories: BTreeMap<String, RepositoryConfig>,
    /// Clients by name (the part of a token before the last `.`).
    #[serde(default)]
    pub clients: BTreeMap<String, ClientConfig>,
}

/// Limits that protect the server from large, slow or many requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest object a client may upload, in bytes (a larger `Content-Length` or body gets 413).
    /// Default 256 MiB.
    pub max_object_size: u64,
    /// Seconds within which the request line and headers must arrive (HTTP/1.1), else the
    /// connection is closed; also bounds the TLS handshake and the first bytes of a plain
    /// connection (HTTP/2 preface or not). Default 30.
    pub header_timeout_secs: u64,
    /// Longest pause, in seconds, between two pieces of a request body; a slower upload gets 408
    /// and nothing is stored. Default 60.
    pub body_timeout_secs: u64,
    /// Connections served at once. Default 256.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_object_size: 256 << 20,
            header_timeout_secs: 30,
            body_timeout_secs: 60,
            max_connections: 256,
        }
    }
}

impl Limits {
    /// [`Limits::header_timeout_secs`] as a duration (at least 1 s).
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs.max(1))
    }

    /// [`Limits::body_timeout_secs`] as a duration (at least 1 s).
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs.max(1))
    }
}

/// Where one repository is stored: exactly one of `path` and `s3`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    /// A local directory.
    pub path: Option<PathBuf>,
    /// An S3 location (`s3:https://ENDPOINT/BUCKET[/PREFIX]` or `s3://BUCKET[/PREFIX]`), with
    /// credentials from the server's AWS chain.
    pub s3: Option<String>,
}

/// One client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The repository it may use; every other repository answers 404 to it.
    pub repository: String,
    /// What it may do there.
    pub role: Role,
    /// Argon2id PHC hash of its token.
    pub token_hash: String,
}

impl ServerConfig {
    /// Parse and check a config text.
    ///
    /// # Errors
    /// TOML syntax, unknown keys, bad names, a client of an unknown repository, a repository with
    /// neither or both of `path` and `s3`, a token hash that is not Argon2id PHC, zero limits.
    pub fn parse(text: &str) -> Result<ServerConfig, String> {
        let c: ServerConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.check()?;
        Ok(c)
    }

    /// Read and [`parse`](ServerConfig::parse) a config file.
    ///
    /// # Errors
    /// As `parse`, and I/O errors, each naming the file.
    pub fn load(path: &Path) -> Result<ServerConfig, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("config {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("config {}: {e}", path.display()))
    }

    fn check(&self) -> Result<(), String> {
        if self.repositories.is_empty() {
            return Err("no [repositories.NAME] configured".into());
        }
        for (name, r) in &self.repositories {
            if !valid_name(name) {
                return Err(format!(
                    "repository name {name:?}: use 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit"
                ));
            }
            match (&r.path, &r.s3) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return Err(format!(
                        "repository {name}: give exactly one of path and s3"
                    ));
                }
            }
        }
        for (name, c) in &self.clients {
            if !valid_name(name) {
                return Err(format!(
                    "client name {name:?}: use 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit"
                ));
            }
            if !self.repositories.contains_key(&c.repository) {
                return Err(format!(
                    "client {name}: no repository named {:?}",
                    c.repository
                ));
            }
            check_phc(&c.token_hash).map_err(|e| format!("client {name}: token_hash: {e}"))?;
        }
        let l = &self.limits;
        if l.max_object_size == 0 || l.max_connections == 0 {
            return Err("limits: max_object_size and max_connections must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$3o0CUVUM0+2D9uEtXIYuhuVb6rmgTr1CyqEJVTtXiDc";

    #[test]
    fn parses_and_checks() {
        let c = ServerConfig::parse(&format!(
            "[limits]\nmax_object_size = 1000\n[repositories.main]\npath = \"/x\"\n\
             [clients.vps1]\nrepository = \"main\"\nrole = \"append\"\ntoken_hash = \"{H}\"\n"
        ))
        .unwrap();
        assert_eq!(c.limits.max_object_size, 1000);
        assert_eq!(c.limits.header_timeout_secs, 30);
        assert_eq!(c.clients["vps1"].role, Role::Append);
        for bad in [
            "[repositories.main]\npath = \"/x\"\ns3 = \"s3://b\"\n".to_string(),
            "[repositories.main]\n".to_string(),
            "[repositories.\"..\"]\npath = \"/x\"\n".to_string(),
            "[repositories.main]\npath = \"/x\"\ncolour = 1\n".to_string(),
            format!(
                "[repositories.main]\npath = \"/x\"\n[clients.a]\nrepository = \"other\"\n\
                 role = \"read\"\ntoken_hash = \"{H}\"\n"
            ),
            "[repositories.main]\npath = \"/x\"\n[clients.a]\nrepository = \"main\"\n\
             role = \"read\"\ntoken_hash = \"secret\"\n"
                .to_string(),
            format!(
                "[repositories.main]\npath = \"/x\"\n[clients.a]\nrepository = \"main\"\n\
                 role = \"root\"\ntoken_hash = \"{H}\"\n"
            ),
        ] {
            assert!(ServerConfig::parse(&bad).is_err(), "{bad}");
        }
    }
}
