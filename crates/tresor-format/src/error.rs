//! Errors of the format layer.

use thiserror::Error;

/// Result with [`FormatError`].
pub type Result<T, E = FormatError> = std::result::Result<T, E>;

/// Everything that can go wrong when decoding or decrypting repository bytes.
#[derive(Debug, Error)]
pub enum FormatError {
    /// Authentication failed: the bytes were modified, truncated, or sealed to another key.
    #[error("authentication failed ({what}): data is corrupt or was sealed to another key")]
    Authentication {
        /// Which object kind failed, e.g. "snapshot", "pack header", "blob".
        what: &'static str,
    },
    /// The password did not open the key file.
    #[error("wrong password for key file")]
    WrongPassword,
    /// The key holds no secret key, so it can write but not read.
    #[error("this key can write but not read (put-only key)")]
    PutOnlyKey,
    /// The bytes are not a well-formed object of the expected kind.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Object kind.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// An object was written by a newer (or unknown) format version.
    #[error("unsupported {what} version {found} (this tresor reads version {supported})")]
    UnsupportedVersion {
        /// Object kind.
        what: &'static str,
        /// Version found in the object.
        found: u32,
        /// Version this build supports.
        supported: u32,
    },
    /// A config, pack header or index object of a version outside the range this build reads
    /// ([`crate::OLDEST_REPO_VERSION`]..=[`crate::REPO_VERSION`]).
    #[error(
        "unsupported {what} version {found} (this tresor reads versions {oldest} and {newest})"
    )]
    UnsupportedVersions {
        /// Object kind.
        what: &'static str,
        /// Version found in the object.
        found: u32,
        /// Oldest version this build reads.
        oldest: u32,
        /// Newest version this build reads.
        newest: u32,
    },
    /// A blob's plaintext does not hash to its id.
    #[error("blob {0} content does not match its id")]
    BlobIdMismatch(crate::BlobId),
    /// Randomness was unavailable from the operating system.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

impl FormatError {
    /// Shorthand for [`FormatError::Malformed`].
    pub fn malformed(what: &'static str, detail: impl std::fmt::Display) -> Self {
        FormatError::Malformed {
            what,
            detail: detail.to_string(),
        }
    }
}

/// The leading postcard `u32` version field of an object.
pub(crate) fn postcard_version(plain: &[u8], what: &'static str) -> Result<u32> {
    let (found, _) =
        postcard::take_from_bytes::<u32>(plain).map_err(|e| FormatError::malformed(what, e))?;
    Ok(found)
}

/// Refuse a JSON object whose `version` field is not `supported`, before the rest is decoded.
pub(crate) fn check_json_version(b: &[u8], what: &'static str, supported: u32) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Probe {
        version: u32,
    }
    let probe: Probe = serde_json::from_slice(b).map_err(|e| FormatError::malformed(what, e))?;
    if probe.version != supported {
        return Err(FormatError::UnsupportedVersion {
            what,
            found: probe.version,
            supported,
        });
    }
    Ok(())
}

/// Fill `buf` with random bytes from the operating system.
///
/// # Errors
/// [`FormatError::Random`] when the OS has no randomness to give.
pub fn random_fill(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| FormatError::Random(e.to_string()))
}

/// 32 random bytes from the operating system.
///
/// # Errors
/// [`FormatError::Random`] when the OS has no randomness to give.
pub fn random_32() -> Result<[u8; 32]> {
    let mut b = [0u8; 32];
    random_fill(&mut b)?;
    Ok(b)
}
