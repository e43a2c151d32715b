//! The server config file (TOML).
//!
//! ```toml
//! [limits]                       # optional; these are the defaults
//! max_object_size = 268435456    # bytes; larger PUT bodies get 413
//! header_timeout_secs = 30       # first request of a connection, and every request's headers
//! idle_timeout_secs = 60         # a connection with no request in progress is closed then
//! body_timeout_secs = 60         # longest pause between two pieces of a request body
//! max_connections = 256          # connections served at once; more wait in the kernel queue
//! max_connections_per_address = 16   # per client IP address (IPv6: per /64); more are closed
//! max_streams_per_connection = 64     # HTTP/2 requests at once on one connection
//! h2_keepalive_secs = 30         # HTTP/2 ping interval (and how long an answer may take); 0 = off
//! max_in_flight_bytes = 1073741824    # uploads being received at once (by Content-Length); 503
//! spool_threshold = 1048576      # larger bodies go to a temporary file, not memory
//! # spool_dir = "/var/tmp/tresor"     # default: a local repository's own directory, else $TMPDIR
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

/// Limits that protect the server from large, slow, idle or many requests and connections.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest object a client may upload, in bytes (a larger `Content-Length` or body gets 413).
    /// Default 256 MiB.
    pub max_object_size: u64,
    /// Seconds within which a new connection must complete its TLS handshake, show whether it
    /// speaks HTTP/2, and send its first complete request; and within which the request line and
    /// headers of every HTTP/1.1 request must arrive (hyper's header read timeout, which also
    /// bounds the wait for the next request on an idle keep-alive connection). A connection that
    /// misses it is closed. Default 30.
    pub header_timeout_secs: u64,
    /// Seconds a connection may stay open with no request in progress (no handler running and
    /// no response being sent) after its first request; then it is closed (HTTP/2: `GOAWAY`,
    /// and dropped if the client does not close within `header_timeout_secs`). Default 60.
    pub idle_timeout_secs: u64,
    /// Longest pause, in seconds, between two pieces of a request body; a slower upload gets 408
    /// and nothing is stored. Default 60.
    pub body_timeout_secs: u64,
    /// Connections served at once. Default 256.
    pub max_connections: usize,
    /// Connections served at once from one client address (IPv4 address, or IPv6 /64 prefix);
    /// a connection over it is closed at once, before anything is read. Default 16.
    pub max_connections_per_address: usize,
    /// HTTP/2 streams (requests) a client may have open at once on one connection. Default 64.
    pub max_streams_per_connection: u32,
    /// HTTP/2 keep-alive: seconds between pings on a connection, and how long the answer may
    /// take before the connection is dropped as dead; 0 turns pings off. Default 30.
    pub h2_keepalive_secs: u64,
    /// Bytes of uploads being received at once, counted by their `Content-Length` from the
    /// moment the server accepts the request until the object is stored. An upload that would
    /// go over it is answered 503 with `Retry-After: 1` before its body is read (clients wait
    /// and retry). At least `max_object_size`. Default 1 GiB.
    pub max_in_flight_bytes: u64,
    /// Request bodies larger than this (bytes) are written to a temporary file as they arrive
    /// (see `spool_dir`) instead of being kept in memory; the object is then written to the
    /// storage from that file. Default 1 MiB.
    pub spool_threshold: u64,
    /// Folder for those temporary files (unnamed files, `O_TMPFILE`: nothing is left behind).
    /// Default: a local repository's own directory (same file system), for S3 repositories the
    /// system temporary folder (`$TMPDIR`, else `/tmp`: make sure that is not a RAM disk).
    pub spool_dir: Option<PathBuf>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_object_size: 256 << 20,
            header_timeout_secs: 30,
            idle_timeout_secs: 60,
            body_timeout_secs: 60,
            max_connections: 256,
            max_connections_per_address: 16,
            max_streams_per_connection: 64,
            h2_keepalive_secs: 30,
            max_in_flight_bytes: 1 << 30,
            spool_threshold: 1 << 20,
            spool_dir: None,
        }
    }
}

impl Limits {
    /// [`Limits::header_timeout_secs`] as a duration (at least 1 s).
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs.max(1))
    }

    /// [`Limits::idle_timeout_secs`] as a duration (at least 1 s).
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }

    /// [`Limits::body_timeout_secs`] as a duration (at least 1 s).
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs.max(1))
    }

    /// [`Limits::h2_keepalive_secs`] as a duration, `None` when 0.
    pub fn h2_keepalive(&self) -> Option<Duration> {
        (self.h2_keepalive_secs > 0).then(|| Duration::from_secs(self.h2_keepalive_secs))
    }

    /// Check that the limits can work together.
    ///
    /// # Errors
    /// A zero size, count or stream limit, or `max_in_flight_bytes` below `max_object_size`
    /// (such an object could never be accepted).
    pub fn check(&self) -> Result<(), String> {
        if self.max_object_size == 0
            || self.max_connections == 0
            || self.max_connections_per_address == 0
            || self.max_streams_per_connection == 0
        {
            return Err(
                "limits: max_object_size, max_connections, max_connections_per_address \
                 and max_streams_per_connection must be positive"
                    .into(),
            );
        }
        if self.max_in_flight_bytes < self.max_object_size {
            return Err(format!(
                "limits: max_in_flight_bytes ({}) must be at least max_object_size ({})",
                self.max_in_flight_bytes, self.max_object_size
            ));
        }
        Ok(())
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
    #[serde(deserialize_with = "role")]
    pub role: Role,
    /// Argon2id PHC hash of its token.
    pub token_hash: String,
}

/// A role from its name (`append`, `read` or `admin`).
fn role<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Role, D::Error> {
    let s = String::deserialize(d)?;
    Role::parse(&s).ok_or_else(|| {
        serde::de::Error::custom(format!("role {s:?}: expected append, read or admin"))
    })
}

impl ServerConfig {
    /// Parse and check a config text.
    ///
    /// # Errors
    /// TOML syntax, unknown keys, bad names, a client of an unknown repository, a repository with
    /// neither or both of `path` and `s3`, a token hash that is not Argon2id PHC, limits that do
    /// not pass [`Limits::check`].
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
        self.limits.check()
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
        assert_eq!(c.limits.idle_timeout_secs, 60);
        assert_eq!(c.limits.max_connections_per_address, 16);
        assert_eq!(c.limits.max_streams_per_connection, 64);
        assert_eq!(c.limits.max_in_flight_bytes, 1 << 30);
        assert_eq!(c.limits.spool_threshold, 1 << 20);
        assert_eq!(c.limits.spool_dir, None);
        let c2 = ServerConfig::parse(
            "[limits]\nspool_dir = \"/var/spool/t\"\nh2_keepalive_secs = 0\n\
             [repositories.main]\npath = \"/x\"\n",
        )
        .unwrap();
        assert_eq!(c2.limits.spool_dir, Some(PathBuf::from("/var/spool/t")));
        assert_eq!(c2.limits.h2_keepalive(), None);
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
            "[limits]\nmax_object_size = 2000\nmax_in_flight_bytes = 1999\n\
             [repositories.main]\npath = \"/x\"\n"
                .to_string(),
            "[limits]\nmax_connections_per_address = 0\n[repositories.main]\npath = \"/x\"\n"
                .to_string(),
            "[limits]\nmax_streams_per_connection = 0\n[repositories.main]\npath = \"/x\"\n"
                .to_string(),
        ] {
            assert!(ServerConfig::parse(&bad).is_err(), "{bad}");
        }
    }
}
