//! Unlocked key files (format §4.4): a key's payload written in the clear to a local file, so
//! that a machine can open the repository without a password and without Argon2id — what
//! bupstash's key files and borg's `repokey` without a passphrase give.
//!
//! ```json
//! {"version": 2, "type": "tresor unlocked key", "repository": "<config id>",
//!  "payload": {"master": {…}, "signing_secret": "<hex>"}}
//! ```
//!
//! The file is never stored in the repository. It is as secret as the key itself: anyone who
//! reads it holds the key (a full key reads every backup; a put-only key writes new ones). It
//! names no key file: the key is found by its signing public key, so changing the key's
//! password (which writes a new key file) leaves it valid, and removing the key revokes it.

use crate::error::{FormatError, Result};
use crate::keyfile::KeyPayload;
use serde::{Deserialize, Serialize};

/// The `type` string of an unlocked key file.
pub const UNLOCKED_TYPE: &str = "tresor unlocked key";

/// Largest unlocked key file readers parse, bytes (a payload is below 1 KiB).
pub const MAX_UNLOCKED_LEN: usize = 64 * 1024;

/// An unlocked key file (format §4.4).
#[derive(Clone, Serialize, Deserialize)]
pub struct UnlockedKey {
    /// Format version, [`crate::FORMAT_VERSION`].
    pub version: u32,
    /// Always [`UNLOCKED_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Id of the repository (its config's `id`) the key belongs to.
    pub repository: String,
    /// The key payload (§4.1), in the clear.
    pub payload: KeyPayload,
}

impl std::fmt::Debug for UnlockedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UnlockedKey(repository {})", self.repository)
    }
}

impl UnlockedKey {
    /// The unlocked file of `payload`, a key of repository `repository`.
    pub fn new(repository: &str, payload: KeyPayload) -> Self {
        UnlockedKey {
            version: crate::FORMAT_VERSION,
            kind: UNLOCKED_TYPE.to_string(),
            repository: repository.to_string(),
            payload,
        }
    }

    /// Encode as pretty JSON with a final newline.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut b = serde_json::to_vec_pretty(self).expect("unlocked key serializes");
        b.push(b'\n');
        zeroize::Zeroizing::new(b)
    }

    /// Decode a file's bytes.
    ///
    /// # Errors
    /// [`FormatError::Malformed`] for more than [`MAX_UNLOCKED_LEN`] bytes, bad JSON, another
    /// `type`, or a payload that is not a key; [`FormatError::UnsupportedVersion`] for another
    /// version.
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        const WHAT: &str = "unlocked key file";
        if b.len() > MAX_UNLOCKED_LEN {
            return Err(FormatError::malformed(
                WHAT,
                format!("{} bytes, more than {MAX_UNLOCKED_LEN}", b.len()),
            ));
        }
        crate::error::check_json_version(b, WHAT, crate::FORMAT_VERSION)?;
        let u: UnlockedKey =
            serde_json::from_slice(b).map_err(|e| FormatError::malformed(WHAT, e))?;
        if u.kind != UNLOCKED_TYPE {
            return Err(FormatError::malformed(
                WHAT,
                format!("type {:?}, not {UNLOCKED_TYPE:?}", u.kind),
            ));
        }
        Ok(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> UnlockedKey {
        let master = crate::crypto::MasterKey::generate().unwrap();
        UnlockedKey::new(
            "0123abcd",
            KeyPayload {
                master,
                signing_secret: [7; 32],
            },
        )
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let u = sample();
        let b = u.to_bytes();
        let back = UnlockedKey::from_bytes(&b).unwrap();
        assert_eq!(back.repository, "0123abcd");
        assert_eq!(back.payload.signing_secret, [7; 32]);
        assert_eq!(
            serde_json::to_string(&back.payload.master).unwrap(),
            serde_json::to_string(&u.payload.master).unwrap()
        );
        assert_eq!(&back.to_bytes()[..], &b[..]);
        assert!(
            std::str::from_utf8(&b)
                .unwrap()
                .contains("\"type\": \"tresor unlocked key\"")
        );
    }

    #[test]
    fn foreign_files_are_refused_with_a_reason() {
        let good = String::from_utf8(sample().to_bytes().to_vec()).unwrap();
        let cases = [
            (
                good.replace("\"version\": 2", "\"version\": 3"),
                "version 3",
            ),
            (
                good.replace("tresor unlocked key", "tresor key"),
                "type \"tresor key\"",
            ),
            ("{}".to_string(), "missing field"),
            ("not json".to_string(), "unlocked key file"),
            (" ".repeat(MAX_UNLOCKED_LEN + 1), "more than 65536"),
        ];
        for (text, want) in cases {
            let e = UnlockedKey::from_bytes(text.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        }
    }
}
