//! Where passwords come from: `TRESOR_PASSWORD`, `--password-file`, `--password-command`, or a
//! prompt on the terminal. Passwords are never printed or logged.

use anyhow::{Context, Result, bail};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Sources, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct PasswordSource {
    /// `--password-file`.
    pub file: Option<std::path::PathBuf>,
    /// `--password-command`.
    pub command: Option<String>,
    /// `--insecure-password-file`: accept a group/world-readable file.
    pub insecure_file: bool,
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// Read a password file, refusing files others may read unless `insecure`.
pub fn read_file(path: &Path, insecure: bool) -> Result<String> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("password file {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 && !insecure {
        bail!(
            "password file {} is readable by group or others (mode {:o}); chmod 600 it or pass --insecure-password-file",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
    let s = std::fs::read_to_string(path)
        .with_context(|| format!("password file {}", path.display()))?;
    Ok(first_line(&s))
}

fn run_command(cmd: &str) -> Result<String> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("password command")?;
    if !out.status.success() {
        bail!("password command failed with {}", out.status);
    }
    Ok(first_line(&String::from_utf8_lossy(&out.stdout)))
}

impl PasswordSource {
    /// The password of an existing repository.
    pub fn get(&self, prompt: &str) -> Result<String> {
        if let Some(f) = &self.file {
            return read_file(f, self.insecure_file);
        }
        if let Some(c) = &self.command {
            return run_command(c);
        }
        if let Ok(p) = std::env::var("TRESOR_PASSWORD") {
            return Ok(p);
        }
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            return rpassword::prompt_password(prompt).context("reading password");
        }
        bail!(
            "no password given: set TRESOR_PASSWORD, or use --password-file or --password-command"
        )
    }

    /// A new password (asked twice on a terminal). Empty passwords are refused.
    pub fn get_new(&self, prompt: &str) -> Result<String> {
        let interactive = self.file.is_none()
            && self.command.is_none()
            && std::env::var_os("TRESOR_PASSWORD").is_none();
        let p = self.get(prompt)?;
        if interactive {
            let again = rpassword::prompt_password("enter the password again: ")
                .context("reading password")?;
            if again != p {
                bail!("the passwords do not match");
            }
        }
        if p.is_empty() {
            bail!("empty passwords are refused");
        }
        Ok(p)
    }
}
