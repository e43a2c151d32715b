//! Exit codes (documented in docs/cli.md) and one-line error messages.

use tresor_core::CoreError;

/// Success.
pub const OK: i32 = 0;
/// A fatal error not covered below.
pub const ERROR: i32 = 1;
/// The snapshot was saved, but some source entries could not be read.
pub const PARTIAL: i32 = 3;
/// `restore`: restored, but the target could not reproduce everything (owners, times, attributes,
/// device nodes: listed as differences).
pub const DIFFERENCES: i32 = 4;
/// Repository data is damaged or missing (check, restore, any read).
pub const DAMAGED: i32 = 5;
/// No repository at the given location.
pub const NO_REPOSITORY: i32 = 10;
/// Wrong password: no key opens with it (or only a removed, revoked key, or one the trust
/// record does not list).
pub const WRONG_PASSWORD: i32 = 12;
/// The key is put-only and cannot read.
pub const PUT_ONLY: i32 = 13;
/// Interrupted (Ctrl-C).
pub const INTERRUPTED: i32 = 130;

/// The exit code for an error.
pub fn code(e: &anyhow::Error) -> i32 {
    match e.downcast_ref::<CoreError>() {
        Some(CoreError::RepositoryNotFound(_)) => NO_REPOSITORY,
        Some(CoreError::WrongPassword | CoreError::KeyRevoked(_) | CoreError::KeyNotTrusted(_)) => {
            WRONG_PASSWORD
        }
        Some(CoreError::PutOnly(_)) => PUT_ONLY,
        Some(CoreError::Interrupted) => INTERRUPTED,
        Some(c) if c.is_damage() => DAMAGED,
        _ => ERROR,
    }
}

/// The one-line message for an error (with its causes).
pub fn message(e: &anyhow::Error) -> String {
    let mut parts = vec![e.to_string()];
    for c in e.chain().skip(1) {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}
