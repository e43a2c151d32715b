//! Key files (format §4): the [`MasterKey`] wrapped under a password.
//!
//! The password is normalised to Unicode NFC, then Argon2id (RFC 9106, `argon2` crate, version
//! 0x13) derives a 32-byte key-encryption key from it and a random 16-byte salt, with the cost
//! parameters stored in the file. The master key (JSON) is encrypted with XChaCha20-Poly1305 under
//! that key; the associated data is the string `"tresor key v2"`. A key file is stored as JSON.
//!
//! The encrypted payload is a [`KeyPayload`]: the repository [`MasterKey`] (without the secret
//! parts for put-only keys) and this key's own Ed25519 signing secret. The plaintext header
//! carries the signing public key and a *certificate*: the admin key's signature over
//! `kind || signing public key || host || created` ([`certificate_body`]), so that every key
//! holder can tell certified keys (and full keys) from forged key files.

use crate::crypto::{DataKey, MasterKey};
use crate::error::{FormatError, Result, random_fill};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

const KEY_AAD: &[u8] = b"tresor key v2";

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
    /// 32 MiB, 4 passes, 1 lane: above OWASP's minimums for Argon2id (19 MiB × 2 passes, or
    /// 46 MiB × 1 pass) while keeping a backup's peak memory low. Users who want RFC 9106's
    /// second recommended option pass `--kdf-memory-kib 65536 --kdf-iterations 3`.
    fn default() -> Self {
        KdfParams {
            m_kib: 32 * 1024,
            t: 4,
            p: 1,
        }
    }
}

impl KdfParams {
    /// Largest Argon2id memory cost readers attempt, KiB (2 GiB, RFC 9106's first recommended
    /// option).
    pub const MAX_M_KIB: u32 = 2 << 20;
    /// Most Argon2id passes readers attempt.
    pub const MAX_T: u32 = 64;
    /// Most Argon2id lanes readers attempt.
    pub const MAX_P: u32 = 16;
    /// Largest memory × passes readers attempt, KiB (2 GiB: RFC 9106's 2 GiB × 1 pass, or
    /// 512 MiB × 4, or 64 MiB × 32; 16 times the default; several seconds on one core): what one
    /// key file can cost a client that tries it.
    pub const MAX_COST: u64 = 2 << 20;

    /// The work Argon2id does with these parameters: memory (KiB) × passes. Lanes split the
    /// memory, they add no work. Clients try the cheapest key files first.
    pub fn cost(&self) -> u64 {
        u64::from(self.m_kib) * u64::from(self.t)
    }

    /// Check the parameters against the bounds above and Argon2's own minimums (t ≥ 1,
    /// 1 ≤ p, m ≥ 8 × p): a key file with others is malformed and never attempted, so a planted
    /// key file cannot make a client spend unbounded time or memory.
    ///
    /// # Errors
    /// [`FormatError::Malformed`] (`"kdf parameters"`) naming the bound.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(FormatError::malformed("kdf parameters", what));
        if self.m_kib > Self::MAX_M_KIB {
            return bad(format!(
                "memory {} KiB over {} KiB",
                self.m_kib,
                Self::MAX_M_KIB
            ));
        }
        if self.t > Self::MAX_T {
            return bad(format!("{} passes, more than {}", self.t, Self::MAX_T));
        }
        if self.p > Self::MAX_P {
            return bad(format!("{} lanes, more than {}", self.p, Self::MAX_P));
        }
        if self.cost() > Self::MAX_COST {
            return bad(format!(
                "memory × passes = {} KiB, over {} KiB",
                self.cost(),
                Self::MAX_COST
            ));
        }
        argon2::Params::new(self.m_kib, self.t, self.p, Some(32))
            .map(|_| ())
            .or_else(|e| bad(e.to_string()))
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

/// What a key file encrypts.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyPayload {
    /// The repository key material.
    pub master: MasterKey,
    /// This key's Ed25519 signing secret (32 bytes, hex).
    #[serde(with = "crate::crypto::hex32")]
    pub signing_secret: [u8; 32],
}

impl Drop for KeyPayload {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.signing_secret);
    }
}

/// BLAKE3 `derive_key` context of [`KeyPayload::snapshot_cache_key`].
pub const SNAPSHOT_CACHE_CONTEXT: &str = "tresor 2026-12-07 snapshot cache MAC v1";

