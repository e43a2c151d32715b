//! Backup start markers (format §16.1): JSON sealed with HPKE
//! ([`crate::crypto::SealedKind::Marker`]) in a signed envelope ([`crate::sign`], kind Marker).
//!
//! A backup writes one before it reads the index, and lists it in its snapshot
//! ([`crate::snapshot::Snapshot::markers`]) when it ends. A prune run that finds a marker no
//! snapshot lists knows that the marker's host may have a backup running that started before
//! the run; it then waits for that host as it waits for hosts with snapshots.

use crate::crypto::{MasterKey, SealedKind};
use crate::error::{FormatError, Result};
use serde::{Deserialize, Serialize};

/// A backup start marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// Marker version, always [`crate::FORMAT_VERSION`].
    pub version: u32,
    /// Host name of the backup (the snapshot's `hostname`).
    pub hostname: String,
    /// When the backup started, RFC 3339 (informational; prune never compares times).
    pub started: String,
    /// 16 random bytes, hex: makes every marker a distinct object.
    pub nonce: String,
    /// Seconds between the markers the backup writes while it runs (a fresh marker every
    /// `refresh_secs`), or `None` (JSON field absent): a marker of an older tresor, which never
    /// refreshes and is never judged stale (format §16.1). An addition without a version
    /// change: older readers ignore the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_secs: Option<u64>,
}

impl Marker {
    /// A marker for a backup of `hostname` starting at `started` (RFC 3339).
    ///
    /// # Errors
    /// [`FormatError::Random`].
    pub fn new(hostname: &str, started: &str) -> Result<Self> {
        let mut nonce = [0u8; 16];
        crate::error::random_fill(&mut nonce)?;
        Ok(Marker {
            version: crate::FORMAT_VERSION,
            hostname: hostname.into(),
            started: started.into(),
            nonce: hex::encode(nonce),
            refresh_secs: None,
        })
    }

    /// The same marker, declaring that its backup writes a fresh one every `secs` seconds.
    #[must_use]
    pub fn with_refresh(mut self, secs: u64) -> Self {
        self.refresh_secs = Some(secs);
        self
    }

    /// Seal to the repository key and sign: the stored bytes.
    ///
    /// # Errors
    /// Only when sealing fails.
    pub fn seal(&self, key: &MasterKey, signer: &crate::sign::Signer) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(self).expect("marker serializes");
        let sealed = key.seal(SealedKind::Marker, &json, Some(&signer.public()))?;
        Ok(signer.envelope(crate::sign::SignedKind::Marker, &sealed))
    }

    /// Open stored bytes (needs a full key); returns the signer's public key and the marker.
    ///
    /// # Errors
    /// [`FormatError::Authentication`], [`FormatError::Malformed`], [`FormatError::UnsupportedVersion`].
    pub fn open(key: &MasterKey, stored: &[u8]) -> Result<([u8; 32], Self)> {
        let (signer, sealed) = crate::sign::open_envelope(crate::sign::SignedKind::Marker, stored)?;
        let plain = key.open(SealedKind::Marker, sealed, Some(&signer))?;
        crate::error::check_json_version(&plain, "marker", crate::FORMAT_VERSION)?;
        let m: Marker =
            serde_json::from_slice(&plain).map_err(|e| FormatError::malformed("marker", e))?;
        Ok((signer, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_kind_separation() {
        let key = MasterKey::generate().unwrap();
        let signer = crate::sign::Signer::generate().unwrap();
        let m = Marker::new("host-a", "2026-11-30T12:00:00Z").unwrap();
        let stored = m.seal(&key, &signer).unwrap();
        let (who, back) = Marker::open(&key, &stored).unwrap();
        assert_eq!(back, m);
        assert_eq!(who, signer.public());
        assert_eq!(m.nonce.len(), 32);
        assert_ne!(Marker::new("host-a", &m.started).unwrap().nonce, m.nonce);
        // Not a snapshot, and a snapshot is not a marker.
        assert!(crate::snapshot::Snapshot::open(&key, &stored).is_err());
        // Another repository's key cannot open it.
        assert!(Marker::open(&MasterKey::generate().unwrap(), &stored).is_err());
    }

    /// `refresh_secs` is written only when set, read back exactly, and a marker without it
    /// (an older tresor's) reads as `None`; an unknown field is ignored.
    #[test]
    fn refresh_secs_is_optional_json() {
        let m = Marker::new("h", "2026-01-01T00:00:00Z").unwrap();
        let plain = serde_json::to_string(&m).unwrap();
        assert!(!plain.contains("refresh"), "{plain}");
        let r = m.clone().with_refresh(300);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.ends_with(r#","refresh_secs":300}"#), "{json}");
        let back: Marker = serde_json::from_str(&json).unwrap();
        assert_eq!(back.refresh_secs, Some(300));
        assert_eq!(back, r);
        let old = format!(
            r#"{{"version":2,"hostname":"h","started":"2026-01-01T00:00:00Z","nonce":"{}","future":1}}"#,
            m.nonce
        );
        assert_eq!(serde_json::from_str::<Marker>(&old).unwrap(), m);
        let key = MasterKey::generate().unwrap();
        let signer = crate::sign::Signer::generate().unwrap();
        let (_, opened) = Marker::open(&key, &r.seal(&key, &signer).unwrap()).unwrap();
        assert_eq!(opened.refresh_secs, Some(300));
    }
}
