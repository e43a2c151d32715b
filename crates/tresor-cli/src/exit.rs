//! Exit codes (documented in docs/cli.md) and one-line error messages.

use tresor_core::{CoreError, Damage};

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

/// The one-line message for an error (with its causes), a core error with its advice.
pub fn message(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(match c.downcast_ref::<CoreError>() {
                Some(core) => with_advice(core),
                None => s,
            });
        }
    }
    parts.join(": ").replace('\n', " ")
}

/// A core error's message followed by the advice for it, if any ([`advice`]).
pub fn with_advice(e: &CoreError) -> String {
    format!("{e}{}", advice(e).unwrap_or_default())
}

/// What to do about a core error, as the words that follow its message: the command that deals
/// with it.
pub fn advice(e: &CoreError) -> Option<String> {
    let text = match e {
        CoreError::RepositoryNotFound(_) => " (run `tresor init` first)",
        CoreError::KnownDamage { damage, .. } => match damage {
            Damage::BlobDoesNotVerify => "; run `tresor check --read-data`",
            Damage::UsedDataMissing => {
                "; run `tresor check`, then `tresor repair index` or `tresor repair snapshots`"
            }
            Damage::PruneRecord => "; run `tresor repair index`",
            Damage::SnapshotTree => "; run `tresor repair snapshots` before pruning",
            Damage::NotIndexed { ignored, damaged } => match (*ignored > 0, *damaged > 0) {
                (true, true) => ": see `tresor key signers` and `tresor check`",
                (true, false) => ": see `tresor key signers`",
                (false, true) => ": see `tresor check`",
                (false, false) => return None,
            },
        },
        _ => return None,
    };
    Some(text.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_get_their_advice_where_they_stand_in_the_message() {
        let e = anyhow::Error::from(CoreError::RepositoryNotFound("/srv/r".into()));
        assert_eq!(
            message(&e),
            "no repository at /srv/r (run `tresor init` first)"
        );
        assert_eq!(code(&e), NO_REPOSITORY);
        let damage = |damage, m: &str| CoreError::damage(damage, m.into());
        let e = anyhow::Error::from(damage(Damage::PruneRecord, "prune record 1a: bad"))
            .context("pruning");
        assert_eq!(
            message(&e),
            "pruning: repository damaged: prune record 1a: bad; run `tresor repair index`"
        );
        assert_eq!(code(&e), DAMAGED);
        for (d, want) in [
            (
                Damage::BlobDoesNotVerify,
                "repository damaged: x; run `tresor check --read-data`",
            ),
            (
                Damage::UsedDataMissing,
                "repository damaged: x; run `tresor check`, then `tresor repair index` or \
                 `tresor repair snapshots`",
            ),
            (
                Damage::SnapshotTree,
                "repository damaged: x; run `tresor repair snapshots` before pruning",
            ),
            (
                Damage::NotIndexed {
                    ignored: 2,
                    damaged: 0,
                },
                "repository damaged: x: see `tresor key signers`",
            ),
            (
                Damage::NotIndexed {
                    ignored: 1,
                    damaged: 3,
                },
                "repository damaged: x: see `tresor key signers` and `tresor check`",
            ),
            (
                Damage::NotIndexed {
                    ignored: 0,
                    damaged: 0,
                },
                "repository damaged: x",
            ),
        ] {
            assert_eq!(message(&anyhow::Error::from(damage(d, "x"))), want);
        }
        let plain = anyhow::Error::from(CoreError::Damaged("y".into()));
        assert_eq!(message(&plain), "repository damaged: y");
    }
}
