//! Snapshots (format §11): JSON sealed with HPKE ([`crate::crypto::SealedKind::Snapshot`]),
//! wrapped in a signed envelope ([`crate::sign`], kind Snapshot) that names the writing key.

use crate::crypto::{MasterKey, SealedKind};
use crate::error::{FormatError, Result};
use crate::{BlobId, ObjectId};
use serde::{Deserialize, Serialize};

/// Statistics of the backup run that made a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    /// Files not in the parent snapshot.
    pub files_new: u64,
    /// Files in the parent whose metadata changed (re-read).
    pub files_changed: u64,
    /// Files unchanged since the parent (not read).
    pub files_unmodified: u64,
    /// Files in the parent snapshot but no longer present.
    pub files_deleted: u64,
    /// Directories not in the parent.
    pub dirs_new: u64,
    /// Directories whose listing or metadata changed.
    pub dirs_changed: u64,
    /// Directories unchanged.
    pub dirs_unmodified: u64,
    /// Files (and other non-directory nodes) in the snapshot.
    pub total_files_processed: u64,
    /// Sum of the sizes of all files in the snapshot, in bytes.
    pub total_bytes_processed: u64,
    /// Bytes actually read from files during this run.
    pub bytes_read: u64,
    /// Bytes added to the repository (stored, after dedup, compression and encryption).
    pub data_added: u64,
    /// Data blobs added.
    pub data_blobs: u64,
    /// Tree blobs added.
    pub tree_blobs: u64,
    /// Source entries that could not be read.
    pub errors: u64,
    /// Start of the backup, RFC 3339.
    pub backup_start: String,
    /// End of the backup, RFC 3339.
    pub backup_end: String,
}

/// A snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Snapshot version, always [`crate::FORMAT_VERSION`].
    pub version: u32,
    /// Snapshot time, RFC 3339 with offset.
    pub time: String,
    /// Root tree blob: a tree whose nodes are the backed-up paths' top directories.
    pub tree: BlobId,
    /// Backed-up paths as given (absolute).
    pub paths: Vec<String>,
    /// Host name.
    pub hostname: String,
    /// User name.
    pub username: String,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Tags.
    pub tags: Vec<String>,
    /// Exclude patterns in effect.
    pub excludes: Vec<String>,
    /// Parent snapshot, if one was used.
    pub parent: Option<ObjectId>,
    /// Statistics of the run.
    pub summary: Option<SnapshotSummary>,
    /// Program that wrote it, e.g. `"tresor 0.1.0"`.
    pub program_version: String,
    /// Backup start markers this backup ends (§16.1): its own, and those of earlier runs of the
    /// same host that ended without a snapshot. Absent from the JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub markers: Vec<ObjectId>,
    /// The snapshot this one replaces or was copied from: set by `tag`, `rewrite`,
    /// `repair snapshots` (the id of the snapshot edited, or that snapshot's own `original`
    /// when it has one, so a chain of edits names the first) and by `copy` (the id in the
    /// source repository). Informational: no reader follows it. Absent from the JSON when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<ObjectId>,
}

impl Snapshot {
    /// Seal to the repository key and sign: the stored bytes.
    ///
    /// # Errors
    /// Only when sealing fails.
    pub fn seal(&self, key: &MasterKey, signer: &crate::sign::Signer) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(self).expect("snapshot serializes");
        let sealed = key.seal(SealedKind::Snapshot, &json, Some(&signer.public()))?;
        Ok(signer.envelope(crate::sign::SignedKind::Snapshot, &sealed))
    }

    /// The signer of a stored snapshot (verifies the signature; any key can do this).
    ///
    /// # Errors
    /// [`FormatError::Authentication`], [`FormatError::Malformed`].
    pub fn signer_of(stored: &[u8]) -> Result<[u8; 32]> {
        Ok(crate::sign::open_envelope(crate::sign::SignedKind::Snapshot, stored)?.0)
    }

    /// Open stored bytes; returns the signer's public key and the snapshot.
    ///
    /// # Errors
    /// [`FormatError::Authentication`], [`FormatError::Malformed`], [`FormatError::UnsupportedVersion`].
    pub fn open(key: &MasterKey, stored: &[u8]) -> Result<([u8; 32], Self)> {
        let (signer, sealed) =
            crate::sign::open_envelope(crate::sign::SignedKind::Snapshot, stored)?;
        let plain = key.open(SealedKind::Snapshot, sealed, Some(&signer))?;
        Ok((signer, Self::decode(&plain)?))
    }

    /// Decode a snapshot's plaintext (JSON, this format version only): what [`Self::open`]
    /// does after opening, also used on snapshots kept in a local cache.
    ///
    /// # Errors
    /// [`FormatError::Malformed`], [`FormatError::UnsupportedVersion`].
    pub fn decode(plain: &[u8]) -> Result<Self> {
        crate::error::check_json_version(plain, "snapshot", crate::FORMAT_VERSION)?;
        let s: Snapshot =
            serde_json::from_slice(plain).map_err(|e| FormatError::malformed("snapshot", e))?;
        if s.version != crate::FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion {
                what: "snapshot",
                found: s.version,
                supported: crate::FORMAT_VERSION,
            });
        }
        Ok(s)
    }
}
