//! Key files (format §4): the [`MasterKey`] wrapped under a password.
//!
//! The password is normalised to Unicode NFC, then Argon2id (RFC 9106, `argon2` crate, version
//! 0x13) derives a 32-byte key-encryption key from it and a random 16-byte salt, with the cost
//! parameters stored in the file. The master key (JSON) is encrypted with XChaCha20-Poly1305 under
//! that key; the associated data is the string `"tresor key v1"`. A key file is stored as JSON.

use crate::crypto::{DataKey, MasterKey};
use crate::error::{FormatError, Result, random_fill};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

const KEY_AAD: &[u8] = b"tresor key v1";

/// Argon2id cost parameters (RFC 9106 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes (time cost).
    pub t: u32,
    /// Lanes (parallelism).
    pub p: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane (RFC 9106 §4, second recommended option, single lane).
    fn default() -> Self {
        KdfParams {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// Holds the secret key: reads and writes.
    Full,
    /// Holds no secret key: writes only.
    PutOnly,
}

/// A key file as stored (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    /// Key file format version, always 1.
    pub version: u32,
    /// Full or put-only.
    pub kind: KeyKind,
    /// Host the key was made on or for.
    pub host: String,
    /// User who made the key.
    pub username: String,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// KDF name, always `"argon2id"`.
    pub kdf: String,
    /// KDF cost parameters.
    pub params: KdfParams,
    /// Salt, base64 (16 bytes).
    pub salt: String,
    /// Nonce, base64 (24 bytes).
    pub nonce: String,
    /// Encrypted master key (JSON) with tag, base64.
    pub data: String,
}

/// Derive the 32-byte key-encryption key from a password.
///
/// # Errors
/// [`FormatError::Malformed`] for invalid cost parameters.
pub fn derive_key(password: &str, salt: &[u8], params: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    let normalized: Zeroizing<String> = Zeroizing::new(password.nfc().collect());
    let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(32))
        .map_err(|e| FormatError::malformed("kdf parameters", e))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(normalized.as_bytes(), salt, out.as_mut())
        .map_err(|e| FormatError::malformed("kdf", e))?;
    Ok(out)
}

impl KeyFile {
    /// Wrap `key` under `password`. `created` is an RFC 3339 time.
    ///
    /// # Errors
    /// [`FormatError::Random`] or invalid parameters.
    pub fn create(
        key: &MasterKey,
        password: &str,
        params: KdfParams,
        host: &str,
        username: &str,
        created: &str,
    ) -> Result<Self> {
        let mut salt = [0u8; 16];
        random_fill(&mut salt)?;
        let kek = derive_key(password, &salt, params)?;
        let plain = Zeroizing::new(serde_json::to_vec(key).expect("key serializes"));
        let sealed = DataKey(*kek).encrypt(KEY_AAD, plain.to_vec())?;
        Ok(KeyFile {
            version: 1,
            kind: if key.can_read() {
                KeyKind::Full
            } else {
                KeyKind::PutOnly
            },
            host: host.to_string(),
            username: username.to_string(),
            created: created.to_string(),
            kdf: "argon2id".into(),
            params,
            salt: B64.encode(salt),
            nonce: B64.encode(&sealed[..24]),
            data: B64.encode(&sealed[24..]),
        })
    }

    /// Unwrap the master key with `password`.
    ///
    /// # Errors
    /// [`FormatError::WrongPassword`] when the password does not fit (or the file was changed);
    /// [`FormatError::UnsupportedVersion`] / [`FormatError::Malformed`] for a foreign file.
    pub fn open(&self, password: &str) -> Result<MasterKey> {
        if self.version != 1 {
            return Err(FormatError::UnsupportedVersion {
                what: "key file",
                found: self.version,
                supported: 1,
            });
        }
        if self.kdf != "argon2id" {
            return Err(FormatError::malformed(
                "key file",
                format!("unknown kdf {:?}", self.kdf),
            ));
        }
        let salt = B64
            .decode(&self.salt)
            .map_err(|e| FormatError::malformed("key file salt", e))?;
        let mut sealed = B64
            .decode(&self.nonce)
            .map_err(|e| FormatError::malformed("key file nonce", e))?;
        if sealed.len() != 24 {
            return Err(FormatError::malformed("key file nonce", "not 24 bytes"));
        }
        sealed.extend(
            B64.decode(&self.data)
                .map_err(|e| FormatError::malformed("key file data", e))?,
        );
        let kek = derive_key(password, &salt, self.params)?;
        let plain = Zeroizing::new(
            DataKey(*kek)
                .decrypt(KEY_AAD, &sealed, "key file")
                .map_err(|_| FormatError::WrongPassword)?,
        );
        serde_json::from_slice(&plain).map_err(|e| FormatError::malformed("key file payload", e))
    }

    /// Encode as stored bytes (pretty JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("key file serializes")
    }

    /// Decode stored bytes.
    ///
    /// # Errors
    /// [`FormatError::Malformed`].
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        serde_json::from_slice(b).map_err(|e| FormatError::malformed("key file", e))
    }
}
