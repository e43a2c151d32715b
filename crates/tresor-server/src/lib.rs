//! # tresor-server: a repository server and its client
//!
//! `tresor serve` puts repositories behind a small HTTP protocol (`docs/protocol.md`) so that
//! backup hosts hold no storage credentials and cannot delete or overwrite backups:
//!
//! * [`server::Server`] serves the [`tresor_storage::Storage`] trait over HTTP/1.1 and HTTP/2
//!   (TLS with rustls, ALPN), or over HTTP/2 on stdin/stdout for SSH forced commands. Clients
//!   authenticate with bearer tokens stored as Argon2id hashes ([`auth`]); each is bound to one
//!   repository with a role, and one table ([`auth::PERMISSIONS`]) says what each role may do
//!   with each kind of object. The server checks `name == BLAKE3(body)` on every upload.
//! * [`client::RemoteStorage`] implements the `Storage` trait against such a server, for
//!   `tresor+https://HOST:PORT/REPO`, `tresor+http://` (loopback only) and `ssh://` locations.
//! * [`config::ServerConfig`] is the TOML config file; [`protocol`] the wire details both share.

#![warn(missing_docs)]

pub mod auth;
pub mod client;
pub mod config;
mod conn;
pub mod protocol;
pub mod server;
mod upload;

pub use auth::Role;
pub use client::{RemoteOptions, RemoteStorage, is_remote_url};
pub use config::ServerConfig;
pub use server::{AccessLog, OpenStorage, Server, ServerHandle, ServerStats};
