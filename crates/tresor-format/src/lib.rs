//! # tresor-format: the repository format, as bytes ⇄ types
//!
//! This crate is the executable form of `docs/format.md` (format version [`FORMAT_VERSION`]).
//! It does no I/O and spawns no threads: every function turns bytes into typed values or back.
//!
//! | module | spec section | what it owns |
//! |---|---|---|
//! | [`id`] | §2 | [`ObjectId`] (storage names, plain BLAKE3 of stored bytes), [`BlobId`] (keyed BLAKE3 of plaintext) |
//! | [`crypto`] | §3 | [`crypto::MasterKey`], HPKE sealing of objects, per-pack data keys for blobs |
//! | [`sign`] | §3.2 | Ed25519 signed envelopes, key certificates |
//! | [`keyfile`] | §4 | password-wrapped key files (Argon2id + XChaCha20-Poly1305) |
//! | [`revocation`] | §4.2 | admin-signed key revocations |
//! | [`trust`] | §4.3 | admin-signed trust records: trusted and revoked keys, the config's id |
//! | [`config`] | §5 | the plaintext repository config |
//! | [`chunker`] | §6 | FastCDC 2020 with a gear table keyed by a 256-bit key (BLAKE3 XOF) |
//! | [`blob`] | §7 | blob encoding: compression, Padmé padding, encryption |
//! | [`pack`] | §8 | pack layout and sealed pack header |
//! | [`index`] | §9 | index objects |
//! | [`tree`] | §10 | trees and nodes |
//! | [`snapshot`] | §11 | snapshots |
//! | [`record`] | §16 | prune records: prune state, fossils of condemned packs, forget records |
//! | [`marker`] | §16.1 | backup start markers |
//! | [`drill`] | §18 | restore drill records |

#![warn(missing_docs)]

pub mod blob;
pub mod chunker;
pub mod config;
pub mod crypto;
pub mod drill;
pub mod error;
pub mod id;
pub mod index;
pub mod keyfile;
pub mod marker;
pub mod pack;
pub mod record;
pub mod revocation;
pub mod sign;
pub mod snapshot;
pub mod tree;
pub mod trust;
pub mod unlocked;

pub use error::{FormatError, Result};
pub use id::{BlobId, ObjectId};

/// The repository format version this crate reads and writes. Readers refuse any other version
/// with [`FormatError::UnsupportedVersion`].
pub const FORMAT_VERSION: u32 = 2;

/// The newest version of the structures version 3 changed (format §14): the config's
/// `version`, pack headers and index objects (their blob entries may be frame members, §7, §8).
/// New repositories are made in it.
pub const REPO_VERSION: u32 = 3;

/// The oldest repository version this crate reads and writes: a version-2 repository is still
/// written in version 2 (no frames), so older tresor binaries sharing it keep working.
pub const OLDEST_REPO_VERSION: u32 = 2;

/// Refuse a config, pack header or index version outside
/// [`OLDEST_REPO_VERSION`]..=[`REPO_VERSION`].
pub(crate) fn check_repo_version(what: &'static str, found: u32) -> Result<()> {
    if (OLDEST_REPO_VERSION..=REPO_VERSION).contains(&found) {
        return Ok(());
    }
    Err(FormatError::UnsupportedVersions {
        what,
        found,
        oldest: OLDEST_REPO_VERSION,
        newest: REPO_VERSION,
    })
}
