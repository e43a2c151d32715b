//! The repository config (format §5): plaintext JSON, stored once under `config/<id>`.
//!
//! It holds no secret: a storage operator may read it.

use crate::chunker::ChunkerParams;
use crate::error::{FormatError, Result};
use serde::{Deserialize, Serialize};

/// Default target pack size of new repositories, bytes (32 MiB; it was 16 MiB, and a repository
/// keeps the size its config records). Half the PUT requests of 16 MiB packs for
/// the same data, which is what object stores bill per request and cold storage classes bill
/// per object; rustic's default data pack size is the same (`rustic_core`,
/// `DEFAULT_DATA_SIZE`). A reader's limits grow with it (format §5, §12).
pub const DEFAULT_PACK_SIZE: u64 = 32 * 1024 * 1024;

/// Repository config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Repository format version: [`crate::REPO_VERSION`] (3) for new repositories, or 2
    /// (written without frames, readable by older tresor binaries).
    pub version: u32,
    /// Random repository id, 64 hex digits.
    pub id: String,
    /// Chunker parameters (sizes; the secret chunker key lives in the key material).
    pub chunker: ChunkerParams,
    /// Target pack size in bytes; a pack is closed once it reaches this size.
    pub pack_size: u64,
    /// zstd compression level used by writers (1–19; 0 = no compression).
    pub compression_level: i32,
    /// S3 Object Lock retention that every writer gives the objects it writes (S3 repositories
    /// only). Absent in repositories without it; older readers ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<ObjectLockConfig>,
}

/// Object Lock retention of every object written (config field `object_lock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLockConfig {
    /// Retention mode.
    pub mode: ObjectLockMode,
    /// Days after its write that an object stays locked (at least 1).
    pub days: u32,
}

/// S3 Object Lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectLockMode {
    /// Credentials with `s3:BypassGovernanceRetention` may delete early.
    Governance,
    /// Nobody may delete before the date.
    Compliance,
}

