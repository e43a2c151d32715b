//! Exit codes (documented in docs/cli.md) and one-line error messages.

use tresor_core::{CoreError, Damage};

/// Declares the exit codes: each one a constant and a row of [`TABLE`], from the same line, so
/// `tresor help exit-codes` cannot drift from what the code returns.
macro_rules! exit_codes {
    ($($(#[doc = $doc:literal])* $name:ident = $code:literal, $help:literal;)*) => {
        $($(#[doc = $doc])* #[allow(dead_code, reason = "every code is listed in the table")]
        pub const $name: i32 = $code;)*
        /// Every exit code with its meaning as `tresor help exit-codes` prints it, ascending.
        pub const TABLE: &[(i32, &str)] = &[$(($code, $help)),*];
    };
}

exit_codes! {
    /// Success.
    OK = 0, "success";
    /// A fatal error not covered below.
    ERROR = 1, "error: bad arguments to a command, local I/O problems, a storage that refuses \
        access (permission denied: the line names the repository), another format version, \
        check --read-data that met cold packs it could not read (give --thaw-tier)";
    /// A usage error: an unknown flag, a missing argument (clap's exit code).
    USAGE = 2, "usage error: unknown flag, missing argument";
    /// The snapshot was saved, but some source entries could not be read.
    PARTIAL = 3, "backup: the snapshot was saved, but some source entries could not be read";
    /// `restore`: restored, but the target could not reproduce everything (owners, times,
    /// attributes, device nodes: listed as differences).
    DIFFERENCES = 4, "restore: everything was restored, but the target could not reproduce \
        everything (owners, times, attributes, device nodes: listed)";
    /// Repository data is damaged or missing (check, restore, any read).
    DAMAGED = 5, "repository damaged: corrupt or missing data, a config the trust record does \
        not name, a rollback, a snapshot seen before that is missing";
    /// `snapshots --check-overdue`: a host's newest snapshot is older than the maximum age (or
    /// dated ahead of the clock).
    OVERDUE = 6, "snapshots --check-overdue: some host's newest snapshot is older than \
        --max-age, or dated more than an hour ahead of this clock";
    /// `drill` found a mismatch, an unreadable or missing blob, or a changed source file.
    DRILL_FAILED = 7, "drill: a restored file did not match its snapshot (content, metadata, \
        missing or unreadable data) or a source file changed without a new backup noticing";
    /// `tresor run`: a `before` hook failed and stopped the job.
    HOOK_STOPPED = 8, "run: a before hook failed and stopped the job (on_before_failure = \"stop\")";
    /// `restore`, `dump`, `check --read-data`, `copy`: data packs in a cold storage class are
    /// still thawing.
    THAWING = 9, "cold data still thawing: run the same command again later";
    /// No repository at the given location.
    NO_REPOSITORY = 10, "no tresor repository at the location (missing, empty, a file, \
        another program's repository)";
    /// Wrong password: no key opens with it (or only a removed, revoked key, or one the trust
    /// record does not list).
    WRONG_PASSWORD = 12, "wrong password: no key opens with it (or only a removed key, or one \
        the trust record does not list)";
    /// The key is put-only and cannot read.
    PUT_ONLY = 13, "the key is put-only and cannot read";
    /// Interrupted (Ctrl-C, SIGTERM, SIGHUP).
    INTERRUPTED = 130, "interrupted (Ctrl-C, SIGTERM or SIGHUP)";
    /// Standard output was closed by its reader, as if killed by SIGPIPE (128 + 13).
    BROKEN_PIPE = 141, "standard output was closed by its reader (`tresor snapshots | head -1`)";
}

/// The exit code for an error.
pub fn code(e: &anyhow::Error) -> i32 {
    if e.chain()
        .any(<dyn std::error::Error>::is::<crate::diagnose::NotARepository>)
    {
        return NO_REPOSITORY;
    }
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
    if let CoreError::Cold { snapshot_path, .. } = e {
        let spec = snapshot_path.as_deref().unwrap_or("SNAPSHOT:PATH");
        return Some(format!(
            "; thaw it with `tresor restore {spec} --target DIR --thaw-tier \
             bulk|standard|expedited` (it sends the thaw requests), then read it again"
        ));
    }
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
