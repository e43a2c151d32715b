//! Errors of the repository layer and the operations. They say what happened; the CLI maps
//! each to an exit code (`docs/cli.md`) and words the advice (which command to run) for the
//! kinds of damage [`Damage`] names.

use thiserror::Error;
use tresor_format::FormatError;
use tresor_storage::StorageError;

/// Result with [`CoreError`].
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// Errors of repository operations.
#[derive(Debug, Error)]
pub enum CoreError {
    /// No repository at the location.
    #[error("no repository at {0}")]
    RepositoryNotFound(String),
    /// A repository exists already where `init` was asked for.
    #[error("a repository already exists at {0}")]
    RepositoryExists(String),
    /// No key file opened with the password.
    #[error("wrong password: no key in the repository opens with it")]
    WrongPassword,
    /// The password opens only a key that was removed (revoked): what it would write is ignored.
    #[error("key {0} was removed from this repository (revoked): ask its admin for a new key")]
    KeyRevoked(String),
    /// The password opens only keys the trust record does not list (format §4.3).
    #[error(
        "key {0} is not in the repository's trust record (its addition did not finish, or the storage put it there): ask its admin for a new key"
    )]
    KeyNotTrusted(String),
    /// The key can only write.
    #[error("this key can write but not read (put-only key): {0} needs a full key")]
    PutOnly(&'static str),
    /// Stored data is damaged or missing.
    #[error("repository damaged: {0}")]
    Damaged(String),
    /// Stored data is damaged in a way [`Damage`] names, which one of the maintenance commands
    /// deals with.
    #[error("repository damaged: {message}")]
    KnownDamage {
        /// What is damaged.
        damage: Damage,
        /// What and where.
        message: String,
    },
    /// Decoding failed.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No snapshot matched.
    #[error("no snapshot matches {0:?}")]
    SnapshotNotFound(String),
    /// More than one snapshot matched an id prefix.
    #[error("snapshot id prefix {0:?} is ambiguous")]
    AmbiguousSnapshot(String),
    /// An object signed by an unknown or revoked key; readers ignore it.
    #[error("{0}")]
    Untrusted(String),
    /// Bad argument.
    #[error("{0}")]
    Invalid(String),
    /// The operation was interrupted.
    #[error("interrupted")]
    Interrupted,
    /// A file's data lies in a pack in a cold storage class (S3 `GLACIER`, `DEEP_ARCHIVE`) that
    /// cannot be read now: not thawed, or still thawing (`mount`'s reads).
    #[error("{file}: its data is in cold storage ({class}, pack {pack}), {state}")]
    Cold {
        /// The file (its path in the view).
        file: String,
        /// The pack's storage class.
        class: &'static str,
        /// The pack's short id.
        pack: String,
        /// `not thawed` or `still thawing`.
        state: &'static str,
        /// `SNAPSHOT:PATH` of the file, short snapshot id, when known: what `restore` takes.
        snapshot_path: Option<String>,
    },
}

/// What is damaged, for the damage one of the maintenance commands deals with (the CLI says
/// which): [`CoreError::KnownDamage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// A stored blob does not decode to its id (its pack read whole to be indexed again).
    BlobDoesNotVerify,
    /// Snapshots use blobs no intact copy of which is stored.
    UsedDataMissing,
    /// A prune record (a state or fossils) does not load.
    PruneRecord,
    /// A tree of a snapshot does not load, or is nested too deep, where prune must walk it.
    SnapshotTree,
    /// A blob is in no index object readers take, while index objects were left out that may
    /// list it.
    NotIndexed {
        /// Index objects of unknown or revoked signers left out.
        ignored: usize,
        /// Damaged index objects left out.
        damaged: usize,
    },
}

impl CoreError {
    /// Damage of kind `damage`, described by `message`.
    pub fn damage(damage: Damage, message: String) -> Self {
        CoreError::KnownDamage { damage, message }
    }

    /// An I/O error about `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        CoreError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// Whether this error means damaged or missing repository data. A repository of another
    /// format version (its config says so) is not damaged: this tresor does not read it.
    pub fn is_damage(&self) -> bool {
        match self {
            CoreError::Damaged(_) | CoreError::KnownDamage { .. } => true,
            CoreError::Format(f) => !matches!(
                f,
                FormatError::WrongPassword
                    | FormatError::PutOnlyKey
                    | FormatError::Random(_)
                    | FormatError::UnsupportedVersion {
                        what: "repository",
                        ..
                    }
                    | FormatError::UnsupportedVersions {
                        what: "repository",
                        ..
                    }
            ),
            CoreError::Storage(s) => matches!(
                s.kind,
                tresor_storage::ErrorKind::NotFound | tresor_storage::ErrorKind::ShortRead
            ),
            _ => false,
        }
    }
}
