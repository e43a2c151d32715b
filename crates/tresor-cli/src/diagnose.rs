//! Errors that name the thing: what is at a local location that holds no tresor repository (a
//! missing path, a file, an empty directory, a restic repository), and which repository a
//! storage's "permission denied" concerns. `exit` maps [`NotARepository`] to exit code 10.

use std::path::Path;
use tresor_storage::{ErrorKind, StorageError};

/// A location that holds no tresor repository, with what is there instead: one line naming the
/// location (exit code [`crate::exit::NO_REPOSITORY`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotARepository(pub String);

impl std::fmt::Display for NotARepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotARepository {}

/// What is at a local path that holds no tresor repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Nothing: no such file or directory.
    Nothing,
    /// An empty directory.
    Empty,
    /// A file (or anything else that is not a directory).
    File,
    /// A restic repository: a `config` file beside `keys/` and `data/`.
    Restic,
    /// A directory with other things in it and no `config` folder.
    Other,
}

/// What is at `path` when it is not a tresor repository: `None` when it may be one (it has a
/// `config` folder) or cannot be looked at (then the storage's own error says why).
pub fn found(path: &Path) -> Option<Found> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(Found::Nothing),
        Err(_) => return None,
    };
    if !meta.is_dir() {
        return Some(Found::File);
    }
    if std::fs::read_dir(path).ok()?.next().is_none() {
        return Some(Found::Empty);
    }
    let is_dir = |name: &str| path.join(name).is_dir();
    if is_dir("config") {
        return None;
    }
    let restic = path.join("config").is_file() && is_dir("keys") && is_dir("data");
    Some(if restic { Found::Restic } else { Found::Other })
}

/// The error for a local `path` that holds no tresor repository ([`found`]), to open it.
pub fn local(path: &Path) -> Option<NotARepository> {
    let shown = path.display();
    let init = "(run `tresor init` first)";
    Some(NotARepository(match found(path)? {
        Found::Nothing => format!("no repository at {shown}: no such file or directory {init}"),
        Found::Empty => format!("no repository at {shown}: the directory is empty {init}"),
        Found::File => format!("{shown} is a file, not a tresor repository"),
        Found::Restic => format!("{shown} is a restic repository, not a tresor repository"),
        Found::Other => format!("{shown} is not a tresor repository (it has no config folder)"),
    }))
}

/// Why `init` must not create a repository at the local `path` (`None`: it may, or a
/// repository is there already, which `init` reports itself).
pub fn init_refusal(path: &Path) -> Option<String> {
    let shown = path.display();
    let elsewhere = "create the repository in a new or empty directory";
    match found(path)? {
        Found::Nothing | Found::Empty => None,
        Found::File => Some(format!("{shown} is a file: {elsewhere}")),
        Found::Restic => Some(format!("{shown} is a restic repository: {elsewhere}")),
        Found::Other => Some(format!("{shown}: the directory is not empty: {elsewhere}")),
    }
}

/// `e`, named after the repository at `location` when the storage refused access (permission
/// denied: file modes on a local directory, `AccessDenied` from S3, a role of a server).
pub fn name_repository(e: anyhow::Error, location: &str) -> anyhow::Error {
    let denied = e
        .chain()
        .filter_map(|c| c.downcast_ref::<StorageError>())
        .any(|s| s.kind == ErrorKind::PermissionDenied);
    if denied {
        e.context(format!("permission denied by repository {location}"))
    } else {
        e
    }
}

