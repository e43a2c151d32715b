//! Who may do what: roles, the permission table, and client tokens.
//!
//! [`PERMISSIONS`] is the one place that says which role may list, read, write or delete which
//! kind of object; the server asks [`allowed`] before every object operation and nothing else
//! grants access.
//!
//! Tokens are `NAME.SECRET`: the client's name from the server config, a dot, and 43 characters
//! of base64url (32 random bytes). The server stores only an Argon2id PHC hash of the whole token
//! ([`hash_token`]); the name part only tells it which hash to check, so a request costs at most
//! one Argon2 verification however many clients are configured.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::fmt;
use tresor_storage::Kind;

/// A client's role in its repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A backup host: create objects and read what a backup with a put-only key needs.
    Append,
    /// Restore and check: list and read everything, change nothing.
    Read,
    /// Maintenance (init, keys, forget, prune): everything, deletion included.
    Admin,
}

impl Role {
    /// `append`, `read` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Append => "append",
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }

    /// Parse `append`, `read` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "append" => Some(Role::Append),
            "read" => Some(Role::Read),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operation on objects of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `GET /{repo}/{kind}/`: names and sizes.
    List,
    /// `GET` or `HEAD /{repo}/{kind}/{name}`, ranges included.
    Read,
    /// `PUT /{repo}/{kind}/{name}`: create (never replace).
    Write,
    /// `DELETE /{repo}/{kind}/{name}`.
    Delete,
}

impl Op {
    /// `list`, `read`, `write` or `delete` (as in the access log).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::List => "list",
            Op::Read => "read",
            Op::Write => "write",
            Op::Delete => "delete",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Op::List => 1,
            Op::Read => 2,
            Op::Write => 4,
            Op::Delete => 8,
        }
    }
}

/// A set of [`Op`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ops(u8);

impl Ops {
    /// Whether the set holds `op`.
    pub fn contains(self, op: Op) -> bool {
        self.0 & op.bit() != 0
    }
}

const NONE: Ops = Ops(0);
const W: Ops = Ops(4);
const LR: Ops = Ops(1 | 2);
const LRW: Ops = Ops(1 | 2 | 4);
const ALL: Ops = Ops(1 | 2 | 4 | 8);

/// The permission table: one row per role and object kind (every pair exactly once), giving the
/// operations allowed. `L` list, `R` read, `W` write (create), `D` delete.
///
/// `append` is exactly what a backup with a put-only key does (measured from the access log of
/// `tresor backup`): it lists and reads the config, the key files, the revocations and the index
/// objects (their dedup lists), and creates packs, index objects, snapshots and backup start
/// markers. It cannot list or read packs, snapshots or markers, cannot create keys, revocations,
/// configs or prune records, and deletes nothing. Overwrites are refused for every role: storage writes are create-only.
pub const PERMISSIONS: [(Role, Kind, Ops); 24] = [
    (Role::Append, Kind::Config, LR),
    (Role::Append, Kind::Key, LR),
    (Role::Append, Kind::Revocation, LR),
    (Role::Append, Kind::Index, LRW),
    (Role::Append, Kind::Snapshot, W),
    (Role::Append, Kind::Pack, W),
    (Role::Append, Kind::PruneRecord, NONE),
    (Role::Append, Kind::Marker, W),
    (Role::Read, Kind::Config, LR),
    (Role::Read, Kind::Key, LR),
    (Role::Read, Kind::Revocation, LR),
    (Role::Read, Kind::Index, LR),
    (Role::Read, Kind::Snapshot, LR),
    (Role::Read, Kind::Pack, LR),
    (Role::Read, Kind::PruneRecord, LR),
    (Role::Read, Kind::Marker, LR),
    (Role::Admin, Kind::Config, ALL),
    (Role::Admin, Kind::Key, ALL),
    (Role::Admin, Kind::Revocation, ALL),
    (Role::Admin, Kind::Index, ALL),
    (Role::Admin, Kind::Snapshot, ALL),
    (Role::Admin, Kind::Pack, ALL),
    (Role::Admin, Kind::PruneRecord, ALL),
    (Role::Admin, Kind::Marker, ALL),
];

/// Whether `role` may do `op` on objects of `kind`, by [`PERMISSIONS`].
pub fn allowed(role: Role, kind: Kind, op: Op) -> bool {
    PERMISSIONS
        .iter()
        .any(|&(r, k, ops)| r == role && k == kind && ops.contains(op))
}

/// Make a new random token for client `name`: `NAME.SECRET`, SECRET being 32 random bytes in
/// base64url without padding.
///
/// # Errors
/// The system random generator failing.
pub fn generate_token(name: &str) -> Result<String, getrandom::Error> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)?;
    Ok(format!(
        "{name}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    ))
}

/// The client name a token claims (the part before the last `.`), if it has one.
pub fn token_client(token: &str) -> Option<&str> {
    token
        .rsplit_once('.')
        .map(|(n, _)| n)
        .filter(|n| crate::protocol::valid_name(n))
}

/// The Argon2id PHC string of a token (default parameters: 19 MiB, 2 passes, random salt), as
/// stored in the server config.
///
/// # Errors
/// Argon2 failing (out of memory, random generator).
pub fn hash_token(token: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(token.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Check that `phc` is an Argon2id PHC string.
///
/// # Errors
/// A message naming the problem.
pub fn check_phc(phc: &str) -> Result<(), String> {
    let h = PasswordHash::new(phc).map_err(|e| format!("not a PHC string: {e}"))?;
    if h.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "algorithm {} is not argon2id (use `tresor serve hash-token`)",
            h.algorithm
        ));
    }
    Ok(())
}

/// Whether `token` matches the PHC hash (Argon2's own constant-time comparison). Slow on
/// purpose: call it off the async threads.
pub fn verify_token(token: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(token.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_every_pair_once() {
        for role in [Role::Append, Role::Read, Role::Admin] {
            for kind in Kind::ALL {
                let n = PERMISSIONS
                    .iter()
                    .filter(|(r, k, _)| *r == role && *k == kind)
                    .count();
                assert_eq!(n, 1, "{role} {kind}");
            }
        }
    }

    #[test]
    fn append_cannot_read_packs_or_delete() {
        for kind in Kind::ALL {
            assert!(!allowed(Role::Append, kind, Op::Delete));
            assert!(!allowed(Role::Read, kind, Op::Delete));
            assert!(!allowed(Role::Read, kind, Op::Write));
            assert!(allowed(Role::Admin, kind, Op::Delete));
        }
        assert!(!allowed(Role::Append, Kind::Pack, Op::Read));
        assert!(!allowed(Role::Append, Kind::Snapshot, Op::Read));
        assert!(!allowed(Role::Append, Kind::Key, Op::Write));
        assert!(allowed(Role::Append, Kind::Pack, Op::Write));
        assert!(allowed(Role::Append, Kind::Index, Op::Read));
    }

    #[test]
    fn tokens() {
        let t = generate_token("vps1").unwrap();
        assert_eq!(token_client(&t), Some("vps1"));
        assert_eq!(t.len(), 5 + 43);
        let h = hash_token(&t).unwrap();
        assert!(h.starts_with("$argon2id$"));
        check_phc(&h).unwrap();
        assert!(verify_token(&t, &h));
        assert!(!verify_token(&format!("{t}x"), &h));
        assert!(
            check_phc("$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA").is_err()
        );
    }
}
