//! Finding and reading the configuration file; its errors name the file and the line.

use super::{Chosen, Config, Profile};
use anyhow::{Context as _, Result, anyhow, bail};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The system-wide configuration file, used when the user has none.
pub const SYSTEM_FILE: &str = "/etc/tresor/tresor.toml";

/// The configuration file: `given` (`--config` / `TRESOR_CONFIG`, which must exist), else
/// [`find_default`]'s.
///
/// # Errors
/// None of them exists.
pub fn locate(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    find_default().ok_or_else(|| {
        let names: Vec<String> = default_candidates()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        anyhow!(
            "no configuration file: use --config FILE or create {}",
            names.join(" or ")
        )
    })
}

/// The first existing one of `$XDG_CONFIG_HOME/tresor/tresor.toml` (or
/// `~/.config/tresor/tresor.toml`) and [`SYSTEM_FILE`]; `None` when neither exists (not an
/// error: commands that only read the file when there is one ask this, and building an error
/// they drop costs a backtrace when `RUST_BACKTRACE` is set).
pub fn find_default() -> Option<PathBuf> {
    default_candidates().into_iter().find(|p| p.exists())
}

/// The places looked at for a configuration file when none is given, in order.
fn default_candidates() -> Vec<PathBuf> {
    let user = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => Some(PathBuf::from(x)),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")),
    }
    .map(|d| d.join("tresor/tresor.toml"));
    user.into_iter()
        .chain([PathBuf::from(SYSTEM_FILE)])
        .collect()
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Read and check the file at `path`.
///
/// # Errors
/// Unreadable; not TOML; an unknown key or a value of the wrong type (`FILE:LINE: …`); a
/// `password` the file may not hold (see [`Profile::password`]).
pub fn read(path: &Path) -> Result<(Config, String)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("configuration file {}", path.display()))?;
    let config: Config = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(&text, s.start));
        anyhow!("{}:{line}: {}", path.display(), describe(e.message()))
    })?;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    for p in config.profiles.values() {
        check_password(path, &text, mode, p)?;
    }
    if config.prices.is_some() {
        // Checked here so that a bad price is an error of the file, whichever command reads it.
        crate::prices::Prices::builtin().with_overrides(&text, &path.display().to_string())?;
    }
    Ok((config, text))
}

/// toml's message in one line; serde's "unknown field `x`, expected one of …" as
/// `unknown key "x" (expected one of …)`.
fn describe(message: &str) -> String {
    let one_line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line
        .strip_prefix("unknown field `")
        .and_then(|r| r.split_once('`'))
    {
        Some((key, rest)) => {
            let rest = rest.trim_start_matches(',').trim();
            if rest.is_empty() {
                format!("unknown key \"{key}\"")
            } else {
                format!("unknown key \"{key}\" ({rest})")
            }
        }
        None => one_line,
    }
}

/// A password in the file only when the file is mode 600 (no group/other bits) and the profile
/// says `allow_password_in_file = true`.
fn check_password(path: &Path, text: &str, mode: u32, p: &Profile) -> Result<()> {
    let Some(pw) = &p.password else {
        return Ok(());
    };
    let allowed = p
        .allow_password_in_file
        .as_ref()
        .is_some_and(|a| *a.get_ref());
    if mode & 0o077 != 0 || !allowed {
        bail!(
            "{}:{}: a password in the configuration file is refused unless the file is mode 600 \
             (it is {mode:o}) and the profile sets allow_password_in_file = true; use \
             password_file or password_command",
            path.display(),
            line_of(text, pw.span().start)
        );
    }
    Ok(())
}

/// The profile `name` of the configuration file (`config`: `--config` / `TRESOR_CONFIG`).
///
/// # Errors
/// As [`locate`] and [`read`]; no profile of that name (the message lists the names).
pub fn choose(config: Option<&Path>, name: &str) -> Result<Chosen> {
    let file = locate(config)?;
    let (mut cfg, text) = read(&file)?;
    let Some(profile) = cfg.profiles.remove(name) else {
        let names: Vec<&String> = cfg.profiles.keys().collect();
        bail!(
            "{}: no profile {name:?} (profiles: {})",
            file.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
    };
    Ok(Chosen {
        name: name.to_string(),
        file,
        text,
        profile,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_from_one() {
        let text = "a = 1\nb = 2\n\nc = 3";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 6), 2);
        assert_eq!(line_of(text, text.len() - 1), 4);
        assert_eq!(line_of(text, 10_000), 4);
    }

    #[test]
    fn unknown_fields_become_unknown_keys() {
        assert_eq!(
            describe("unknown field `bogus`, expected one of `a`, `b`\n"),
            "unknown key \"bogus\" (expected one of `a`, `b`)"
        );
        assert_eq!(describe("unknown field `x`"), "unknown key \"x\"");
        assert_eq!(
            describe("invalid type: string \"x\",\n expected i64"),
            "invalid type: string \"x\", expected i64"
        );
    }

    #[test]
    fn a_wrong_type_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "[profiles.a]\nhost = \"h\"\ntags = \"daily\"\n").unwrap();
        let e = read(&file).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}:3: invalid type", file.display())),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn an_explicit_file_is_taken_as_given() {
        let p = Path::new("/nonexistent/x.toml");
        assert_eq!(locate(Some(p)).unwrap(), p);
    }
}