/// Whether `mount` can open the FUSE device `dev` (`/dev/fuse`); if not, what to do, in one
/// line. Opening it is what mounting does first, also for users without root (`fusermount3`
/// only helps once the device opens).
///
/// # Errors
/// The device is missing, or this user may not open it.
pub fn fuse_device(dev: &Path) -> anyhow::Result<()> {
    let shown = dev.display();
    match std::fs::OpenOptions::new().read(true).write(true).open(dev) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => anyhow::bail!(
            "cannot open {shown}: permission denied: give this user access to it (add the user \
             to its group, or make it mode 0666 as most systems do) or run as root; see \
             `tresor mount` in docs/cli.md"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "cannot open {shown}: no such device: load FUSE (`modprobe fuse`; in a container, \
             pass the device in, e.g. `--device /dev/fuse`); see `tresor mount` in docs/cli.md"
        ),
        Err(e) => anyhow::bail!("cannot open {shown}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tresor_storage::Kind;

    #[test]
    fn what_is_there_instead_of_a_repository() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let msg = |n: &str| local(&p(n)).map(|e| e.0);
        let shown = |n: &str| p(n).display().to_string();
        assert_eq!(
            msg("missing"),
            Some(format!(
                "no repository at {}: no such file or directory (run `tresor init` first)",
                shown("missing")
            ))
        );
        std::fs::write(p("file"), b"x").unwrap();
        assert_eq!(
            msg("file"),
            Some(format!(
                "{} is a file, not a tresor repository",
                shown("file")
            ))
        );
        std::fs::create_dir(p("empty")).unwrap();
        assert_eq!(
            msg("empty"),
            Some(format!(
                "no repository at {}: the directory is empty (run `tresor init` first)",
                shown("empty")
            ))
        );
        for d in [
            "restic",
            "restic/keys",
            "restic/data",
            "other",
            "tresor/config",
        ] {
            std::fs::create_dir_all(p(d)).unwrap();
        }
        std::fs::write(p("restic/config"), b"x").unwrap();
        assert_eq!(
            msg("restic"),
            Some(format!(
                "{} is a restic repository, not a tresor repository",
                shown("restic")
            ))
        );
        std::fs::write(p("other/notes.txt"), b"x").unwrap();
        assert_eq!(
            msg("other"),
            Some(format!(
                "{} is not a tresor repository (it has no config folder)",
                shown("other")
            ))
        );
        assert_eq!(msg("tresor"), None);
        let refusal = |n: &str| init_refusal(&p(n));
        assert_eq!(refusal("missing"), None);
        assert_eq!(refusal("empty"), None);
        assert_eq!(refusal("tresor"), None);
        let elsewhere = "create the repository in a new or empty directory";
        assert_eq!(
            refusal("file"),
            Some(format!("{} is a file: {elsewhere}", shown("file")))
        );
        assert_eq!(
            refusal("restic"),
            Some(format!(
                "{} is a restic repository: {elsewhere}",
                shown("restic")
            ))
        );
        assert_eq!(
            refusal("other"),
            Some(format!(
                "{}: the directory is not empty: {elsewhere}",
                shown("other")
            ))
        );
    }

    #[test]
    fn not_a_repository_is_exit_10_also_under_context() {
        let e = anyhow::Error::from(NotARepository(
            "/r is a file, not a tresor repository".into(),
        ));
        assert_eq!(crate::exit::code(&e), crate::exit::NO_REPOSITORY);
        let e = e.context("opening");
        assert_eq!(crate::exit::code(&e), crate::exit::NO_REPOSITORY);
        assert_eq!(
            crate::exit::message(&e),
            "opening: /r is a file, not a tresor repository"
        );
    }

    #[test]
    fn permission_errors_name_the_repository_and_others_stay() {
        let err = |kind| {
            let s = StorageError::new(kind, "list", Kind::Config, "config", "AccessDenied");
            anyhow::Error::from(tresor_core::CoreError::Storage(s))
        };
        let loc = "s3:https://s3.example.com/b/p";
        let named = name_repository(err(ErrorKind::PermissionDenied), loc);
        assert_eq!(
            crate::exit::message(&named),
            "permission denied by repository s3:https://s3.example.com/b/p: \
             storage: list config config: AccessDenied"
        );
        assert_eq!(crate::exit::code(&named), crate::exit::ERROR);
        let other = name_repository(err(ErrorKind::Other), loc);
        assert_eq!(
            crate::exit::message(&other),
            "storage: list config config: AccessDenied"
        );
    }

    #[test]
    fn a_missing_fuse_device_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("fuse");
        let e = fuse_device(&dev).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot open {}: no such device: load FUSE (`modprobe fuse`; in a container, \
                 pass the device in, e.g. `--device /dev/fuse`); see `tresor mount` in \
                 docs/cli.md",
                dev.display()
            )
        );
        std::fs::write(&dev, b"").unwrap();
        assert!(fuse_device(&dev).is_ok());
    }
}