impl KeyPayload {
    /// The signer of this key.
    pub fn signer(&self) -> crate::sign::Signer {
        crate::sign::Signer::from_secret(&self.signing_secret)
    }

    /// The key (32 bytes) that authenticates this key's local cache of the snapshots it opened
    /// in repository `repository_id` (tresor-core's `repo/snapshot_cache.rs`):
    /// `BLAKE3-derive_key(SNAPSHOT_CACHE_CONTEXT, signing secret ‖ repository id)` (BLAKE3's key
    /// derivation mode, the BLAKE3 paper §2.3): only the holder of this key's signing secret can
    /// make entries its cache accepts — as only they can sign snapshots as this key. `None` for
    /// a key that cannot read (put-only), which opens no snapshot.
    pub fn snapshot_cache_key(&self, repository_id: &str) -> Option<[u8; 32]> {
        if !self.master.can_read() {
            return None;
        }
        let mut material = zeroize::Zeroizing::new(self.signing_secret.to_vec());
        material.extend_from_slice(repository_id.as_bytes());
        Some(blake3::derive_key(SNAPSHOT_CACHE_CONTEXT, &material))
    }
}

/// The bytes the admin key signs to certify a key.
pub fn certificate_body(
    kind: KeyKind,
    signing_public: &[u8; 32],
    host: &str,
    created: &str,
) -> Vec<u8> {
    let mut b = vec![match kind {
        KeyKind::Full => 1u8,
        KeyKind::PutOnly => 2u8,
    }];
    b.extend_from_slice(signing_public);
    b.extend_from_slice(&(host.len() as u32).to_le_bytes());
    b.extend_from_slice(host.as_bytes());
    b.extend_from_slice(created.as_bytes());
    b
}

/// A key file as stored (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    /// Key file format version, always [`crate::FORMAT_VERSION`].
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
    /// Encrypted [`KeyPayload`] (JSON) with tag, base64.
    pub data: String,
    /// This key's Ed25519 signing public key, hex.
    pub signing_public: String,
    /// Admin signature over [`certificate_body`], hex (64 bytes).
    pub certificate: String,
}