/// Whether `id` is a repository id as format §5 requires: exactly 64 lowercase hex digits.
/// Readers use it as a directory name (the local cache), so nothing else may pass.
pub fn is_repository_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Config {
    /// A new config with a fresh random id and default parameters.
    ///
    /// # Errors
    /// [`FormatError::Random`].
    pub fn new() -> Result<Self> {
        Ok(Config {
            version: crate::REPO_VERSION,
            id: hex::encode(crate::error::random_32()?),
            chunker: ChunkerParams::default(),
            pack_size: DEFAULT_PACK_SIZE,
            compression_level: 3,
            object_lock: None,
        })
    }

    /// Stored bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("config serializes")
    }

    /// Decode and check the version, the chunker sizes, the id ([`is_repository_id`]) and the
    /// Object Lock days.
    ///
    /// # Errors
    /// [`FormatError::UnsupportedVersions`] for a format version other than 2 and 3,
    /// [`FormatError::Malformed`].
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct Probe {
            version: u32,
        }
        let probe: Probe =
            serde_json::from_slice(b).map_err(|e| FormatError::malformed("config", e))?;
        crate::check_repo_version("repository", probe.version)?;
        let c: Config =
            serde_json::from_slice(b).map_err(|e| FormatError::malformed("config", e))?;
        c.chunker.validate()?;
        if !is_repository_id(&c.id) {
            return Err(FormatError::malformed(
                "config",
                format!(
                    "id {} is not 64 lowercase hex digits",
                    crate::tree::escape_name(c.id.as_bytes())
                ),
            ));
        }
        if c.object_lock.is_some_and(|l| l.days == 0) {
            return Err(FormatError::malformed(
                "config",
                "object_lock.days must be at least 1",
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_lock_is_optional_and_round_trips() {
        let mut c = Config::new().unwrap();
        let plain = c.to_bytes();
        assert!(!String::from_utf8_lossy(&plain).contains("object_lock"));
        assert_eq!(Config::from_bytes(&plain).unwrap(), c);
        c.object_lock = Some(ObjectLockConfig {
            mode: ObjectLockMode::Compliance,
            days: 30,
        });
        let locked = c.to_bytes();
        assert!(String::from_utf8_lossy(&locked).contains("\"mode\": \"compliance\""));
        assert_eq!(Config::from_bytes(&locked).unwrap(), c);
        let zero = String::from_utf8_lossy(&locked).replace("\"days\": 30", "\"days\": 0");
        assert!(Config::from_bytes(zero.as_bytes()).is_err());
    }

    #[test]
    fn id_must_be_64_lowercase_hex_digits() {
        let c = Config::new().unwrap();
        assert!(is_repository_id(&c.id));
        let plain = String::from_utf8(c.to_bytes()).unwrap();
        let with = |id: &str| Config::from_bytes(plain.replace(&c.id, id).as_bytes());
        assert_eq!(
            with(&"0123456789abcdef".repeat(4)).unwrap().id,
            "0123456789abcdef".repeat(4)
        );
        let bad = [
            (
                "../../../../tmp/x".to_string(),
                r#""../../../../tmp/x""#.to_string(),
            ),
            (
                "ABCDEF".repeat(10) + "ABCD",
                format!("\"{}\"", "ABCDEF".repeat(10) + "ABCD"),
            ),
            ("a".repeat(63), format!("\"{}\"", "a".repeat(63))),
            ("a".repeat(65), format!("\"{}\"", "a".repeat(65))),
            (String::new(), r#""""#.to_string()),
            ("g".repeat(64), format!("\"{}\"", "g".repeat(64))),
            (
                "a".repeat(62) + "\\n", // JSON for a line break
                format!("\"{}\\n\"", "a".repeat(62)),
            ),
        ];
        for (id, shown) in bad {
            let e = with(&id).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("malformed config: id {shown} is not 64 lowercase hex digits")
            );
        }
    }

    #[test]
    fn version_1_is_refused_by_name() {
        let c = Config::new().unwrap();
        assert_eq!(c.version, 3);
        let text = String::from_utf8(c.to_bytes()).unwrap();
        for (v, shown) in [(1, "1"), (4, "4"), (0, "0")] {
            let other = text.replacen("\"version\": 3", &format!("\"version\": {v}"), 1);
            assert_eq!(
                Config::from_bytes(other.as_bytes())
                    .unwrap_err()
                    .to_string(),
                format!(
                    "unsupported repository version {shown} (this tresor reads versions 2 and 3)"
                )
            );
        }
        // Version 2 (written without frames) still opens.
        let v2 = text.replacen("\"version\": 3", "\"version\": 2", 1);
        assert_eq!(Config::from_bytes(v2.as_bytes()).unwrap().version, 2);
        // A whole version-1 config as tresor 0.1 wrote it: refused by its version, before
        // its chunker algorithm (`fastcdc-v2020`, unknown now) is looked at.
        let v1 = r#"{
  "version": 1,
  "id": "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
  "chunker": {"algorithm": "fastcdc-v2020", "min_size": 262144, "avg_size": 1048576, "max_size": 4194304},
  "pack_size": 16777216,
  "compression_level": 3
}"#;
        assert_eq!(
            Config::from_bytes(v1.as_bytes()).unwrap_err().to_string(),
            "unsupported repository version 1 (this tresor reads versions 2 and 3)"
        );
        let v2 = v1.replace("\"version\": 1", "\"version\": 2");
        assert!(matches!(
            Config::from_bytes(v2.as_bytes()),
            Err(FormatError::Malformed { what: "config", .. })
        ));
        let keyed = v2.replace("fastcdc-v2020", "fastcdc-v2020-keyed-gear");
        assert_eq!(
            Config::from_bytes(keyed.as_bytes()).unwrap().chunker,
            ChunkerParams::default()
        );
    }
}
