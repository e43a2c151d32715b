//! Who may do what: roles, the permission table, and client tokens.
//!
//! [`PERMISSIONS`] (in `tresor_storage::access`, shared with `tresor s3-policy`) is the one
//! place that says which role may list, read, write or delete which kind of object; the server
//! asks [`allowed`] before every object operation and nothing else grants access.
//!
//! Tokens are `NAME.SECRET`: the client's name from the server config, a dot, and 43 characters
//! of base64url (32 random bytes). The server stores only an Argon2id PHC hash of the whole token
//! ([`hash_token`]); the name part only tells it which hash to check, so a request costs at most
//! one Argon2 verification however many clients are configured.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;

pub use tresor_storage::access::{Op, Ops, PERMISSIONS, Role, allowed};

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