/// Derive the 32-byte key-encryption key from a password.
///
/// # Errors
/// [`FormatError::Malformed`] for cost parameters out of bounds ([`KdfParams::validate`]),
/// before any work.
pub fn derive_key(password: &str, salt: &[u8], params: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    params.validate()?;
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
    /// Wrap `payload` under `password`; `certificate` is the admin's signature over
    /// [`certificate_body`] (see [`KeyFile::certify`]). `created` is an RFC 3339 time.
    ///
    /// # Errors
    /// [`FormatError::Random`] or invalid parameters.
    pub fn create(
        payload: &KeyPayload,
        password: &str,
        params: KdfParams,
        owner: (&str, &str, &str),
        certificate: [u8; 64],
    ) -> Result<Self> {
        let (host, username, created) = owner;
        let key = &payload.master;
        let mut salt = [0u8; 16];
        random_fill(&mut salt)?;
        let kek = derive_key(password, &salt, params)?;
        // Room for the whole payload JSON (about 600 bytes) up front: growing the buffer would
        // leave copies of the hex key material behind in freed memory.
        let mut plain = Zeroizing::new(Vec::with_capacity(2048));
        serde_json::to_writer(&mut *plain, payload).expect("key serializes");
        // The copy is encrypted in place: it holds ciphertext afterwards.
        let sealed = DataKey(*kek).encrypt(KEY_AAD, plain.to_vec())?;
        Ok(KeyFile {
            signing_public: hex::encode(payload.signer().public()),
            certificate: hex::encode(certificate),
            version: crate::FORMAT_VERSION,
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

    /// The admin signature certifying a new key of `kind` with `signing_public`.
    ///
    /// # Errors
    /// [`FormatError::PutOnlyKey`] when `admin_key` has no admin secret.
    pub fn certify(
        admin_key: &MasterKey,
        kind: KeyKind,
        signing_public: &[u8; 32],
        host: &str,
        created: &str,
    ) -> Result<[u8; 64]> {
        Ok(admin_key.admin()?.sign(
            crate::sign::SignedKind::KeyCertificate,
            &certificate_body(kind, signing_public, host, created),
        ))
    }

    /// The signing public key from the header.
    ///
    /// # Errors
    /// [`FormatError::Malformed`].
    pub fn signing_public(&self) -> Result<[u8; 32]> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(&self.signing_public, &mut out)
            .map_err(|e| FormatError::malformed("key file signing key", e))?;
        Ok(out)
    }

    /// Whether the header's certificate is a valid admin signature.
    pub fn certified_by(&self, admin_public: &[u8; 32]) -> bool {
        let (Ok(pk), Ok(sig)) = (self.signing_public(), hex::decode(&self.certificate)) else {
            return false;
        };
        let Ok(sig) = <[u8; 64]>::try_from(sig.as_slice()) else {
            return false;
        };
        crate::sign::verify(
            admin_public,
            crate::sign::SignedKind::KeyCertificate,
            &certificate_body(self.kind, &pk, &self.host, &self.created),
            &sig,
        )
    }

    /// Unwrap the key payload with `password`.
    ///
    /// # Errors
    /// [`FormatError::WrongPassword`] when the password does not fit (or the file was changed);
    /// [`FormatError::UnsupportedVersion`] / [`FormatError::Malformed`] for a foreign file.
    pub fn open(&self, password: &str) -> Result<KeyPayload> {
        if self.version != crate::FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion {
                what: "key file",
                found: self.version,
                supported: crate::FORMAT_VERSION,
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

    /// Decode stored bytes; the KDF parameters must be within bounds ([`KdfParams::validate`]).
    ///
    /// # Errors
    /// [`FormatError::UnsupportedVersion`] for another key file version, [`FormatError::Malformed`].
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        crate::error::check_json_version(b, "key file", crate::FORMAT_VERSION)?;
        let kf: KeyFile =
            serde_json::from_slice(b).map_err(|e| FormatError::malformed("key file", e))?;
        kf.params.validate().map_err(|e| match e {
            FormatError::Malformed { detail, .. } => {
                FormatError::malformed("key file", format!("kdf parameters: {detail}"))
            }
            e => e,
        })?;
        Ok(kf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(m_kib: u32, t: u32, p: u32) -> KdfParams {
        KdfParams { m_kib, t, p }
    }

    #[test]
    fn kdf_parameters_are_bounded() {
        for ok in [
            KdfParams::default(),
            p(8, 1, 1),
            p(2 << 20, 1, 16),
            p(512 << 10, 4, 1),
            p(32 << 10, 64, 4),
        ] {
            ok.validate().unwrap();
        }
        let cases = [
            (
                p((2 << 20) + 1, 1, 1),
                "memory 2097153 KiB over 2097152 KiB",
            ),
            (
                p(u32::MAX, u32::MAX, u32::MAX),
                "memory 4294967295 KiB over 2097152 KiB",
            ),
            (p(64, 65, 1), "65 passes, more than 64"),
            (p(1024, 1, 17), "17 lanes, more than 16"),
            (
                p(1 << 20, 3, 1),
                "memory × passes = 3145728 KiB, over 2097152 KiB",
            ),
            (p(8, 0, 1), "time cost is too small"),
            (p(8, 1, 2), "memory cost is too small"),
        ];
        for (params, msg) in cases {
            assert_eq!(
                params.validate().unwrap_err().to_string(),
                format!("malformed kdf parameters: {msg}"),
                "{params:?}"
            );
            // Never attempted: refused at once, whatever the password.
            assert!(derive_key("pw", &[0; 16], params).is_err());
        }
        assert_eq!(p(1024, 3, 1).cost(), 3072);
    }

    #[test]
    fn key_files_with_huge_parameters_are_malformed() {
        let key = MasterKey::generate().unwrap();
        let payload = KeyPayload {
            master: key.clone(),
            signing_secret: [1; 32],
        };
        let cheap = p(8, 1, 1);
        let kf = KeyFile::create(&payload, "pw", cheap, ("h", "u", "c"), [0; 64]).unwrap();
        let text = String::from_utf8(kf.to_bytes()).unwrap();
        assert!(KeyFile::from_bytes(text.as_bytes()).is_ok());
        let planted = text.replace("\"m_kib\": 8,", "\"m_kib\": 4294967295,");
        assert_ne!(planted, text);
        let e = KeyFile::from_bytes(planted.as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed key file: kdf parameters: memory 4294967295 KiB over 2097152 KiB"
        );
        // Even a KeyFile value built by hand is refused before Argon2 runs.
        let mut hand = kf.clone();
        hand.params = p(1 << 20, 64, 1);
        let started = std::time::Instant::now();
        assert!(matches!(
            hand.open("pw"),
            Err(FormatError::Malformed { .. })
        ));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
