//! Signatures (format §3.2): Ed25519 (RFC 8032, `ed25519-dalek` crate, strict verification).
//!
//! Every key has its own signing key pair. Index objects and snapshots are wrapped in a signed
//! envelope so that any key holder — including a put-only host that cannot decrypt them — can
//! tell who wrote them. The repository's *admin* key pair (secret part held only by full keys)
//! certifies every key's signing public key and signs revocations.
//!
//! Signed envelope: `"TSG2" (4) || signer public key (32) || body || signature (64)`, where the
//! signature covers `"tresor signed v2" || kind byte || signer public key || body`.

use crate::error::{FormatError, Result};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

/// Magic bytes of a signed envelope.
pub const SIGNED_MAGIC: &[u8; 4] = b"TSG2";
/// The context every signed message starts with (16 ASCII bytes, format §3.2).
pub const SIGNED_CONTEXT: &[u8; 16] = b"tresor signed v2";
/// Bytes a signed envelope adds around its body.
pub const SIGNED_OVERHEAD: usize = 4 + 32 + 64;

/// What a signed envelope holds (part of the signed message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SignedKind {
    /// A snapshot object.
    Snapshot = 1,
    /// An index object.
    Index = 2,
    /// A key certificate (signed by the admin key).
    KeyCertificate = 3,
    /// A revocation (signed by the admin key).
    Revocation = 4,
    /// A backup start marker.
    Marker = 5,
    /// A trust record (signed by the admin key, format §4.3).
    Trust = 6,
    /// A restore drill record (format §18).
    Drill = 7,
}

fn message(kind: SignedKind, signer: &[u8; 32], body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(body.len() + 49);
    m.extend_from_slice(SIGNED_CONTEXT);
    m.push(kind as u8);
    m.extend_from_slice(signer);
    m.extend_from_slice(body);
    m
}

/// An Ed25519 signing key.
pub struct Signer(SigningKey);

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", hex::encode(&self.public()[..4]))
    }
}

impl Signer {
    /// A fresh random signing key.
    ///
    /// # Errors
    /// [`FormatError::Random`].
    pub fn generate() -> Result<Self> {
        Ok(Self::from_secret(&crate::error::random_32()?))
    }

    /// From its 32-byte secret.
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        Signer(SigningKey::from_bytes(secret))
    }

    /// The 32-byte secret.
    pub fn secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The 32-byte public key.
    pub fn public(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// Sign `body` as `kind`: 64-byte signature.
    pub fn sign(&self, kind: SignedKind, body: &[u8]) -> [u8; 64] {
        self.0.sign(&message(kind, &self.public(), body)).to_bytes()
    }

    /// Wrap `body` in a signed envelope.
    pub fn envelope(&self, kind: SignedKind, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + SIGNED_OVERHEAD);
        out.extend_from_slice(SIGNED_MAGIC);
        out.extend_from_slice(&self.public());
        out.extend_from_slice(body);
        out.extend_from_slice(&self.sign(kind, body));
        out
    }
}

/// Verify a detached signature made with [`Signer::sign`].
pub fn verify(public: &[u8; 32], kind: SignedKind, body: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    vk.verify_strict(
        &message(kind, public, body),
        &Signature::from_bytes(signature),
    )
    .is_ok()
}

/// Parse and verify a signed envelope; returns the signer's public key and the body.
///
/// # Errors
/// [`FormatError::Malformed`] when it is not an envelope; [`FormatError::Authentication`] when
/// the signature does not verify (modified bytes).
pub fn open_envelope(kind: SignedKind, bytes: &[u8]) -> Result<([u8; 32], &[u8])> {
    if bytes.len() < SIGNED_OVERHEAD || &bytes[..4] != SIGNED_MAGIC {
        return Err(FormatError::malformed(
            "signed object",
            "not a signed tresor object",
        ));
    }
    let signer: [u8; 32] = bytes[4..36].try_into().expect("32 bytes");
    let body = &bytes[36..bytes.len() - 64];
    let sig: [u8; 64] = bytes[bytes.len() - 64..].try_into().expect("64 bytes");
    if !verify(&signer, kind, body, &sig) {
        return Err(FormatError::Authentication { what: "signature" });
    }
    Ok((signer, body))
}
