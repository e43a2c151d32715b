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
    /// The `password` of a profile (a mode-600 configuration file that allows it); used when
    /// no file or command is given, before `TRESOR_PASSWORD` (which, when set, keeps the
    /// profile from giving one at all).
    pub profile: Option<zeroize::Zeroizing<String>>,
    /// `--password-credential`: a systemd credential's name ([`read_credential`]).
    pub credential: Option<String>,
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

/// Read an unlocked key file (`--key-file`, format §4.4), refusing files others may read
/// unless `insecure`, and files over [`tresor_format::unlocked::MAX_UNLOCKED_LEN`] bytes.
///
/// # Errors
/// The file cannot be read, others may read it, or it is no unlocked key file (one line says
/// why; the key material is never printed).
pub fn read_unlocked(path: &Path, insecure: bool) -> Result<tresor_format::unlocked::UnlockedKey> {
    use std::io::Read as _;
    let what = || format!("key file {}", path.display());
    let f = std::fs::File::open(path).with_context(what)?;
    let mode = f.metadata().with_context(what)?.permissions().mode();
    if mode & 0o077 != 0 && !insecure {
        bail!(
            "key file {} is readable by group or others (mode {:o}); chmod 600 it or pass --insecure-password-file",
            path.display(),
            mode & 0o777
        );
    }
    let mut b = zeroize::Zeroizing::new(Vec::new());
    f.take(tresor_format::unlocked::MAX_UNLOCKED_LEN as u64 + 1)
        .read_to_end(&mut b)
        .with_context(what)?;
    tresor_format::unlocked::UnlockedKey::from_bytes(&b).with_context(what)
}

/// The systemd credential `name`: the first line of `$CREDENTIALS_DIRECTORY/name` (systemd
/// makes that directory private to the service, so the file's mode is not checked).
///
/// # Errors
/// The name is not a plain file name; `CREDENTIALS_DIRECTORY` is not set; the file cannot be
/// read.
pub fn read_credential(name: &str) -> Result<String> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        bail!("password credential {name:?}: a credential name is a file name (no '/')");
    }
    let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty()) else {
        bail!(
            "password credential {name:?}: CREDENTIALS_DIRECTORY is not set (systemd sets it for \
             a service with LoadCredential={name}:FILE)"
        );
    };
    let path = std::path::Path::new(&dir).join(name);
    let s = std::fs::read_to_string(&path)
        .with_context(|| format!("password credential {name:?}: {}", path.display()))?;
    Ok(first_line(&s))
}

/// The first line of what `cmd` (run with `sh -c`) prints.
pub fn run_command(cmd: &str) -> Result<String> {
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
        if let Some(c) = &self.credential {
            return read_credential(c);
        }
        if let Some(p) = &self.profile {
            return Ok(p.to_string());
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

    /// A new password (asked twice on a terminal), from these sources.
    fn get_new(&self, prompt: &str) -> Result<String> {
        let interactive = self.file.is_none()
            && self.command.is_none()
            && self.credential.is_none()
            && self.profile.is_none()
            && std::env::var_os("TRESOR_PASSWORD").is_none()
            && std::io::IsTerminal::is_terminal(&std::io::stdin());
        if interactive {
            prompt_twice(prompt)
        } else {
            self.get(prompt)
        }
    }
}

/// Ask for a new password on the terminal, twice.
fn prompt_twice(prompt: &str) -> Result<String> {
    let p = rpassword::prompt_password(prompt).context("reading password")?;
    let again =
        rpassword::prompt_password("enter the password again: ").context("reading password")?;
    if again != p {
        bail!("the passwords do not match");
    }
    Ok(p)
}

/// The new password of `init` or a key command: `--new-password-file`, else for `init` the
/// usual sources (`from` = the repository's password sources), else a prompt on a terminal
/// (asked twice). Key commands never take the new password from `TRESOR_PASSWORD` or
/// `--password-file`: those hold the password of the key in use.
///
/// # Errors
/// No source; an unreadable file; an empty password without `--allow-empty-password`.
pub fn new_password(
    a: &crate::args::NewPasswordArgs,
    insecure_file: bool,
    from: Option<&PasswordSource>,
    prompt: &str,
) -> Result<String> {
    let pw = match (&a.new_password_file, from) {
        (Some(f), _) => read_file(f, insecure_file)?,
        (None, Some(src)) => src.get_new(prompt)?,
        (None, None) => {
            if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                bail!(
                    "no new password given: use --new-password-file FILE (TRESOR_PASSWORD and \
                     --password-file give the password of the key in use, never the new one)"
                );
            }
            prompt_twice(prompt)?
        }
    };
    if pw.is_empty() && !a.allow_empty_password {
        bail!("empty passwords are refused (--allow-empty-password to insist)");
    }
    Ok(pw)
}
