//! Restore drill records (format §18): JSON sealed with HPKE
//! ([`crate::crypto::SealedKind::Drill`]) in a signed envelope ([`crate::sign`], kind Drill).
//!
//! `tresor drill` writes one after every run: what it restored and verified (snapshots, packs,
//! files, bytes), the result and the throughput. Readers take only records signed by a full key
//! (a put-only key cannot read, so it cannot drill) to continue the rotation over packs and to
//! compute coverage.

use crate::crypto::{MasterKey, SealedKind};
use crate::error::{FormatError, Result};
use crate::id::ObjectId;
use serde::{Deserialize, Serialize};

/// The outcome of a drill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillResult {
    /// Every sampled file restored and matched the snapshot byte for byte and field by field.
    Passed,
    /// At least one mismatch, unreadable or missing blob, or changed source file.
    Failed,
}

/// A drill record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillRecord {
    /// Record version, always [`crate::FORMAT_VERSION`].
    pub version: u32,
    /// When the drill ended, RFC 3339.
    pub time: String,
    /// Host that ran the drill.
    pub hostname: String,
    /// Id of the key file that ran it.
    pub key: ObjectId,
    /// Snapshots sampled from, sorted.
    pub snapshots: Vec<ObjectId>,
    /// Packs whose blobs were restored and verified (for a failed drill: read), sorted.
    pub packs: Vec<ObjectId>,
    /// Files restored.
    pub files: u64,
    /// Content bytes restored.
    pub bytes: u64,
    /// Passed or failed.
    pub result: DrillResult,
    /// Number of mismatches (content, metadata, missing data, changed source files).
    pub mismatches: u64,
    /// Wall time of the restore, seconds.
    pub seconds: f64,
    /// Restore throughput, bytes per second (0 when nothing took measurable time).
    pub bytes_per_sec: f64,
    /// Restore throughput, files per second.
    pub files_per_sec: f64,
    /// 16 random bytes, hex: every record is a distinct object.
    pub nonce: String,
}

impl DrillRecord {
    /// Seal to the repository key and sign: the stored bytes.
    ///
    /// # Errors
    /// Only when sealing fails.
    pub fn seal(&self, key: &MasterKey, signer: &crate::sign::Signer) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(self).expect("drill record serializes");
        let sealed = key.seal(SealedKind::Drill, &json, Some(&signer.public()))?;
        Ok(signer.envelope(crate::sign::SignedKind::Drill, &sealed))
    }

    /// Open stored bytes (needs a full key); returns the signer's public key and the record.
    ///
    /// # Errors
    /// [`FormatError::Authentication`], [`FormatError::Malformed`],
    /// [`FormatError::UnsupportedVersion`], [`FormatError::PutOnlyKey`].
    pub fn open(key: &MasterKey, stored: &[u8]) -> Result<([u8; 32], Self)> {
        let (signer, sealed) = crate::sign::open_envelope(crate::sign::SignedKind::Drill, stored)?;
        let plain = key.open(SealedKind::Drill, sealed, Some(&signer))?;
        crate::error::check_json_version(&plain, "drill record", crate::FORMAT_VERSION)?;
        let r: DrillRecord = serde_json::from_slice(&plain)
            .map_err(|e| FormatError::malformed("drill record", e))?;
        Ok((signer, r))
    }

    /// A fresh random nonce for [`DrillRecord::nonce`].
    ///
    /// # Errors
    /// [`FormatError::Random`].
    pub fn new_nonce() -> Result<String> {
        let mut nonce = [0u8; 16];
        crate::error::random_fill(&mut nonce)?;
        Ok(hex::encode(nonce))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> DrillRecord {
        DrillRecord {
            version: crate::FORMAT_VERSION,
            time: "2026-12-06T12:00:00Z".into(),
            hostname: "admin".into(),
            key: ObjectId::of(b"key"),
            snapshots: vec![ObjectId::of(b"s")],
            packs: vec![ObjectId::of(b"p1"), ObjectId::of(b"p2")],
            files: 3,
            bytes: 4096,
            result: DrillResult::Passed,
            mismatches: 0,
            seconds: 0.5,
            bytes_per_sec: 8192.0,
            files_per_sec: 6.0,
            nonce: DrillRecord::new_nonce().unwrap(),
        }
    }

    #[test]
    fn seal_open_round_trip_and_kind_separation() {
        let key = MasterKey::generate().unwrap();
        let signer = crate::sign::Signer::generate().unwrap();
        let r = record();
        let stored = r.seal(&key, &signer).unwrap();
        let (who, back) = DrillRecord::open(&key, &stored).unwrap();
        assert_eq!(back, r);
        assert_eq!(who, signer.public());
        assert_eq!(r.nonce.len(), 32);
        // Not a marker or a snapshot, and a marker is not a drill record.
        assert!(crate::marker::Marker::open(&key, &stored).is_err());
        assert!(crate::snapshot::Snapshot::open(&key, &stored).is_err());
        let m = crate::marker::Marker::new("h", "2026-01-01T00:00:00Z").unwrap();
        assert!(DrillRecord::open(&key, &m.seal(&key, &signer).unwrap()).is_err());
        // Another repository's key cannot open it; a flipped byte fails.
        assert!(DrillRecord::open(&MasterKey::generate().unwrap(), &stored).is_err());
        let mut bad = stored.clone();
        bad[50] ^= 1;
        assert!(DrillRecord::open(&key, &bad).is_err());
    }

    #[test]
    fn json_field_names_are_the_documented_ones() {
        let json = serde_json::to_value(record()).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = [
            "version",
            "time",
            "hostname",
            "key",
            "snapshots",
            "packs",
            "files",
            "bytes",
            "result",
            "mismatches",
            "seconds",
            "bytes_per_sec",
            "files_per_sec",
            "nonce",
        ];
        want.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(json["result"], "passed");
    }
}
