//! Key revocations (format §4.2): JSON in a signed envelope made by the admin key.
//!
//! A revocation names a key's signing public key and the index and snapshot objects of that key
//! that were accepted when it was revoked. Readers ignore every other object signed by it.

use crate::ObjectId;
use crate::error::{FormatError, Result};
use crate::sign::{SignedKind, Signer, open_envelope};
use serde::{Deserialize, Serialize};

/// A revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Always [`crate::FORMAT_VERSION`].
    pub version: u32,
    /// Signing public key of the revoked key, hex.
    pub revoked: String,
    /// Time of the revocation, RFC 3339.
    pub created: String,
    /// Objects (index and snapshot) of the revoked key that stay valid.
    pub accepted: Vec<ObjectId>,
    /// Kind of the revoked key, so that its accepted objects keep their standing (absent in
    /// revocations of keys whose key file was lost: treated as put-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<crate::keyfile::KeyKind>,
    /// Host the revoked key was certified for, so that the objects it signed stay bound to that
    /// host (format §4.2, §11); absent when no key file told it (a lost key's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Revocation {
    /// Stored bytes, signed by the admin key.
    pub fn to_object(&self, admin: &Signer) -> Vec<u8> {
        admin.envelope(
            SignedKind::Revocation,
            &serde_json::to_vec(self).expect("revocation serializes"),
        )
    }

    /// Open stored bytes, requiring the admin's signature.
    ///
    /// # Errors
    /// [`FormatError::Authentication`] when not signed by `admin_public`; [`FormatError::Malformed`].
    pub fn open(admin_public: &[u8; 32], stored: &[u8]) -> Result<Self> {
        let (signer, body) = open_envelope(SignedKind::Revocation, stored)?;
        if &signer != admin_public {
            return Err(FormatError::Authentication {
                what: "revocation (not signed by the admin key)",
            });
        }
        crate::error::check_json_version(body, "revocation", crate::FORMAT_VERSION)?;
        serde_json::from_slice(body).map_err(|e| FormatError::malformed("revocation", e))
    }

    /// The revoked signing public key.
    ///
    /// # Errors
    /// [`FormatError::Malformed`].
    pub fn revoked_key(&self) -> Result<[u8; 32]> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(&self.revoked, &mut out)
            .map_err(|e| FormatError::malformed("revocation", e))?;
        Ok(out)
    }
}
